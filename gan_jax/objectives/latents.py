"""Reproducible latents: image `i` of seed `s` always has the latent of key
`fold_in(PRNGKey(s), i)`, whatever the number of images or the batch size.

Shared by sampling, evaluation during training and the studio, so a seed means the same
image everywhere.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import SamplingError


@functools.partial(jax.jit, static_argnames=("z_dim", "truncation"))
def _latents(seed, indices, *, z_dim: int, truncation: float | None):
    base = jax.random.PRNGKey(seed)

    def one(i):
        key = jax.random.fold_in(base, i)
        if truncation is None:
            return jax.random.normal(key, (z_dim,), jnp.float32)
        return jax.random.truncated_normal(key, -truncation, truncation, (z_dim,), jnp.float32)

    return jax.vmap(one)(indices)


def latents(
    z_dim: int, num: int, *, seed: int = 0, truncation: float | None = None, start: int = 0
) -> np.ndarray:
    """Gaussian latents z[i] = N(0, I) from key fold_in(PRNGKey(seed), start + i).

    Args:
      z_dim: latent size.
      num: how many.
      seed: the seed; the same seed gives the same latents.
      truncation: the truncation trick: components with |z| > truncation are redrawn
        (a normal truncated to [-t, t]); lower is more typical images, less variety.
        None draws the plain normal.
      start: index of the first latent (for batches of a long run).

    Returns:
      float32 [num, z_dim].
    """
    if truncation is not None and not truncation > 0:
        raise SamplingError(f"truncation must be > 0, got {truncation}")
    indices = jnp.arange(start, start + num, dtype=jnp.uint32)
    return np.asarray(_latents(int(seed), indices, z_dim=z_dim, truncation=truncation))
