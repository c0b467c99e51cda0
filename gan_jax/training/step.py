"""The adversarial step: a pure function `(state, batch) -> (state, metrics)`.

The step only orders the updates; the objective (`gan_jax.objectives`) owns how G and D are
run, the loss, the regularisers and the augmentation. With `d_steps == 1` it follows the
seed's loop body exactly: G makes one fake batch; D is updated on the real batch and on that
fake batch (two separate calls, so batch norm sees them apart); then G is updated through
the *updated* D on the same fake batch. G's forward pass is run once and its backward pass
reuses it through `jax.vjp`, as PyTorch's `fake_images.detach()` pattern does. With
`d_steps = k`, D takes k updates, each on its own real batch (the batch holds k of them) and
fresh latents, and G's update reuses the last fake batch.

`jit_train_step` compiles it over a device mesh: the batch is split on the 'data' axis, the
state is replicated and donated, and XLA inserts the all-reduces (batch-norm statistics
included, so 1 device and 8 devices compute the same thing).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import objectives
from gan_jax.training.state import GANState, NetState, make_optimizers

EMA_RAMPUP = 1.0 / 9.0  # the warm-up of the first releases: decay (1 + t) / (10 + t)


def _all_finite(*trees):
    leaves = [x for t in trees for x in jax.tree.leaves(t)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def ema_decay_at(config, step):
    """The EMA decay used after generator step `step` (a traced int).

    Two ways to keep an early, fast-moving generator out of the average:
      - `ema_rampup` r: the averaging window (1 / (1 - decay)) is at most 1 + r (1 + t) steps,
        i.e. decay <= r (1 + t) / (1 + r (1 + t)); r = 1/9 gives (1 + t) / (10 + t), as
        TF's ExponentialMovingAverage with num_updates (StyleGAN2 ramps its half-life the
        same way, by images seen);
      - `ema_start` (BigGAN): until that step the average is G itself.
    `ema_rampup = 0` turns the ramp off.
    """
    t = step.astype(jnp.float32)
    r = float(config.get("ema_rampup", EMA_RAMPUP))
    if r > 0:
        window = r * (1.0 + t)
        decay = jnp.minimum(config.ema_decay, window / (1.0 + window))
    else:  # no ramp (StyleGAN2's paper256 spec)
        decay = jnp.full_like(t, config.ema_decay)
    start = int(config.get("ema_start", 0) or 0)
    return jnp.where(step < start, 0.0, decay) if start else decay


def ema_initial_share(config, step: int) -> float:
    """How much of G's initial weights the EMA still holds after `step` steps: the product
    of `ema_decay_at` over t < step (host-side, NumPy)."""
    decay = float(config.get("ema_decay", 0.0) or 0.0)
    if decay <= 0 or int(config.get("ema_start", 0) or 0) > 0 or step <= 0:
        return 0.0 if step > 0 or decay <= 0 else 1.0  # with ema_start the EMA copies G
    t = np.arange(int(step), dtype=np.float64)
    r = float(config.get("ema_rampup", EMA_RAMPUP))
    d = np.full_like(t, decay) if r <= 0 else np.minimum(decay, r * (1 + t) / (1 + r * (1 + t)))
    return float(np.prod(d))


def objective_for(config):
    """The config's objective with what the training layer supplies: the perceptual feature
    network of an image-to-image objective with `loss.feature > 0` (FID Inception's stem,
    weights as `evaluation.weights.resolve_weights`, `loss.feature_weights` or the default)."""
    objective = objectives.build(config)
    if getattr(objective, "feature_weight", 0):
        from gan_jax import config_lib  # noqa: PLC0415
        from gan_jax.evaluation import inception, weights  # noqa: PLC0415 (torch-format files)

        try:
            objective.features = inception.stem_features(
                config.loss.get("feature_weights", "") or None
            )
        except weights.WeightsError as e:
            raise config_lib.ConfigError(
                f"config.loss.feature: the feature loss needs the FID Inception weights "
                f"(or set it to 0). {e}"
            ) from None
    return objective


def train_step(
    state: GANState,
    batch,
    *,
    config,
    objective=None,
    total_steps: int = 0,
    data_sharding=None,
):
    """One generator update preceded by `config.d_steps` discriminator updates.

    Args:
      state: the GANState.
      batch: {'image': [d_steps, global_batch, H, W, C] in [-1, 1], 'label': [d_steps,
        global_batch] int32, and 'source' [d_steps, global_batch, ...] for image-to-image
        objectives}; a single [global_batch, ...] batch is taken as d_steps = 1.
      config: the training config (static).
      objective: the model family's objective (built from the config when None).
      total_steps: the run's generator steps (learning-rate schedules end there).
      data_sharding: optional sharding of the batch axis, applied to the latents too.

    Returns:
      (new_state, metrics) with scalar metrics: d_loss, g_loss, d_real (mean sigmoid D(x)),
      d_fake (mean sigmoid D(G(z)) before D's update, as the seed prints), g_grad_norm,
      d_grad_norm, one per regulariser (gp, r1, ...; 0 on steps a lazy one skips),
      ada_rt (E[sign D(real)], ADA's overfitting signal), augment_p when augmenting,
      nonfinite (1 if this step's update was dropped).
    """
    objective = objective or objective_for(config)
    g_tx, d_tx = make_optimizers(config, total_steps)
    if not isinstance(batch, dict):
        batch = {"image": batch, "label": jnp.zeros(batch.shape[:1], jnp.int32)}
    if batch["image"].ndim == 4:
        batch = {k: v[None] for k, v in batch.items()}
    images = batch["image"]
    d_steps = config.d_steps
    if images.shape[0] != d_steps:
        raise ValueError(f"the batch holds {images.shape[0]} real batches, d_steps is {d_steps}")
    batch_size = images.shape[1]
    step_key = jax.random.fold_in(state.rng, state.step)

    def constrain(x):
        if x is None or data_sharding is None:
            return x
        return jax.lax.with_sharding_constraint(x, data_sharding)

    g_params, g_rest = state.g.params, state.g.collections
    d_params, d_rest, d_opt = state.d.params, state.d.collections, state.d.opt_state
    d_grad_ok = jnp.array(True)
    real_logits_all = []
    extra = state.extra
    for k in range(d_steps):
        z_key, d_key = jax.random.split(jax.random.fold_in(step_key, k))
        # G's input (latents, or the batch's source images) and the labels or conditions
        # D sees with the fakes and with the reals.
        real_batch = {name: v[k] for name, v in batch.items()}
        z, fake_y, real_y = objective.step_inputs(z_key, real_batch, batch_size)
        z, fake_y = constrain(z), constrain(fake_y)
        noise_key = jax.random.fold_in(z_key, 2)  # G's own randomness (noise, style mixing)

        def g_forward(p, rest=g_rest, z=z, fake_y=fake_y, noise_key=noise_key):
            return objective.run_G({**rest, "params": p}, z, fake_y, train=True, key=noise_key)

        if k == d_steps - 1:
            # Keep the pullback: G's update below reuses this forward pass.
            fake, g_pullback, g_rest = jax.vjp(g_forward, g_params, has_aux=True)
        else:
            fake, g_rest = g_forward(g_params)
        (d_loss, aux), d_grads = jax.value_and_grad(objective.d_loss, has_aux=True)(
            d_params,
            d_rest,
            images[k],
            real_y,
            jax.lax.stop_gradient(fake),
            fake_y,
            key=d_key,
            step=state.step,
            extra=extra,
        )
        d_rest, real_logits, fake_logits, reg_values, extra = aux
        real_logits_all.append(real_logits)
        d_grad_ok &= _all_finite(d_grads) & jnp.isfinite(d_loss)
        d_updates, d_opt = d_tx.update(d_grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, d_updates)

    g_key = jax.random.fold_in(step_key, d_steps)
    d_vars = {**d_rest, "params": d_params}
    (g_loss, (d_rest, g_values)), dfake = jax.value_and_grad(
        objective.g_loss_of_fake, has_aux=True
    )(fake, fake_y, d_vars, key=g_key, extra=extra, real=images[d_steps - 1])
    reg_values = {**reg_values, **g_values}
    (g_grads,) = g_pullback(dfake)
    if objective.has_g_regularisers:
        (_, (g_reg_values, extra)), g_reg_grads = jax.value_and_grad(
            objective.g_regularisation, has_aux=True
        )(
            g_params,
            g_rest,
            key=jax.random.fold_in(g_key, 1),
            step=state.step,
            extra=extra,
            batch_size=batch_size,
        )
        g_grads = jax.tree.map(jnp.add, g_grads, g_reg_grads)
        reg_values = {**reg_values, **g_reg_values}
    finite = d_grad_ok & _all_finite(g_grads) & jnp.isfinite(g_loss)
    extra = objective.update_extra(
        extra, real_logits_all, step=state.step, images_per_step=batch_size * d_steps
    )

    def apply_step():
        g_updates, g_opt = g_tx.update(g_grads, state.g.opt_state, g_params)
        new_g_params = optax.apply_updates(g_params, g_updates)
        ema = state.ema_params
        if config.ema_decay > 0:
            decay = ema_decay_at(config, state.step)
            ema = optax.incremental_update(new_g_params, ema, step_size=1.0 - decay)
        return state.replace(
            step=state.step + 1,
            g=NetState(variables={**g_rest, "params": new_g_params}, opt_state=g_opt),
            d=NetState(variables={**d_rest, "params": d_params}, opt_state=d_opt),
            ema_params=ema,
            extra=extra,
        )

    # A non-finite update is never applied: the state keeps its last good values, so the
    # next checkpoint cannot hold NaNs. The host reads `nonfinite_step` and stops or skips.
    # `cond` rather than a `where` over the state: G's optimiser update then runs only when
    # it is kept, and with the state donated a select made XLA:CPU copy every optimiser
    # moment first (it reads the old moments after writing the new ones in place).
    new_state = jax.lax.cond(finite, apply_step, lambda: state.replace(step=state.step + 1))
    new_state = new_state.replace(
        nonfinite_step=jnp.where(
            (state.nonfinite_step < 0) & ~finite, state.step, state.nonfinite_step
        ),
        skipped_updates=state.skipped_updates + (~finite).astype(jnp.int32),
    )
    metrics = {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "d_real": jax.nn.sigmoid(real_logits).mean(),
        "d_fake": jax.nn.sigmoid(fake_logits).mean(),
        "g_grad_norm": optax.tree.norm(g_grads),
        "d_grad_norm": optax.tree.norm(d_grads),
        "nonfinite": (~finite).astype(jnp.float32),
        **reg_values,
    }
    # ADA's overfitting signal, logged in every run: a run without augmentation shows
    # whether (and when) its D starts to memorise the training images.
    metrics["ada_rt"] = jnp.sign(jnp.stack(real_logits_all)).mean()
    if objective.policy:
        metrics["augment_p"] = jnp.asarray(objective.augment_p(state.extra), jnp.float32)
    return new_state, metrics


def make_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh over all devices (of all processes): pure data parallelism."""
    devices = jax.devices() if devices is None else devices
    return jax.sharding.Mesh(devices, ("data",))


def batch_shardings(mesh: jax.sharding.Mesh, keys=("image", "label")):
    """Shardings of a step's batch: [d_steps, global_batch, ...] split on the batch axis."""
    spec = NamedSharding(mesh, P(None, "data"))
    return dict.fromkeys(keys, spec)


def stack_batches(local_batches: list[dict]) -> dict:
    """d_steps local batches {'image', 'label', ...} -> one with a leading d_steps axis."""
    return {k: np.stack([b[k] for b in local_batches]) for k in local_batches[0]}


def jit_train_step(config, mesh: jax.sharding.Mesh, *, total_steps: int = 0, objective=None):
    """Compiles `train_step` for `mesh`: batch sharded on 'data', state replicated, donated."""
    replicated = NamedSharding(mesh, P())
    data = NamedSharding(mesh, P("data"))
    objective = objective or objective_for(config)
    fn = functools.partial(
        train_step,
        config=config,
        objective=objective,
        total_steps=total_steps,
        data_sharding=data,
    )
    return jax.jit(
        fn,
        in_shardings=(replicated, batch_shardings(mesh, objective.batch_keys)),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )
