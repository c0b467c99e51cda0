"""Adaptive augmentation probability, the heuristic of ADA (Karras et al. 2020).

The overfitting signal is r_t = E[sign(D(real))]: near 0 while the discriminator still
generalises, near 1 once it has memorised the real images. Every adjustment moves p by a fixed
step towards keeping r_t at a target (0.6), sized so that p can go from 0 to 1 within
`speed_images` real images.

The state is a small dict pytree of float32 scalars, so it can live in the train state, be
checkpointed, and be updated inside a jitted step:
  {'p': current probability, 'sign_sum': sum of sign(D(real)), 'count': logits summed}
The engine calls `accumulate` every step and `adjust` every N steps, with
images_per_adjust = N * batch size. With several devices, sum 'sign_sum' and 'count' over
them (e.g. `jax.lax.psum`) before `adjust`, so every replica moves p the same way.
"""

import jax.numpy as jnp


def _check_probability(p):
    if isinstance(p, (int, float)) and not 0.0 <= p <= 1.0:
        raise ValueError(f"augmentation probability p must be in [0, 1], got {p!r}")


def init_state(p=0.0) -> dict:
    """A fresh state with probability p and empty accumulators.

    Args:
      p: the starting probability, in [0, 1] (ADA starts at 0).

    Returns:
      {'p', 'sign_sum', 'count'}, float32 scalars.

    Raises:
      ValueError: a Python p outside [0, 1].
    """
    _check_probability(p)
    return {
        "p": jnp.asarray(p, jnp.float32),
        "sign_sum": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
    }


def accumulate(state: dict, real_logits) -> dict:
    """Adds a batch of discriminator logits on real images to the accumulators.

    Args:
      state: from `init_state`, `accumulate` or `adjust`.
      real_logits: D's raw logits on real images, any shape (usually [B]); their sign is
        what counts, so sigmoid outputs must not be passed.

    Returns:
      The state with sign_sum += sum(sign(real_logits)) and count += their number.
    """
    logits = jnp.asarray(real_logits, jnp.float32)
    return {
        **state,
        "sign_sum": state["sign_sum"] + jnp.sign(logits).sum(),
        "count": state["count"] + jnp.float32(logits.size),
    }


def rt(state: dict):
    """The overfitting heuristic r_t = mean(sign(D(real))) since the last adjustment.

    Args:
      state: an augmentation state.

    Returns:
      A float32 scalar in [-1, 1]; NaN when nothing has been accumulated.
    """
    count = state["count"]
    return jnp.where(count > 0, state["sign_sum"] / jnp.maximum(count, 1.0), jnp.nan)


def adjust(state: dict, *, target=0.6, images_per_adjust, speed_images=500_000) -> dict:
    """Moves p one step towards keeping r_t at target, then empties the accumulators.

    p += sign(r_t - target) * images_per_adjust / speed_images, clipped to [0, 1]. With
    nothing accumulated (count == 0) p stays as it is; r_t == target also leaves it.

    Args:
      state: an augmentation state.
      target: the r_t to hold (ADA: 0.6).
      images_per_adjust: real images shown between two adjustments (steps * batch size).
      speed_images: images over which p may move from 0 to 1 (ADA: 500k).

    Returns:
      The new state, with sign_sum and count reset to 0.

    Raises:
      ValueError: a Python images_per_adjust or speed_images that is not > 0.
    """
    for name, value in (("images_per_adjust", images_per_adjust), ("speed_images", speed_images)):
        if isinstance(value, (int, float)) and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    count = state["count"]
    r = state["sign_sum"] / jnp.maximum(count, 1.0)
    step = jnp.sign(r - target) * (jnp.float32(images_per_adjust) / jnp.float32(speed_images))
    p = jnp.where(count > 0, jnp.clip(state["p"] + step, 0.0, 1.0), state["p"])
    return {
        **state,
        "p": p.astype(jnp.float32),
        "sign_sum": jnp.zeros_like(state["sign_sum"]),
        "count": jnp.zeros_like(state["count"]),
    }
