"""Paths through latent space: spherical and linear interpolation, looping walks.

A Gaussian latent in high dimension lies near the sphere of radius sqrt(z_dim); the straight
line between two such points passes through lower-norm latents the generator rarely saw in
training, which look washed out. Spherical interpolation (slerp) follows the arc instead and
keeps the norm, so it is the default for Gaussian z.
"""

from __future__ import annotations

import numpy as np

METHODS = ("slerp", "lerp")


def lerp(a, b, t) -> np.ndarray:
    """Linear interpolation (1 - t) a + t b.

    Args:
      a, b: [..., D] end points.
      t: scalar or [...] fractions in [0, 1], broadcast against a's leading axes.

    Returns:
      float32 [..., D].
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    t = np.asarray(t, np.float32)[..., None]
    return ((1.0 - t) * a + t * b).astype(np.float32)


def slerp(a, b, t, *, eps: float = 1e-6) -> np.ndarray:
    """Spherical interpolation along the great arc from `a` to `b` (norms blend linearly).

    Args:
      a, b: [..., D] end points.
      t: scalar or [...] fractions in [0, 1].
      eps: below this angle (radians) it falls back to `lerp`, which is then exact enough.

    Returns:
      float32 [..., D]; t=0 gives a and t=1 gives b.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[..., None]
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    so = np.sin(omega)
    small = so < eps
    safe = np.where(small, 1.0, so)
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    wb = np.where(small, t, np.sin(t * omega) / safe)
    return (wa * a + wb * b).astype(np.float32)


def path(keys, frames: int, *, method: str = "slerp", loop: bool = False) -> np.ndarray:
    """`frames` latents visiting `keys` in order at a constant pace per segment.

    Args:
      keys: [K, ..., D] key points (K >= 2; extra middle axes are parallel paths).
      frames: number of latents to return (>= 2).
      method: 'slerp' or 'lerp'.
      loop: go back from the last key to the first, and leave out the closing frame, so the
        sequence repeats seamlessly (a looping GIF or video).

    Returns:
      float32 [frames, ..., D]; without `loop` the first frame is keys[0] and the last
      keys[-1].
    """
    if method not in METHODS:
        raise ValueError(f"interpolation method must be one of {METHODS}, got {method!r}")
    keys = np.asarray(keys, np.float32)
    if keys.shape[0] < 2:
        raise ValueError(f"interpolation needs at least 2 key points, got {keys.shape[0]}")
    if frames < 2:
        raise ValueError(f"interpolation needs at least 2 frames, got {frames}")
    if loop:
        keys = np.concatenate([keys, keys[:1]])
        pos = np.linspace(0.0, keys.shape[0] - 1, frames, endpoint=False)
    else:
        pos = np.linspace(0.0, keys.shape[0] - 1, frames)
    seg = np.minimum(pos.astype(np.int64), keys.shape[0] - 2)
    t = (pos - seg).astype(np.float32)
    t = t.reshape(t.shape + (1,) * (keys.ndim - 2))  # broadcast over parallel paths
    t = np.broadcast_to(t, (frames,) + keys.shape[1:-1])
    fn = slerp if method == "slerp" else lerp
    return fn(keys[seg], keys[seg + 1], t)
