"""Every model of the zoo keeps DCGAN's guarantees: 1 and 8 devices agree, a resumed run is
bit-identical, a NaN never reaches a checkpoint; and conditional models sample by label."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, ZOO, assert_devices_agree, device_pair, leaves, zoo_config
from PIL import Image
from test_reliability import _poison, _restore_all

from gan_jax.training import loop, train_and_evaluate

NEW_MODELS = [name for name in ZOO if name != "dcgan"]


# One config per model for the run stopped by a NaN, the straight run it must end equal to and
# the 1-device side of the device test: the step compiles once per model (a minute on 2 cores
# for StyleGAN2), and the other runs reuse it.
_GUARANTEE_RUN = {"num_steps": 6, "checkpoint_every": 2, "log_every": 2}


@pytest.mark.parametrize("name", NEW_MODELS)
def test_nan_is_never_checkpointed_and_the_resumed_run_is_bit_identical(
    name, tmp_path, monkeypatch
):
    # A NaN in the 5th batch read stops the run at the step that reads it; every checkpoint
    # left is finite, the newest the last good one. Resumed on clean data, the run ends
    # bit-identical to one that never stopped: parameters, optimiser states, spectral-norm
    # vectors, ADA's p, the path-length mean and the w average all came back, and the input
    # resumed at the right batch. (DCGAN's preemptions by signal: test_reliability.py.)
    config = zoo_config(name, **_GUARANTEE_RUN)
    straight = train_and_evaluate(config, str(tmp_path / "straight"))
    workdir = str(tmp_path / "resumed")
    bad = 4 // config.d_steps + 1  # the generator step that reads it (d_steps batches a step)
    with monkeypatch.context() as patch:
        _poison(patch, {5}, np.nan)
        with pytest.raises(loop.NonFiniteError, match=rf"at step {bad}\b"):
            train_and_evaluate(config, workdir)
    restored = _restore_all(workdir)
    assert max(restored) == (bad - 1) // 2 * 2, sorted(restored)  # the last good checkpoint
    for arrays in restored.values():
        assert all(np.isfinite(x).all() for x in arrays if x.dtype.kind == "f")
    resumed = train_and_evaluate(config, workdir)
    assert int(resumed.step) == 6
    a, b = leaves(straight), leaves(resumed)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    if name == "biggan":  # ADA's p moved and came back with the checkpoint
        assert float(resumed.extra["ada"]["p"]) != 0.0


# A tiny step's real batch (d_steps of them) with labels, the same on both meshes; the config
# of the test above, whose compiled programs the 1-device side reuses (it runs after it).
_DEVICE_SETUP = """
from conftest import zoo_config
c = zoo_config(NAME, **GUARANTEE_RUN)
shape = (c.d_steps, c.batch_size, 32, 32, 1)
x = jax.random.uniform(jax.random.PRNGKey(1), shape, minval=-1.0, maxval=1.0)
y = jax.random.randint(jax.random.PRNGKey(2), shape[:2], 0, 10)
batch = {'image': x, 'label': y}
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_MODELS)
def test_one_device_and_eight_devices_end_equal(name, tmp_path):
    config = zoo_config(name)
    lr = max(config.optim.g_lr, config.optim.d_lr)
    setup = _DEVICE_SETUP.replace("NAME", repr(name)).replace("GUARANTEE_RUN", repr(_GUARANTEE_RUN))
    assert_devices_agree(*device_pair(setup, tmp_path), lr=lr)


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
