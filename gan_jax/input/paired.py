"""Paired (model input, target) batches for image-to-image tasks (`config.data.task`).

Any source (a folder, an npz, the digits, a TFDS split decoded into memory) becomes a paired
dataset: each image is the target, and the task's degradation (`gan_jax.input.tasks`) makes
the model input.

* **Splits.** Each image has a stable key (a folder file's path relative to the folder, an
  npz or digits index as a decimal string, '<TFDS split>/<index>' for a TFDS split read in
  file order), and `tasks.split_of(key)` puts it in train (90%),
  validation (5%) or test (5%) by the key's SHA-256: adding, removing or reordering files
  never moves another file between splits. Training reads only the train split; the sample
  grids show validation examples; `evaluate.py` scores the test split.
* **Degradations.** A training example's mask or noise is drawn from
  `tasks.example_seed(seed, key, epoch)`: fresh each epoch, and the same again on a resume
  (the epoch is known from the step), so a resumed run sees the batches an uninterrupted one
  does. Validation and test examples use `example_seed(seed, key)`: one fixed degradation
  per example, whatever the order, batch or run.

Batches are `{'image': target float32 [B, S, S, C], 'source': model input float32 [B, ...]
(`task.input_shape`), 'label': int32 zeros [B]}`, all in [-1, 1] (the inpainting input's last
channel is the mask, 1 = hole).
"""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from gan_jax.input import sources, tasks
from gan_jax.input.pipeline import _TO_FLOAT, ArrayDataset, load_tfds_images
from gan_jax.input.sources import DataError

PAIRED_SOURCES = ("folder", "npz", "digits", "tfds")
MIN_TRAIN = 2


def task_of(config) -> tasks.Task:
    spec = sources.data_field(config, "task", "")
    try:
        return tasks.parse_task(spec)
    except ValueError as e:
        raise DataError(f"config.data.task: {e}") from None


def validate(config) -> None:
    """The task parses, fits the images (channels, divisibility) and the source is supported."""
    task = task_of(config)
    source, size, channels, _ = sources.image_settings(config)
    if source not in PAIRED_SOURCES:
        raise DataError(
            f"config.data.source: image-to-image tasks read {', '.join(PAIRED_SOURCES)}, "
            f"got '{source}'"
        )
    try:
        task.input_shape((size, size, channels))
    except ValueError as e:
        raise DataError(f"config.data.task: {e}") from None


def load_keyed(config) -> tuple[np.ndarray, list[str], list]:
    """Every image of the source with its key: (uint8 [N, S, S, C], keys, decode failures)."""
    source, size, channels, crop = sources.image_settings(config)
    if source == "digits":
        images = sources.load_digits_images(size, channels)
        return images, [str(i) for i in range(len(images))], []
    if source == "npz":
        images = sources.load_npz_images(config, size, channels, crop)
        return images, [str(i) for i in range(len(images))], []
    if source == "tfds":
        images, keys = load_tfds_images(config, size, channels, crop)
        return images, keys, []
    files = sources.check_folder(config)
    root = sources._folder_path(config)
    images, failures = sources._decode_folder(config, files, root, size, channels, crop)
    failed = {p for p, _ in failures}
    keys = [tasks.relative_key(f, root) for f in files if f not in failed]
    return images, keys, failures


def split_indices(keys: list[str], split: str) -> np.ndarray:
    """Positions of the keys in `split`, in the source's order."""
    if split not in tasks.SPLITS:
        raise ValueError(f"split must be one of {tasks.SPLITS}, got {split!r}")
    return np.array([i for i, k in enumerate(keys) if tasks.split_of(k) == split], np.int64)


def degrade_examples(task, images_uint8: np.ndarray, seeds) -> dict[str, np.ndarray]:
    """`tasks.degrade` on each uint8 image with its seed: {'input', 'target'[, 'mask']}."""
    floats = np.take(_TO_FLOAT, images_uint8)
    return tasks.degrade_batch(task, floats, seeds)


class PairedDataset(ArrayDataset):
    """`ArrayDataset` over the train split, with each batch's model inputs made by the task.

    Attributes (besides `ArrayDataset`'s):
      task: the `tasks.Task`.
      keys: the train split's keys, aligned with `images`.
      held_out: {'validation': (uint8 images, keys), 'test': (...)}.
    """

    def __init__(self, images, keys, held_out, *, task, **kwargs):
        super().__init__(images, None, **kwargs)
        self.task = task
        self.keys = list(keys)
        self.held_out = held_out

    def batch(self, idx: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        seeds = [tasks.example_seed(self.seed, self.keys[i], epoch) for i in idx]
        pair = degrade_examples(self.task, self.images[idx], seeds)
        return {
            "image": pair["target"],
            "source": pair["input"],
            "label": np.zeros(len(idx), np.int32),
        }

    def examples(self, split: str, count: int | None = None) -> dict[str, np.ndarray]:
        """The first `count` examples of a held-out split with their fixed degradations."""
        images, keys = self.held_out[split]
        if count is not None:
            images, keys = images[:count], keys[:count]
        return held_out_pairs(self.task, images, keys, self.seed)


def held_out_pairs(task, images: np.ndarray, keys, seed: int) -> dict[str, np.ndarray]:
    """{'input', 'target'[, 'mask'], 'keys'} of held-out images (fixed seeds per key)."""
    if not len(images):
        raise DataError("the split holds no images (the folder is too small to split)")
    seeds = [tasks.example_seed(seed, k) for k in keys]
    out = degrade_examples(task, images, seeds)
    out["keys"] = np.asarray(list(keys))
    return out


def load_split(config, split: str) -> dict[str, np.ndarray]:
    """A held-out split of the config's data as degraded pairs (for evaluate.py)."""
    validate(config)
    images, keys, _ = load_keyed(config)
    idx = split_indices(keys, split)
    return held_out_pairs(task_of(config), images[idx], [keys[i] for i in idx], config.seed)


def create_paired_dataset(config, *, common: dict) -> PairedDataset:
    """The training stream of a paired task (`create_dataset` calls it when data.task is set)."""
    validate(config)
    task = task_of(config)
    images, keys, failures = load_keyed(config)
    train = split_indices(keys, "train")
    if len(train) < MIN_TRAIN:
        raise DataError(
            f"config.data.path: only {len(train)} of {len(images)} images fall in the train split "
            "(90% by a hash of each file name); add images"
        )
    held_out = {}
    for split in ("validation", "test"):
        idx = split_indices(keys, split)
        held_out[split] = (images[idx], [keys[i] for i in idx])
    source = sources.image_settings(config)[0]
    where = os.path.basename(str(sources.data_field(config, "path", ""))) or source
    logging.info(
        "Data: %s, task %s: %d train / %d validation / %d test images",
        where,
        task,
        len(train),
        len(held_out["validation"][0]),
        len(held_out["test"][0]),
    )
    return PairedDataset(
        images[train],
        [keys[i] for i in train],
        held_out,
        task=task,
        seed=config.seed,
        skipped=len(failures),
        failures=failures,
        **common,
    )
