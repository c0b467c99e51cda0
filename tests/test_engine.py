"""The engine: regularisers on known values, lazy intervals, optimisers, EMA schedules,
labels through the step, ADA's p in the state, and checkpoints of the first layout."""

import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import leaves, tiny_config
from PIL import Image

from gan_jax import objectives, sampling
from gan_jax.errors import CheckpointError
from gan_jax.objectives import regularisers as reg_lib
from gan_jax.training import checkpoint as ckpt_lib
from gan_jax.training import loop, train_and_evaluate
from gan_jax.training import state as state_lib
from gan_jax.training import step as step_lib


def _batch(config, seed=0, labels=None):
    s = config.data.image_size
    shape = (config.d_steps, config.batch_size, s, s, config.data.channels)
    images = jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1.0, maxval=1.0)
    if labels is None:
        labels = jnp.zeros(shape[:2], jnp.int32)
    return {"image": images, "label": jnp.broadcast_to(labels, shape[:2]).astype(jnp.int32)}


# -- regularisers on inputs where the value is known -------------------------------------


def test_r1_of_a_quadratic_discriminator():
    # D(x) = a * sum(x^2) per sample: grad = 2 a x, so E||grad||^2 = 4 a^2 E||x||^2.
    a = 0.7
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4, 4, 2))
    ctx = reg_lib.Context(
        params=None,
        run_d=lambda y, labels: a * jnp.sum(y**2, axis=(1, 2, 3)),
        real=x,
        fake=2 * x,
    )
    want = 4 * a**2 * np.mean(np.sum(np.asarray(x) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(reg_lib.r1_penalty(ctx), want, rtol=1e-5)
    np.testing.assert_allclose(reg_lib.r2_penalty(ctx), 4 * want, rtol=1e-5)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w . x: the gradient is w at every interpolate, so GP = (||w|| - 1)^2 exactly.
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 1))
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 3, 3, 1))
    ctx = reg_lib.Context(
        params=None,
        run_d=lambda y, labels: jnp.sum(y * w, axis=(1, 2, 3)),
        real=x,
        fake=-x,
        key=jax.random.PRNGKey(3),
    )
    want = (float(jnp.linalg.norm(w)) - 1.0) ** 2
    np.testing.assert_allclose(reg_lib.gradient_penalty(ctx), want, rtol=1e-4)


@pytest.mark.parametrize("step, expect_on", [(0, True), (3, False), (4, True)])
def test_lazy_regulariser_runs_every_k_steps_with_k_times_the_weight(step, expect_on):
    config = tiny_config(**{"reg.r1": 2.0, "reg.r1_every": 4})
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    state = state.replace(step=jnp.asarray(step, jnp.int32))
    objective = objectives.build(config)
    (reg,) = objective.regularisers
    assert (reg.name, reg.net, reg.weight, reg.interval) == ("r1", "D", 1.0, 4)  # gamma / 2
    _, metrics = step_lib.jit_train_step(config, step_lib.make_mesh())(state, _batch(config))
    assert (float(metrics["r1"]) > 0) == expect_on
    # The weighted term is interval * weight * value: the loss with it minus without it.
    ctx_loss = []
    for r1 in (0.0, 2.0):
        c = tiny_config(**{"reg.r1": r1, "reg.r1_every": 4})
        o = objectives.build(c)
        s = state_lib.create_state(c, jax.random.PRNGKey(0))
        b = _batch(c)
        fake = jnp.zeros_like(b["image"][0])
        loss, _ = o.d_loss(
            s.d.params,
            s.d.collections,
            b["image"][0],
            b["label"][0],
            fake,
            None,
            key=jax.random.PRNGKey(5),
            step=jnp.asarray(step),
            extra={},
        )
        ctx_loss.append(float(loss))
    if expect_on:
        assert ctx_loss[1] - ctx_loss[0] == pytest.approx(4 * 1.0 * float(metrics["r1"]), 1e-3)
    else:
        assert ctx_loss[1] == ctx_loss[0]


# -- optimisers and EMA ------------------------------------------------------------------


def test_linear_schedule_decays_to_zero_and_adamw_decays_weights():
    config = tiny_config(**{"optim.schedule": "linear", "d_steps": 2})
    g_tx, d_tx = state_lib.make_optimizers(config, total_steps=10)
    params = {"w": jnp.ones(3)}
    zero_grads = {"w": jnp.zeros(3)}
    ones = {"w": jnp.ones(3)}
    # Adam's first update is -lr * sign(g); the schedule's lr at count t is lr0 (1 - t / T).
    for tx, total in ((g_tx, 10), (d_tx, 20)):
        opt = tx.init(params)
        for t in range(total + 1):
            upd, opt = tx.update(ones, opt, params)
            lr = float(-upd["w"][0]) / 1.0 if t == 0 else None
            if t == 0:
                assert lr == pytest.approx(2e-4, rel=1e-3)
        assert float(jnp.abs(upd["w"]).max()) == 0.0  # the lr reached zero at the end
    config = tiny_config(**{"optim.name": "adamw", "optim.weight_decay": 0.5})
    g_tx, _ = state_lib.make_optimizers(config)
    upd, _ = g_tx.update(zero_grads, g_tx.init(params), params)
    np.testing.assert_allclose(upd["w"], -2e-4 * 0.5 * np.ones(3), rtol=1e-5)


def test_ema_rampup_and_start():
    config = tiny_config(ema_decay=0.999)
    t = jnp.arange(0, 5000, 1000)
    # The default window keeps the first releases' warm-up: (1 + t) / (10 + t).
    np.testing.assert_allclose(
        step_lib.ema_decay_at(config, t), np.minimum(0.999, (1 + t) / (10 + t)), rtol=1e-6
    )
    config = tiny_config(ema_decay=0.999, ema_rampup=0.05, ema_start=2000)
    decay = np.asarray(step_lib.ema_decay_at(config, t))
    assert decay[0] == decay[1] == 0.0  # before ema_start the average is G itself
    window = 0.05 * (1.0 + np.asarray(t[2:], np.float64))
    np.testing.assert_allclose(decay[2:], window / (1 + window), rtol=1e-6)
    # ema_rampup = 0: no ramp (StyleGAN2's paper256 setting).
    config = tiny_config(ema_decay=0.99, ema_rampup=0.0)
    np.testing.assert_allclose(step_lib.ema_decay_at(config, t), 0.99, rtol=1e-6)
    # The initial weights' share, host-side: the product of the decays.
    assert step_lib.ema_initial_share(config, 10) == pytest.approx(0.99**10)
    config = tiny_config(ema_decay=0.999)
    ramp = np.minimum(0.999, (1 + np.arange(50.0)) / (10 + np.arange(50.0)))
    assert step_lib.ema_initial_share(config, 50) == pytest.approx(np.prod(ramp))
    assert step_lib.ema_initial_share(tiny_config(ema_decay=0.999, ema_start=5), 3) == 0.0


# -- labels through the step ---------------------------------------------------------------


def test_conditional_step_uses_the_labels():
    config = tiny_config(
        **{"model.name": "sngan", "model.num_classes": 3, "model.g_width": 8, "model.d_width": 8}
    )
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    step = step_lib.jit_train_step(config, step_lib.make_mesh())
    a, _ = step(jax.tree.map(jnp.copy, state), _batch(config, labels=0))
    b, _ = step(jax.tree.map(jnp.copy, state), _batch(config, labels=2))
    # Only the class embeddings of the labels present get a gradient from the real batch.
    emb_a = np.asarray(a.d.params["embed"]["embedding"])
    emb_b = np.asarray(b.d.params["embed"]["embedding"])
    assert not np.array_equal(emb_a, emb_b)
    assert set(state.d.variables) == {"params", "spectral"}
    assert set(state.g.variables) == {"params", "batch_stats"}


def test_adaptive_p_moves_and_is_kept_in_the_state():
    config = tiny_config(
        **{
            "augment.policy": "color,translation",
            "augment.adaptive": True,
            "augment.p": 0.5,
            "augment.adjust_every": 1,
            "augment.speed_images": 800,
        }
    )
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    assert float(state.extra["ada"]["p"]) == 0.5
    new, metrics = step_lib.jit_train_step(config, step_lib.make_mesh())(state, _batch(config))
    # One adjustment of batch 8 * 1 step over 800 images: p moves by exactly 0.01.
    moved = float(new.extra["ada"]["p"]) - 0.5
    assert abs(moved) == pytest.approx(0.01, abs=1e-6)
    assert np.sign(moved) == np.sign(float(metrics["ada_rt"]) - 0.6)
    assert float(metrics["augment_p"]) == 0.5
    # Without augmentation r_t is still logged (does D memorise the reals?), p is not:
    # the mean of 8 signs, a multiple of 1/4 when no logit is exactly 0.
    plain = tiny_config()
    state = state_lib.create_state(plain, jax.random.PRNGKey(0))
    _, metrics = step_lib.jit_train_step(plain, step_lib.make_mesh())(state, _batch(plain))
    assert "augment_p" not in metrics
    rt = float(metrics["ada_rt"])
    assert -1.0 <= rt <= 1.0 and (rt * 8) % 2 == pytest.approx(0.0)


# -- checkpoints of the first layout ---------------------------------------------------------


@flax.struct.dataclass
class _FirstLayoutState:
    """The GANState of gan_jax before the engine redesign, field for field."""

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


def _write_first_layout_checkpoint(config, workdir, step=3):
    """A checkpoint as the first releases wrote it: their state dataclass, saved by orbax."""
    from gan_jax import config_lib

    state = state_lib.create_state(config, jax.random.PRNGKey(config.seed))
    old = _FirstLayoutState(**state_lib.to_legacy(state))
    old = old.replace(
        step=jnp.asarray(step, jnp.int32),
        g_params=jax.tree.map(lambda x: x + 0.25, old.g_params),
    )
    config_lib.save(config, workdir)
    manager = ocp.CheckpointManager(ckpt_lib.checkpoint_dir(workdir))
    manager.save(step, args=ocp.args.StandardSave(old), force=True)
    manager.wait_until_finished()
    manager.close()
    return old


def test_first_layout_checkpoints_still_load_and_resume(tmp_path):
    config = tiny_config(num_steps=4)
    workdir = str(tmp_path / "old")
    old = _write_first_layout_checkpoint(config, workdir)
    target = state_lib.create_state(config, jax.random.PRNGKey(1))
    checkpointer = ckpt_lib.Checkpointer(workdir, read_only=True)
    restored = checkpointer.restore(target)
    checkpointer.close()
    assert int(restored.step) == 3
    for a, b in zip(leaves(old.g_params), leaves(restored.g.params)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(old.d_batch_stats), leaves(restored.d.variables["batch_stats"])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(old.g_opt_state), leaves(restored.g.opt_state)):
        np.testing.assert_array_equal(a, b)
    # And training resumes from it, writing the new layout.
    final = train_and_evaluate(config, workdir)
    assert int(final.step) == 4


def test_first_layout_checkpoint_for_a_model_it_cannot_hold_is_a_clear_error(tmp_path):
    workdir = str(tmp_path / "old")
    _write_first_layout_checkpoint(tiny_config(), workdir)
    config = tiny_config(**{"augment.policy": "color", "augment.adaptive": True})
    target = state_lib.create_state(config, jax.random.PRNGKey(0))
    checkpointer = ckpt_lib.Checkpointer(workdir, read_only=True)
    with pytest.raises(CheckpointError, match="DCGAN-only layout.*augmentation state"):
        checkpointer.restore(target)
    checkpointer.close()


def test_standing_statistics_are_the_batch_statistics_of_the_sampled_weights():
    # One batch of 256 latents: G in eval mode with the standing statistics reproduces G in
    # training mode on those latents (batch norm with their batch statistics), up to the
    # unbiased-variance factor 256/255 kept in running variances.
    config = tiny_config()
    objective = objectives.build(config)
    state = state_lib.create_state(config, jax.random.PRNGKey(0), objective=objective)
    variables = state_lib.sampling_variables(state)
    key = jax.random.PRNGKey(7)
    standing = objective.standing_statistics(variables, key, num_batches=1, batch_size=256)
    z, y = objective.sample_latents(jax.random.fold_in(key, 0), 256)
    train_out, _ = objective.run_G(variables, z, y, train=True)
    eval_out, _ = objective.run_G(standing, z, y, train=False)
    old_out, _ = objective.run_G(variables, z, y, train=False)
    np.testing.assert_allclose(eval_out, train_out, atol=5e-3)
    assert float(jnp.abs(old_out - train_out).max()) > 0.05  # the running stats (init) differ
    # Parameters and other collections are untouched; the statistics averaged over batches.
    assert jax.tree.all(jax.tree.map(jnp.array_equal, standing["params"], variables["params"]))
    two = objective.standing_statistics(variables, key, num_batches=2, batch_size=128)
    for a, b in zip(leaves(two["batch_stats"]), leaves(standing["batch_stats"])):
        np.testing.assert_allclose(a, b, rtol=0.2, atol=0.05)


def test_a_run_with_standing_stats_draws_its_grids_with_them(tmp_path):
    # `standing_stats` (16 in the batch-norm models' presets): the grids written during
    # training use statistics recomputed for the sampled weights, as sample.py does.
    config = tiny_config(standing_stats=2, num_steps=4, sample_every=4, checkpoint_every=4)
    workdir = str(tmp_path / "run")
    train_and_evaluate(config, workdir)
    grid = np.asarray(Image.open(os.path.join(workdir, "samples", "step_00000004.png")), np.int32)
    z = np.asarray(loop.fixed_noise(config)[0])

    def drawn(batches):
        g = sampling.load_generator(workdir, standing_stats=batches)
        grid = sampling.make_grid(np.concatenate(list(sampling.render(g, z))))
        return grid.reshape(grid.shape[:2] if grid.shape[-1] == 1 else grid.shape).astype(np.int32)

    assert np.abs(grid - drawn(2)).max() <= 1  # rounding of two compiled programs
    assert np.abs(grid - drawn(0)).max() > 8  # the running statistics draw another grid
