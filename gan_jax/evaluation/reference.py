"""Reference statistics of a run's own dataset, and images read from folders.

A run's FID is measured against the images it trained on: the source, split, size, channels
and crop in its config. `reference_stats` draws ``num_samples`` distinct images from that
dataset (a fixed permutation, independent of the run's seed), computes their Inception
features and caches them, with their protocol, as one ``.npz`` per dataset / split /
resolution / sample count / preprocessing / weights under ``~/.cache/gan_jax/fid_stats``
(``$GAN_JAX_CACHE/fid_stats``, or a folder of your choice). The next evaluation of any run on
the same data reads the file instead of running the network over the real images again.
Held-out folders (`folder_stats`) are cached the same way, keyed by their files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from gan_jax.evaluation import inception
from gan_jax.evaluation import metrics as metrics_lib
from gan_jax.evaluation import weights as weights_lib
from gan_jax.input import sources

# Fixed, so that every run on a dataset (whatever its seed) shares one reference sample.
REFERENCE_SEED = 0
STATS_SUBDIR = "fid_stats"


class FolderError(ValueError):
    """An image folder that cannot be evaluated (missing, empty, undecodable)."""


def default_stats_dir() -> Path:
    """``$GAN_JAX_CACHE/fid_stats``, by default ``~/.cache/gan_jax/fid_stats``."""
    return weights_lib.CACHE_DIR / STATS_SUBDIR


def dataset_identity(config) -> tuple[str, str]:
    """(dataset name, split) as a protocol states them.

    TFDS sets are named by their TFDS name; folders and npz files by their absolute path (a
    folder also by its file count, so adding images makes new statistics); digits by 'digits'.
    """
    source = str(sources.data_field(config, "source", "digits"))
    split = str(sources.data_field(config, "split", "train"))
    if source == "tfds":
        return f"tfds:{sources.data_field(config, 'name', '')}", split
    if source == "folder":
        path = os.path.abspath(os.path.expanduser(str(sources.data_field(config, "path", ""))))
        count = len(sources.list_image_files(path)) if os.path.isdir(path) else 0
        return f"folder:{path} ({count} files)", "all"
    if source == "npz":
        path = os.path.abspath(os.path.expanduser(str(sources.data_field(config, "path", ""))))
        return f"npz:{path}", str(sources.data_field(config, "npz_key", "x_train"))
    return "digits", "all"


def reference_protocol(config, *, num_samples: int, weights: str, preprocessing: str) -> dict:
    """The protocol of a config's reference statistics (see `metrics.make_protocol`)."""
    dataset, split = dataset_identity(config)
    return metrics_lib.make_protocol(
        weights=weights,
        preprocessing=preprocessing,
        num_samples=num_samples,
        dataset=dataset,
        split=split,
        resolution=int(sources.data_field(config, "image_size", 0)),
        channels=int(sources.data_field(config, "channels", 3)),
        crop=str(sources.data_field(config, "crop", "none")),
        sample_seed=REFERENCE_SEED,
    )


def stats_path(stats_dir: str | os.PathLike, protocol: dict) -> Path:
    """The cache file for `protocol`: a readable name plus a hash of the whole protocol."""
    readable = "_".join(
        [
            protocol["dataset"].split(" (")[0],
            protocol["split"],
            f"{protocol['resolution']}px",
            f"n{protocol['num_samples']}",
            protocol["preprocessing"],
            protocol["weights"].split("/")[-1],
        ]
    )
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", readable).strip("-")[-120:]
    digest = hashlib.sha1(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:10]
    return Path(stats_dir) / f"{readable}-{digest}.npz"


def real_images(config, num_samples: int, *, batch_size: int = 100) -> Iterator[np.ndarray]:
    """Yields ``num_samples`` distinct images of the config's dataset as uint8 batches.

    Uses the training input pipeline (`gan_jax.input.create_dataset`) with seed
    `REFERENCE_SEED`: the first ``num_samples`` images of its first epoch's permutation, so
    the sample is random but the same for every run on the dataset. Asks for at most the
    dataset's size.

    Args:
      config: the run's config.
      num_samples: images wanted; capped at the dataset size.
      batch_size: images per yielded batch.

    Yields:
      uint8 [<=batch_size, S, S, C].
    """
    from gan_jax import input as input_lib  # noqa: PLC0415 (tf.data only when needed)

    config = ml_collections.ConfigDict(config.to_dict())
    config.seed = REFERENCE_SEED
    config.batch_size = batch_size
    dataset = input_lib.create_dataset(config, process_index=0, process_count=1)
    if hasattr(dataset, "images"):  # in memory: index the permutation directly, no repeats
        order = np.random.default_rng(REFERENCE_SEED).permutation(dataset.num_examples)
        order = order[: min(num_samples, dataset.num_examples)]
        for lo in range(0, len(order), batch_size):
            yield np.asarray(dataset.images[np.sort(order[lo : lo + batch_size])])
        return
    # Streaming (large TFDS sets): its first epoch holds steps_per_epoch * batch distinct images.
    left = min(num_samples, dataset.steps_per_epoch * batch_size)
    for batch in dataset:
        if left <= 0:
            break
        batch = np.asarray(batch["image"])[:left]
        left -= batch.shape[0]
        yield np.clip(np.round((batch + 1.0) * 127.5), 0, 255).astype(np.uint8)


def reference_stats(
    config,
    extractor,
    *,
    num_samples: int,
    batch_size: int = 50,
    stats_dir: str | os.PathLike | None = None,
    write_cache: bool = True,
) -> metrics_lib.ReferenceStats:
    """Reference statistics of the config's dataset: from the cache, else computed and cached.

    Args:
      config: the run's config (``data.*``).
      extractor: an `inception.InceptionFeatures`.
      num_samples: real images wanted (capped at the dataset size; the protocol records the
        count actually used).
      batch_size: images per network call.
      stats_dir: cache folder (default `default_stats_dir()`).
      write_cache: save computed statistics (only one process of a multi-process run should).

    Returns:
      ReferenceStats with features (for KID and precision/recall) and protocol.
    """
    stats_dir = Path(stats_dir) if stats_dir else default_stats_dir()
    info = extractor.protocol()
    # Keyed by the count asked for; the saved protocol records the count actually used (a
    # smaller dataset, undecodable files).
    requested = reference_protocol(
        config,
        num_samples=num_samples,
        weights=info["weights"],
        preprocessing=info["preprocessing"],
    )
    path = stats_path(stats_dir, requested)
    stats = _read_cache(path)
    if stats is not None and dict(stats.protocol, num_samples=num_samples) == requested:
        logging.info("Reference statistics from %s", path)
        return stats
    logging.info(
        "Computing reference statistics of %s [%s] (up to %d images) into %s",
        requested["dataset"],
        requested["split"],
        num_samples,
        path,
    )
    images = real_images(config, num_samples, batch_size=batch_size)
    progress = inception.Progress(f"{requested['dataset']} [{requested['split']}]", num_samples)
    features = extractor.features(images, batch_size=batch_size, progress=progress)
    progress.finish()
    if features.shape[0] < 2:
        raise ValueError(f"{requested['dataset']}: {features.shape[0]} reference image(s)")
    protocol = dict(requested, num_samples=int(features.shape[0]))
    if write_cache:
        _write_cache(path, features, protocol)
    mu, sigma = metrics_lib.compute_statistics(features)
    return metrics_lib.ReferenceStats(mu, sigma, protocol, features)


def _read_cache(path: Path) -> metrics_lib.ReferenceStats | None:
    """Cached statistics with their features, or None (absent, torn or foreign: recomputed)."""
    if not path.is_file():
        return None
    try:
        stats = metrics_lib.load_reference_stats(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        logging.warning("Ignoring unreadable reference statistics %s: %s", path, e)
        return None
    return stats if stats.features is not None else None


def _write_cache(path: Path, features: np.ndarray, protocol: dict) -> None:
    """Saves statistics whole and renames them into place: a reader never sees half a file."""
    try:
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        metrics_lib.save_reference_stats(tmp, features, protocol)
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache: the statistics still serve this evaluation
        logging.warning("Could not cache reference statistics in %s: %s", path, e)


# --------------------------------------------------------------------------------------------
# Image folders (evaluate.py --real/--fake, and --workdir with --real).


def folder_stats(
    extractor,
    folder: str | os.PathLike,
    *,
    num_samples: int = 0,
    batch_size: int = 50,
    stats_dir: str | os.PathLike | None = None,
    fit: tuple[int, int, str] | None = None,
) -> metrics_lib.ReferenceStats:
    """Reference statistics of an image folder (e.g. held-out images a run never trained on).

    Cached like a dataset's, under a key that includes every file's path, size and
    modification time: scoring several runs against one held-out folder runs the network
    over it once, and a file added, removed or rewritten makes new statistics.

    Args:
      extractor: an `inception.InceptionFeatures`.
      folder: searched recursively; the first `num_samples` files by path (0: all).
      batch_size: images per network call.
      stats_dir: cache folder (default `default_stats_dir()`).
      fit: (size, channels, crop): each image decoded as a run with these data settings
        decodes its training images (`run_fit`), so that a 32 px run is compared with 32 px
        images, not with the folder's 64 px originals; None: the images at their stored size.

    Returns:
      ReferenceStats with features and a protocol naming the folder.

    Raises:
      FolderError: missing folder, no image files, or fewer than 2 decodable images.
    """
    files = list_folder(folder)
    if num_samples:
        files = files[:num_samples]
    info = extractor.protocol()
    key = {
        "folder": os.path.abspath(folder),
        "files_sha256": _files_digest(files),
        "limit": int(num_samples),
        "weights": info["weights"],
        "preprocessing": info["preprocessing"],
    }
    if fit is not None:
        fit = (int(fit[0]), int(fit[1]), str(fit[2]))
        key["fit"] = list(fit)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(os.path.abspath(folder)))[-60:]
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    path = Path(stats_dir or default_stats_dir()) / f"folder-{name}-n{len(files)}-{digest}.npz"
    cached = _read_cache(path)
    if cached is not None and cached.protocol.get("cache_key") == key:
        logging.info("Reference statistics of %s from %s", folder, path)
        cached.protocol.pop("cache_key")
        return cached
    features = folder_features(extractor, folder, batch_size=batch_size, files=files, fit=fit)
    protocol = metrics_lib.make_protocol(
        weights=info["weights"],
        preprocessing=info["preprocessing"],
        num_samples=int(features.shape[0]),
    )
    # Printed as evaluate_folders' reference is: a folder, its images at their stored size
    # (or at the run's resolution, when fitted).
    for k in ("dataset", "split", "resolution"):
        protocol.pop(k)
    protocol["folder"] = os.path.abspath(folder)
    if fit is not None:
        protocol["resolution"] = fit[0]
    _write_cache(path, features, dict(protocol, cache_key=key))
    mu, sigma = metrics_lib.compute_statistics(features)
    return metrics_lib.ReferenceStats(mu, sigma, protocol, features)


def _files_digest(files: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        h.update(f"{os.path.abspath(f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def list_folder(folder: str | os.PathLike) -> list[str]:
    """Image files under `folder` (recursive, sorted); FolderError when there are none."""
    folder = os.path.expanduser(str(folder))
    if not os.path.exists(folder):
        raise FolderError(f"image folder '{folder}' does not exist")
    if not os.path.isdir(folder):
        raise FolderError(f"'{folder}' is not a folder")
    files = sources.list_image_files(folder)
    if not files:
        raise FolderError(
            f"no image files in '{folder}' (looked recursively for "
            f"{', '.join(sources.IMAGE_EXTENSIONS)})"
        )
    return files


def run_fit(config) -> tuple[int, int, str] | None:
    """(size, channels, crop) of a run's training images, for `folder_stats(fit=...)`; None
    for a config without an image size."""
    _, size, channels, crop = sources.image_settings(config)
    return (size, channels or 3, crop) if size > 0 else None


def _load_rgb(path: str, fit: tuple[int, int, str] | None = None) -> np.ndarray | None:
    try:
        if fit is not None:
            return sources.decode_file(path, *fit)  # one channel: the network repeats it
        with Image.open(path) as img:
            # pytorch-fid's loader: PIL, converted to RGB (grey images repeat their channel).
            return np.asarray(img.convert("RGB"), np.uint8)
    except Exception as e:  # a bad file is reported and skipped, never fatal
        logging.warning("Skipping %s: %s: %s", path, type(e).__name__, e)
        return None


def folder_features(
    extractor,
    folder: str | os.PathLike,
    *,
    batch_size: int = 50,
    limit: int = 0,
    files: list[str] | None = None,
    fit: tuple[int, int, str] | None = None,
) -> np.ndarray:
    """Inception features of the images in a folder, at their own sizes (or `fit`'s, see
    `folder_stats`).

    Images of one size are batched together (each size compiles the network once); every
    image is resized to 299 by the extractor's preprocessing, as pytorch-fid does.

    Args:
      extractor: an `inception.InceptionFeatures`.
      folder: searched recursively for image files.
      batch_size: images per network call.
      limit: use only the first `limit` files (sorted by path); 0 for all.
      files: the files to read, already listed (then `limit` is not applied).

    Returns:
      float32 [N, 2048] in file order within each image size.

    Raises:
      FolderError: missing folder, no image files, or fewer than 2 decodable images.
    """
    if files is None:
        files = list_folder(folder)
        if limit:
            files = files[:limit]
    groups: dict[tuple, list[np.ndarray]] = {}
    features = []
    progress = inception.Progress(os.path.basename(os.path.normpath(folder)), len(files))

    def flush(shape):
        batch = groups.pop(shape)
        features.append(
            extractor.features(np.stack(batch), batch_size=batch_size, progress=progress)
        )

    for path in files:
        image = _load_rgb(path, fit)
        if image is None:
            continue
        groups.setdefault(image.shape, []).append(image)
        if len(groups[image.shape]) == batch_size:
            flush(image.shape)
    for shape in list(groups):
        flush(shape)
    progress.finish()
    count = sum(f.shape[0] for f in features)
    if count < 2:
        raise FolderError(f"'{folder}': {count} decodable image(s); FID needs at least 2")
    return np.concatenate(features)
