"""Every model of the zoo keeps DCGAN's guarantees: 1 and 8 devices agree, a resumed run is
bit-identical, a NaN never reaches a checkpoint; and conditional models sample by label."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT, ZOO, device_pair, zoo_config
from PIL import Image
from test_reliability import _poison, _restore_all

from gan_jax.training import loop, train_and_evaluate

NEW_MODELS = [name for name in ZOO if name != "dcgan"]


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


# A tiny step's real batch (d_steps of them) with labels, the same on both meshes.
_DEVICE_SETUP = """
from conftest import zoo_config
c = zoo_config(NAME, num_steps=3)
shape = (c.d_steps, c.batch_size, 32, 32, 1)
x = jax.random.uniform(jax.random.PRNGKey(1), shape, minval=-1.0, maxval=1.0)
y = jax.random.randint(jax.random.PRNGKey(2), shape[:2], 0, 10)
batch = {'image': x, 'label': y}
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_MODELS)
def test_one_device_and_eight_devices_end_equal(name, tmp_path):
    one, m1, eight, m8 = device_pair(_DEVICE_SETUP.replace("NAME", repr(name)), tmp_path)
    # One step from the same state: the same losses, gradient norms and penalties.
    assert m1.keys() == m8.keys()
    for k in m1:
        np.testing.assert_allclose(m1[k], m8[k], rtol=1e-4, atol=1e-6, err_msg=k)
    # The state after that step: equal to float tolerance, except where Adam rescales a
    # gradient that is rounding noise into a full step of the learning rate (its first update
    # is lr * sign(g)): biases just before batch norm, whose true gradient is 0, and other
    # near-zero gradients. Those may differ by 2 lr at most and must be rare; a sharding
    # mistake (statistics per device, an unsynchronised update) moves almost every entry.
    assert len(one) == len(eight)
    total = differ = 0
    for a, b in zip(one, eight):
        if a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b)
            continue
        close = np.isclose(a, b, rtol=1e-4, atol=1e-5)
        total, differ = total + a.size, differ + int((~close).sum())
        assert float(np.abs(a - b).max(initial=0)) <= 2 * 2e-4 + 1e-4 * float(np.abs(a).max())
    assert differ / total < 0.02, f"{differ} of {total} entries differ"


class _StopAfterThirdStep:
    """Stands in for the loop's signal handler: a SIGTERM arrives during step 3."""

    def __init__(self, multi_process=False):
        self.checks = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def received(self):
        self.checks += 1  # the loop asks once per step
        return "SIGTERM" if self.checks >= 3 else None


# The resume and NaN tests share one config per model, so the second traces the train step
# again but its XLA compile comes from the session's persistent cache (a minute on 2 cores).
_GUARANTEE_RUN = {"num_steps": 6, "checkpoint_every": 2, "log_every": 2}


@pytest.mark.parametrize("name", NEW_MODELS)
def test_resumed_run_is_bit_identical(name, tmp_path, monkeypatch):
    # The same config both times (the linear schedule's length is the run's length), stopped
    # by a preemption after step 3 and run again.
    config = zoo_config(name, **_GUARANTEE_RUN)
    straight = train_and_evaluate(config, str(tmp_path / "straight"))
    workdir = str(tmp_path / "resumed")
    with monkeypatch.context() as patch:
        patch.setattr(loop, "_StopSignal", _StopAfterThirdStep)
        stopped = train_and_evaluate(config, workdir)
    assert int(stopped.step) == 3
    resumed = train_and_evaluate(config, workdir)
    assert int(resumed.step) == 6
    a, b = _leaves(straight), _leaves(resumed)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    if name == "biggan":  # ADA's p moved and came back with the checkpoint
        assert float(resumed.extra["ada"]["p"]) != 0.0


@pytest.mark.parametrize("name", NEW_MODELS)
def test_nan_never_reaches_a_checkpoint(name, tmp_path, monkeypatch):
    _poison(monkeypatch, {5}, np.nan)  # the 5th batch read
    workdir = str(tmp_path / "run")
    config = zoo_config(name, **_GUARANTEE_RUN)
    bad = 4 // config.d_steps + 1  # the generator step that reads it (d_steps batches a step)
    with pytest.raises(loop.NonFiniteError, match=rf"at step {bad}\b"):
        train_and_evaluate(config, workdir)
    restored = _restore_all(workdir)
    assert max(restored) == (bad - 1) // 2 * 2, sorted(restored)  # the last good checkpoint
    for leaves in restored.values():
        assert all(np.isfinite(x).all() for x in leaves if x.dtype.kind == "f")


def test_conditional_grid_has_a_row_per_class(tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(zoo_config("sngan", num_steps=2, num_sample_images=20), str(workdir))
    grid = np.asarray(Image.open(workdir / "samples" / "step_00000002.png"))
    # 10 classes, 20 // 10 = 2 columns of 32 px with 2 px padding.
    assert grid.shape[:2] == (10 * 34 + 2, 2 * 34 + 2)


def _sample(workdir, *flags):
    cmd = [sys.executable, "sample.py", f"--workdir={workdir}", *flags]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_sample_py_by_label(tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(zoo_config("sngan", num_steps=2), str(workdir))
    assert json.loads((workdir / "config.json").read_text())["model"]["num_classes"] == 10
    out = _sample(workdir, "--mode=grid", "--label=all", "--cols=3", f"--out={tmp_path}/all.png")
    assert out.returncode == 0, out.stderr[-2000:]
    grid = np.asarray(Image.open(tmp_path / "all.png"))
    assert grid.shape[:2] == (10 * 34 + 2, 3 * 34 + 2)
    # Columns share latents, rows are classes: two rows of one column differ.
    tile = lambda r, c: grid[2 + r * 34 : 34 + r * 34, 2 + c * 34 : 34 + c * 34]  # noqa: E731
    assert not np.array_equal(tile(0, 0), tile(1, 0))
    out = _sample(workdir, "--mode=images", "--label=3", "--num=2", f"--out={tmp_path}/three")
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "three")) == ["000000.png", "000001.png"]
    for bad, needle in (("--label=10", "must be in [0, 10)"), ("--label=x", "class id or 'all'")):
        out = _sample(workdir, "--mode=grid", bad)
        assert out.returncode == 2 and needle in out.stderr, out.stderr[-2000:]


def test_label_on_an_unconditional_run_is_an_error(tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(zoo_config("dcgan", num_steps=2), str(workdir))
    out = _sample(workdir, "--label=1")
    assert out.returncode == 2 and "unconditional; drop --label" in out.stderr, out.stderr
