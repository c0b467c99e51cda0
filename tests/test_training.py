"""The adversarial step and the loop: every loss trains, devices agree, resume is exact."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, leaves, tiny_config, xla_flags

from gan_jax import losses
from gan_jax.training import state as state_lib
from gan_jax.training import step as step_lib
from gan_jax.training import train_and_evaluate


def _batch(config, seed=0, nan=False):
    """A step's batch: d_steps real batches of uniform noise images, labels 0."""
    s = config.data.image_size
    shape = (config.d_steps, config.batch_size, s, s, config.data.channels)
    images = jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1.0, maxval=1.0)
    if nan:
        images = images.at[0, 0, 0, 0, 0].set(jnp.nan)
    return {"image": images, "label": jnp.zeros(shape[:2], jnp.int32)}


# The relativistic loss is pix2pix's (its G loss reads D on the reals): tests/test_pix2pix.py.
@pytest.mark.parametrize("loss", sorted(k for k, v in losses.LOSSES.items() if not v.relativistic))
def test_one_step_per_loss_updates_both_networks(loss):
    config = tiny_config(**{"loss.name": loss, "d_steps": 2 if loss == "wasserstein_gp" else 1})
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    before = jax.device_get(state)
    step = step_lib.jit_train_step(config, step_lib.make_mesh())
    new, metrics = step(state, _batch(config))
    metrics = jax.device_get(metrics)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert metrics["nonfinite"] == 0
    assert int(new.step) == 1
    for name in ("g_params", "d_params", "ema_params"):
        changed = [
            not np.array_equal(a, b)
            for a, b in zip(leaves(getattr(before, name)), leaves(getattr(new, name)))
        ]
        assert all(changed), f"{name}: some leaves did not move"
    assert (metrics.get("gp", 0) > 0) == (loss == "wasserstein_gp")
    assert 0 < metrics["d_real"] < 1 and 0 < metrics["d_fake"] < 1


@pytest.mark.parametrize("step, decay", [(0, 0.1), (1000, 0.9)])
def test_ema_follows_the_decay_after_warmup(step, decay):
    # Effective decay is min(ema_decay, (1 + step) / (10 + step)): 0.1 at step 0, then 0.9.
    config = tiny_config(ema_decay=0.9)
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    state = state.replace(step=jnp.asarray(step, jnp.int32))
    old_g = leaves(state.g_params)
    new, _ = step_lib.jit_train_step(config, step_lib.make_mesh())(state, _batch(config))
    for ema, old, now in zip(leaves(new.ema_params), old_g, leaves(new.g_params)):
        np.testing.assert_allclose(ema, decay * old + (1 - decay) * now, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_nan_batch_is_never_applied(mode):
    config = tiny_config(on_nonfinite=mode)
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    before = leaves(state.g_params) + leaves(state.d_params)
    bad = _batch(config, nan=True)
    new, metrics = step_lib.jit_train_step(config, step_lib.make_mesh())(state, bad)
    assert float(metrics["nonfinite"]) == 1.0
    assert int(new.nonfinite_step) == 0 and int(new.skipped_updates) == 1
    for a, b in zip(before, leaves(new.g_params) + leaves(new.d_params)):
        np.testing.assert_array_equal(a, b)


def _params_file(workdir):
    return os.path.join(workdir, "params.npz")


def _run_in_subprocess(workdir, devices, num_steps):
    """Trains the tiny config in a fresh process with `devices` CPU devices."""
    env = dict(os.environ, XLA_FLAGS=xla_flags(devices))
    code = (
        "import sys, numpy as np, jax; sys.path.insert(0, 'tests');"
        "from conftest import tiny_config;"
        "from gan_jax.training import train_and_evaluate;"
        f"c = tiny_config(num_steps={num_steps}, batch_size=8);"
        f"s = train_and_evaluate(c, {workdir!r});"
        "assert jax.device_count() == %d;"
        "np.savez(%r, *[np.asarray(x) for x in jax.tree.leaves(jax.device_get(s))])"
        % (devices, _params_file(workdir))
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=600)
    with np.load(_params_file(workdir)) as f:
        return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]


def test_one_device_and_eight_devices_end_equal(tmp_path):
    assert jax.device_count() == 1  # this process: the 1-device run, no start-up of its own
    one = leaves(train_and_evaluate(tiny_config(num_steps=3, batch_size=8), str(tmp_path / "one")))
    eight = _run_in_subprocess(str(tmp_path / "eight"), 8, 3)
    assert len(one) == len(eight)
    for a, b in zip(one, eight):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_resumed_run_is_bit_identical(tmp_path):
    straight = train_and_evaluate(tiny_config(num_steps=6), str(tmp_path / "straight"))
    workdir = str(tmp_path / "resumed")
    train_and_evaluate(tiny_config(num_steps=3, checkpoint_every=3), workdir)
    resumed = train_and_evaluate(tiny_config(num_steps=6, checkpoint_every=3), workdir)
    assert int(resumed.step) == 6
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_array_equal(a, b)


def test_runs_of_one_config_in_one_process_trace_the_step_once(tmp_path, monkeypatch):
    """A run resumed in the same process (a notebook cell run again) reuses the compiled
    step; another config, or the caller's config changed after its run, gets its own."""
    from gan_jax.training import loop  # noqa: PLC0415

    traces = []
    real = step_lib.train_step

    def counting(*args, **kwargs):
        traces.append(kwargs["config"].optim.g_lr)  # runs once per trace, not per step
        return real(*args, **kwargs)

    monkeypatch.setattr(step_lib, "train_step", counting)
    monkeypatch.setattr(loop, "_PROGRAMS", type(loop._PROGRAMS)())
    config = tiny_config(num_steps=4)
    lr = config.optim.g_lr
    first = train_and_evaluate(config, str(tmp_path / "a"))
    assert len(traces) == 1
    again = train_and_evaluate(tiny_config(num_steps=4), str(tmp_path / "b"))  # an equal config
    assert len(traces) == 1
    for a, b in zip(leaves(first), leaves(again)):
        np.testing.assert_array_equal(a, b)
    config.optim.g_lr = lr * 5  # the caller changes its config: a new program for the new one
    changed = train_and_evaluate(config, str(tmp_path / "c"))
    assert traces == [lr, lr * 5]
    assert not np.array_equal(leaves(first.g.params)[0], leaves(changed.g.params)[0])
    third = train_and_evaluate(tiny_config(num_steps=4), str(tmp_path / "d"))  # kept as it was
    assert len(traces) == 2
    for a, b in zip(leaves(first), leaves(third)):
        np.testing.assert_array_equal(a, b)
    # Dropped on request (a notebook freeing memory): the next run compiles again.
    from gan_jax import training  # noqa: PLC0415

    assert training.clear_compiled() == 2 and training.clear_compiled() == 0
    train_and_evaluate(tiny_config(num_steps=4), str(tmp_path / "e"))
    assert len(traces) == 3


def test_train_py_writes_checkpoint_grid_and_events(tmp_path):
    workdir = tmp_path / "run"
    cmd = [
        sys.executable,
        "train.py",
        "--config=configs/dcgan.py",
        f"--workdir={workdir}",
        "--config.num_epochs=0",
        "--config.num_steps=4",
        "--config.batch_size=8",
        "--config.model.g_width=8",
        "--config.model.d_width=8",
        "--config.log_every=2",
        "--config.sample_every=2",
        "--config.checkpoint_every=2",
        "--config.num_sample_images=9",
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Step [4/4]" in out.stderr and "ETA" in out.stderr
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["num_steps"] == 4 and saved["model"]["g_width"] == 8
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2, 4]
    from PIL import Image

    grid = Image.open(workdir / "samples" / "step_00000004.png")
    # 9 images of 32 px in a 3x3 grid with 2 px padding.
    assert grid.size == (3 * 34 + 2, 3 * 34 + 2)
    assert np.asarray(grid).std() > 1  # not a blank image
    events = [p for p in workdir.iterdir() if p.name.startswith("events.out.tfevents")]
    assert events, list(workdir.iterdir())
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(events[0]), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    assert {"d_loss", "g_loss", "d_real", "d_fake", "images_per_sec"} <= tags, tags
    assert "samples" in tags
    d_loss = [e.step for e in acc.Tensors("d_loss")]
    assert d_loss == [2, 4]
