"""upfirdn2d: upsample, FIR-filter, downsample NHWC images, as StyleGAN2 resamples.

`upfirdn2d(x, f, up, down, padding, gain)` does, per spatial axis:
  1. upsample by `up`: each input sample is followed by `up - 1` zeros;
  2. pad by (before, after) zeros (negative values crop);
  3. convolve (a true convolution, not a correlation) with the filter;
  4. keep every `down`-th sample, starting with the first.

Filters are separable: one 1-D tap list used on both axes, normalised to sum 1 and scaled by
sqrt(gain) per axis (so the 2-D filter sums to `gain`). The [1, 3, 3, 1] filter of StyleGAN2
is `DEFAULT_FILTER`; upsampling by 2 uses gain 4 so that the mean intensity is kept.

The filter is applied as a sum of shifted slices (4 per axis for a 4-tap filter): exact,
cheap at these filter sizes, differentiable, and free of XLA:CPU's slow depthwise
convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_FILTER = (1.0, 3.0, 3.0, 1.0)


def setup_filter(taps: Sequence[float] = DEFAULT_FILTER, *, gain: float = 1.0) -> tuple:
    """The 1-D taps of a separable filter, normalised to sum 1, times sqrt(gain).

    Args:
      taps: the unnormalised taps (e.g. [1, 3, 3, 1]).
      gain: the 2-D filter's sum (4 for 2x upsampling: each output pixel sees a quarter of
        the non-zero inputs).

    Returns:
      A tuple of Python floats (static: the filter is part of the compiled program).
    """
    f = np.asarray(taps, np.float64)
    if f.ndim != 1 or f.size == 0 or not np.isfinite(f).all() or f.sum() == 0:
        raise ValueError(
            f"a filter is a non-empty 1-D list of finite taps with a non-zero sum, got {taps}"
        )
    f = f / f.sum() * np.sqrt(gain)
    return tuple(float(v) for v in f)


def _pad_axis(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
    if before < 0:
        x = jax.lax.slice_in_dim(x, -before, x.shape[axis], axis=axis)
        before = 0
    if after < 0:
        x = jax.lax.slice_in_dim(x, 0, x.shape[axis] + after, axis=axis)
        after = 0
    if before or after:
        pads = [(0, 0)] * x.ndim
        pads[axis] = (before, after)
        x = jnp.pad(x, pads)
    return x


def _upfirdn_axis(x, taps, axis, up, down, before, after):
    if up > 1:
        shape = list(x.shape)
        x = jnp.expand_dims(x, axis + 1)
        pads = [(0, 0)] * x.ndim
        pads[axis + 1] = (0, up - 1)
        x = jnp.pad(x, pads)
        shape[axis] *= up
        x = x.reshape(shape)
    x = _pad_axis(x, axis, before, after)
    k = len(taps)
    n = x.shape[axis] - k + 1
    if n <= 0:
        raise ValueError(f"upfirdn2d: {x.shape[axis]} padded samples are fewer than {k} taps")
    # A convolution: output i sums x[i + j] * taps[k - 1 - j].
    y = None
    for j, t in enumerate(reversed(taps)):
        if t == 0.0:
            continue
        term = jax.lax.slice_in_dim(x, j, j + n, axis=axis) * jnp.asarray(t, x.dtype)
        y = term if y is None else y + term
    if y is None:
        y = jnp.zeros_like(jax.lax.slice_in_dim(x, 0, n, axis=axis))
    if down > 1:
        y = jax.lax.slice_in_dim(y, 0, n, down, axis=axis)
    return y


def upfirdn2d(
    x: jax.Array,
    taps: Sequence[float] = DEFAULT_FILTER,
    *,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> jax.Array:
    """Upsamples, pads, filters and downsamples images (see the module docstring).

    Args:
      x: [B, H, W, C].
      taps: the separable filter's 1-D taps (normalised here).
      up: integer upsampling factor.
      down: integer downsampling factor.
      padding: (left, right, top, bottom) padding after upsampling; negative crops.
      gain: the sum of the 2-D filter.

    Returns:
      [B, H', W', C] with H' = (H * up + top + bottom - len(taps) + 1) // down (rounded up).
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [B, H, W, C], got shape {x.shape}")
    if int(up) < 1 or int(down) < 1:
        raise ValueError(f"up and down must be >= 1, got {up}, {down}")
    f = setup_filter(taps, gain=gain)
    px0, px1, py0, py1 = (int(p) for p in padding)
    x = _upfirdn_axis(x, f, 1, int(up), int(down), py0, py1)
    return _upfirdn_axis(x, f, 2, int(up), int(down), px0, px1)


def upsample2d(x: jax.Array, taps: Sequence[float] = DEFAULT_FILTER, *, up: int = 2):
    """[B, H, W, C] -> [B, up H, up W, C]: zero insertion, then the filter at gain up^2."""
    k = len(taps)
    p0 = (k + up - 1) // 2
    p1 = (k - up) // 2
    return upfirdn2d(x, taps, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: jax.Array, taps: Sequence[float] = DEFAULT_FILTER, *, down: int = 2):
    """[B, H, W, C] -> [B, H / down, W / down, C]: the filter, then every down-th pixel."""
    k = len(taps)
    p0 = (k - down + 1) // 2
    p1 = (k - down) // 2
    return upfirdn2d(x, taps, down=down, padding=(p0, p1, p0, p1))


def blur_for_strided_conv(x: jax.Array, kernel: int, taps: Sequence[float] = DEFAULT_FILTER):
    """The filter with the padding that makes a following VALID `kernel`-sized stride-2
    convolution output exactly H / 2 (StyleGAN2's downsampling convolution)."""
    k = len(taps)
    p = (k - 2 + 1) // 2 + kernel // 2
    q = (k - 2) // 2 + kernel // 2
    return upfirdn2d(x, taps, padding=(p, q, p, q))
