"""The adversarial step: a pure function `(state, batch) -> (state, metrics)`.

It follows the seed's loop body exactly when `d_steps == 1`: G makes one fake batch; D is
updated on the real batch and on that fake batch (two separate calls, so batch norm sees
them apart); then G is updated through the *updated* D on the same fake batch. G's forward
pass is run once and its backward pass reuses it through `jax.vjp`, as PyTorch's
`fake_images.detach()` pattern does.

`jit_train_step` compiles it over a device mesh: the batch is split on the 'data' axis, the
state is replicated and donated, and XLA inserts the all-reduces (batch-norm statistics
included, so 1 device and 8 devices compute the same thing).
"""

import functools

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import losses, models
from gan_jax.training.state import GANState, make_optimizers


def _all_finite(*trees):
    leaves = [x for t in trees for x in jax.tree.leaves(t)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def train_step(state: GANState, batch: jax.Array, *, config, data_sharding=None):
    """One generator update preceded by `config.d_steps` discriminator updates.

    Args:
      state: the GANState.
      batch: real images [global_batch, H, W, C] in [-1, 1].
      config: the training config (static).
      data_sharding: optional sharding of the batch axis, applied to the noise too.

    Returns:
      (new_state, metrics) with scalar metrics: d_loss, g_loss, d_real (mean D(x)),
      d_fake (mean D(G(z)) before D's update, as the seed prints), g_grad_norm,
      d_grad_norm, gp (0 without penalty), nonfinite (1 if this step's update was dropped).
    """
    generator, discriminator = models.build(config)
    g_tx, d_tx = make_optimizers(config)
    gan_loss = losses.get(config.loss.name)
    step_key = jax.random.fold_in(state.rng, state.step)
    batch_size = batch.shape[0]

    def constrain(x):
        return x if data_sharding is None else jax.lax.with_sharding_constraint(x, data_sharding)

    def g_forward(g_params, g_stats, z):
        fake, upd = generator.apply(
            {"params": g_params, "batch_stats": g_stats}, z, train=True, mutable=["batch_stats"]
        )
        return fake, upd["batch_stats"]

    def d_apply(d_params, d_stats, x):
        logits, upd = discriminator.apply(
            {"params": d_params, "batch_stats": d_stats}, x, train=True, mutable=["batch_stats"]
        )
        return logits, upd.get("batch_stats", d_stats)

    def d_loss_fn(d_params, d_stats, real, fake, gp_key):
        real_logits, d_stats = d_apply(d_params, d_stats, real)
        fake_logits, d_stats = d_apply(d_params, d_stats, fake)
        loss = gan_loss.d_loss(real_logits, fake_logits)
        gp = jnp.zeros((), jnp.float32)
        if gan_loss.gradient_penalty:
            # Gulrajani et al.: unit gradient norm on random interpolates. The BN statistics
            # of these extra calls are discarded: they are not part of the data D models.
            eps = jax.random.uniform(gp_key, (real.shape[0], 1, 1, 1))
            x_hat = eps * real + (1.0 - eps) * fake

            def d_sum(x):
                return d_apply(d_params, d_stats, x)[0].sum()

            grads = jax.grad(d_sum)(x_hat)
            norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(1, 2, 3)) + 1e-12)
            gp = jnp.mean(jnp.square(norms - 1.0))
            loss = loss + config.loss.gp_weight * gp
        return loss, (d_stats, real_logits, fake_logits, gp)

    g_params, g_stats = state.g_params, state.g_batch_stats
    d_params, d_stats, d_opt = state.d_params, state.d_batch_stats, state.d_opt_state
    d_grad_ok = jnp.array(True)
    for k in range(config.d_steps):
        z_key, gp_key = jax.random.split(jax.random.fold_in(step_key, k))
        z = constrain(jax.random.normal(z_key, (batch_size, config.model.z_dim), jnp.float32))
        if k == config.d_steps - 1:
            # Keep the pullback: G's update below reuses this forward pass.
            fake, g_pullback, g_stats = jax.vjp(
                lambda p, z=z, s=g_stats: g_forward(p, s, z), g_params, has_aux=True
            )
        else:
            fake, g_stats = g_forward(g_params, g_stats, z)
        (d_loss, (d_stats, real_logits, fake_logits, gp)), d_grads = jax.value_and_grad(
            d_loss_fn, has_aux=True
        )(d_params, d_stats, batch, jax.lax.stop_gradient(fake), gp_key)
        d_grad_ok &= _all_finite(d_grads) & jnp.isfinite(d_loss)
        d_updates, d_opt = d_tx.update(d_grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, d_updates)

    def g_loss_of_fake(fake_images):
        logits, new_d_stats = d_apply(d_params, d_stats, fake_images)
        return gan_loss.g_loss(logits), new_d_stats

    (g_loss, d_stats), dfake = jax.value_and_grad(g_loss_of_fake, has_aux=True)(fake)
    (g_grads,) = g_pullback(dfake)
    finite = d_grad_ok & _all_finite(g_grads) & jnp.isfinite(g_loss)

    def apply_step():
        g_updates, g_opt = g_tx.update(g_grads, state.g_opt_state, g_params)
        new_g_params = optax.apply_updates(g_params, g_updates)
        ema = state.ema_params
        if config.ema_decay > 0:
            # Warm-up (as TF's ExponentialMovingAverage with num_updates): early on the
            # average follows G closely instead of holding on to the random initialisation
            # for ~1/(1-decay) steps.
            t = state.step.astype(jnp.float32)
            decay = jnp.minimum(config.ema_decay, (1.0 + t) / (10.0 + t))
            ema = optax.incremental_update(new_g_params, ema, step_size=1.0 - decay)
        return state.replace(
            step=state.step + 1,
            g_params=new_g_params,
            g_batch_stats=g_stats,
            d_params=d_params,
            d_batch_stats=d_stats,
            g_opt_state=g_opt,
            d_opt_state=d_opt,
            ema_params=ema,
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
        "gp": gp,
        "nonfinite": (~finite).astype(jnp.float32),
    }
    return new_state, metrics


def make_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh over all devices (of all processes): pure data parallelism."""
    devices = jax.devices() if devices is None else devices
    return jax.sharding.Mesh(devices, ("data",))


def jit_train_step(config, mesh: jax.sharding.Mesh):
    """Compiles `train_step` for `mesh`: batch sharded on 'data', state replicated, donated."""
    replicated = NamedSharding(mesh, P())
    data = NamedSharding(mesh, P("data"))
    fn = functools.partial(train_step, config=config, data_sharding=data)
    return jax.jit(
        fn,
        in_shardings=(replicated, data),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )
