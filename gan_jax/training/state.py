"""The training state: one pytree that holds everything a resumed run needs.

Optimisers and model definitions are not state (they are rebuilt from the config); the
state is only arrays, so orbax saves it as it is and `jit` can donate it.

Layout (checkpoints since the engine redesign; `LEGACY_KEYS` is the layout before it, which
`checkpoint.Checkpointer.restore` still reads):
  step, rng
  g, d: NetState(variables={'params', and each mutable collection}, opt_state)
  ema_params: the EMA of G's parameters ({} when config.ema_decay == 0)
  extra: training-time state beside the networks (ADA's p, ...)
  nonfinite_step, skipped_updates
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from gan_jax import objectives

# The DCGAN-only layout written before the engine redesign (flat fields per network).
LEGACY_KEYS = (
    "d_batch_stats",
    "d_opt_state",
    "d_params",
    "ema_params",
    "g_batch_stats",
    "g_opt_state",
    "g_params",
    "nonfinite_step",
    "rng",
    "skipped_updates",
    "step",
)


@flax.struct.dataclass
class NetState:
    """One network: all its variables and its optimiser state.

    Attributes:
      variables: {'params': ..., 'batch_stats': ..., 'spectral': ...}, whichever it has.
      opt_state: the optax state of its optimiser.
    """

    variables: Any
    opt_state: Any

    @property
    def params(self):
        return self.variables["params"]

    @property
    def collections(self):
        """The non-parameter collections (batch statistics, spectral-norm vectors, ...)."""
        return {k: v for k, v in self.variables.items() if k != "params"}


@flax.struct.dataclass
class GANState:
    """Both networks, the EMA of G, training-time extras and the run's counters.

    Attributes:
      step: generator updates done so far (int32 scalar).
      rng: the run's base PRNG key (raw uint32[2]); step keys are `fold_in(rng, step)`.
      g, d: `NetState`s of the generator and the discriminator.
      ema_params: exponential moving average of G's params ({} when config.ema_decay == 0).
      extra: training-time state owned by the objective (ADA's p, ...); {} when none.
      nonfinite_step: first step whose loss or gradient was NaN/Inf, -1 if none.
      skipped_updates: updates dropped for non-finite values (config.on_nonfinite='skip').
    """

    step: jax.Array
    rng: jax.Array
    g: NetState
    d: NetState
    ema_params: Any
    extra: Any
    nonfinite_step: jax.Array
    skipped_updates: jax.Array

    @property
    def g_params(self):
        return self.g.variables["params"]

    @property
    def d_params(self):
        return self.d.variables["params"]


def _optimizer(config, net: str, total_updates: int) -> optax.GradientTransformation:
    o = config.optim
    lr = o[f"{net}_lr"]
    schedule = o.get("schedule", "constant")
    if schedule == "linear":
        # SNGAN / Mimicry: linear decay to zero over the run.
        lr = optax.linear_schedule(lr, 0.0, max(int(total_updates), 1))
    elif schedule == "constant_linear":
        # pix2pix / CycleGAN: constant, then linear decay to zero from `decay_start` (a
        # fraction of the run; their 100 + 100 epochs are 0.5).
        start = int(round(float(o.get("decay_start", 0.5)) * int(total_updates)))
        decay = optax.linear_schedule(lr, 0.0, max(int(total_updates) - start, 1))
        lr = optax.join_schedules([optax.constant_schedule(lr), decay], [start])
    b1, b2 = o[f"{net}_b1"], o[f"{net}_b2"]
    if o.get("name", "adam") == "adamw":
        return optax.adamw(lr, b1=b1, b2=b2, weight_decay=o.get("weight_decay", 0.0))
    return optax.adam(lr, b1=b1, b2=b2)


def make_optimizers(
    config, total_steps: int = 0
) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """G's and D's optimisers: Adam or AdamW with betas per network and a schedule.

    Args:
      config: the run's config (config.optim).
      total_steps: generator steps of the run; the linear schedule reaches zero there (D's
        after `total_steps * d_steps` updates). Unused by the constant schedule.
    """
    return (
        _optimizer(config, "g", total_steps),
        _optimizer(config, "d", total_steps * config.d_steps),
    )


def image_shape(config) -> tuple[int, int, int]:
    return (config.data.image_size, config.data.image_size, config.data.channels)


def create_state(config, rng: jax.Array, *, total_steps: int = 0, objective=None) -> GANState:
    """Initialises both networks and their optimisers from `rng` (pure; jit it for speed)."""
    objective = objective or objectives.build(config)
    g_tx, d_tx = make_optimizers(config, total_steps)
    g_vars, d_vars = objective.init(jax.random.fold_in(rng, 1), image_shape(config))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        rng=rng,
        g=NetState(variables=g_vars, opt_state=g_tx.init(g_vars["params"])),
        d=NetState(variables=d_vars, opt_state=d_tx.init(d_vars["params"])),
        ema_params=jax.tree.map(jnp.copy, g_vars["params"]) if config.ema_decay > 0 else {},
        extra=objective.init_extra(),
        nonfinite_step=jnp.full((), -1, jnp.int32),
        skipped_updates=jnp.zeros((), jnp.int32),
    )


def sampling_variables(state: GANState, *, use_ema: bool = True):
    """G's variables for sampling: EMA parameters when the run keeps them."""
    params = state.ema_params if (use_ema and state.ema_params) else state.g.params
    return {**state.g.collections, "params": params}


STANDING_STATS_SEED = 0x57A7


def sampling_variables_fn(config, objective=None, *, use_ema: bool = True):
    """state -> G's variables for sampling, as the config asks (`sampling_variables`, then
    standing statistics over `config.standing_stats` batches when > 0; jitted)."""
    batches = int(config.get("standing_stats", 0) or 0)
    if not batches:
        return lambda state: sampling_variables(state, use_ema=use_ema)
    objective = objective or objectives.build(config)
    key = jax.random.PRNGKey(STANDING_STATS_SEED)
    standing = jax.jit(
        lambda v: objective.standing_statistics(
            v, key, num_batches=batches, batch_size=int(config.batch_size)
        )
    )
    return lambda state: standing(sampling_variables(state, use_ema=use_ema))


def to_legacy(state: GANState) -> dict:
    """`state` in the pre-redesign layout (a DCGAN state: batch statistics only, no extra)."""
    return {
        "step": state.step,
        "rng": state.rng,
        "g_params": state.g.params,
        "g_batch_stats": state.g.variables.get("batch_stats", {}),
        "d_params": state.d.params,
        "d_batch_stats": state.d.variables.get("batch_stats", {}),
        "g_opt_state": state.g.opt_state,
        "d_opt_state": state.d.opt_state,
        "ema_params": state.ema_params,
        "nonfinite_step": state.nonfinite_step,
        "skipped_updates": state.skipped_updates,
    }


def from_legacy(tree: dict, like: GANState) -> GANState:
    """A state in today's layout from a pre-redesign tree; `like` gives the empty extras."""

    def variables(net):
        out = {"params": tree[f"{net}_params"]}
        if tree[f"{net}_batch_stats"]:
            out["batch_stats"] = tree[f"{net}_batch_stats"]
        return out

    return like.replace(
        step=tree["step"],
        rng=tree["rng"],
        g=NetState(variables=variables("g"), opt_state=tree["g_opt_state"]),
        d=NetState(variables=variables("d"), opt_state=tree["d_opt_state"]),
        ema_params=tree["ema_params"],
        nonfinite_step=tree["nonfinite_step"],
        skipped_updates=tree["skipped_updates"],
    )
