"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) as batched JAX ops.

The discriminator sees real and generated images through the same random, differentiable
transforms, so it cannot memorise a small training set and the generator still gets
gradients through them. Images are NHWC floats in [-1, 1]; every random parameter is drawn
per sample from a `jax.random` key, so a key fixes the output.

Ranges follow the paper's reference implementation:
  brightness  x + b,                  b ~ U(-0.5, 0.5)
  saturation  (x - m_px) * s + m_px,  s ~ U(0, 2),     m_px: the pixel's mean over channels
  contrast    (x - m_im) * c + m_im,  c ~ U(0.5, 1.5), m_im: the image's mean
  translation integer shift by up to round(side / 8) pixels per axis, zero padding
  cutout      a zeroed rectangle of round(side / 2) per axis, centred uniformly over the
              image and clipped at its borders (at least half of each side stays inside)
where round() rounds halves up, as the reference does. The policy 'color' is brightness,
saturation and contrast in that order.

With probability p < 1 (ADA's adaptive p), each elementary op above is applied to each sample
independently with probability p; a sample it skips is passed through bit for bit.
"""

import jax
import jax.numpy as jnp

POLICIES = ("color", "translation", "cutout")
# Each policy name stands for these elementary ops, applied in this order.
POLICY_OPS = {
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("translation",),
    "cutout": ("cutout",),
}
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def parse_policy(policy: str) -> tuple[str, ...]:
    """Splits a comma-separated policy string into policy names.

    Args:
      policy: e.g. 'color,translation,cutout'; '' means no augmentation. Spaces around
        names are ignored; names are applied in the order given.

    Returns:
      The names, a tuple (empty for '').

    Raises:
      ValueError: an unknown, empty or repeated name; the message lists the allowed ones.
    """
    if not isinstance(policy, str):
        raise ValueError(f"augmentation policy must be a string, got {policy!r}")
    if not policy.strip():
        return ()
    names = tuple(part.strip() for part in policy.split(","))
    allowed = ", ".join(POLICIES)
    for name in names:
        if name not in POLICIES:
            raise ValueError(
                f"unknown augmentation '{name}' in policy '{policy}'; allowed: {allowed} "
                "(comma-separated, '' for none)"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"augmentation policy '{policy}' names a transform twice")
    return names


def _side(n: int, ratio: float) -> int:
    # The reference's int(n * ratio + 0.5): round halves up (28 px -> shift 4, cutout 14).
    return int(n * ratio + 0.5)


def _per_sample(values, images):
    # [B] -> [B, 1, 1, 1] in the images' dtype, to broadcast over H, W, C.
    return values.astype(images.dtype)[:, None, None, None]


def brightness(images, key):
    """Adds one U(-0.5, 0.5) offset per sample.

    Args:
      images: [B, H, W, C] floats.
      key: a `jax.random` key.

    Returns:
      Images of the same shape and dtype.
    """
    b = jax.random.uniform(key, (images.shape[0],)) - 0.5
    return images + _per_sample(b, images)


def saturation(images, key):
    """Scales each pixel's colour around its channel mean by one U(0, 2) factor per sample.

    One channel has no colour to scale: the op is then the identity (x - mean is exactly 0).

    Args:
      images: [B, H, W, C] floats.
      key: a `jax.random` key.

    Returns:
      Images of the same shape and dtype.
    """
    s = jax.random.uniform(key, (images.shape[0],)) * 2.0
    mean = images.mean(axis=3, keepdims=True)
    return (images - mean) * _per_sample(s, images) + mean


def contrast(images, key):
    """Scales each image around its mean (over H, W, C) by one U(0.5, 1.5) factor per sample.

    Args:
      images: [B, H, W, C] floats.
      key: a `jax.random` key.

    Returns:
      Images of the same shape and dtype.
    """
    c = jax.random.uniform(key, (images.shape[0],)) + 0.5
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    return (images - mean) * _per_sample(c, images) + mean


def translation(images, key):
    """Shifts each sample by whole pixels, up to round(side / 8) per axis, filling with 0.

    Output pixel (i, j) is input pixel (i - dy, j - dx), or 0 where that lies outside: the
    content moves by (+dy, +dx), with dy, dx uniform integers in [-shift, shift].

    Args:
      images: [B, H, W, C] floats.
      key: a `jax.random` key.

    Returns:
      Images of the same shape and dtype.
    """
    n, h, w, c = images.shape
    sh, sw = _side(h, TRANSLATION_RATIO), _side(w, TRANSLATION_RATIO)
    key_y, key_x = jax.random.split(key)
    dy = jax.random.randint(key_y, (n,), -sh, sh + 1)
    dx = jax.random.randint(key_x, (n,), -sw, sw + 1)
    padded = jnp.pad(images, ((0, 0), (sh, sh), (sw, sw), (0, 0)))

    # A window of the padded image per sample: a gather, differentiable (its transpose
    # scatters the gradient back) and static in shape, so it jits for any shift.
    def window(image, top, left):
        return jax.lax.dynamic_slice(image, (top, left, 0), (h, w, c))

    return jax.vmap(window)(padded, sh - dy, sw - dx)


def cutout(images, key):
    """Zeroes one rectangle of round(side / 2) per axis per sample, clipped at the borders.

    The rectangle's centre is uniform over the pixel positions (over the pixel corners, both
    borders included, for an even size), as in the reference: at least half of each side
    stays inside the image.

    Args:
      images: [B, H, W, C] floats.
      key: a `jax.random` key.

    Returns:
      Images of the same shape and dtype.
    """
    n, h, w, _ = images.shape
    ch, cw = _side(h, CUTOUT_RATIO), _side(w, CUTOUT_RATIO)
    key_y, key_x = jax.random.split(key)
    # First row/column of the rectangle; may be negative or run past the far border.
    top = jax.random.randint(key_y, (n,), 0, h + 1 - ch % 2) - ch // 2
    left = jax.random.randint(key_x, (n,), 0, w + 1 - cw % 2) - cw // 2
    rows, cols = jnp.arange(h), jnp.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + ch)  # [B, H]
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + cw)  # [B, W]
    hole = in_rows[:, :, None, None] & in_cols[:, None, :, None]  # [B, H, W, 1]
    return jnp.where(hole, jnp.zeros((), images.dtype), images)


OPS = {
    "brightness": brightness,
    "saturation": saturation,
    "contrast": contrast,
    "translation": translation,
    "cutout": cutout,
}


def policy_ops(policy) -> tuple[str, ...]:
    """The elementary ops a policy applies, in order.

    Args:
      policy: a policy string (see `parse_policy`) or a tuple of policy names.

    Returns:
      Op names, keys of `OPS`.
    """
    names = parse_policy(policy) if isinstance(policy, str) else tuple(policy)
    for name in names:
        if name not in POLICY_OPS:
            parse_policy(name)  # raises with the allowed names
    return tuple(op for name in names for op in POLICY_OPS[name])


def augment(images, key, *, policy, p=1.0):
    """Applies a DiffAugment policy, each op to each sample with probability p.

    Args:
      images: [B, H, W, C] floats in [-1, 1] (any C; saturation is the identity for C = 1).
      key: a `jax.random` key; the same key gives the same output.
      policy: a policy string such as 'color,translation,cutout' ('' for none) or a tuple
        of policy names. Static: it decides which ops are traced.
      p: probability in [0, 1] of applying each op to each sample, drawn independently per
        op and per sample; a Python number or a (possibly traced) scalar array, e.g. the
        adaptive p of `gan_jax.augment.adaptive`. p = 1 is the paper's DiffAugment; p = 0
        returns the images unchanged.

    Returns:
      Augmented images, same shape and dtype; differentiable with respect to `images`.

    Raises:
      ValueError: a bad policy, images that are not 4-D, or a Python p outside [0, 1].
    """
    ops = policy_ops(policy)
    if images.ndim != 4:
        raise ValueError(f"augment expects NHWC images, got shape {images.shape}")
    if isinstance(p, (int, float)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augmentation probability p must be in [0, 1], got {p!r}")
        if p == 0.0:
            return images  # nothing to draw or trace
    if not ops:
        return images
    always = isinstance(p, (int, float)) and p == 1.0
    n = images.shape[0]
    for op_name, op_key in zip(ops, jax.random.split(key, len(ops))):
        gate_key, param_key = jax.random.split(op_key)
        augmented = OPS[op_name](images, param_key)
        if always:
            images = augmented
        else:
            # u ~ U[0, 1) < p: never for p = 0, always for p = 1, and a skipped sample keeps
            # its exact values (a where, not an identity parameter that rounds).
            apply = jax.random.uniform(gate_key, (n,)) < p
            images = jnp.where(apply[:, None, None, None], augmented, images)
    return images
