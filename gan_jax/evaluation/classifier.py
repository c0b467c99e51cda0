"""A small CNN classifier for class-conditional evaluation (CAS, label accuracy).

Three convolutions and two dense layers in Flax, trained with AdamW on uint8 images and int32
labels. Every image is first resized to 32x32 (linear, antialiased when shrinking), so one
network serves 8-64 px datasets with 1 or 3 channels at a fixed, small cost. With the defaults
(1,000 steps of 64) it scores 99.05% on the MNIST test split after training on its 60,000
training images, in 84 s on 2 CPU cores shared with other jobs (76 CPU-seconds), and 99.2% on
a 597-image hold-out of scikit-learn's digits.

The parameters are a plain pytree; the number of classes and channels are read back from their
shapes, so `predict` needs nothing else. Training is deterministic given the seed (the
initialisation and the order of the batches both come from it).

A classifier of a run's real data is trained once per dataset identity and training protocol
and cached next to the FID reference statistics (``~/.cache/gan_jax/fid_stats``, see
`reference.default_stats_dir`) as one ``.npz``: the parameters plus the protocol as JSON. A file
whose protocol differs from the one asked for (other steps, seed, data, architecture) is not
used: the classifier is retrained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import traverse_util

from gan_jax.errors import DataError

# The network sees every image at this size (resized inside the jitted function).
INPUT_RESOLUTION = 32
WIDTHS = (16, 32, 64)
DENSE_WIDTH = 128
# Recorded in every cache protocol: changing the network above must change this string, so that
# classifiers cached by an older version are retrained rather than loaded into the wrong shapes.
ARCHITECTURE = (
    f"resize {INPUT_RESOLUTION}px; conv3x3 {'/'.join(map(str, WIDTHS))} + relu + maxpool2; "
    f"dense {DENSE_WIDTH} + relu; dense classes (v1)"
)

DEFAULT_STEPS = 1000
DEFAULT_BATCH_SIZE = 64
DEFAULT_LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4
PREDICT_BATCH_SIZE = 500
CACHE_PREFIX = "classifier"


class SmallCNN(nn.Module):
    """uint8 [B, H, W, C] -> logits [B, num_classes] (any H, W: resized to 32 first)."""

    num_classes: int
    widths: tuple[int, ...] = WIDTHS
    dense_width: int = DENSE_WIDTH

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = images.astype(jnp.float32) / 127.5 - 1.0
        b, h, w, c = x.shape
        if (h, w) != (INPUT_RESOLUTION, INPUT_RESOLUTION):
            x = jax.image.resize(
                x, (b, INPUT_RESOLUTION, INPUT_RESOLUTION, c), "linear", antialias=True
            )
        for i, width in enumerate(self.widths):
            x = nn.relu(nn.Conv(width, (3, 3), name=f"conv{i}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Dense(self.dense_width, name="dense")(x.reshape(b, -1)))
        return nn.Dense(self.num_classes, name="head")(x)


def num_classes_of(params) -> int:
    """Classes a classifier's parameters predict."""
    return int(params["head"]["kernel"].shape[-1])


def channels_of(params) -> int:
    """Image channels a classifier's parameters expect."""
    return int(params["conv0"]["kernel"].shape[-2])


def check_images(images, *, what: str = "images", error: type[Exception] = DataError):
    """Checks a uint8 image batch [N, H, W, C] with C in 1, 3 and H, W >= 8.

    Args:
      images: the array.
      what: how messages name it.
      error: the exception class to raise.

    Returns:
      The images as a NumPy array.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise error(f"{what} must be uint8 [N, H, W, C], got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise error(f"{what} must be [N, H, W, C] with C 1 or 3, got shape {images.shape}")
    if min(images.shape[1:3]) < 8:
        raise error(f"{what} must be at least 8x8 pixels, got shape {images.shape}")
    return images


def _check_labelled(images, labels, num_classes: int):
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise DataError(f"a classifier needs num_classes >= 2, got {num_classes}")
    images = check_images(images)
    labels = np.asarray(labels)
    if labels.shape != images.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"labels must be integers [{images.shape[0]}] (one per image), got "
            f"{labels.dtype} {labels.shape}"
        )
    if images.shape[0] == 0:
        raise DataError("no images to train a classifier on")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise DataError(f"label {int(bad[0])} is not in [0, {num_classes})")
    return images, labels.astype(np.int32)


def module_of(params) -> SmallCNN:
    """The `SmallCNN` that `params` belong to, read from their shapes."""
    widths = tuple(int(params[f"conv{i}"]["kernel"].shape[-1]) for i in range(len(params) - 2))
    return SmallCNN(num_classes_of(params), widths, int(params["dense"]["kernel"].shape[-1]))


@jax.jit
def _logits(params, images):
    # The module is rebuilt from the (static) parameter shapes: params are all predict needs.
    return module_of(params).apply({"params": params}, images)


def _loss(params, images, labels):
    logits = _logits(params, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


# AdamW without its learning rate, which `_train_step` applies: the rate is an argument, so one
# compiled step serves every schedule (tests train several classifiers in one process).
_TX = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(WEIGHT_DECAY))


@jax.jit
def _train_step(params, opt_state, all_images, all_labels, idx, rate):
    # The data stays on the device, passed as arguments (as constants it would bloat the compile).
    loss, grads = jax.value_and_grad(_loss)(params, all_images[idx], all_labels[idx])
    updates, opt_state = _TX.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: -rate * u, updates)
    return optax.apply_updates(params, updates), opt_state, loss


def _batch_indices(num: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """[steps, batch_size] indices: consecutive shuffled epochs, cut into batches."""
    rng = np.random.default_rng(seed)
    needed = steps * batch_size
    epochs = [rng.permutation(num) for _ in range(-(-needed // num))]
    return np.concatenate(epochs)[:needed].reshape(steps, batch_size).astype(np.int32)


def train_classifier(
    images,
    labels,
    *,
    num_classes: int,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    label: str = "classifier",
    every_s: float = 30.0,
):
    """Trains a `SmallCNN` on labelled uint8 images.

    Adam with decoupled weight decay, a linear warm-up over the first 5% of the steps then a
    cosine decay to zero; cross-entropy on batches drawn epoch by epoch without replacement.
    The same arguments give the same parameters.

    Args:
      images: uint8 [N, H, W, C], C 1 or 3, H and W >= 8.
      labels: integers [N] in [0, num_classes).
      num_classes: classes (>= 2).
      steps: optimiser steps (>= 1).
      batch_size: images per step (>= 1).
      seed: initialisation and batch order.
      learning_rate: peak learning rate.
      label: names the run in the progress lines.
      every_s: seconds between progress lines.

    Returns:
      The parameters: a pytree of NumPy float32 arrays.

    Raises:
      DataError: bad images, labels, num_classes, steps or batch size.
    """
    images, labels = _check_labelled(images, labels, num_classes)
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise DataError(f"classifier {name} must be an integer >= 1, got {value}")
    start = time.monotonic()
    params = SmallCNN(num_classes).init(jax.random.PRNGKey(seed), images[:1])["params"]
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, warmup_steps=max(1, steps // 20), decay_steps=steps
    )
    rates = np.asarray(jax.vmap(schedule)(jnp.arange(steps)), np.float32)
    opt_state = _TX.init(params)
    all_images, all_labels = jax.device_put(images), jax.device_put(labels)
    order = _batch_indices(images.shape[0], batch_size, steps, seed)
    last_log = start
    for i in range(steps):
        params, opt_state, loss = _train_step(
            params, opt_state, all_images, all_labels, order[i], rates[i]
        )
        now = time.monotonic()
        if now - last_log >= every_s:
            last_log = now
            rate = (i + 1) / (now - start)
            eta = int(round((steps - i - 1) / rate))
            logging.info(
                "%s: step %d/%d, loss %.4f, %.1f steps/s, ETA %dm%02ds",
                label,
                i + 1,
                steps,
                float(loss),
                rate,
                eta // 60,
                eta % 60,
            )
    params = jax.tree.map(np.asarray, jax.device_get(params))
    logging.info(
        "%s: %d steps of %d on %d images, final batch loss %.4f, done in %.0f s",
        label,
        steps,
        batch_size,
        images.shape[0],
        float(loss),
        time.monotonic() - start,
    )
    return params


def predict_logits(params, images, *, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
    """Logits float32 [N, num_classes] of uint8 images [N, H, W, C].

    Every call is padded to `batch_size` images, so one image size compiles once.
    """
    images = check_images(images)
    if images.shape[-1] != channels_of(params):
        raise DataError(
            f"the classifier expects {channels_of(params)}-channel images, got shape {images.shape}"
        )
    size = min(batch_size, max(images.shape[0], 1))
    out = []
    for lo in range(0, images.shape[0], size):
        chunk = images[lo : lo + size]
        n = chunk.shape[0]
        if n < size:
            chunk = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), np.uint8)])
        out.append(np.asarray(_logits(params, chunk))[:n])
    if not out:
        return np.zeros((0, num_classes_of(params)), np.float32)
    return np.concatenate(out)


def predict(params, images, *, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
    """Predicted labels int32 [N] of uint8 images [N, H, W, C]."""
    return predict_logits(params, images, batch_size=batch_size).argmax(-1).astype(np.int32)


def class_accuracies(predicted, labels, num_classes: int) -> list[float | None]:
    """Accuracy of each class (None for a class without examples), in class order."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    out = []
    for c in range(num_classes):
        mask = labels == c
        out.append(float((predicted[mask] == c).mean()) if mask.any() else None)
    return out


def accuracy(params, images, labels, *, batch_size: int = PREDICT_BATCH_SIZE) -> float:
    """Fraction of `images` whose predicted label is `labels` (a float in [0, 1])."""
    labels = np.asarray(labels)
    if labels.shape != np.asarray(images).shape[:1]:
        raise DataError(f"need one label per image, got {labels.shape} for {images.shape}")
    return float((predict(params, images, batch_size=batch_size) == labels).mean())


# --------------------------------------------------------------------------------------------
# Cached classifiers of real data.


@dataclasses.dataclass
class TrainedClassifier:
    """A classifier with the protocol it was trained under.

    Attributes:
      params: for `predict` / `accuracy`.
      protocol: what it was trained on and how (see `classifier_protocol`).
      info: facts found while training (images used, seconds).
      path: the cache file ('' when not cached).
      trained: True when this call trained it, False when it came from the cache.
    """

    params: Any
    protocol: dict[str, Any]
    info: dict[str, Any]
    path: str = ""
    trained: bool = False


def classifier_protocol(
    *,
    dataset: str,
    split: str,
    resolution: int,
    channels: int,
    num_classes: int,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    max_train: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """The facts a cached classifier depends on; a cache file is used only when they all match.

    Args:
      dataset, split: the data's identity (see `reference.dataset_identity`).
      resolution, channels: image size and channels of the data.
      num_classes: classes.
      steps, batch_size, seed, learning_rate: `train_classifier`'s arguments.
      max_train: training images used at most (0: all).
      **extra: anything else the data depends on (e.g. crop); JSON-serialisable.

    Returns:
      A JSON-serialisable dict.
    """
    return {
        "kind": "classifier",
        "architecture": ARCHITECTURE,
        "dataset": str(dataset),
        "split": str(split),
        "resolution": int(resolution),
        "channels": int(channels),
        "num_classes": int(num_classes),
        "steps": int(steps),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "learning_rate": float(learning_rate),
        "optimizer": f"adamw (weight decay {WEIGHT_DECAY}), warm-up 5% + cosine",
        "max_train": int(max_train),
        **extra,
    }


def classifier_path(stats_dir: str | os.PathLike, protocol: dict[str, Any]) -> Path:
    """The cache file of `protocol`: a readable name plus a hash of the whole protocol."""
    readable = "_".join(
        [
            CACHE_PREFIX,
            protocol["dataset"].split(" (")[0],
            protocol["split"],
            f"{protocol['resolution']}px",
            f"{protocol['steps']}steps",
        ]
    )
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", readable).strip("-")[-120:]
    digest = hashlib.sha1(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:10]
    return Path(stats_dir) / f"{readable}-{digest}.npz"


def save_classifier(path: str | os.PathLike, params, protocol: dict, info: dict) -> None:
    """Writes params + protocol + info as one ``.npz`` (atomically: a temp file, then rename)."""
    arrays = {
        f"params/{k}": np.asarray(v, np.float32)
        for k, v in traverse_util.flatten_dict(params, sep="/").items()
    }
    arrays["protocol"] = np.array(json.dumps(protocol, sort_keys=True))
    arrays["info"] = np.array(json.dumps(info, sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_classifier(path: str | os.PathLike) -> tuple[Any, dict, dict]:
    """Reads a file written by `save_classifier` (no pickle). Returns (params, protocol, info)."""
    with np.load(path, allow_pickle=False) as data:
        flat = {k[len("params/") :]: data[k] for k in data.files if k.startswith("params/")}
        protocol = json.loads(str(data["protocol"]))
        info = json.loads(str(data["info"])) if "info" in data.files else {}
    return traverse_util.unflatten_dict(flat, sep="/"), protocol, info


def cached_classifier(
    protocol: dict[str, Any],
    load_data: Callable[[], tuple[np.ndarray, np.ndarray]],
    *,
    stats_dir: str | os.PathLike | None = None,
    write_cache: bool = True,
) -> TrainedClassifier:
    """The classifier of `protocol`: read from the cache, else trained and cached.

    Args:
      protocol: from `classifier_protocol`; its steps, batch size, seed, learning rate, classes
        and max_train are the training arguments.
      load_data: returns (uint8 images [N, H, W, C], int32 labels [N]); called only when the
        classifier has to be trained.
      stats_dir: cache folder (default `reference.default_stats_dir()`).
      write_cache: save a newly trained classifier (only one process of a run should).

    Returns:
      A TrainedClassifier.
    """
    if not stats_dir:
        from gan_jax.evaluation import reference  # noqa: PLC0415 (it loads the input package)

        stats_dir = reference.default_stats_dir()
    stats_dir = Path(stats_dir)
    path = classifier_path(stats_dir, protocol)
    if path.is_file():
        try:
            params, saved, info = load_classifier(path)
        except Exception as e:  # an unreadable cache is only a cache: train again
            logging.warning("Ignoring unreadable classifier cache %s: %s", path, e)
        else:
            if saved == protocol:
                logging.info("Classifier from %s", path)
                return TrainedClassifier(params, saved, info, str(path), trained=False)
            logging.info("Classifier cache %s has another protocol: retraining", path)
    images, labels = load_data()
    max_train = int(protocol.get("max_train", 0))
    if max_train and len(images) > max_train:
        # A fixed subset (seeded by the protocol), so that the cache describes it exactly.
        keep = np.sort(np.random.default_rng(protocol["seed"]).permutation(len(images))[:max_train])
        images, labels = np.asarray(images)[keep], np.asarray(labels)[keep]
    start = time.monotonic()
    params = train_classifier(
        images,
        labels,
        num_classes=protocol["num_classes"],
        steps=protocol["steps"],
        batch_size=protocol["batch_size"],
        seed=protocol["seed"],
        learning_rate=protocol["learning_rate"],
        label=f"classifier ({protocol['dataset']} [{protocol['split']}])",
    )
    info = {"num_train": int(len(images)), "train_seconds": round(time.monotonic() - start, 1)}
    if write_cache:
        try:
            save_classifier(path, params, protocol, info)
        except OSError as e:  # a read-only cache: the classifier still serves this evaluation
            logging.warning("Could not cache the classifier in %s: %s", path, e)
            return TrainedClassifier(params, protocol, info, "", trained=True)
        return TrainedClassifier(params, protocol, info, str(path), trained=True)
    return TrainedClassifier(params, protocol, info, "", trained=True)


def real_classifier(
    config,
    *,
    num_classes: int,
    split: str = "train",
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    max_train: int = 0,
    stats_dir: str | os.PathLike | None = None,
    write_cache: bool = True,
) -> TrainedClassifier:
    """A classifier of a run's real labelled data (``config.data.*``), cached per dataset.

    The data comes from `gan_jax.input.load_labelled_arrays(config, split)`, read only when
    there is no cached classifier with the same protocol.

    Args:
      config: the run's config.
      num_classes: classes (``config.model.num_classes``).
      split: the labelled split to train on.
      steps, batch_size, seed: see `train_classifier`.
      max_train: use at most this many training images (0: all).
      stats_dir: cache folder (default `reference.default_stats_dir()`).
      write_cache: save a newly trained classifier.

    Returns:
      A TrainedClassifier.
    """
    # Imported here: they load the input package (and TensorFlow), only needed with a config.
    from gan_jax.evaluation import reference  # noqa: PLC0415
    from gan_jax.input import sources  # noqa: PLC0415

    dataset, _ = reference.dataset_identity(config)
    protocol = classifier_protocol(
        dataset=dataset,
        split=split,
        resolution=int(sources.data_field(config, "image_size", 0)),
        channels=int(sources.data_field(config, "channels", 3)),
        num_classes=num_classes,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        max_train=max_train,
        crop=str(sources.data_field(config, "crop", "none")),
        # Where the labels come from (npz key, TFDS feature, folder layout).
        labels={
            key: str(sources.data_field(config, key, ""))
            for key in ("labels", "label_key", "label_feature")
        },
    )

    def load_data():
        from gan_jax import input as input_lib  # noqa: PLC0415 (tf.data only when training)

        return input_lib.load_labelled_arrays(config, split)

    return cached_classifier(protocol, load_data, stats_dir=stats_dir, write_cache=write_cache)
