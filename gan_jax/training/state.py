"""The training state: one pytree that holds everything a resumed run needs.

Optimisers and model definitions are not state (they are rebuilt from the config); the
state is only arrays, so orbax saves it as it is and `jit` can donate it.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from gan_jax import models


@flax.struct.dataclass
class GANState:
    """Generator and discriminator parameters, BN statistics and optimiser states.

    Attributes:
      step: generator updates done so far (int32 scalar).
      rng: the run's base PRNG key (raw uint32[2]); step keys are `fold_in(rng, step)`.
      g_params, g_batch_stats, d_params, d_batch_stats: the two networks' variables.
      g_opt_state, d_opt_state: Adam moments.
      ema_params: exponential moving average of g_params ({} when config.ema_decay == 0).
      nonfinite_step: first step whose loss or gradient was NaN/Inf, -1 if none.
      skipped_updates: updates dropped for non-finite values (config.on_nonfinite='skip').
    """

    step: jax.Array
    rng: jax.Array
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    d_batch_stats: Any
    g_opt_state: Any
    d_opt_state: Any
    ema_params: Any
    nonfinite_step: jax.Array
    skipped_updates: jax.Array


def make_optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """Adam for each network, the seed's 2e-4 / (0.5, 0.999) by default."""
    o = config.optim
    g_tx = optax.adam(o.g_lr, b1=o.g_b1, b2=o.g_b2)
    d_tx = optax.adam(o.d_lr, b1=o.d_b1, b2=o.d_b2)
    return g_tx, d_tx


def image_shape(config) -> tuple[int, int, int]:
    return (config.data.image_size, config.data.image_size, config.data.channels)


def create_state(config, rng: jax.Array) -> GANState:
    """Initialises both networks and their optimisers from `rng` (pure; jit it for speed)."""
    generator, discriminator = models.build(config)
    g_tx, d_tx = make_optimizers(config)
    g_key, d_key = jax.random.split(jax.random.fold_in(rng, 1))
    z = jnp.zeros((1, config.model.z_dim), jnp.float32)
    x = jnp.zeros((1, *image_shape(config)), jnp.float32)
    g_vars = generator.init(g_key, z, train=False)
    d_vars = discriminator.init(d_key, x, train=False)
    g_params, d_params = g_vars["params"], d_vars["params"]
    return GANState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        g_params=g_params,
        g_batch_stats=g_vars.get("batch_stats", {}),
        d_params=d_params,
        d_batch_stats=d_vars.get("batch_stats", {}),
        g_opt_state=g_tx.init(g_params),
        d_opt_state=d_tx.init(d_params),
        ema_params=jax.tree.map(jnp.copy, g_params) if config.ema_decay > 0 else {},
        nonfinite_step=jnp.full((), -1, jnp.int32),
        skipped_updates=jnp.zeros((), jnp.int32),
    )


def sampling_params(state: GANState, *, use_ema: bool = True):
    """G's variables for sampling: EMA weights when the run keeps them."""
    params = state.ema_params if (use_ema and state.ema_params) else state.g_params
    return {"params": params, "batch_stats": state.g_batch_stats}
