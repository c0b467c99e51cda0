"""Image-to-image scores: PSNR, SSIM, hole L1/PSNR, edge F1, and the baselines beside them.

For super-resolution, inpainting, colourisation and edges-to-image models, where every output
has a target. Distribution scores (FID/KID of the outputs against the targets) are
`gan_jax.evaluation.compute_metrics`; this module scores each output against its own target.

* `psnr`, `ssim`: BasicSR's conventions (``basicsr/metrics/psnr_ssim.py``), so numbers compare
  with the super-resolution literature: computed in float64 on the 0..255 scale, on RGB or on
  the BT.601 luma `to_y` (``y_channel=True``), with ``crop_border`` pixels dropped on each side.
  SSIM is Wang et al. 2004: an 11x11 Gaussian window with sigma 1.5, K1=0.01, K2=0.03, 'valid'
  filtering (the mean is over the positions where the whole window lies inside the image), per
  channel, averaged over the channels. It equals scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)``, which filters the whole image and then drops the same
  5-pixel band.
* `masked_l1_psnr`: L1 and PSNR over the hole pixels only (inpainting), per image, with the
  hole's area; `area_buckets` and `by_bucket` group a score by hole area.
* `edge_f1`: precision, recall and F1 of binary edge maps with a pixel tolerance (edges-to-image:
  edges of the output against the input edges). `edges_of` is a plain Sobel threshold; edges
  from another detector (Canny) can be passed as they are.
* Baselines: `upsample` (PIL bicubic / Lanczos) for super-resolution, `inpaint_opencv`
  (OpenCV's Telea / Navier-Stokes, imported only when called) for inpainting; for colourisation
  the baseline is the grey input itself. `report` prints a score with its baselines beside it::

      sr = upsample(low_res, 4)
      print(report({"PSNR": psnr(out, target, y_channel=True, crop_border=4).mean},
                   {"bicubic": {"PSNR": psnr(sr, target, y_channel=True, crop_border=4).mean}}))
      # PSNR 28.31 dB (bicubic 26.90)

Image convention (as `inception.preprocess`): images are batches [N, H, W, C], C = 1 or 3, and
``input_range`` says how to read them:

* ``'uint8'`` (default): values on the 0..255 scale, any dtype (uint8 images, or floats such as
  `to_y`'s output); values outside [0, 255] are an error (generator outputs need ``'[-1,1]'``).
* ``'[-1,1]'``: a generator's tanh output, clipped to [-1, 1] and mapped to 0..255 by
  ``(x + 1) * 127.5``; with ``quantize=True`` (default) rounded to the 256 levels a saved image
  has (BasicSR scores the saved uint8 images; `gan_jax.images.to_uint8` rounds the same way).

Both images of a pair are read with the same ``input_range``; `to_255` converts one separately.
``data_range`` is the peak value on the 0..255 scale (255), as BasicSR and scikit-image use it.
Scores are per image, with their mean: a `Scores` (``values`` [N] float64, ``mean``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from gan_jax.input import tasks

INPUT_RANGES = ("uint8", "[-1,1]")

# SSIM (Wang et al. 2004; BasicSR's _ssim): Gaussian window and stabilising constants.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# ITU-R BT.601 Y'CbCr, studio swing (MATLAB's rgb2ycbcr; BasicSR's rgb2ycbcr / bgr2ycbcr):
# Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1]; Y in [16, 235].
Y_OFFSET = 16.0
Y_WEIGHTS = (65.481, 128.553, 24.966)

# Hole-area buckets of the inpainting literature (NVIDIA's irregular masks: 10% steps to 60%).
MASK_AREA_EDGES = tasks.BUCKET_EDGES  # one definition, with the masks that fill them

UPSAMPLE_KERNELS = ("bicubic", "lanczos")
INPAINT_METHODS = ("telea", "ns")
OPENCV_PACKAGE = "opencv-python-headless"

# Elements per float64 work array in one chunk of a batch (32 MiB): bounds SSIM's memory.
_CHUNK_ELEMENTS = 1 << 22


class Scores(NamedTuple):
    """A score per image and its mean over the batch."""

    values: np.ndarray  # [N] float64
    mean: float


class HoleScores(NamedTuple):
    """`masked_l1_psnr`'s result: per-image scores over the hole pixels, with their means."""

    l1: np.ndarray  # [N] mean |pred - target| / data_range over hole pixels and channels
    psnr: np.ndarray  # [N] dB over hole pixels; inf where the hole is exact
    hole_fraction: np.ndarray  # [N] hole pixels / all pixels
    mean_l1: float
    mean_psnr: float


class Bucket(NamedTuple):
    mean: float
    count: int


class EdgeScores(NamedTuple):
    """`edge_f1`'s result. ``pooled_*`` sum the matches over the batch before dividing."""

    f1: np.ndarray  # [N]
    precision: np.ndarray  # [N]
    recall: np.ndarray  # [N]
    mean: float  # mean of the per-image F1
    pooled_precision: float
    pooled_recall: float
    pooled_f1: float


# ---------------------------------------------------------------------------------------------
# Conversions


def _check_batch(images: np.ndarray, name: str) -> None:
    if images.ndim != 4:
        raise ValueError(f"{name}: expected a batch [N, H, W, C], got shape {images.shape}")


def to_255(images, input_range: str = "uint8", *, quantize: bool = True) -> np.ndarray:
    """Images read as ``input_range`` (module docstring) -> float64 on the 0..255 scale."""
    x = np.asarray(images)
    if input_range == "uint8":
        x = x.astype(np.float64)
        if x.size and (np.nanmin(x) < 0.0 or np.nanmax(x) > 255.0):
            raise ValueError(
                f"input_range='uint8' reads values on the 0..255 scale, got values in "
                f"[{np.nanmin(x):g}, {np.nanmax(x):g}]; a generator's [-1, 1] output needs "
                "input_range='[-1,1]'"
            )
        return x
    if input_range == "[-1,1]":
        x = (np.clip(x.astype(np.float64), -1.0, 1.0) + 1.0) * 127.5
        return np.round(x) if quantize else x
    raise ValueError(f"input_range must be one of {INPUT_RANGES}, got {input_range!r}")


def _from_uint8(images: np.ndarray, input_range: str) -> np.ndarray:
    """uint8 [0, 255] -> the convention named by ``input_range`` (the inverse of `to_255`)."""
    if input_range == "uint8":
        return images
    return (images.astype(np.float32) / np.float32(127.5) - 1.0).astype(np.float32)


def _as_uint8(images, input_range: str, name: str) -> np.ndarray:
    x = to_255(images, input_range, quantize=True)
    _check_batch(x, name)
    return np.round(x).astype(np.uint8)


def to_y(rgb, *, input_range: str = "uint8", quantize: bool = True) -> np.ndarray:
    """BT.601 luma Y of RGB images, on the 0..255 scale: [..., 3] -> float64 [..., 1] in [16, 235].

    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B on the 0..255 scale (the
    coefficients are for [0, 1] inputs): MATLAB's ``rgb2ycbcr`` and BasicSR's ``y_channel``.
    The result reads with the default ``input_range='uint8'``.
    """
    x = to_255(rgb, input_range, quantize=quantize)
    if x.shape[-1] != 3:
        raise ValueError(f"to_y needs RGB images [..., 3], got shape {x.shape}")
    y = Y_OFFSET + (x @ np.asarray(Y_WEIGHTS, np.float64)) / 255.0
    return y[..., None]


def _prepare_pair(a, b, crop_border: int, y_channel: bool, input_range: str, quantize: bool):
    """Both images on the 0..255 scale, luma if asked, border cropped: float64 [N, H', W', C]."""
    x = to_255(a, input_range, quantize=quantize)
    y = to_255(b, input_range, quantize=quantize)
    _check_batch(x, "a")
    if x.shape != y.shape:
        raise ValueError(f"the two batches differ in shape: {x.shape} vs {y.shape}")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels, got shape {x.shape}")
    if y_channel and x.shape[-1] == 3:  # BasicSR: grey images are used as they are
        x, y = to_y(x), to_y(y)
    crop = int(crop_border)
    if crop < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop:
        if 2 * crop >= min(x.shape[1:3]):
            raise ValueError(f"crop_border={crop} leaves nothing of {x.shape[1:3]} images")
        x = x[:, crop:-crop, crop:-crop]
        y = y[:, crop:-crop, crop:-crop]
    return x, y


def _scores(values: np.ndarray) -> Scores:
    return Scores(values, float(np.mean(values)) if values.size else math.nan)


def _psnr_from_mse(mse: np.ndarray, data_range: float) -> np.ndarray:
    """10 log10(range^2 / mse): inf where mse == 0, nan where mse is nan; no warnings."""
    out = np.full(mse.shape, np.inf)
    out[np.isnan(mse)] = np.nan
    pos = mse > 0
    out[pos] = 20.0 * np.log10(float(data_range)) - 10.0 * np.log10(mse[pos])
    return out


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM


def psnr(
    a,
    b,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    data_range: float = 255,
    input_range: str = "uint8",
    quantize: bool = True,
) -> Scores:
    """Peak signal-to-noise ratio in dB per image pair, and its mean (inf for identical images).

    Args:
      a, b: batches [N, H, W, C] (C = 1 or 3) read as ``input_range`` (module docstring).
      crop_border: pixels dropped on each side first (BasicSR crops the scale factor).
      y_channel: score the BT.601 luma `to_y` instead of the RGB channels (grey images,
        C = 1, are scored as they are, as BasicSR does).
      data_range: the peak value on the 0..255 scale.
      input_range, quantize: see `to_255`.
    """
    x, y = _prepare_pair(a, b, crop_border, y_channel, input_range, quantize)
    mse = np.mean((x - y) ** 2, axis=(1, 2, 3))
    return _scores(_psnr_from_mse(mse, data_range))


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian of SSIM (as OpenCV's getGaussianKernel(11, 1.5))."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    w = np.exp(-(t**2) / (2.0 * sigma**2))
    return w / w.sum()


def _filter_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of [N, H, W, C] with window x window over H and W."""
    k = window.size
    h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
    rows = sum(window[i] * x[:, i : i + h] for i in range(k))
    return sum(window[j] * rows[:, :, j : j + w] for j in range(k))


def _ssim_chunk(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    window = _gaussian_window()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x = _filter_valid(x, window)
    mu_y = _filter_valid(y, window)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = _filter_valid(x * x, window) - mu_xx
    var_y = _filter_valid(y * y, window) - mu_yy
    cov = _filter_valid(x * y, window) - mu_xy
    ssim_map = ((2.0 * mu_xy + c1) * (2.0 * cov + c2)) / (
        (mu_xx + mu_yy + c1) * (var_x + var_y + c2)
    )
    # Per channel, then over the channels (BasicSR calculate_ssim).
    return ssim_map.mean(axis=(1, 2)).mean(axis=-1)


def ssim(
    a,
    b,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    data_range: float = 255,
    input_range: str = "uint8",
    quantize: bool = True,
) -> Scores:
    """Structural similarity (Wang et al. 2004) per image pair, and its mean (1 for identical).

    Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, 'valid'
    filtering, per channel then averaged: BasicSR's ``calculate_ssim``. Arguments as `psnr`; the
    images need at least 11x11 pixels after ``crop_border``.
    """
    x, y = _prepare_pair(a, b, crop_border, y_channel, input_range, quantize)
    if min(x.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after "
            f"crop_border, got {x.shape[1]}x{x.shape[2]}"
        )
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, math.prod(x.shape[1:])))
    values = [
        _ssim_chunk(x[i : i + per_chunk], y[i : i + per_chunk], float(data_range))
        for i in range(0, x.shape[0], per_chunk)
    ]
    return _scores(np.concatenate(values) if values else np.zeros(0))


# ---------------------------------------------------------------------------------------------
# Inpainting: scores inside the hole, by hole area


def _hole_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    """[N, H, W] or [N, H, W, 1], positive = hole -> bool [N, H, W]."""
    m = np.asarray(mask)
    if m.ndim == 4 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.shape != tuple(shape[:3]):
        raise ValueError(
            f"mask: expected [N, H, W] or [N, H, W, 1] matching images {shape}, got {m.shape}"
        )
    return m > 0


def masked_l1_psnr(
    pred,
    target,
    mask,
    *,
    data_range: float = 255,
    input_range: str = "uint8",
    quantize: bool = True,
) -> HoleScores:
    """L1 and PSNR over the hole pixels only (the pixels an inpainting model had to make up).

    Args:
      pred, target: batches [N, H, W, C] read as ``input_range`` (module docstring).
      mask: [N, H, W] or [N, H, W, 1]; positive (True, 1, 255) marks a hole pixel, as
        `inpaint_opencv` and ``cv2.inpaint`` take it.
      data_range: the peak value on the 0..255 scale; L1 is divided by it (a fraction of the
        range: multiply by 100 for the "L1 (%)" of inpainting papers).

    Returns:
      `HoleScores`; an image without hole pixels scores nan (ignored by the means).
    """
    x, y = _prepare_pair(pred, target, 0, False, input_range, quantize)
    hole = _hole_mask(mask, x.shape)
    channels = x.shape[-1]
    count = hole.sum(axis=(1, 2)).astype(np.float64)  # [N]
    diff = (x - y) * hole[..., None]
    has = count > 0
    denom = np.where(has, count * channels, 1.0)
    l1 = np.where(has, np.abs(diff).sum(axis=(1, 2, 3)) / denom / float(data_range), np.nan)
    mse = np.where(has, (diff**2).sum(axis=(1, 2, 3)) / denom, np.nan)
    hole_psnr = _psnr_from_mse(mse, data_range)
    fraction = count / float(x.shape[1] * x.shape[2])
    mean_l1 = float(np.mean(l1[has])) if has.any() else math.nan
    mean_psnr = float(np.mean(hole_psnr[has])) if has.any() else math.nan
    return HoleScores(l1, hole_psnr, fraction, mean_l1, mean_psnr)


def area_buckets(hole_fraction, edges: Sequence[float] = MASK_AREA_EDGES) -> list[str]:
    """Hole fractions -> bucket labels such as '10-20%': (lo, hi] per bucket, 0 in the first."""
    frac = np.asarray(hole_fraction, np.float64).reshape(-1)
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be at least two increasing numbers, got {edges.tolist()}")
    if frac.size and (frac.min() < edges[0] or frac.max() > edges[-1]):
        raise ValueError(f"hole fractions outside the edges [{edges[0]:g}, {edges[-1]:g}]")
    index = np.clip(np.searchsorted(edges, frac, side="left") - 1, 0, edges.size - 2)
    labels = [f"{lo * 100:g}-{hi * 100:g}%" for lo, hi in zip(edges[:-1], edges[1:])]
    return [labels[i] for i in index]


def _natural_key(key: Hashable):
    """'5-10%' before '10-20%': digit runs compare as numbers."""
    if isinstance(key, str):
        return tuple(
            (1, int(part)) if part.isdigit() else (0, part) for part in re.split(r"(\d+)", key)
        )
    return key


def by_bucket(values, buckets: Iterable[Hashable]) -> dict[Hashable, Bucket]:
    """Mean and count of ``values`` per bucket label: {bucket: Bucket(mean, count)}.

    ``buckets`` holds one label per value (e.g. `area_buckets` of the hole fractions). nan values
    (an image without a hole) are left out of both; the buckets are in natural order.
    """
    vals = np.asarray(values, np.float64).reshape(-1)
    labels = list(buckets)
    if len(labels) != vals.size:
        raise ValueError(f"{vals.size} values but {len(labels)} bucket labels")
    groups: dict[Hashable, list[float]] = {}
    for value, label in zip(vals, labels):
        groups.setdefault(label, [])
        if not np.isnan(value):
            groups[label].append(value)
    try:
        order = sorted(groups, key=_natural_key)
    except TypeError:  # labels of mixed types: the order they first appear in
        order = list(groups)
    return {
        label: Bucket(
            float(np.mean(groups[label])) if groups[label] else math.nan, len(groups[label])
        )
        for label in order
    }


# ---------------------------------------------------------------------------------------------
# Edges


def _edge_maps(edges, name: str) -> np.ndarray:
    e = np.asarray(edges)
    if e.ndim == 4 and e.shape[-1] == 1:
        e = e[..., 0]
    if e.ndim != 3:
        raise ValueError(f"{name}: expected binary maps [N, H, W] or [N, H, W, 1], got {e.shape}")
    return e > 0


def _dilate(maps: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of [N, H, W] by a (2 radius + 1)^2 square (separable max)."""
    if radius == 0:
        return maps
    h, w = maps.shape[1:]
    padded = np.pad(maps, ((0, 0), (radius, radius), (0, 0)))
    rows = np.logical_or.reduce([padded[:, i : i + h] for i in range(2 * radius + 1)])
    padded = np.pad(rows, ((0, 0), (0, 0), (radius, radius)))
    return np.logical_or.reduce([padded[:, :, j : j + w] for j in range(2 * radius + 1)])


def _f1(precision, recall):
    p, r = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    total = p + r
    return np.where(total > 0, 2.0 * p * r / np.where(total > 0, total, 1.0), 0.0)


def _ratio(num, den, empty_value):
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty_value)


def edge_f1(pred_edges, true_edges, *, tolerance: int = 1) -> EdgeScores:
    """Precision, recall and F1 of binary edge maps, matching within ``tolerance`` pixels.

    A predicted edge pixel counts as correct when a true edge pixel lies within ``tolerance``
    pixels of it in both directions (the true map dilated by a (2 tolerance + 1)^2 square):
    precision = correct predicted pixels / predicted pixels; recall the same with the roles
    swapped; F1 = 2 P R / (P + R). A pixel may match more than once (no one-to-one assignment,
    unlike the BSDS benchmark), which is what "dilate-based" means here.

    Args:
      pred_edges, true_edges: [N, H, W] or [N, H, W, 1]; positive = edge.
      tolerance: pixels; 0 asks for the same pixels.

    Empty maps: a prediction with no edge pixels has precision 0 (1 if the truth is empty too),
    recall 0 for an empty truth unless the prediction is empty too; F1 is 0 when P + R = 0.
    """
    pred = _edge_maps(pred_edges, "pred_edges")
    true = _edge_maps(true_edges, "true_edges")
    if pred.shape != true.shape:
        raise ValueError(f"edge maps differ in shape: {pred.shape} vs {true.shape}")
    tol = int(tolerance)
    if tol < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    n_pred = pred.sum(axis=(1, 2))
    n_true = true.sum(axis=(1, 2))
    hit_pred = (pred & _dilate(true, tol)).sum(axis=(1, 2))
    hit_true = (true & _dilate(pred, tol)).sum(axis=(1, 2))
    both_empty = (n_pred == 0) & (n_true == 0)
    precision = _ratio(hit_pred, n_pred, np.where(both_empty, 1.0, 0.0))
    recall = _ratio(hit_true, n_true, np.where(both_empty, 1.0, 0.0))
    f1 = _f1(precision, recall)
    all_empty = n_pred.sum() == 0 and n_true.sum() == 0
    pooled_p = float(_ratio(hit_pred.sum(), n_pred.sum(), 1.0 if all_empty else 0.0))
    pooled_r = float(_ratio(hit_true.sum(), n_true.sum(), 1.0 if all_empty else 0.0))
    return EdgeScores(
        f1,
        precision,
        recall,
        float(np.mean(f1)) if f1.size else math.nan,
        pooled_p,
        pooled_r,
        float(_f1(pooled_p, pooled_r)),
    )


def edges_of(
    images, *, threshold: float = 0.5, input_range: str = "uint8", quantize: bool = True
) -> np.ndarray:
    """Binary edge maps [N, H, W] by a Sobel threshold on the luma (a simple, fixed detector).

    The luma is BT.601 (0.299 R + 0.587 G + 0.114 B) on [0, 1]; the gradient is the Sobel pair
    ([1, 2, 1] smoothing, [-1, 0, 1] difference) with replicated borders; a pixel is an edge
    when the gradient magnitude exceeds ``threshold`` (a step of height h gives 4 h, so 0.5
    finds steps above 1/8 of the range, two pixels wide). Edges from a better detector (Canny)
    can be given to `edge_f1` directly.
    """
    x = to_255(images, input_range, quantize=quantize)
    _check_batch(x, "images")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels, got shape {x.shape}")
    grey = tasks.luma(x / 255.0)  # BT.601 on [0, 1] (luma is linear: any scale works)
    return np.stack([tasks.sobel_magnitude(g) > threshold for g in grey])


# ---------------------------------------------------------------------------------------------
# Baselines


def upsample(small, factor: int, kernel: str = "bicubic", *, input_range: str = "uint8"):
    """Super-resolution baseline: PIL's bicubic or Lanczos resize by an integer ``factor``.

    ``small`` [N, h, w, C] is read as ``input_range`` and resized as the 8-bit image a file
    would hold (rounded and clipped per channel by PIL); the result [N, h factor, w factor, C]
    is in the same convention: uint8 for 'uint8', float32 in [-1, 1] for '[-1,1]'. (PIL's
    bicubic is the a = -0.5 kernel of MATLAB's imresize; the two differ near the border.)
    """
    from PIL import Image

    resample = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
    if kernel not in resample:
        raise ValueError(f"kernel must be one of {UPSAMPLE_KERNELS}, got {kernel!r}")
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    factor = int(factor)
    x = _as_uint8(small, input_range, "small")
    n, h, w, c = x.shape
    out = np.empty((n, h * factor, w * factor, c), np.uint8)
    for i in range(n):
        for ch in range(c):
            image = Image.fromarray(np.ascontiguousarray(x[i, :, :, ch]), mode="L")
            out[i, :, :, ch] = np.asarray(image.resize((w * factor, h * factor), resample[kernel]))
    return _from_uint8(out, input_range)


def _import_cv2():
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            f"OpenCV inpainting baselines need OpenCV: pip install {OPENCV_PACKAGE} "
            "(see requirements-dev.txt for the tested version)"
        ) from error
    return cv2


def inpaint_opencv(
    image_uint8, mask, method: str = "telea", radius: float = 3, *, input_range: str = "uint8"
):
    """Inpainting baseline: OpenCV's Telea (2004) or Navier-Stokes (Bertalmio 2001) fill.

    Args:
      image_uint8: [N, H, W, C], C = 1 or 3, read as ``input_range`` (made 8-bit first); the
        pixels under the hole are ignored.
      mask: [N, H, W] or [N, H, W, 1], positive = hole (to be filled).
      method: 'telea' (cv2.INPAINT_TELEA) or 'ns' (cv2.INPAINT_NS).
      radius: the neighbourhood, in pixels, each filled pixel is computed from.

    Returns:
      The filled batch in the input's convention (uint8, or float32 in [-1, 1]). Needs
      ``opencv-python-headless`` (imported here only).

    OpenCV's Telea does not reproduce a constant exactly: its gradient term leaves errors of up
    to about 3 levels (opencv/opencv#25404); Navier-Stokes does. Both are what papers report.
    """
    if method not in INPAINT_METHODS:
        raise ValueError(f"method must be one of {INPAINT_METHODS}, got {method!r}")
    x = _as_uint8(image_uint8, input_range, "image_uint8")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"cv2.inpaint takes 1 or 3 channels, got shape {x.shape}")
    hole = _hole_mask(mask, x.shape).astype(np.uint8) * 255
    cv2 = _import_cv2()
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        # Each channel is filled alike, so RGB needs no swap to OpenCV's BGR.
        filled = cv2.inpaint(np.ascontiguousarray(x[i]), hole[i], float(radius), flag)
        out[i] = filled.reshape(x.shape[1:])
    return _from_uint8(out, input_range)


# ---------------------------------------------------------------------------------------------
# Report

_FORMATS = (
    ("psnr", "{:.2f}", " dB"),
    ("ssim", "{:.4f}", ""),
    ("l1", "{:.4f}", ""),
    ("f1", "{:.4f}", ""),
)


def _format(name: str, value: Any) -> tuple[str, str]:
    """(number, unit) of one score; digits and unit by the score's name."""
    lower = name.lower()
    fmt, unit = "{:.4g}", ""
    for key, key_fmt, key_unit in _FORMATS:
        if key in lower:
            fmt, unit = key_fmt, key_unit
            break
    if value is None:
        return "n/a", unit
    value = float(value)
    if not math.isfinite(value):
        return str(value), unit
    return fmt.format(value), unit


def report(
    metric_dict: Mapping[str, Any], baseline_dict: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """One line per score with each baseline's value beside it.

    ``report({'PSNR': 28.31}, {'bicubic': {'PSNR': 26.9}})`` -> ``'PSNR 28.31 dB (bicubic
    26.90)'``. Digits and units follow the name (PSNR: 2 decimals, dB; SSIM, L1, F1: 4
    decimals); a baseline without the score is left out of its line.
    """
    lines = []
    for name, value in metric_dict.items():
        number, unit = _format(name, value)
        beside = [
            f"{base} {_format(name, scores[name])[0]}"
            for base, scores in (baseline_dict or {}).items()
            if name in scores
        ]
        line = f"{name} {number}{unit}"
        lines.append(f"{line} ({', '.join(beside)})" if beside else line)
    return "\n".join(lines)
