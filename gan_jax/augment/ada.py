"""ADA's augmentation pipeline (Karras et al. 2020) as batched, differentiable JAX ops.

Each transform is applied to each sample independently with probability p (times the
transform's multiplier in the preset), with random parameters drawn per sample from the key.
Ranges and order as in the paper (its Appendix B):

geometric, composed into one 3x3 affine matrix per sample, applied once:
  xflip      mirror x                                 (i ~ U{0, 1})
  rotate90   rotate by i * 90 degrees                 (i ~ U{0, 3})
  xint       integer translation up to 1/8 of the side, per axis (rounded to pixels)
  scale      isotropic scaling, 2^N(0, 0.2^2)
  rotate     arbitrary rotation, U(-180, 180) degrees, applied twice (before and after the
             anisotropic scaling) each with probability 1 - sqrt(1 - p)
  aniso      anisotropic scaling, x by 2^N(0, 0.2^2) and y by its inverse
  xfrac      fractional translation, N(0, 0.125^2) of the side per axis
colour, composed into one 4x4 matrix per sample acting on (r, g, b, 1):
  brightness add N(0, 0.2^2)
  contrast   scale by 2^N(0, 0.5^2)
  lumaflip   reflect about the luma axis (i ~ U{0, 1})
  hue        rotate about the luma axis by U(-180, 180) degrees
  saturation scale the component off the luma axis by 2^N(0, 1)

The affine is applied by bilinear sampling at the transformed pixel centres, with the image
extended by mirror reflection (no edge repeat) in every direction, as the paper pads. The
paper additionally supersamples (2x upsampling with a wavelet filter before resampling and
filtered downsampling after) to limit aliasing; this pipeline samples at the output
resolution directly. Flips, 90-degree rotations and integer translations land on pixel
centres, so they move pixels exactly. The paper's filter, noise and cutout groups are not
here (cutout is in DiffAugment).

Images are NHWC floats in [-1, 1] with 1 or 3 channels (grey images take the colour matrix
averaged over its output rows, as the paper does).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = GEOMETRIC + COLOUR
PRESETS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": COLOUR,
    "bg": ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"),
    "bgc": OPS,
}
XINT_MAX = 0.125
SCALE_STD = 0.2
ROTATE_MAX = 1.0  # x pi
ANISO_STD = 0.2
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
HUE_MAX = 1.0  # x pi
SATURATION_STD = 1.0
LUMA_AXIS = (1.0 / math.sqrt(3.0),) * 3


def parse_preset(name: str) -> tuple[str, ...]:
    """The ops of a preset name ('bgc', ...) or of a comma list of op and preset names.

    Raises:
      ValueError: an unknown name, listing the presets and ops.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an ADA pipeline is a preset ({', '.join(PRESETS)}) or op names")
    name = name.strip()
    if name in PRESETS:
        return PRESETS[name]
    ops = []
    for part in (p.strip() for p in name.split(",")):
        if part in PRESETS:
            ops.extend(PRESETS[part])
        elif part in OPS:
            ops.append(part)
        else:
            raise ValueError(
                f"unknown ADA op or preset '{part}'; presets: {', '.join(PRESETS)}; "
                f"ops: {', '.join(OPS)}"
            )
    return tuple(op for op in OPS if op in ops)  # always in the paper's order


# -- 3x3 (homogeneous 2-D) and 4x4 (homogeneous colour) matrices, batched -----------------


def _eye(b: int, n: int) -> jax.Array:
    return jnp.broadcast_to(jnp.eye(n, dtype=jnp.float32), (b, n, n))


def _mat3(rows) -> jax.Array:
    return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def _translate2d(tx, ty):
    o, z = jnp.ones_like(tx), jnp.zeros_like(tx)
    return _mat3([[o, z, tx], [z, o, ty], [z, z, o]])


def _scale2d(sx, sy):
    o, z = jnp.ones_like(sx), jnp.zeros_like(sx)
    return _mat3([[sx, z, z], [z, sy, z], [z, z, o]])


def _rotate2d_cs(c, s):
    o, z = jnp.ones_like(c), jnp.zeros_like(c)
    return _mat3([[c, -s, z], [s, c, z], [z, z, o]])


def _gate(key, p, b, value, identity):
    """`value` where U(0, 1) < p per sample, else `identity` (broadcast over value's axes)."""
    on = jax.random.uniform(key, (b,)) < p
    on = on.reshape((b,) + (1,) * (jnp.ndim(value) - 1))
    return jnp.where(on, value, identity)


def geometric_matrix(key, b: int, h: int, w: int, ops, p) -> jax.Array:
    """Per-sample 3x3 matrices mapping output pixel coordinates (centred) to input ones."""
    m = _eye(b, 3)
    keys = iter(jax.random.split(key, 32))
    p_rot = 1.0 - jnp.sqrt(jnp.clip(1.0 - p, 0.0, 1.0))

    def u(shape=()):
        return jax.random.uniform(next(keys), (b, *shape))

    def n(shape=()):
        return jax.random.normal(next(keys), (b, *shape))

    if "xflip" in ops:
        i = _gate(next(keys), p, b, jnp.floor(u() * 2), 0.0)
        m = m @ _scale2d(1.0 - 2.0 * i, jnp.ones_like(i))
    if "rotate90" in ops:
        i = _gate(next(keys), p, b, jnp.floor(u() * 4), 0.0).astype(jnp.int32)
        # Exact cosines and sines of multiples of 90 degrees (no rounding error).
        c = jnp.asarray([1.0, 0.0, -1.0, 0.0])[i]
        s = jnp.asarray([0.0, 1.0, 0.0, -1.0])[i]
        m = m @ _rotate2d_cs(c, -s)  # the inverse: rotate by -i * 90 degrees
    if "xint" in ops:
        t = _gate(next(keys), p, b, (u((2,)) * 2 - 1) * XINT_MAX, 0.0)
        m = m @ _translate2d(-jnp.round(t[:, 0] * w), -jnp.round(t[:, 1] * h))
    if "scale" in ops:
        s = _gate(next(keys), p, b, jnp.exp2(n() * SCALE_STD), 1.0)
        m = m @ _scale2d(1.0 / s, 1.0 / s)
    if "rotate" in ops:
        theta = _gate(next(keys), p_rot, b, (u() * 2 - 1) * math.pi * ROTATE_MAX, 0.0)
        m = m @ _rotate2d_cs(jnp.cos(-theta), jnp.sin(-theta))
    if "aniso" in ops:
        s = _gate(next(keys), p, b, jnp.exp2(n() * ANISO_STD), 1.0)
        m = m @ _scale2d(1.0 / s, s)
    if "rotate" in ops:
        theta = _gate(next(keys), p_rot, b, (u() * 2 - 1) * math.pi * ROTATE_MAX, 0.0)
        m = m @ _rotate2d_cs(jnp.cos(-theta), jnp.sin(-theta))
    if "xfrac" in ops:
        t = _gate(next(keys), p, b, n((2,)) * XFRAC_STD, 0.0)
        m = m @ _translate2d(-t[:, 0] * w, -t[:, 1] * h)
    return m


def colour_matrix(key, b: int, ops, p) -> jax.Array:
    """Per-sample 4x4 matrices acting on (r, g, b, 1)."""
    c = _eye(b, 4)
    keys = iter(jax.random.split(key, 16))
    v = jnp.asarray([*LUMA_AXIS, 0.0], jnp.float32)
    vv = jnp.outer(v, v)
    eye4 = jnp.eye(4, dtype=jnp.float32)

    def gated(value, identity):
        return _gate(next(keys), p, b, value, identity)

    if "brightness" in ops:
        bright = gated(jax.random.normal(next(keys), (b,)) * BRIGHTNESS_STD, 0.0)
        t = eye4.at[:3, 3].set(1.0)  # translate3d(b, b, b) = I + b * [0 0 0 1]-column
        c = (eye4 + (t - eye4) * bright[:, None, None]) @ c
    if "contrast" in ops:
        s = gated(jnp.exp2(jax.random.normal(next(keys), (b,)) * CONTRAST_STD), 1.0)
        scale = jnp.concatenate([jnp.broadcast_to(s[:, None], (b, 3)), jnp.ones((b, 1))], -1)
        c = jax.vmap(jnp.diag)(scale) @ c
    if "lumaflip" in ops:
        i = gated(jnp.floor(jax.random.uniform(next(keys), (b,)) * 2), 0.0)
        c = (eye4 - 2.0 * vv * i[:, None, None]) @ c
    if "hue" in ops:
        theta = gated((jax.random.uniform(next(keys), (b,)) * 2 - 1) * math.pi * HUE_MAX, 0.0)
        c = jax.vmap(lambda t: _rotate3d(v[:3], t))(theta) @ c
    if "saturation" in ops:
        s = gated(jnp.exp2(jax.random.normal(next(keys), (b,)) * SATURATION_STD), 1.0)
        # I + (s - 1)(I - vv): exactly I at s = 1.
        c = (eye4 + (eye4 - vv) * (s - 1.0)[:, None, None]) @ c
    return c


def _rotate3d(axis, theta):
    """4x4 homogeneous rotation by `theta` about the unit `axis` (Rodrigues)."""
    x, y, z = axis[0], axis[1], axis[2]
    s, c = jnp.sin(theta), jnp.cos(theta)
    cc = 1.0 - c
    r = jnp.asarray(
        [
            [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0.0],
            [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0.0],
            [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    return r


# -- applying them ----------------------------------------------------------------------


def _reflect(i, n: int):
    """Integer indices folded into [0, n) by mirror reflection without edge repeat."""
    if n == 1:
        return jnp.zeros_like(i)
    period = 2 * (n - 1)
    i = jnp.mod(i, period)
    return jnp.where(i >= n, period - i, i)


def apply_affine(images: jax.Array, matrix: jax.Array) -> jax.Array:
    """Bilinear resampling of each image at `matrix` @ (its output pixel centres).

    Coordinates are centred: pixel (row y, column x) is at (x - (W - 1) / 2, y - (H - 1) / 2).
    """
    b, h, w, ch = images.shape
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    ys, xs = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )
    grid = jnp.stack([xs - cx, ys - cy, jnp.ones_like(xs)], axis=-1).reshape(-1, 3)  # [HW, 3]
    src = jnp.einsum("bij,pj->bpi", matrix, grid)  # [B, HW, 3]
    sx, sy = src[..., 0] + cx, src[..., 1] + cy
    x0, y0 = jnp.floor(sx), jnp.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    flat = images.reshape(b, h * w, ch)

    def tap(yi, xi):
        idx = _reflect(yi, h) * w + _reflect(xi, w)
        return jnp.take_along_axis(flat, idx[..., None], axis=1)

    fx, fy = fx[..., None].astype(images.dtype), fy[..., None].astype(images.dtype)
    top = tap(y0, x0) * (1 - fx) + tap(y0, x0 + 1) * fx
    bottom = tap(y0 + 1, x0) * (1 - fx) + tap(y0 + 1, x0 + 1) * fx
    out = top * (1 - fy) + bottom * fy
    return out.reshape(b, h, w, ch)


def apply_colour(images: jax.Array, matrix: jax.Array) -> jax.Array:
    """(r, g, b) -> matrix @ (r, g, b, 1) per pixel; grey images use the rows' mean."""
    if images.shape[-1] == 3:
        lin = matrix[:, :3, :3].astype(images.dtype)
        off = matrix[:, :3, 3].astype(images.dtype)
        return jnp.einsum("bhwj,bij->bhwi", images, lin) + off[:, None, None, :]
    if images.shape[-1] == 1:
        rows = matrix[:, :3, :].mean(axis=1)  # [B, 4]
        gain = rows[:, :3].sum(axis=1).astype(images.dtype)
        return images * gain[:, None, None, None] + rows[:, 3, None, None, None].astype(
            images.dtype
        )
    raise ValueError(f"ADA's colour ops need 1 or 3 channels, got {images.shape[-1]}")


def augment(images: jax.Array, key: jax.Array, *, ops, p) -> jax.Array:
    """Applies the ADA `ops` (see `parse_preset`) with per-sample probability `p`.

    Args:
      images: [B, H, W, C] float in [-1, 1].
      key: PRNG key; the same key gives the same augmentation.
      ops: op names in the paper's order (`parse_preset`).
      p: probability (a float or a traced scalar, ADA's adaptive p).

    Returns:
      The augmented images, same shape and dtype; p = 0 returns them unchanged.
    """
    b, h, w, _ = images.shape
    g_key, c_key = jax.random.split(key)
    p = jnp.asarray(p, jnp.float32)
    geo = [op for op in ops if op in GEOMETRIC]
    col = [op for op in ops if op in COLOUR]
    if geo:
        images = apply_affine(images, geometric_matrix(g_key, b, h, w, geo, p))
    if col:
        images = apply_colour(images, colour_matrix(c_key, b, col, p))
    return images
