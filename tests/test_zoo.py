"""Every model of the zoo keeps DCGAN's guarantees: 1 and 8 devices agree, a resumed run is
bit-identical, a NaN never reaches a checkpoint; and conditional models sample by label."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT, ZOO, zoo_config
from PIL import Image
from test_reliability import _poison, _restore_all

from gan_jax.training import loop, train_and_evaluate

NEW_MODELS = [name for name in ZOO if name != "dcgan"]


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def _run_in_subprocess(name, workdir, devices, num_steps):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    out = os.path.join(workdir, "leaves.npz")
    code = (
        "import sys, numpy as np, jax; sys.path.insert(0, 'tests');"
        "from conftest import zoo_config;"
        "from gan_jax.training import train_and_evaluate;"
        f"s = train_and_evaluate(zoo_config({name!r}, num_steps={num_steps}), {workdir!r});"
        f"assert jax.device_count() == {devices};"
        f"np.savez({out!r}, *[np.asarray(x) for x in jax.tree.leaves(jax.device_get(s))])"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=900)
    with np.load(out) as f:
        return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_MODELS)
def test_one_device_and_eight_devices_end_equal(name, tmp_path):
    one = _run_in_subprocess(name, str(tmp_path / "one"), 1, 3)
    eight = _run_in_subprocess(name, str(tmp_path / "eight"), 8, 3)
    assert len(one) == len(eight)
    for a, b in zip(one, eight):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=3e-5)


@pytest.mark.parametrize("name", NEW_MODELS)
def test_resumed_run_is_bit_identical(name, tmp_path):
    straight = train_and_evaluate(zoo_config(name, num_steps=6), str(tmp_path / "straight"))
    workdir = str(tmp_path / "resumed")
    train_and_evaluate(zoo_config(name, num_steps=3, checkpoint_every=3), workdir)
    resumed = train_and_evaluate(zoo_config(name, num_steps=6, checkpoint_every=3), workdir)
    assert int(resumed.step) == 6
    a, b = _leaves(straight), _leaves(resumed)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    if name == "biggan":  # ADA's p moved and came back with the checkpoint
        assert float(resumed.extra["ada"]["p"]) != 0.0


@pytest.mark.parametrize("name", NEW_MODELS)
def test_nan_never_reaches_a_checkpoint(name, tmp_path, monkeypatch):
    _poison(monkeypatch, {5}, np.nan)  # the 5th batch read: generator step 5 with d_steps 1
    workdir = str(tmp_path / "run")
    config = zoo_config(name, num_steps=8, checkpoint_every=2, log_every=2, d_steps=1)
    with pytest.raises(loop.NonFiniteError, match=r"at step 5\b"):
        train_and_evaluate(config, workdir)
    restored = _restore_all(workdir)
    assert max(restored) == 4, sorted(restored)
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
