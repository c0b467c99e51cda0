"""Sampling: reproducible pixels, EMA and raw weights, grids, GIF/MP4/strip, sample.py errors.

One tiny run is trained per module (a few seconds); everything else loads it.
"""

import json
import os
import shutil
import subprocess
import sys

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from conftest import ROOT, assert_clean_failure, leaves, tiny_config
from PIL import Image

from gan_jax import sampling
from gan_jax.training import train_and_evaluate
from gan_jax.training.checkpoint import CheckpointError

Z_DIM = 16

# imageio reads MP4s through an ffmpeg subprocess: fork + exec, no Python in the child.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


@pytest.fixture(scope="module", autouse=True)
def fast_compile():
    # Compilation dominates these tiny shapes; restored after the module for other tests.
    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, fast_compile):
    path = str(tmp_path_factory.mktemp("run"))
    train_and_evaluate(tiny_config(ema_decay=0.9), path)
    return path


@pytest.fixture(scope="module")
def handle(workdir):
    return sampling.load_generator(workdir)


def _sample_py(*args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    cmd = [sys.executable, os.path.join(ROOT, "sample.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def _files(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
    )


def test_handle_describes_the_run(handle):
    assert handle.step == 4
    assert handle.z_dim == Z_DIM
    assert handle.use_ema and not handle.conditional
    assert handle.image_shape == (32, 32, 1)


def test_same_seed_same_pixels(handle):
    a = sampling.generate_array(handle, 6, seed=3, batch_size=4)
    b = sampling.generate_array(handle, 6, seed=3, batch_size=4)
    c = sampling.generate_array(handle, 6, seed=4, batch_size=4)
    assert a.shape == (6, 32, 32, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Image i is latent i of the seed whatever the count: a smaller request is a prefix
    # (to one grey level: XLA's float rounding may depend on the batch shape).
    d = sampling.generate_array(handle, 3, seed=3, batch_size=4)
    assert np.abs(d.astype(int) - a[:3]).max() <= 1


def test_ema_and_raw_weights_differ_and_both_load(workdir, handle):
    raw = sampling.load_generator(workdir, use_ema=False)
    assert not raw.use_ema and raw.step == handle.step
    a = sampling.generate_array(handle, 4, seed=0)
    b = sampling.generate_array(raw, 4, seed=0)
    assert not np.array_equal(a, b)
    ema_leaves = leaves(handle.variables["params"])
    raw_leaves = leaves(raw.variables["params"])
    assert any(not np.array_equal(x, y) for x, y in zip(ema_leaves, raw_leaves))


def test_load_a_given_step_and_missing_ones(workdir):
    assert sampling.load_generator(workdir, step=2).step == 2
    with pytest.raises(CheckpointError, match="steps saved"):
        sampling.load_generator(workdir, step=3)
    with pytest.raises(CheckpointError, match="checkpoints_best"):
        sampling.load_generator(workdir, step="best")


def test_load_the_best_checkpoint(workdir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(workdir, run, ignore=shutil.ignore_patterns("generated", ".lock"))
    shutil.rmtree(run / "checkpoints" / "4")
    os.rename(run / "checkpoints", run / sampling.BEST_DIR)  # the best kept: step 2
    assert sampling.load_generator(str(run), step="best").step == 2


def test_truncation_bounds_latents_and_is_reproducible():
    z = sampling.latents(Z_DIM, 64, seed=1, truncation=0.5)
    assert np.abs(z).max() <= 0.5
    np.testing.assert_array_equal(z, sampling.latents(Z_DIM, 64, seed=1, truncation=0.5))
    assert np.abs(sampling.latents(Z_DIM, 64, seed=1)).max() > 1.0
    # Latents are per index: a batch starting at 10 is a slice of the whole.
    np.testing.assert_array_equal(
        sampling.latents(Z_DIM, 5, seed=1, start=10), sampling.latents(Z_DIM, 15, seed=1)[10:]
    )


def test_slerp_keeps_the_norm_and_the_ends():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 128)).astype(np.float32)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0, 1, 9)
    mid = sampling.slerp(a, b, t)
    np.testing.assert_allclose(mid[0], a, atol=1e-5)
    np.testing.assert_allclose(mid[-1], b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(mid, axis=-1), np.linalg.norm(a), rtol=1e-5)
    # lerp shrinks the norm in between: the reason slerp is the default for Gaussian z.
    assert np.linalg.norm(sampling.lerp(a, b, 0.5)) < 0.9 * np.linalg.norm(a)
    np.testing.assert_allclose(sampling.slerp(a, a, 0.3), a, atol=1e-5)  # parallel: no NaN


def test_paths_visit_the_keys_and_loops_close():
    keys = np.random.default_rng(1).normal(size=(3, 2, 8)).astype(np.float32)
    p = sampling.path(keys, 9)
    assert p.shape == (9, 2, 8)
    np.testing.assert_allclose(p[0], keys[0], atol=1e-5)
    np.testing.assert_allclose(p[4], keys[1], atol=1e-5)
    np.testing.assert_allclose(p[-1], keys[-1], atol=1e-5)
    loop = sampling.path(keys, 12, loop=True)
    assert loop.shape == (12, 2, 8)
    np.testing.assert_allclose(loop[0], keys[0], atol=1e-5)
    np.testing.assert_allclose(loop[4], keys[1], atol=1e-5)
    # A loop is the open path through keys + keys[0]: the last frame leads back to the first.
    closed = sampling.path(np.concatenate([keys, keys[:1]]), 13)
    np.testing.assert_allclose(loop, closed[:12], atol=1e-5)


def test_grid_size(handle, tmp_path):
    images = sampling.generate_array(handle, 10, seed=0)
    grid = sampling.make_grid(images, cols=4)
    assert grid.shape == (3 * 34 + 2, 4 * 34 + 2, 1)
    path = str(tmp_path / "grid.png")
    sampling.save_png(grid, path)
    assert Image.open(path).size == (4 * 34 + 2, 3 * 34 + 2)


def test_gif_mp4_and_strip_frame_counts_and_sizes(handle, tmp_path):
    keys = sampling.latents(Z_DIM, 3 * 4, seed=5).reshape(3, 4, Z_DIM)
    frames = sampling.render_frames(handle, sampling.path(keys, 12, loop=True), cols=2)
    assert frames.shape == (12, 2 * 34 + 2, 2 * 34 + 2, 1)  # a 2x2 grid per frame
    big = sampling.upscale(frames, 3)
    sampling.save_gif(big, str(tmp_path / "a.gif"), fps=10)
    sampling.save_mp4(big, str(tmp_path / "a.mp4"), fps=10)
    sampling.save_strip(frames, str(tmp_path / "a.png"), count=5)
    gif = iio.imread(str(tmp_path / "a.gif"), index=None)
    mp4 = iio.imread(str(tmp_path / "a.mp4"), index=None)
    assert gif.shape[:3] == (12, 210, 210)
    assert mp4.shape[:3] == (12, 210, 210)
    assert abs(iio.immeta(str(tmp_path / "a.mp4"))["fps"] - 10) < 0.01
    assert Image.open(str(tmp_path / "a.png")).size == (5 * 72 + 2, 74)
    # GIF stores the palette exactly: the grey levels come back unchanged.
    np.testing.assert_array_equal(gif[3, ..., 0], big[3, ..., 0])
    assert sorted(os.listdir(tmp_path)) == ["a.gif", "a.mp4", "a.png"]  # no temporaries left


def test_many_images_are_written_in_batches(handle, tmp_path):
    seen = []

    def spy(batches):
        for b in batches:
            seen.append(len(b))
            yield b

    folder = str(tmp_path / "many")
    paths = sampling.save_images(spy(sampling.generate(handle, 50, seed=0, batch_size=8)), folder)
    assert len(paths) == 50 and len(os.listdir(folder)) == 50
    assert seen == [8] * 6 + [2]
    first = np.asarray(Image.open(paths[0]))
    np.testing.assert_array_equal(
        first, sampling.generate_array(handle, 1, batch_size=8)[0, ..., 0]
    )


def test_label_on_an_unconditional_model_is_an_error(handle):
    with pytest.raises(sampling.SamplingError, match="unconditional"):
        sampling.generate_array(handle, 2, labels=3)


def test_sample_py_images_and_interpolation(workdir, tmp_path):
    out = _sample_py(
        f"--workdir={workdir}",
        "--mode=images",
        "--num=20",
        "--batch_size=8",
        f"--out={tmp_path / 'imgs'}",
    )
    assert out.returncode == 0, out.stderr
    assert len(os.listdir(tmp_path / "imgs")) == 20
    out = _sample_py(
        f"--workdir={workdir}",
        "--mode=interpolate",
        "--seeds=1,2,3",
        "--frames=7",
        "--format=gif,mp4,strip",
        "--no_ema",
    )
    assert out.returncode == 0, out.stderr
    stem = os.path.join(workdir, "generated", "interpolate_step4_seeds1-2-3_raw")
    assert iio.imread(stem + ".gif", index=None).shape[:3] == (7, 256, 256)  # 32 px x 8
    assert iio.imread(stem + ".mp4", index=None).shape[:3] == (7, 256, 256)
    assert os.path.exists(stem + "_strip.png")


def test_sample_py_standing_statistics(workdir, tmp_path):
    """--standing_stats=N samples with batch statistics recomputed for the sampled weights, as
    evaluate.py scores them; the file name says so, and a negative count is one message."""
    out = _sample_py(f"--workdir={workdir}", "--no_ema", "--standing_stats=2", "--num=4")
    assert out.returncode == 0, out.stderr
    assert "raw weights, standing statistics of 2 batches" in out.stderr
    grid = np.asarray(
        Image.open(os.path.join(workdir, "generated", "grid_step4_seed0_raw_standing2.png"))
    )
    standing = sampling.load_generator(workdir, use_ema=False, standing_stats=2)
    running = sampling.load_generator(workdir, use_ema=False, standing_stats=0)
    expected = sampling.make_grid(sampling.generate_array(standing, 4, seed=0))
    np.testing.assert_array_equal(grid, expected[..., 0] if grid.ndim == 2 else expected)
    assert not np.array_equal(
        expected, sampling.make_grid(sampling.generate_array(running, 4, seed=0))
    )
    assert_clean_failure(
        _sample_py(f"--workdir={workdir}", "--standing_stats=-2"), "--standing_stats"
    )


def test_sample_py_bad_requests_fail_cleanly(workdir, tmp_path):
    out = _sample_py(f"--workdir={workdir}", "--num=0")
    assert_clean_failure(out, "--num")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = _sample_py(f"--workdir={workdir}", f"--out={blocker}/sub/grid.png")
    assert_clean_failure(out, "cannot write")
    out = _sample_py(f"--workdir={tmp_path / 'nowhere'}")
    assert_clean_failure(out, "does not exist")
    out = _sample_py(f"--workdir={workdir}", "--cols=four")
    assert_clean_failure(out, "--cols")
    out = _sample_py(f"--workdir={workdir}", "--mode=style_mix", "--rows=1,2")
    assert_clean_failure(out, "--cols")
    out = _sample_py(f"--workdir={workdir}", "--rows=1,2")
    assert_clean_failure(out, "style_mix")
    # StyleGAN2's options on a DCGAN run (after loading it: the model decides).
    out = _sample_py(f"--workdir={workdir}", "--mode=style_mix", "--rows=1", "--cols=2")
    assert_clean_failure(out, "StyleGAN2")
    out = _sample_py(f"--workdir={workdir}", "--truncation=0")
    assert_clean_failure(out, "--truncation")


def test_sample_py_broken_workdirs_fail_cleanly(workdir, tmp_path):
    # A run with its config but no checkpoint.
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(os.path.join(workdir, "config.json"), empty / "config.json")
    # A checkpoint whose config.json was edited to another width.
    edited = tmp_path / "edited"
    shutil.copytree(workdir, edited, ignore=shutil.ignore_patterns("generated", ".lock"))
    config = json.loads((edited / "config.json").read_text())
    config["model"]["g_width"] = 16
    (edited / "config.json").write_text(json.dumps(config))
    procs = {
        name: subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "sample.py"), f"--workdir={path}"],
            cwd=ROOT,
            env=dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in (("empty", empty), ("edited", edited))
    }
    results = {}
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    assert_clean_failure(results["empty"], "no checkpoint")
    assert_clean_failure(results["edited"], "does not match")
    for folder in (empty, edited):
        assert not os.path.exists(folder / "generated")  # nothing half-written


def test_bench_nearest_tells_copies_from_new_images(workdir, tmp_path, capsys):
    """bench/nearest.py: samples saved as the 'training folder' are found at distance 0 and
    drawn beside themselves; the distance itself is checked on images with known values."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location(
        "nearest", os.path.join(ROOT, "bench", "nearest.py")
    )
    nearest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nearest)

    black, white = np.zeros((1, 4, 4, 3), np.uint8), np.full((1, 4, 4, 3), 255, np.uint8)
    grey = np.full((1, 4, 4, 3), 51, np.uint8)  # 0.2 from black, 0.8 from white
    d, i = nearest.nearest(np.concatenate([grey, white]), np.concatenate([white, black]), k=2)
    np.testing.assert_allclose(d, [[0.2, 0.8], [0.0, 1.0]], atol=1e-6)
    np.testing.assert_array_equal(i, [[1, 0], [0, 1]])

    handle = sampling.load_generator(workdir)
    fakes = sampling.generate_array(handle, 6, seed=0)  # what nearest.py draws with --seed=0
    others = sampling.generate_array(handle, 4, seed=99)
    for folder, batch in (("train", fakes), ("held", others)):
        (tmp_path / folder).mkdir()
        for n, x in enumerate(batch):
            Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x).save(
                tmp_path / folder / f"{n}.png"
            )
    out, js = tmp_path / "nn.png", tmp_path / "nn.json"
    args = [
        f"--workdir={workdir}",
        f"--real={tmp_path / 'train'}",
        f"--heldout={tmp_path / 'held'}",
    ]
    args += ["--num=6", "--show=3", "--k=2", f"--out={out}", f"--json={js}"]
    assert nearest.main(args) == 0
    result = json.loads(js.read_text())
    assert result["samples_median"] == 0.0 and result["ratio"] == 0.0  # every sample is a copy
    assert result["heldout_median"] > 0 and result["closer_than_heldout_p5"] == 1.0
    assert (result["train_images"], result["heldout_images"], result["step"]) == (6, 4, handle.step)
    assert "ratio 0.00" in capsys.readouterr().out
    grid = np.asarray(Image.open(out))
    grid = grid if grid.ndim == 3 else grid[..., None]
    h, w = fakes.shape[1:3]
    assert grid.shape[:2] == (3 * (h + 2) + 2, 3 * (w + 2) + 2)  # samples + 2 neighbour rows

    def tile(r, c):
        return grid[2 + r * (h + 2) :][:h, 2 + c * (w + 2) :][:, :w]

    for c in range(3):  # each sample, and below it its nearest training image: itself
        np.testing.assert_array_equal(tile(0, c), fakes[c])
        np.testing.assert_array_equal(tile(1, c), fakes[c])

    assert nearest.main([f"--workdir={workdir}", f"--real={tmp_path / 'nope'}"]) == 2
    assert "'" + str(tmp_path / "nope") + "' is not a folder of images" in capsys.readouterr().err


def test_loading_a_run_logs_no_warnings(workdir, caplog):
    """A notebook has no absl filters: loading a run must not print orbax's notices (the
    standalone metadata reader logged "Metadata file does not exist" twice per load)."""
    import logging  # noqa: PLC0415

    with caplog.at_level(logging.INFO):
        handle = sampling.load_generator(workdir)
    assert handle.step > 0
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
