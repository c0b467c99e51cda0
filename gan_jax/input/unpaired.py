"""Unpaired batches for CycleGAN: images of domain A and, independently, of domain B.

Domains come from one of:

* two folders, ``data.path_a`` and ``data.path_b`` (``data.source='folder'``);
* two splits of one TFDS dataset, ``data.split_a`` and ``data.split_b`` (``data.source='tfds'``;
  ``cycle_gan/horse2zebra`` has 'trainA' / 'trainB', ...);
* one source (a folder, an npz, the digits, a TFDS split) and ``data.domain_b``, a fixed stylisation
  (`STYLES`): each image goes to A or B by a hash of its key (disjoint halves, so no image is
  seen in both domains and training is truly unpaired), and B's images are stylised. On
  held-out A images the true translation is then known, so `evaluate.py` reports PSNR/SSIM
  against it: an unpaired method scored with a known answer.

Each domain is split into train / validation / test by `tasks.split_of` of its keys, as the
paired tasks are. Batches are ``{'source': A images, 'image': B images, 'label': zeros}``,
float32 in [-1, 1]; epoch ``e`` visits A in the order of a permutation drawn from
``(seed, e)`` and B in one drawn from ``(seed, e, 1)``, so a resume at any step continues the
same stream. An epoch is one pass over the larger domain (CycleGAN's ``max(len A, len B)``),
the smaller one cycling through its own permutations.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from absl import logging

from gan_jax.input import sources, tasks
from gan_jax.input.paired import load_keyed, split_indices
from gan_jax.input.pipeline import _TO_FLOAT, ArrayDataset
from gan_jax.input.sources import DataError

STYLES = ("cel", "invert")
CEL_LEVELS = 4  # colour levels per channel of the cel look
CEL_EDGE = -0.8  # edge lines drawn in this value ([-1, 1]): nearly black
MIN_TRAIN = 2


def cel(image: np.ndarray) -> np.ndarray:
    """A fixed "cel-shaded" look: a smoothed image posterised to `CEL_LEVELS` levels per
    channel, with its Canny edges drawn as dark lines. float32 [H, W, C] in [-1, 1]."""
    from scipy import ndimage  # noqa: PLC0415

    x = np.asarray(image, np.float32)
    smooth = ndimage.uniform_filter(x, size=(3, 3, 1), mode="nearest")
    u = (smooth + 1.0) / 2.0
    levels = CEL_LEVELS - 1
    poster = np.round(u * levels) / levels * 2.0 - 1.0
    edges = tasks.canny((tasks.luma(x) + 1.0) / 2.0)
    poster[edges] = CEL_EDGE
    return poster.astype(np.float32)


def stylize(style: str, image: np.ndarray) -> np.ndarray:
    """Domain B's version of an image for `data.domain_b` (`STYLES`)."""
    if style == "cel":
        return cel(image)
    if style == "invert":
        return -np.asarray(image, np.float32)
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")


def domain_of(key: str) -> str:
    """'a' or 'b' for an image of a single source split into two domains (by a hash of the
    key unrelated to the train/test split's)."""
    digest = hashlib.sha256(b"gan_jax.domain:" + key.encode("utf-8")).digest()
    return "a" if digest[0] % 2 == 0 else "b"


def validate(config) -> None:
    source, size, channels, _ = sources.image_settings(config)
    style = sources.data_field(config, "domain_b", "")
    path_a = sources.data_field(config, "path_a", "")
    path_b = sources.data_field(config, "path_b", "")
    if style:
        if style not in STYLES:
            raise DataError(f"config.data.domain_b: '{style}' is not one of {', '.join(STYLES)}")
        if path_a or path_b:
            raise DataError(
                "config.data.domain_b: set either domain_b (one source, stylised) or "
                "data.path_a and data.path_b (two folders), not both"
            )
        return
    if source == "tfds":
        split_a = sources.data_field(config, "split_a", "")
        split_b = sources.data_field(config, "split_b", "")
        if not split_a or not split_b:
            raise DataError(
                "config.data.split_a: CycleGAN on a TFDS dataset reads domain A and domain B "
                "from two of its splits: set data.split_a and data.split_b (for "
                "cycle_gan/horse2zebra 'trainA+testA' and 'trainB+testB'), or data.domain_b"
            )
        return
    if source != "folder" or not path_a or not path_b:
        raise DataError(
            "config.data.path_a: CycleGAN needs two folders (data.source='folder', "
            "data.path_a and data.path_b), two TFDS splits (data.source='tfds', data.split_a "
            f"and data.split_b) or one source with data.domain_b ({', '.join(STYLES)})"
        )
    for key, path in (("path_a", path_a), ("path_b", path_b)):
        if not os.path.isdir(os.path.expanduser(path)):
            raise DataError(f"config.data.{key}: folder '{path}' does not exist")


def _domain(config, side: str):
    """One domain of a two-domain config: a folder (`data.path_<side>`) or a TFDS split
    (`data.split_<side>`)."""
    c = config.copy_and_resolve_references()
    if c.data.source == "tfds":
        c.data.split = c.data[f"split_{side}"]
    else:
        c.data.path = c.data[f"path_{side}"]
    return load_keyed(c)


def load_domains(config) -> dict[str, tuple[np.ndarray, list[str], np.ndarray | None]]:
    """{'a': (uint8 images, keys, None), 'b': (uint8 images, keys, None or the A-side
    truth)}: both domains in full, before splitting. With `domain_b` the B images are the
    stylised half (uint8) and A's truth (its stylisation) is returned as A's third item."""
    validate(config)
    style = sources.data_field(config, "domain_b", "")
    if not style:
        a_images, a_keys, _ = _domain(config, "a")
        b_images, b_keys, _ = _domain(config, "b")
        return {"a": (a_images, a_keys, None), "b": (b_images, b_keys, None)}
    images, keys, _ = load_keyed(config)
    side = np.array([domain_of(k) for k in keys])
    a_idx, b_idx = np.flatnonzero(side == "a"), np.flatnonzero(side == "b")

    def styled(idx):
        out = np.empty_like(images[idx])
        for j, i in enumerate(idx):
            y = stylize(style, np.take(_TO_FLOAT, images[i]))
            out[j] = np.clip(np.round((y + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return out

    return {
        "a": (images[a_idx], [keys[i] for i in a_idx], styled(a_idx)),
        "b": (styled(b_idx), [keys[i] for i in b_idx], None),
    }


def _take(domain, split):
    images, keys, truth = domain
    idx = split_indices(keys, split)
    return images[idx], [keys[i] for i in idx], None if truth is None else truth[idx]


def load_split(config, split: str) -> dict[str, np.ndarray]:
    """Held-out A images as {'input', 'target' (the known translation, or absent), 'keys'},
    and the split's B images as 'domain_b' (for KID)."""
    domains = load_domains(config)
    a_images, a_keys, truth = _take(domains["a"], split)
    b_images, _, _ = _take(domains["b"], split)
    if not len(a_images):
        raise DataError(f"the {split} split of domain A holds no images")
    out = {"input": np.take(_TO_FLOAT, a_images), "keys": np.asarray(a_keys)}
    if truth is not None:
        out["target"] = np.take(_TO_FLOAT, truth)
    out["domain_b"] = b_images
    return out


class UnpairedDataset(ArrayDataset):
    """Train-split batches of A (`source`) and B (`image`), each domain shuffled on its own."""

    def __init__(self, a_images, b_images, held_out, **kwargs):
        self.b_images = b_images
        big = max(len(a_images), len(b_images))
        super().__init__(a_images, None, **kwargs)
        self.num_examples = big
        self.steps_per_epoch = max(1, big // self.batch_size)
        self.held_out = held_out

    def _order(self, n: int, epoch: int, stream: int) -> np.ndarray:
        rng = np.random.default_rng(
            [self.seed & 0xFFFFFFFF, self.seed >> 32 & 0xFFFFFFFF, epoch, stream]
        )
        need = self.steps_per_epoch * self.batch_size
        return np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])

    def epoch_order(self, epoch: int) -> np.ndarray:
        """[steps_per_epoch * batch, 2]: the A and B index of each position of the epoch."""
        need = self.steps_per_epoch * self.batch_size
        a = self._order(len(self.images), epoch, 0)[:need]
        b = self._order(len(self.b_images), epoch, 1)[:need]
        return np.stack([a, b], axis=1)

    def batch(self, idx: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        del epoch
        a, b = idx[:, 0], idx[:, 1]
        return {
            "source": np.take(_TO_FLOAT, self.images[a]),
            "image": np.take(_TO_FLOAT, self.b_images[b]),
            "label": np.zeros(len(idx), np.int32),
        }

    def examples(self, split: str, count: int | None = None) -> dict[str, np.ndarray]:
        """Held-out A images ('input') and their known translation ('target') if any."""
        a_images, truth = self.held_out[split]
        out = {"input": np.take(_TO_FLOAT, a_images[:count])}
        if truth is not None:
            out["target"] = np.take(_TO_FLOAT, truth[:count])
        return out


def create_unpaired_dataset(config, *, common: dict) -> UnpairedDataset:
    domains = load_domains(config)
    a, _, _ = _take(domains["a"], "train")
    b, _, _ = _take(domains["b"], "train")
    for name, images in (("A", a), ("B", b)):
        if len(images) < MIN_TRAIN:
            raise DataError(f"domain {name} has {len(images)} training images; add images")
    held_out = {}
    for split in ("validation", "test"):
        images, _, truth = _take(domains["a"], split)
        held_out[split] = (images, truth)
    style = config.data.get("domain_b", "")
    logging.info(
        "Data: CycleGAN domains: A %d train images, B %d train images%s",
        len(a),
        len(b),
        f" (B = '{style}' of a disjoint half)" if style else "",
    )
    return UnpairedDataset(a, b, held_out, seed=config.seed, **common)
