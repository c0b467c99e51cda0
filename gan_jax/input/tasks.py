"""Image-to-image tasks as data: turn one clean image into a (model input, target) pair.

Five paired tasks in the pix2pix style, each named by a short string (:func:`parse_task`):

=============================  ==============================================  ==============
spec                           model input                                     channels
=============================  ==============================================  ==============
``sr2``, ``sr4`` (``srN``)     the image downscaled by N (N in 2..8)           C, H/N x W/N
``inpaint[:MASKS[:LO-HI]]``    the image with a grey hole (0), + the mask      C + 1
``colorize``                   luma (ITU-R BT.601 Y) of an RGB image           1
``edges[:sobel|canny]``        an edge map (white edges on black)              1
``denoise[:SIGMA]``            the image + Gaussian noise, clipped             C
=============================  ==============================================  ==============

The target is always the clean image itself. Images are float32 ``[H, W, C]`` in ``[-1, 1]``
(``x / 127.5 - 1`` of uint8, as :mod:`gan_jax.input.pipeline` gives them).

Usage::

  task = parse_task("inpaint:stroke")
  seed = example_seed(base_seed, key)            # key: the example's stable name
  ex = degrade(task, image, seed)                # {'input', 'target', 'mask'}
  split = split_of(key)                          # 'train' | 'validation' | 'test'

Conventions
-----------
* **Determinism.** :func:`degrade` depends only on ``(task, image, seed)``: it draws from its
  own ``numpy.random.default_rng(seed)``, never from global state, so a tf.data map
  (``tf.numpy_function``), a thread pool or a test gets the same arrays in any order. (NumPy
  keeps a Generator's streams stable across releases in practice, but reserves the right to
  change a distribution's algorithm; the masks and noise are fixed for a given NumPy.) ``sr``,
  ``colorize`` and ``edges`` use no randomness; the seed is ignored.
* **Seeds per example.** :func:`example_seed` hashes ``(base_seed, key)``, so a validation or
  test example always gets the same mask or noise, whatever the order, batch or process that
  reads it: scores stay comparable between evaluations and runs. Training examples may instead
  get fresh degradations each epoch with ``example_seed(base_seed, key, epoch=epoch)``.
* **Splits.** :func:`split_of` assigns each example by the SHA-256 of its key, so the split of
  an example never changes with the folder's listing order, the number of files beside it, the
  machine or the Python process (Python's ``hash()`` is salted per process and never used).
  Keys: a file's path relative to the folder with ``/`` separators (:func:`relative_key`), a
  TFDS example's ``tfds_id``, an npz array's index as a decimal string. A checkpoint is
  chosen on ``'validation'``; ``'test'`` is only for the final report, never for selection.

Task details
------------
* ``sr``: the input is the image downscaled by the factor with **bicubic, antialiased**
  interpolation (:func:`downscale`): PIL's ``Image.resize`` with ``BICUBIC`` on each channel
  as a 32-bit float image, which is Keys' cubic convolution kernel with ``a = -0.5`` stretched
  by the factor (support ``2 * factor`` input pixels on each side), weights renormalised where
  they fall outside the image. That is MATLAB's ``imresize(x, 1/f, 'bicubic')`` (the kernel of
  the DIV2K/Set5 "bicubic" SR benchmarks) except at the border, where MATLAB mirrors. H and W
  must be divisible by the factor. The bicubic / Lanczos upsampling baselines are
  :func:`gan_jax.evaluation.image_metrics.upsample` (on 8-bit images, as papers report them).
* ``inpaint``: ``mask`` is ``[H, W, 1]`` float32, 1 = hole, 0 = known. The input is
  ``concat(image * (1 - mask), mask)``: the hole filled with 0 (mid-grey) and the mask as the
  last channel. Masks come from the seed: ``box`` (one axis-aligned rectangle,
  :func:`box_mask`), ``stroke`` (DeepFill v2-style free-form brush strokes,
  :func:`stroke_mask`) or ``mixed`` (each example picks one of the two with probability 1/2;
  the default). ``LO-HI`` is the hole's area fraction range (default ``0.01-0.6``, the span of
  the six :func:`mask_bucket` buckets); box masks always fall in it, stroke masks do whenever
  the image is large enough for the requested precision (a pixel is ``1 / (H W)`` of it).
  Results are reported per hole-area bucket (:func:`mask_bucket`).
* ``colorize``: the input is the luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, the
  weights PIL's ``'L'`` conversion uses), computed on the ``[-1, 1]`` values directly (the
  weights sum to 1, so this equals converting to ``[0, 1]``, weighting and converting back).
  The image must have 3 channels.
* ``edges``: computed on the luma (or the single channel) on the ``[0, 1]`` scale; the input is
  ``2 e - 1`` for an edge strength ``e`` in ``[0, 1]``, so edges are white (+1) on black (-1).

  - ``sobel``: the Sobel gradient magnitude, **not thresholded** (a soft edge map), divided by
    a fixed 4 so that a full black-to-white step gives 1 (clipped at 1, which only steeper-
    than-a-step diagonals reach). The normaliser is fixed, not per image, so a faint edge stays
    faint and a constant image gives no edges.
  - ``canny`` (the default): binary edges by Canny's method in NumPy/SciPy (:func:`canny`):
    Gaussian blur (sigma 1), Sobel gradients, non-maximum suppression across the gradient
    (4 directions), then hysteresis: pixels above ``0.2`` of the image's largest gradient are
    edges, and pixels above ``0.1`` of it are edges when 8-connected to one of those.
* ``denoise``: the input is ``clip(image + sigma * N(0, 1), -1, 1)``. ``sigma`` is in ``[-1, 1]``
  units (``sigma_255 / 127.5``); the default ``0.2`` is sigma 25.5 on the 0..255 scale, the
  usual "sigma 25" benchmark level.

This module uses only NumPy, SciPy and PIL (no JAX, no TensorFlow), so a tf.data pipeline can
call it through ``tf.numpy_function``; :meth:`Task.input_shape` gives the static output shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

KINDS = ("sr", "inpaint", "colorize", "edges", "denoise")
MASKS = ("box", "stroke", "mixed")
DETECTORS = ("sobel", "canny")
SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)
SR_FACTORS = range(2, 9)
DEFAULT_HOLE = (0.01, 0.6)
DEFAULT_SIGMA = 0.2
# Hole-area buckets (fractions, each (lo, hi]); evaluation reports inpainting by them.
BUCKET_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0)
BUCKETS = tuple(f"{lo * 100:g}-{hi * 100:g}%" for lo, hi in zip(BUCKET_EDGES, BUCKET_EDGES[1:]))

# ITU-R BT.601 luma weights (R, G, B).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# Canny: Gaussian sigma (pixels) and hysteresis thresholds as fractions of the largest gradient.
CANNY_SIGMA = 1.0
CANNY_LOW = 0.1
CANNY_HIGH = 0.2
# Sobel (scipy.ndimage.sobel: [-1, 0, 1] x [1, 2, 1]) of a unit step is 4.
SOBEL_UNIT_STEP = 4.0

# Free-form strokes: DeepFill v2's generator (Yu et al. 2019, "Free-Form Image Inpainting with
# Gated Convolution"), its constants for 256 px images; widths scale with the image.
STROKE_VERTICES = (4, 12)  # randint(4, 12): 4..11 segments per stroke
STROKE_WIDTH_256 = (12.0, 40.0)
STROKE_MEAN_ANGLE = 2 * math.pi / 5
STROKE_ANGLE_RANGE = 2 * math.pi / 15
STROKE_ATTEMPTS = 200

_FORMS = (
    "sr2, sr4 (srN, N in 2..8); inpaint[:box|stroke|mixed[:LO-HI]] (hole area fractions, "
    "e.g. inpaint:box:0.1-0.3); colorize; edges[:sobel|canny]; denoise[:SIGMA] "
    "(noise std in [-1, 1] units, e.g. denoise:0.1)"
)
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"({_NUMBER})-({_NUMBER})")


@dataclasses.dataclass(frozen=True)
class Task:
    """One degradation: ``kind`` and its option (the others are None). See the module doc.

    Build it with :func:`parse_task`; ``str(task)`` is the canonical spec and parses back.
    """

    kind: str
    factor: int | None = None  # sr
    masks: str | None = None  # inpaint: 'box' | 'stroke' | 'mixed'
    hole: tuple[float, float] | None = None  # inpaint: hole area fraction range
    detector: str | None = None  # edges: 'sobel' | 'canny'
    sigma: float | None = None  # denoise

    def __post_init__(self):
        # Plain Python numbers, so that equal specs give equal (and hashable) Tasks.
        if isinstance(self.sigma, (int, np.integer, np.floating)) and not isinstance(
            self.sigma, bool
        ):
            object.__setattr__(self, "sigma", float(self.sigma))
        if isinstance(self.hole, (list, tuple)) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in self.hole
        ):
            object.__setattr__(self, "hole", tuple(float(v) for v in self.hole))
        options = {
            "sr": ("factor",),
            "inpaint": ("masks", "hole"),
            "edges": ("detector",),
            "denoise": ("sigma",),
            "colorize": (),
        }
        if self.kind not in options:
            raise ValueError(f"unknown task kind {self.kind!r}; expected one of {KINDS}")
        for field in ("factor", "masks", "hole", "detector", "sigma"):
            given = getattr(self, field) is not None
            if given != (field in options[self.kind]):
                raise ValueError(
                    f"task {self.kind!r} {'takes no' if given else 'needs a'} {field!r} "
                    f"(use parse_task: {_FORMS})"
                )
        if self.kind == "sr" and (
            isinstance(self.factor, bool)
            or not isinstance(self.factor, int)
            or self.factor not in SR_FACTORS
        ):
            raise ValueError(f"sr factor must be an integer in 2..8, got {self.factor!r}")
        if self.kind == "inpaint":
            if self.masks not in MASKS:
                raise ValueError(f"inpaint masks must be one of {MASKS}, got {self.masks!r}")
            _check_hole(self.hole)
        if self.kind == "edges" and self.detector not in DETECTORS:
            raise ValueError(f"edges detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.kind == "denoise" and not (
            isinstance(self.sigma, float) and math.isfinite(self.sigma) and 0 < self.sigma <= 2
        ):
            raise ValueError(
                f"denoise sigma must be a float in (0, 2] ([-1, 1] units), got {self.sigma!r}"
            )

    def __str__(self) -> str:
        if self.kind == "sr":
            return f"sr{self.factor}"
        if self.kind == "inpaint":
            return f"inpaint:{self.masks}:{self.hole[0]!r}-{self.hole[1]!r}"
        if self.kind == "edges":
            return f"edges:{self.detector}"
        if self.kind == "denoise":
            return f"denoise:{self.sigma!r}"
        return self.kind

    def input_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """The model input's shape for a target image of ``shape`` ``(H, W, C)``.

        Raises the same ValueError as :func:`degrade` for an image the task cannot take.
        """
        if len(shape) != 3:
            raise ValueError(f"expected an image shape (H, W, C), got {tuple(shape)}")
        h, w, c = (int(s) for s in shape)
        if self.kind == "sr":
            if h % self.factor or w % self.factor:
                raise ValueError(
                    f"{self}: the image's height and width must be divisible by "
                    f"{self.factor}, got {h}x{w}"
                )
            return h // self.factor, w // self.factor, c
        if self.kind == "inpaint":
            return h, w, c + 1
        if self.kind == "colorize":
            if c != 3:
                raise ValueError(
                    f"colorize needs an RGB image (3 channels), got {c} channel(s); "
                    "a grey dataset has no colour to predict"
                )
            return h, w, 1
        if self.kind == "edges":
            if c not in (1, 3):
                raise ValueError(f"edges needs a 1- or 3-channel image, got {c} channels")
            return h, w, 1
        return h, w, c


def _check_hole(hole) -> None:
    ok = (
        isinstance(hole, tuple)
        and len(hole) == 2
        and all(isinstance(v, float) and math.isfinite(v) for v in hole)
        and 0 <= hole[0] < hole[1] <= 1
    )
    if not ok:
        raise ValueError(
            f"inpaint hole area range must be two floats 0 <= LO < HI <= 1, got {hole!r}"
        )


def _hole_range(hole) -> tuple[float, float]:
    with contextlib.suppress(TypeError, ValueError):  # not numbers: _check_hole says so
        hole = tuple(float(v) for v in hole)
    _check_hole(hole)
    return hole


def parse_task(spec: str | Task) -> Task:
    """``'sr4'``, ``'inpaint:box'``, ``'edges:canny'``, ``'denoise:0.1'``, ... -> a Task.

    Forms: ``srN`` (N in 2..8); ``inpaint`` with optional ``:box``, ``:stroke`` or ``:mixed``
    (default) and then ``:LO-HI`` (hole area fractions, default ``0.01-0.6``); ``colorize``;
    ``edges`` with optional ``:sobel`` or ``:canny`` (default); ``denoise`` with optional
    ``:SIGMA`` (default 0.2, in [-1, 1] units). Case and surrounding spaces are ignored.
    Anything else is a ValueError that lists these forms. A Task is returned as it is.
    """
    if isinstance(spec, Task):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"a task is a string ({_FORMS}), got {type(spec).__name__}")
    text = spec.strip().lower()
    parts = text.split(":")
    name, args = parts[0], parts[1:]

    def bad(why: str = "") -> ValueError:
        return ValueError(f"bad task {spec!r}{': ' + why if why else ''}; allowed forms: {_FORMS}")

    sr = re.fullmatch(r"sr(\d+)", name)
    if sr:
        factor = int(sr.group(1))
        if args or factor not in SR_FACTORS:
            raise bad("the super-resolution factor must be 2..8, written srN")
        return Task("sr", factor=factor)
    if name == "inpaint":
        if len(args) > 2:
            raise bad()
        masks = args[0] if args else "mixed"
        if masks not in MASKS:
            raise bad(f"masks must be one of {', '.join(MASKS)}")
        hole = DEFAULT_HOLE
        if len(args) == 2:
            m = _RANGE.fullmatch(args[1])
            if not m:
                raise bad("the hole area range is LO-HI, e.g. 0.1-0.3")
            hole = (float(m.group(1)), float(m.group(2)))
            if not 0 <= hole[0] < hole[1] <= 1:
                raise bad("the hole area range needs 0 <= LO < HI <= 1")
        return Task("inpaint", masks=masks, hole=hole)
    if name == "colorize":
        if args:
            raise bad("colorize takes no option")
        return Task("colorize")
    if name == "edges":
        if len(args) > 1 or (args and args[0] not in DETECTORS):
            raise bad(f"the edge detector is one of {', '.join(DETECTORS)}")
        return Task("edges", detector=args[0] if args else "canny")
    if name == "denoise":
        if len(args) > 1:
            raise bad()
        sigma = DEFAULT_SIGMA
        if args:
            if not re.fullmatch(_NUMBER, args[0]):
                raise bad("the noise sigma is a number, e.g. denoise:0.1")
            sigma = float(args[0])
            if not 0 < sigma <= 2:
                raise bad("the noise sigma must be in (0, 2] ([-1, 1] units)")
        return Task("denoise", sigma=sigma)
    raise bad()


# --- the degradations ---------------------------------------------------------------------


def _as_image(image) -> np.ndarray:
    x = np.asarray(image)
    if x.ndim != 3:
        raise ValueError(f"expected one image [H, W, C], got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"expected a float image in [-1, 1], got dtype {x.dtype} (uint8: x / 127.5 - 1)"
        )
    x = x.astype(np.float32, copy=False)
    if x.size and not (np.isfinite(x).all() and x.min() >= -1.001 and x.max() <= 1.001):
        raise ValueError(
            f"expected image values in [-1, 1], got [{float(np.nanmin(x))}, {float(np.nanmax(x))}]"
        )
    return x


def _check_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(_check_int("seed", seed))


def degrade(task: str | Task, image, seed: int = 0) -> dict[str, np.ndarray]:
    """One image float32 [H, W, C] in [-1, 1] -> ``{'input', 'target'}`` (+ ``'mask'`` for inpaint).

    ``target`` is the image (float32); ``input`` is the task's model input, float32 of shape
    ``task.input_shape(image.shape)``; ``mask`` (inpaint only) is float32 [H, W, 1], 1 = hole.
    Deterministic in ``(task, image, seed)``; see the module doc for each task.
    """
    task = parse_task(task)
    _check_int("seed", seed)
    x = _as_image(image)
    task.input_shape(x.shape)  # the task's shape errors, before any work
    out = {"target": x}
    if task.kind == "sr":
        out["input"] = downscale(x, task.factor)
    elif task.kind == "inpaint":
        mask = inpaint_mask(task, x.shape[0], x.shape[1], seed)[..., None]
        out["input"] = np.concatenate([x * (1.0 - mask), mask], axis=-1)
        out["mask"] = mask
    elif task.kind == "colorize":
        out["input"] = luma(x)[..., None]
    elif task.kind == "edges":
        grey = (luma(x) + 1.0) * 0.5
        e = canny(grey) if task.detector == "canny" else sobel_edges(grey)
        out["input"] = (2.0 * e.astype(np.float32) - 1.0)[..., None]
    else:
        noise = _rng(seed).standard_normal(x.shape, dtype=np.float32) * np.float32(task.sigma)
        out["input"] = np.clip(x + noise, -1.0, 1.0)
    return out


def degrade_batch(task: str | Task, images, seeds: Sequence[int]) -> dict[str, np.ndarray]:
    """:func:`degrade` on each image of [N, H, W, C] with its seed; the results stacked."""
    task = parse_task(task)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected a batch [N, H, W, C], got shape {images.shape}")
    seeds = list(seeds)
    if len(seeds) != len(images):
        raise ValueError(f"{len(images)} images but {len(seeds)} seeds; one seed per image")
    if not len(images):
        raise ValueError("an empty batch")
    results = [degrade(task, im, s) for im, s in zip(images, seeds)]
    return {k: np.stack([r[k] for r in results]) for k in results[0]}


# --- super-resolution -----------------------------------------------------------------------


def _resize_channels(x: np.ndarray, size_hw: tuple[int, int], resample) -> np.ndarray:
    h, w = size_hw
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c])).resize((w, h), resample))
        for c in range(x.shape[-1])
    ]
    return np.stack(chans, axis=-1).astype(np.float32, copy=False)


def downscale(image, factor: int) -> np.ndarray:
    """[H, W, C] float -> [H/f, W/f, C]: bicubic (Keys, a = -0.5) with antialiasing.

    PIL's ``resize(..., BICUBIC)`` on each channel as a 32-bit float image: its kernel is
    stretched by the factor when reducing (support ``2 * factor`` input pixels each side), so
    it low-passes before sampling; taps outside the image are dropped and the weights
    renormalised. No ``reducing_gap`` shortcut. Not clipped: bicubic may overshoot [-1, 1]
    slightly near sharp edges, as the uint8 benchmarks' rounding to 0..255 would clip.
    """
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected one image [H, W, C], got shape {x.shape}")
    h, w = x.shape[:2]
    if h % factor or w % factor:
        raise ValueError(
            f"sr{factor}: the image's height and width must be divisible by {factor}, got {h}x{w}"
        )
    return _resize_channels(x, (h // factor, w // factor), Image.Resampling.BICUBIC)


# --- inpainting masks -----------------------------------------------------------------------


def inpaint_mask(task: str | Task, height: int, width: int, seed: int) -> np.ndarray:
    """The task's hole mask for an image of height x width: float32 [H, W], 1 = hole."""
    task = parse_task(task)
    if task.kind != "inpaint":
        raise ValueError(f"{task} is not an inpainting task")
    rng = _rng(seed)
    masks = task.masks
    if masks == "mixed":
        masks = "box" if rng.random() < 0.5 else "stroke"
    if masks == "box":
        return box_mask(height, width, rng, task.hole)
    return stroke_mask(height, width, rng, task.hole)


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"a mask needs a positive size, got {height}x{width}")


def box_mask(
    height: int, width: int, rng: np.random.Generator, hole: tuple[float, float] = DEFAULT_HOLE
) -> np.ndarray:
    """One random axis-aligned rectangle: float32 [H, W], 1 = hole.

    Its area fraction is drawn uniformly in ``hole = (LO, HI)`` and its aspect ratio
    log-uniformly in [1/3, 3]; the integer sides are then chosen so that the area stays in
    ``[LO, HI]`` (whenever the pixel grid allows it; at least one pixel), and the position is
    uniform over the places it fits.
    """
    _check_size(height, width)
    lo, hi = _hole_range(hole)
    total = height * width
    target = rng.uniform(lo, hi)
    aspect = math.exp(rng.uniform(-math.log(3.0), math.log(3.0)))  # height / width
    min_h = max(1, math.ceil(lo * height - 1e-9))  # below it even a full-width box is < LO
    bh = min(height, max(min_h, round(math.sqrt(target * total * aspect))))
    w_lo = max(1, math.ceil(lo * total / bh - 1e-9))
    w_hi = min(width, math.floor(hi * total / bh + 1e-9))
    bw = round(target * total / bh)
    bw = min(max(bw, w_lo), w_hi) if w_lo <= w_hi else min(max(bw, 1), width)
    top = int(rng.integers(0, height - bh + 1))
    left = int(rng.integers(0, width - bw + 1))
    mask = np.zeros((height, width), np.float32)
    mask[top : top + bh, left : left + bw] = 1.0
    return mask


def _stroke(height: int, width: int, rng: np.random.Generator, thin: float = 1.0) -> np.ndarray:
    """One DeepFill v2 brush stroke: bool [H, W], one 8-connected piece.

    A polyline of 4..11 segments from a uniform start, the turning angles alternating around
    2 pi / 5 (+- up to 2 pi / 15), segment lengths ~ N(r, r / 2) clipped to [0, 2 r] with
    r = diagonal / 8, drawn with one width (12..40 px at 256 px, scaled with the image) as a
    PIL line with a disc at every vertex so the joints are round. ``thin`` (<= 1) scales the
    width and the segment lengths down.
    """
    radius = math.hypot(height, width) / 8 * thin
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    n = int(rng.integers(*STROKE_VERTICES))
    a_min = STROKE_MEAN_ANGLE - rng.uniform(0, STROKE_ANGLE_RANGE)
    a_max = STROKE_MEAN_ANGLE + rng.uniform(0, STROKE_ANGLE_RANGE)
    angles = [
        (2 * math.pi - rng.uniform(a_min, a_max)) if i % 2 == 0 else rng.uniform(a_min, a_max)
        for i in range(n)
    ]
    vertices = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
    for angle in angles:
        r = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
        x = min(max(vertices[-1][0] + r * math.cos(angle), 0), width - 1)
        y = min(max(vertices[-1][1] + r * math.sin(angle), 0), height - 1)
        vertices.append((int(x), int(y)))
    scale = min(height, width) / 256
    lw = max(1, int(rng.uniform(*STROKE_WIDTH_256) * scale * thin))
    draw.line(vertices, fill=1, width=lw)
    half = lw // 2
    for vx, vy in vertices:
        draw.ellipse((vx - half, vy - half, vx + half, vy + half), fill=1)
    return np.asarray(canvas, dtype=bool)


def stroke_mask(
    height: int, width: int, rng: np.random.Generator, hole: tuple[float, float] = DEFAULT_HOLE
) -> np.ndarray:
    """Free-form brush strokes (DeepFill v2's generator): float32 [H, W], 1 = hole.

    A target area fraction is drawn uniformly in ``hole = (LO, HI)``; strokes
    (:func:`_stroke`) are added until the hole reaches it. A stroke that would take the hole
    past HI is dropped and the next ones are drawn thinner and shorter (x 0.7 each time), so
    the area ends in ``[LO, HI]`` unless the pixel grid is too coarse for the range (then it
    stops after 200 strokes below LO; one random pixel if no stroke fitted at all). Each
    stroke is one connected piece.
    """
    _check_size(height, width)
    lo, hi = _hole_range(hole)
    total = height * width
    target = max(rng.uniform(lo, hi), 1.0 / total)
    mask = np.zeros((height, width), bool)
    count = 0
    thin = 1.0
    for _ in range(STROKE_ATTEMPTS):
        stroke = _stroke(height, width, rng, thin)
        grown = mask | stroke
        grown_count = int(grown.sum())
        if grown_count > hi * total:
            thin *= 0.7
            continue
        mask, count = grown, grown_count
        if count >= target * total:
            break
    if count == 0:
        mask[int(rng.integers(0, height)), int(rng.integers(0, width))] = True
    return mask.astype(np.float32)


def mask_bucket(mask) -> str:
    """The hole-area bucket of a mask (1 = hole; any shape): ``'0-10%'`` ... ``'50-60%'``.

    The six ranges of Liu et al. 2018's irregular-mask test set (hole-to-image area ratio in
    (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]), by which DeepFill/LaMa-style papers report
    inpainting scores. A bucket holds its upper bound: exactly 10% is ``'0-10%'``. An area of
    at most 10% (an empty mask too) is ``'0-10%'``; above 60% is ``'60-100%'``. Computed on
    the pixel count (``mask > 0.5``) in integers, so the bounds are exact.
    """
    m = np.asarray(mask)
    if m.size == 0:
        raise ValueError("an empty mask array")
    holes = int(np.count_nonzero(m > 0.5))
    total = m.size
    k = max(1, -(-holes * 10 // total))  # ceil(10 * holes / total), at least 1
    return BUCKETS[min(k, 7) - 1]


# --- colour and edges -----------------------------------------------------------------------


def luma(image) -> np.ndarray:
    """RGB [..., 3] in [-1, 1] -> ITU-R BT.601 luma [...] in [-1, 1]; 1 channel -> itself."""
    x = np.asarray(image, dtype=np.float32)
    if x.shape[-1] == 1:
        return x[..., 0]
    if x.shape[-1] != 3:
        raise ValueError(f"luma needs 1 or 3 channels, got {x.shape[-1]}")
    r, g, b = LUMA_WEIGHTS
    return (r * x[..., 0] + g * x[..., 1] + b * x[..., 2]).astype(np.float32)


def _sobel(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(grey, dtype=np.float64)
    return ndimage.sobel(g, axis=1, mode="nearest"), ndimage.sobel(g, axis=0, mode="nearest")


def sobel_magnitude(grey) -> np.ndarray:
    """The Sobel gradient magnitude of a [H, W] image ([-1, 0, 1] x [1, 2, 1], edges repeated)."""
    gx, gy = _sobel(grey)
    return np.hypot(gx, gy)


def sobel_edges(grey) -> np.ndarray:
    """Soft edges in [0, 1] of a [H, W] image on the [0, 1] scale: |Sobel| / 4, clipped."""
    return np.clip(sobel_magnitude(grey) / SOBEL_UNIT_STEP, 0.0, 1.0).astype(np.float32)


def canny(
    grey, sigma: float = CANNY_SIGMA, low: float = CANNY_LOW, high: float = CANNY_HIGH
) -> np.ndarray:
    """Canny edges of a [H, W] image: bool [H, W].

    1. Gaussian blur with ``sigma`` pixels (edges repeated); 2. Sobel gradients; 3. non-maximum
    suppression: a pixel stays if its magnitude beats its neighbour on one side along the
    gradient direction (quantised to 0, 45, 90, 135 degrees) and is at least that of the other
    side (the tie-break keeps a symmetric edge one pixel thick); 4. hysteresis: a surviving
    pixel with magnitude >= ``high`` x the image's largest magnitude is an edge, and one >=
    ``low`` x it is an edge when its 8-connected component of such pixels
    (``scipy.ndimage.label``) holds an edge. An image whose largest gradient is below 1e-6
    (a constant image; a unit step gives about 2.6 after the blur) has no edges.
    """
    if not 0 <= low <= high <= 1:
        raise ValueError(f"canny thresholds need 0 <= low <= high <= 1, got {low}, {high}")
    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"canny needs a [H, W] image, got shape {g.shape}")
    if sigma > 0:
        g = ndimage.gaussian_filter(g, sigma, mode="nearest")
    gx, gy = _sobel(g)
    mag = np.hypot(gx, gy)
    top = mag.max() if mag.size else 0.0
    if top < 1e-6:  # flat (up to float rounding): no edges, rather than amplified noise
        return np.zeros(g.shape, bool)
    # Relative to the largest, rounded to 1e-9 so that the float noise of a symmetric edge's
    # two equal sides becomes an exact tie, which the tie-break below resolves consistently.
    mag = np.round(mag / top, 9)
    # Direction of the gradient, in [0, 180), quantised to 4 bins.
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0
    bins = (np.round(angle / 45.0).astype(int)) % 4
    padded = np.pad(mag, 1, mode="constant")
    h, w = mag.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    # Neighbour offsets (dy, dx) along each direction: 0 deg = along x, 90 deg = along y,
    # 45 deg = gradient with gx, gy of the same sign (down-right in array coordinates).
    steps = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    keep = np.zeros(mag.shape, bool)
    for b, (dy, dx) in steps.items():
        ahead, behind = shifted(dy, dx), shifted(-dy, -dx)
        keep |= (bins == b) & (mag > behind) & (mag >= ahead)
    weak = keep & (mag >= low)
    strong = keep & (mag >= high)
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3), bool))
    good = np.unique(labels[strong])
    good = good[good > 0]
    return np.isin(labels, good)


# --- splits and seeds -----------------------------------------------------------------------


def _key_bytes(key) -> bytes:
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"a key is a string (or an integer index), got {key!r}")
    if isinstance(key, (int, np.integer)):
        key = str(int(key))
    if not isinstance(key, str):
        raise ValueError(f"a key is a string (or an integer index), got {type(key).__name__}")
    return key.encode("utf-8")


def _check_fractions(fractions) -> tuple[float, float, float]:
    f = tuple(float(v) for v in fractions)
    if len(f) != 3 or any(not math.isfinite(v) or v < 0 for v in f) or abs(sum(f) - 1) > 1e-9:
        raise ValueError(
            f"split fractions are 3 non-negative numbers (train, validation, test) summing "
            f"to 1, got {tuple(fractions)}"
        )
    return f


def split_of(key, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """``'train'``, ``'validation'`` or ``'test'`` for an example, from its key alone.

    ``u`` = the first 8 bytes of ``sha256(key.encode('utf-8'))`` as a big-endian integer,
    over 2**64 (uniform in [0, 1)); ``u < f_train`` is train, ``u < f_train + f_validation``
    validation, the rest test. An integer key is its decimal string. The same key always gets
    the same split, on any machine and in any order; a key's split changes only if the
    fractions do.
    """
    train, val, _ = _check_fractions(fractions)
    u = int.from_bytes(hashlib.sha256(_key_bytes(key)).digest()[:8], "big")
    # Exact: Python compares an int with a float without rounding either.
    if u < train * 2.0**64:
        return "train"
    if u < (train + val) * 2.0**64:
        return "validation"
    return "test"


def split_keys(keys: Iterable, split: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list:
    """The keys of ``keys`` in ``split`` (per :func:`split_of`), in their input order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    fractions = _check_fractions(fractions)
    return [k for k in keys if split_of(k, fractions) == split]


def relative_key(path: str, root: str) -> str:
    """A file's split/seed key: its path relative to ``root`` with ``/`` separators.

    The same on every OS and wherever the folder is mounted.
    """
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel == os.curdir or rel.split(os.sep)[0] == os.pardir:
        raise ValueError(f"{path!r} is not inside {root!r}")
    return "/".join(rel.split(os.sep))


def example_seed(base_seed: int, key, epoch: int | None = None) -> int:
    """A per-example seed in [0, 2**63) from ``(base_seed, key)``, or ``(base_seed, epoch, key)``.

    SHA-256 of ``'gan_jax.tasks:{base_seed}:{key}'`` (with ``:{epoch}`` after the seed when
    given), first 8 bytes, top bit cleared. Without ``epoch`` an example gets the same mask or
    noise in every pass, whatever the order or batch: use that for validation and test. With
    ``epoch``, training examples get a fresh degradation each epoch, still reproducible (and
    so exactly resumable) from the epoch number. The hash differs from :func:`split_of`'s, so
    seeds and splits are unrelated.
    """
    head = f"gan_jax.tasks:{_check_int('base_seed', base_seed)}"
    if epoch is not None:
        head += f":{_check_int('epoch', epoch)}"
    digest = hashlib.sha256(head.encode("utf-8") + b":" + _key_bytes(key)).digest()
    return int.from_bytes(digest[:8], "big") >> 1
