"""Image sources: each turns a config into uint8 images at the target size, and class labels.

Four sources, named by ``config.data.source``:

* ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 images, 17 grey levels), upscaled
  bilinearly. Ships inside the scikit-learn wheel, so it is the offline default.
* ``npz``: a uint8 array ``(N, H, W)`` or ``(N, H, W, C)`` stored under ``config.data.npz_key``.
* ``folder``: every image file under ``config.data.path`` (recursive), decoded with PIL.
* ``tfds``: any TFDS dataset with an ``'image'`` feature, by name (``mnist``, ``celeb_a``, ...).

The first three (and small TFDS datasets) are decoded once into one uint8 array
``[N, S, S, C]``; :mod:`gan_jax.input.pipeline` batches that array by index, which is fast and
makes resume exact and free. Large TFDS datasets stream through tf.data instead.

Class labels (int32 ids in ``[0, K)``) are read when ``config.model.num_classes > 0``:

* ``digits``: the targets 0..9 (K = 10).
* ``npz``: the integer array under ``config.data.label_key`` (e.g. ``y_train``; K = its largest
  label + 1).
* ``folder`` with ``config.data.labels = 'subfolders'``: one class per immediate subfolder of
  ``data.path`` (hidden ones excepted), numbered in name order; its files are found
  recursively inside it. Image files directly in ``data.path`` belong to no class and are
  ignored (with a warning).
* ``tfds``: the ClassLabel feature ``config.data.label_feature`` (default ``'label'``).

``model.num_classes`` must equal K; every mismatch or malformed label array is a DataError.

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

from gan_jax.errors import DataError

SOURCES = ("digits", "tfds", "folder", "npz")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CROPS = ("center", "none")

# Decoded folders above this size go to a disk-backed memmap instead of RAM.
MAX_IN_MEMORY_BYTES = 2 * 1024**3
# TFDS datasets up to this size (at the target resolution) are decoded once into memory;
# larger ones (celeb_a, lsun) stream. Decoding 160k CelebA JPEGs up front would delay the
# first step by minutes.
TFDS_IN_MEMORY_BYTES = 512 * 1024**2

# Labels of a folder source: 'none', or one class per immediate subfolder of data.path.
LABEL_MODES = ("none", "subfolders")
DIGITS_CLASSES = 10
# Fixed stratified hold-out for sources without named splits (digits, folder): the evaluation
# helper `load_labelled_arrays` reads 'train' / 'test' from it; training uses every image.
HOLDOUT_SPLITS = ("train", "test")
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0


def data_field(config, name, default=None):
    """Reads ``config.data.<name>``, or ``default`` when the field is absent."""
    data = config.data
    try:
        value = data.get(name, default)
    except AttributeError:
        value = getattr(data, name, default)
    return default if value is None else value


def image_settings(config) -> tuple[str, int, int, str]:
    """(source, image_size, channels, crop) of ``config.data``; 0 where a size or channel
    count is unset (the pipeline, paired/unpaired inputs and held-out FID folders read it)."""
    source = str(data_field(config, "source", "digits"))
    size = int(data_field(config, "image_size", 0))
    channels = int(data_field(config, "channels", 0))
    crop = str(data_field(config, "crop", "center"))
    return source, size, channels, crop


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
# Class labels


def model_num_classes(config) -> int:
    """``config.model.num_classes``: the classes a conditional model draws, 0 when unconditional.

    Absent (or no ``config.model`` at all) reads as 0.

    Raises:
      DataError: the value is not an integer >= 0.
    """
    try:
        model = config.model
    except (AttributeError, KeyError):
        return 0
    try:
        value = model.get("num_classes", 0)
    except AttributeError:
        value = getattr(model, "num_classes", 0)
    value = 0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DataError(
            f"config.model.num_classes: must be an integer >= 0 (0 = unconditional), got {value!r}"
        )
    return int(value)


def check_labels(
    labels,
    *,
    num_images: int,
    where: str,
    key: str,
    num_classes: int,
    declared: int | None = None,
    exact: bool = True,
) -> tuple[np.ndarray, int]:
    """Checks an array of class ids against its images and the config.

    Args:
      labels: the labels as read; ``(N,)`` or Keras-style ``(N, 1)``, any integer dtype.
      num_images: the images they label, one each.
      where: the data, for messages (e.g. ``"'y_train' in 'mnist.npz'"``).
      key: the config key that selected them (e.g. ``'data.label_key'``).
      num_classes: ``config.model.num_classes`` (0: no count check).
      declared: the class count the source declares (TFDS ClassLabel, subfolders, digits);
        None: the data's count is its largest label + 1.
      exact: whether ``num_classes`` must equal the data's count (training data), or only
        cover its labels (a held-out split may lack a class).

    Returns:
      ``(labels, count)``: int32 ``[N]`` and the data's number of classes.

    Raises:
      DataError: non-integer labels, a length other than ``num_images``, a label outside
        ``[0, count)``, or a ``num_classes`` other than the data's count.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dtype.kind not in "iu":
        raise DataError(
            f"config.{key}: {where} has dtype {labels.dtype}; expected integer class ids"
        )
    if labels.ndim != 1:
        raise DataError(f"config.{key}: {where} has shape {labels.shape}; expected (N,) class ids")
    if len(labels) != num_images:
        raise DataError(
            f"config.{key}: {where} has {len(labels)} labels for {num_images} images; "
            "they must pair one to one"
        )
    low, high = (int(labels.min()), int(labels.max())) if len(labels) else (0, -1)
    if low < 0:
        raise DataError(f"config.{key}: {where} has label {low}; class ids start at 0")
    if declared is not None:
        count = int(declared)
    elif not exact and num_classes:
        count = num_classes
    else:
        count = high + 1
    if high > np.iinfo(np.int32).max:
        raise DataError(f"config.{key}: {where} has label {high}, too large for a class id")
    if high >= count:
        raise DataError(
            f"config.{key}: {where} has label {high}, outside [0, {count}) "
            f"(the data's {count} classes)"
        )
    if num_classes and exact and num_classes != count:
        raise DataError(
            f"config.model.num_classes: {num_classes}, but the data has {count} classes "
            f"(labels 0..{count - 1})"
        )
    if num_classes and exact:
        empty = np.flatnonzero(np.bincount(labels, minlength=count) == 0)
        if len(empty):
            logging.warning(
                "%s: %d of the %d classes have no example (e.g. %s)",
                where,
                len(empty),
                count,
                ", ".join(map(str, empty[:5])),
            )
    return labels.astype(np.int32), count


def holdout_indices(labels: np.ndarray, split: str, *, source: str) -> np.ndarray:
    """A fixed, stratified train/test split of a source that has no named splits.

    Each class's examples are permuted with ``numpy.random.default_rng([HOLDOUT_SEED, class])``
    and the first ``round(HOLDOUT_FRACTION * n)`` of them are the test split (at least one when
    the class has two or more examples). The same data gives the same split on every machine.

    Args:
      labels: int class ids ``[N]``.
      split: 'train' or 'test'.
      source: the source's name, for the message.

    Returns:
      Sorted indices into ``labels`` of the split.

    Raises:
      DataError: ``split`` is neither 'train' nor 'test'.
    """
    if split not in HOLDOUT_SPLITS:
        raise DataError(
            f"split '{split}': data.source='{source}' has only the fixed hold-out splits "
            f"{' and '.join(repr(s) for s in HOLDOUT_SPLITS)}"
        )
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = int(round(HOLDOUT_FRACTION * len(members)))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        rng = np.random.default_rng([HOLDOUT_SEED, int(c)])
        test.append(rng.permutation(members)[:n_test])
    is_test = np.zeros(len(labels), bool)
    for members in test:
        is_test[members] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


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


def load_digits_labels(config) -> tuple[np.ndarray, list[str]]:
    """The digits' targets, int32 ``[1797]`` in 0..9, checked against ``model.num_classes``.

    Returns:
      ``(labels, class_names)``, the names being '0'..'9'.
    """
    from sklearn import datasets as sk_datasets

    target = sk_datasets.load_digits().target
    labels, count = check_labels(
        target,
        num_images=len(target),
        where="scikit-learn's digits",
        key="data.source",
        num_classes=model_num_classes(config),
        declared=DIGITS_CLASSES,
    )
    return labels, [str(i) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# npz


def _npz_path(config) -> str:
    path = os.path.expanduser(str(data_field(config, "path", "")))
    if not path:
        raise DataError("config.data.path: set it to an .npz file for data.source='npz'")
    if not os.path.isfile(path):
        raise DataError(f"config.data.path: npz file '{path}' does not exist")
    return path


def _npz_keys(path: str) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return list(npz.files)
    except Exception as e:  # any failure is the user's file
        raise DataError(f"config.data.path: cannot read '{path}' as .npz ({e})") from e


def npz_label_key(config, *, required: bool) -> str:
    """``data.label_key``; '' when unset, a DataError naming the key when ``required``."""
    key = str(data_field(config, "label_key", ""))
    if required and not key:
        raise DataError(
            "config.data.label_key: set it to the npz key of the class labels (e.g. 'y_train'); "
            "without it data.source='npz' has no labels"
        )
    return key


def npz_split_key(key: str, split: str, config_key: str) -> str:
    """The npz key of ``split``: ``key`` for 'train', else ``key`` with 'train' -> ``split``.

    So ``x_train``/``y_train`` give ``x_test``/``y_test`` for split 'test'.
    """
    if split == "train":
        return key
    if "train" not in key:
        raise DataError(
            f"config.{config_key}: cannot name the '{split}' split's key from '{key}' "
            "(the key of split S is the train key with 'train' replaced by S, e.g. "
            "x_train -> x_test)"
        )
    return key.replace("train", split)


def check_npz(config) -> None:
    """Checks that the npz file exists and holds its keys (reads only its index).

    ``data.npz_key`` always; ``data.label_key`` too when ``model.num_classes > 0``.
    """
    path = _npz_path(config)
    keys = _npz_keys(path)
    wanted = [("data.npz_key", data_field(config, "npz_key", "x_train"))]
    if model_num_classes(config):
        wanted.append(("data.label_key", npz_label_key(config, required=True)))
    for config_key, key in wanted:
        if key not in keys:
            raise DataError(
                f"config.{config_key}: key '{key}' not in '{path}' (keys: {', '.join(keys)})"
            )


def _read_npz_array(npz, path: str, key: str, config_key: str) -> np.ndarray:
    if key not in npz.files:
        raise DataError(
            f"config.{config_key}: key '{key}' not in '{path}' (keys: {', '.join(npz.files)})"
        )
    try:
        return npz[key]
    except ValueError as e:  # an object array (pickles are refused) or a damaged member
        raise DataError(f"config.{config_key}: cannot read '{key}' in '{path}' ({e})") from e


def _read_npz_images(npz, path: str, key: str, config_key: str) -> np.ndarray:
    images = _read_npz_array(npz, path, key, config_key)
    if images.dtype != np.uint8:
        raise DataError(
            f"config.{config_key}: '{key}' in '{path}' has dtype {images.dtype}; "
            "expected uint8 images"
        )
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise DataError(
            f"config.{config_key}: '{key}' in '{path}' has shape {images.shape}; "
            "expected (N, H, W) or (N, H, W, C) with C in 1, 3, 4"
        )
    if len(images) == 0:
        raise DataError(f"config.{config_key}: '{key}' in '{path}' holds no images")
    return images


def load_npz(
    config,
    size: int,
    channels: int,
    crop: str,
    *,
    labelled: bool,
    split: str = "train",
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Loads images (and labels) of one split of the npz file ``data.path``.

    The labels are read and checked before the images are resized, so a bad label array fails
    at once.

    Args:
      config: the run's config (``data.path``, ``data.npz_key``, ``data.label_key``).
      size: target side.
      channels: 1 or 3.
      crop: 'center' or 'none'.
      labelled: read ``data.label_key`` too.
      split: 'train' reads the keys as configured; another name S reads them with 'train'
        replaced by S. Only the training split must have exactly ``model.num_classes`` classes.

    Returns:
      ``(images, labels, class_names)``: uint8 ``[N, size, size, channels]``, int32 ``[N]``
      (None when not ``labelled``) and '0'..'K-1' for the data's K classes ([] when unlabelled).
    """
    check_npz(config)
    path = _npz_path(config)
    image_key = npz_split_key(str(data_field(config, "npz_key", "x_train")), split, "data.npz_key")
    with np.load(path, allow_pickle=False) as npz:
        images = _read_npz_images(npz, path, image_key, "data.npz_key")
        labels, names = None, []
        if labelled:
            label_key = npz_split_key(npz_label_key(config, required=True), split, "data.label_key")
            labels, count = check_labels(
                _read_npz_array(npz, path, label_key, "data.label_key"),
                num_images=len(images),
                where=f"'{label_key}' in '{path}'",
                key="data.label_key",
                num_classes=model_num_classes(config),
                exact=split == "train",
            )
            names = [str(i) for i in range(count)]
    return fit_array(images, size, channels, crop), labels, names


def load_npz_images(config, size: int, channels: int, crop: str) -> np.ndarray:
    """Loads ``data.npz_key`` from ``data.path`` as uint8 ``[N, size, size, channels]``."""
    return load_npz(config, size, channels, crop, labelled=False)[0]


# ---------------------------------------------------------------------------------------------
# folder


def _folder_path(config) -> str:
    path = os.path.expanduser(str(data_field(config, "path", "")))
    if not path:
        raise DataError("config.data.path: set it to an image folder for data.source='folder'")
    if not os.path.exists(path):
        raise DataError(f"config.data.path: folder '{path}' does not exist")
    if not os.path.isdir(path):
        raise DataError(f"config.data.path: '{path}' is not a folder")
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
            f"config.data.path: no image files in '{path}' (looked recursively for "
            f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)})"
        )
    return files


def folder_label_mode(config, *, required: bool) -> str:
    """``data.labels`` ('none' or 'subfolders'); a DataError naming the key when ``required``."""
    mode = str(data_field(config, "labels", "none"))
    if mode not in LABEL_MODES:
        raise DataError(
            f"config.data.labels: must be one of {', '.join(LABEL_MODES)}, got '{mode}'"
        )
    if required and mode != "subfolders":
        raise DataError(
            "config.data.labels: set it to 'subfolders' (one class per subfolder of data.path); "
            "without it data.source='folder' has no labels"
        )
    return mode


def list_class_files(root: str) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Image files of each class subfolder of ``root``.

    A class is an immediate, not hidden, subfolder of ``root``; classes are sorted by name and
    numbered from 0; a class's files are found recursively inside its subfolder.

    Returns:
      ``(files, labels, class_names, empty)``: the files sorted by class then path, their int32
      class ids, the class names, and the names of the subfolders holding no image file.
    """
    with os.scandir(root) as entries:
        names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    files, labels, empty = [], [], []
    for c, name in enumerate(names):
        found = list_image_files(os.path.join(root, name))
        if not found:
            empty.append(name)
        files.extend(found)
        labels.extend([c] * len(found))
    return files, np.asarray(labels, np.int32), names, empty


def check_folder_classes(config) -> tuple[list[str], np.ndarray, list[str]]:
    """Checks ``data.path`` has >= 2 class subfolders, each with image files.

    Also that ``model.num_classes``, when > 0, equals the number of subfolders.

    Returns:
      ``(files, labels, class_names)`` as :func:`list_class_files`.
    """
    folder_label_mode(config, required=True)
    path = _folder_path(config)
    files, labels, names, empty = list_class_files(path)
    if empty:
        raise DataError(
            f"config.data.labels: with 'subfolders' every subfolder of '{path}' is a class, "
            f"but {', '.join(repr(n) for n in empty[:5])}{' ...' if len(empty) > 5 else ''} "
            "holds no image files; remove it or add images"
        )
    if len(names) < 2:
        raise DataError(
            f"config.data.labels: 'subfolders' needs at least 2 class subfolders in '{path}', "
            f"found {len(names)}{' (' + repr(names[0]) + ')' if names else ''}"
        )
    num_classes = model_num_classes(config)
    if num_classes and num_classes != len(names):
        raise DataError(
            f"config.model.num_classes: {num_classes}, but the data has {len(names)} classes "
            f"(labels 0..{len(names) - 1}: the subfolders of '{path}')"
        )
    return files, labels, names


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


def _decode_folder(config, files: list[str], path: str, size: int, channels: int, crop: str):
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
            f"config.data.path: no decodable images in '{path}' ({len(files)} files tried, "
            f"{len(failures)} failed; e.g. {examples})"
        )
    if failures:
        logging.warning(
            "config.data.path: skipped %d of %d files in %s that failed to decode, e.g. %s",
            len(failures),
            len(files),
            path,
            "; ".join(f"{os.path.relpath(p, path)} ({r})" for p, r in failures[:5]),
        )
    return images, failures


def load_folder_images(config, size: int, channels: int, crop: str):
    """Decodes every image under ``data.path``.

    Returns:
      ``(images, failures)`` as :func:`decode_files`.

    Raises:
      DataError: the folder is missing, has no image files, or none of them decodes.
    """
    files = check_folder(config)
    return _decode_folder(config, files, _folder_path(config), size, channels, crop)


def load_folder_classes(config, size: int, channels: int, crop: str, *, split: str | None = None):
    """Decodes the images of each class subfolder of ``data.path`` (``data.labels='subfolders'``).

    Args:
      config: the run's config.
      size: target side.
      channels: 1 or 3.
      crop: 'center' or 'none'.
      split: None for every image (training); 'train' or 'test' for the fixed stratified
        hold-out of :func:`holdout_indices` (evaluation).

    Returns:
      ``(images, labels, failures, class_names)``: uint8 ``[N, S, S, C]``, their int32 class
      ids, ``(path, reason)`` of the files that failed to decode, and the class names.

    Raises:
      DataError: as :func:`check_folder_classes`, or a class none of whose files decodes.
    """
    files, labels, names = check_folder_classes(config)
    path = _folder_path(config)
    with os.scandir(path) as entries:
        loose = sum(1 for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
    if loose:
        logging.warning(
            "config.data.labels: ignoring %d image files directly in %s (outside any class "
            "subfolder)",
            loose,
            path,
        )
    if split is not None:
        keep = holdout_indices(labels, split, source="folder")
        files, labels = [files[i] for i in keep], labels[keep]
    images, failures = _decode_folder(config, files, path, size, channels, crop)
    # decode_files keeps file order and drops the failures: drop their labels the same way.
    failed = {p for p, _ in failures}
    labels = labels[np.array([f not in failed for f in files], bool)]
    missing = sorted(set(range(len(names))) - set(np.unique(labels).tolist()))
    if missing and split is None:
        raise DataError(
            f"config.data.path: class subfolder(s) {', '.join(repr(names[c]) for c in missing)} "
            f"of '{path}' hold no decodable image; remove them or fix the files"
        )
    return images, labels, failures, names


# ---------------------------------------------------------------------------------------------
# tfds


def tfds_builder(config):
    """The TFDS builder for ``data.name``, or a DataError naming what is wrong."""
    import tensorflow_datasets as tfds

    name = str(data_field(config, "name", ""))
    if not name:
        raise DataError("config.data.name: set it to a TFDS dataset name for data.source='tfds'")
    try:
        builder = tfds.builder(name, data_dir=data_field(config, "data_dir", None))
    except Exception as e:  # DatasetNotFoundError, bad config name, ...
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"config.data.name: TFDS dataset '{name}' not found; {first_line} "
            "(names look like 'mnist', 'cifar10', 'celeb_a', 'lsun/bedroom')"
        ) from e
    features = builder.info.features
    if "image" not in features:
        raise DataError(
            f"config.data.name: TFDS dataset '{name}' has no 'image' feature "
            f"(features: {', '.join(features.keys())})"
        )
    return builder


def tfds_label_info(config, builder) -> tuple[str, int, list[str]]:
    """The ClassLabel feature ``data.label_feature`` (default 'label') of a TFDS dataset.

    Also checks ``model.num_classes``, when > 0, against its number of classes.

    Returns:
      ``(feature, num_classes, class_names)``.

    Raises:
      DataError: no such feature, it is not a ClassLabel, or the class count differs.
    """
    import tensorflow_datasets as tfds

    name = str(data_field(config, "name", ""))
    feature = str(data_field(config, "label_feature", "label"))
    features = builder.info.features
    if not feature or feature not in features:
        class_labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
        raise DataError(
            f"config.data.label_feature: TFDS dataset '{name}' has no '{feature}' feature to "
            f"read class labels from (features: {', '.join(features.keys())}; ClassLabel "
            f"features: {', '.join(class_labels) if class_labels else 'none'})"
        )
    label = features[feature]
    if not isinstance(label, tfds.features.ClassLabel):
        raise DataError(
            f"config.data.label_feature: '{feature}' of TFDS dataset '{name}' is a "
            f"{type(label).__name__}, not a ClassLabel of class ids"
        )
    count = int(label.num_classes)
    num_classes = model_num_classes(config)
    if num_classes and num_classes != count:
        raise DataError(
            f"config.model.num_classes: {num_classes}, but the data has {count} classes "
            f"(labels 0..{count - 1}: '{feature}' of TFDS dataset '{name}')"
        )
    return feature, count, [str(n) for n in label.names]
