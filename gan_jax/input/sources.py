"""Image sources: each turns a config into uint8 images at the target size.

Four sources, named by ``config.data.source``:

* ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 images, 17 grey levels), upscaled
  bilinearly. Ships inside the scikit-learn wheel, so it is the offline default.
* ``npz``: a uint8 array ``(N, H, W)`` or ``(N, H, W, C)`` stored under ``config.data.npz_key``.
* ``folder``: every image file under ``config.data.path`` (recursive), decoded with PIL.
* ``tfds``: any TFDS dataset with an ``'image'`` feature, by name (``mnist``, ``celeb_a``, ...).

The first three (and small TFDS datasets) are decoded once into one uint8 array
``[N, S, S, C]``; :mod:`gan_jax.input.pipeline` batches that array by index, which is fast and
makes resume exact and free. Large TFDS datasets stream through tf.data instead.

Conversions shared by every source:

* Channels: 1 -> PIL mode ``'L'`` (ITU-R 601-2 luma), 3 -> ``'RGB'`` (grey is repeated).
  Transparent images (``RGBA``, ``LA``, palette with transparency) are composited on white, so
  a transparent background does not become black. 16-bit images keep their top 8 bits.
* Geometry: with ``crop='center'`` the shorter side is resized to ``image_size`` and the centre
  cropped (torchvision ``Resize(size)`` + ``CenterCrop(size)``); with ``crop='none'`` the image is
  resized to a square, ignoring its aspect ratio.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image

SOURCES = ("digits", "tfds", "folder", "npz")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CROPS = ("center", "none")

# Decoded folders above this size go to a disk-backed memmap instead of RAM.
MAX_IN_MEMORY_BYTES = 2 * 1024**3
# TFDS datasets up to this size (at the target resolution) are decoded once into memory;
# larger ones (celeb_a, lsun) stream. Decoding 160k CelebA JPEGs up front would delay the
# first step by minutes.
TFDS_IN_MEMORY_BYTES = 512 * 1024**2


class DataError(ValueError):
    """A problem with the data named by the config, phrased for the user."""


def data_field(config, name, default=None):
    """Reads ``config.data.<name>``, or ``default`` when the field is absent."""
    data = config.data
    try:
        value = data.get(name, default)
    except AttributeError:
        value = getattr(data, name, default)
    return default if value is None else value


# ---------------------------------------------------------------------------------------------
# Geometry and channel conversion (PIL)


def center_crop_box(width: int, height: int, size: int) -> tuple[tuple[int, int], tuple]:
    """Resize target and crop box of torchvision ``Resize(size)`` then ``CenterCrop(size)``.

    Args:
      width: source width.
      height: source height.
      size: the target side.

    Returns:
      ``((new_w, new_h), (left, top, right, bottom))``.
    """
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    # torchvision rounds half to even (Python's round()).
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return (new_w, new_h), (left, top, left + size, top + size)


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composites a transparent image on white (RGB or L, by the image's colour)."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode == "LA":
        background = Image.new("L", img.size, 255)
        background.paste(img.getchannel("L"), mask=img.getchannel("A"))
        return background
    if img.mode != "RGBA":
        img = img.convert("RGBA")
    background = Image.new("RGB", img.size, (255, 255, 255))
    background.paste(img.convert("RGB"), mask=img.getchannel("A"))
    return background


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Converts any PIL mode to ``'L'`` (channels=1) or ``'RGB'`` (channels=3).

    Args:
      img: a loaded PIL image of any mode.
      channels: 1 or 3.

    Returns:
      The image in mode ``'L'`` or ``'RGB'``.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # PIL's own I->L conversion clips at 255; scale 16-bit range down instead.
        arr = np.asarray(img)
        arr = np.clip(arr if mode == "F" else arr.astype(np.int64) // 257, 0, 255)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img = _flatten_alpha(img)
    elif mode in ("RGBa", "La"):  # premultiplied alpha
        img = _flatten_alpha(img.convert("RGBA" if mode == "RGBa" else "LA"))
    target = "L" if channels == 1 else "RGB"
    if img.mode != target:
        img = img.convert(target)
    return img


def fit_image(img: Image.Image, size: int, crop: str) -> Image.Image:
    """Resizes (and centre-crops when ``crop == 'center'``) to ``size x size``."""
    width, height = img.size
    if (width, height) == (size, size):
        return img
    if crop == "center":
        new_size, box = center_crop_box(width, height, size)
        return img.resize(new_size, Image.BILINEAR).crop(box)
    return img.resize((size, size), Image.BILINEAR)


def decode_file(path: str, size: int, channels: int, crop: str) -> np.ndarray:
    """Decodes one image file into uint8 ``[size, size, channels]``.

    Animated images give their first frame. JPEGs are decoded at a reduced DCT scale when the
    file is much larger than the target (PIL ``draft``), which keeps big photos cheap.

    Raises:
      Exception: whatever PIL raises for a file it cannot decode (truncated, empty, not an image,
        over PIL's decompression-bomb limit of 2 x ``Image.MAX_IMAGE_PIXELS``).
    """
    with warnings.catch_warnings():
        # Images between 1x and 2x MAX_IMAGE_PIXELS only warn; draft keeps them affordable.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.seek(0)
            if img.format == "JPEG":
                width, height = img.size
                if crop == "center":
                    short = min(width, height)
                    want = (max(1, width * size // short), max(1, height * size // short))
                else:
                    want = (size, size)
                img.draft("L" if channels == 1 else "RGB", want)
            img.load()
            img = to_channels(img, channels)
            img = fit_image(img, size, crop)
            arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def fit_array(images: np.ndarray, size: int, channels: int, crop: str) -> np.ndarray:
    """Converts a uint8 ``[N, H, W(, C)]`` array to ``[N, size, size, channels]``."""
    if images.ndim == 3:
        images = images[..., None]
    n, height, width, c = images.shape
    if (height, width, c) == (size, size, channels):
        return np.ascontiguousarray(images)
    out = np.empty((n, size, size, channels), np.uint8)
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    for i in range(n):
        arr = images[i]
        img = Image.fromarray(arr[..., 0] if c == 1 else arr, modes[c])
        img = fit_image(to_channels(img, channels), size, crop)
        arr = np.asarray(img, np.uint8)
        out[i] = arr[..., None] if arr.ndim == 2 else arr
    return out


# ---------------------------------------------------------------------------------------------
# digits


def load_digits_images(size: int, channels: int) -> np.ndarray:
    """scikit-learn's 1,797 handwritten digits as uint8 ``[1797, size, size, channels]``.

    The 17 grey levels 0..16 map to 0..255 (so to -1..1 after scaling), then each 8x8 image is
    upscaled bilinearly.
    """
    from sklearn import datasets as sk_datasets

    raw = sk_datasets.load_digits().images  # (1797, 8, 8) float in [0, 16]
    grey = np.round(raw * (255.0 / 16.0)).astype(np.uint8)
    out = np.empty((len(grey), size, size, 1), np.uint8)
    for i, digit in enumerate(grey):
        img = Image.fromarray(digit, "L").resize((size, size), Image.BILINEAR)
        out[i, :, :, 0] = np.asarray(img)
    return np.repeat(out, channels, axis=-1) if channels == 3 else out


# ---------------------------------------------------------------------------------------------
# npz


def _npz_path(config) -> str:
    path = os.path.expanduser(str(data_field(config, "path", "")))
    if not path:
        raise DataError("data.path: set it to an .npz file for data.source='npz'")
    if not os.path.isfile(path):
        raise DataError(f"data.path: npz file '{path}' does not exist")
    return path


def check_npz(config) -> None:
    """Checks that the npz file exists and holds ``data.npz_key`` (reads only its index)."""
    path = _npz_path(config)
    key = data_field(config, "npz_key", "x_train")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
    except Exception as e:  # any failure is the user's file
        raise DataError(f"data.path: cannot read '{path}' as .npz ({e})") from e
    if key not in keys:
        raise DataError(f"data.npz_key: key '{key}' not in '{path}' (keys: {', '.join(keys)})")


def load_npz_images(config, size: int, channels: int, crop: str) -> np.ndarray:
    """Loads ``data.npz_key`` from ``data.path`` as uint8 ``[N, size, size, channels]``."""
    check_npz(config)
    path = _npz_path(config)
    key = data_field(config, "npz_key", "x_train")
    with np.load(path, allow_pickle=False) as npz:
        images = npz[key]
    if images.dtype != np.uint8:
        raise DataError(
            f"data.npz_key: '{key}' in '{path}' has dtype {images.dtype}; expected uint8 images"
        )
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise DataError(
            f"data.npz_key: '{key}' in '{path}' has shape {images.shape}; "
            "expected (N, H, W) or (N, H, W, C) with C in 1, 3, 4"
        )
    if len(images) == 0:
        raise DataError(f"data.npz_key: '{key}' in '{path}' holds no images")
    return fit_array(images, size, channels, crop)


# ---------------------------------------------------------------------------------------------
# folder


def _folder_path(config) -> str:
    path = os.path.expanduser(str(data_field(config, "path", "")))
    if not path:
        raise DataError("data.path: set it to an image folder for data.source='folder'")
    if not os.path.exists(path):
        raise DataError(f"data.path: folder '{path}' does not exist")
    if not os.path.isdir(path):
        raise DataError(f"data.path: '{path}' is not a folder")
    return path


def list_image_files(root: str) -> list[str]:
    """Every file under ``root`` (recursive) with an image extension, sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(dirpath, name))
    found.sort()
    return found


def check_folder(config) -> list[str]:
    """Checks the folder exists and has image files; returns them (sorted)."""
    path = _folder_path(config)
    files = list_image_files(path)
    if not files:
        raise DataError(
            f"data.path: no image files in '{path}' (looked recursively for "
            f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)})"
        )
    return files


def _decode_or_none(args):
    path, size, channels, crop = args
    try:
        return decode_file(path, size, channels, crop), None
    except Exception as e:  # a bad file is skipped, never fatal
        return None, f"{type(e).__name__}: {e}"


def decode_files(
    files: Sequence[str],
    *,
    size: int,
    channels: int,
    crop: str,
    max_in_memory_bytes: int = MAX_IN_MEMORY_BYTES,
    cache_dir: str | None = None,
    num_threads: int | None = None,
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decodes files once into one uint8 array, skipping those that fail.

    PIL releases the GIL while decoding and resizing, so a thread pool uses every core. When the
    result would exceed ``max_in_memory_bytes`` it goes into a numpy memmap in ``cache_dir``
    (default: the system temp dir), unlinked at once so the OS frees it when the process ends.

    Args:
      files: paths, in the order the output keeps.
      size: target side.
      channels: 1 or 3.
      crop: 'center' or 'none'.
      max_in_memory_bytes: size above which a disk-backed memmap is used.
      cache_dir: folder for the memmap.
      num_threads: decoder threads (default: CPU count, at most 16).

    Returns:
      ``(images, failures)``: uint8 ``[N_ok, size, size, channels]`` in file order, and
      ``(path, reason)`` for each file that failed.
    """
    shape = (len(files), size, size, channels)
    nbytes = int(np.prod(shape))
    if nbytes > max_in_memory_bytes:
        cache_dir = cache_dir or tempfile.gettempdir()
        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="gan_jax_images_", suffix=".u8", dir=cache_dir)
        os.close(fd)
        out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        os.unlink(tmp)
        logging.info(
            "Decoding %d images into a %.1f GB memmap in %s", len(files), nbytes / 1e9, cache_dir
        )
    else:
        out = np.empty(shape, np.uint8)
    failures = []
    count = 0
    threads = num_threads or min(16, os.cpu_count() or 1)
    jobs = ((f, size, channels, crop) for f in files)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        # map() keeps file order, so the array (and every batch) is deterministic.
        for path, (arr, err) in zip(
            files, pool.map(_decode_or_none, jobs, chunksize=64), strict=True
        ):
            if arr is None:
                failures.append((path, err))
            else:
                out[count] = arr
                count += 1
    return out[:count], failures


def load_folder_images(config, size: int, channels: int, crop: str):
    """Decodes every image under ``data.path``.

    Returns:
      ``(images, failures)`` as :func:`decode_files`.

    Raises:
      DataError: the folder is missing, has no image files, or none of them decodes.
    """
    files = check_folder(config)
    path = _folder_path(config)
    images, failures = decode_files(
        files,
        size=size,
        channels=channels,
        crop=crop,
        max_in_memory_bytes=int(data_field(config, "max_in_memory_bytes", MAX_IN_MEMORY_BYTES)),
        cache_dir=data_field(config, "cache_dir", None),
    )
    if len(images) == 0:
        examples = "; ".join(f"{os.path.relpath(p, path)} ({r})" for p, r in failures[:3])
        raise DataError(
            f"data.path: no decodable images in '{path}' ({len(files)} files tried, "
            f"{len(failures)} failed; e.g. {examples})"
        )
    if failures:
        logging.warning(
            "data.path: skipped %d of %d files in %s that failed to decode, e.g. %s",
            len(failures),
            len(files),
            path,
            "; ".join(f"{os.path.relpath(p, path)} ({r})" for p, r in failures[:5]),
        )
    return images, failures


# ---------------------------------------------------------------------------------------------
# tfds


def tfds_builder(config):
    """The TFDS builder for ``data.name``, or a DataError naming what is wrong."""
    import tensorflow_datasets as tfds

    name = str(data_field(config, "name", ""))
    if not name:
        raise DataError("data.name: set it to a TFDS dataset name for data.source='tfds'")
    try:
        builder = tfds.builder(name, data_dir=data_field(config, "data_dir", None))
    except Exception as e:  # DatasetNotFoundError, bad config name, ...
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"data.name: TFDS dataset '{name}' not found; {first_line} "
            "(names look like 'mnist', 'cifar10', 'celeb_a', 'lsun/bedroom')"
        ) from e
    features = builder.info.features
    if "image" not in features:
        raise DataError(
            f"data.name: TFDS dataset '{name}' has no 'image' feature "
            f"(features: {', '.join(features.keys())})"
        )
    return builder
