"""sample.py --mode=timelapse and --mode=curves: a run's sample grids and TensorBoard scalars.

One tiny run with ADA is trained for the module (a few seconds); the rest reads its files or
copies of them. Nothing here loads a model.
"""

import os
import shutil
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import ROOT, assert_clean_failure, tiny_config
from PIL import Image

from gan_jax.errors import SamplingError
from gan_jax.sampling import curves, timelapse, video

# imageio reads MP4s through an ffmpeg subprocess: fork + exec, no Python in the child.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")

STEPS, LOG_EVERY, SAMPLE_EVERY = 6, 2, 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import jax  # noqa: PLC0415

    from gan_jax.training import train_and_evaluate  # noqa: PLC0415

    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    path = str(tmp_path_factory.mktemp("run"))
    try:
        config = tiny_config(
            **{
                "num_steps": STEPS,
                "log_every": LOG_EVERY,
                "sample_every": SAMPLE_EVERY,
                "checkpoint_every": STEPS,
                "augment.mode": "ada",
                "augment.adjust_every": 1,
                "augment.speed_images": 1000,
            }
        )
        train_and_evaluate(config, path)
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
    return path


def _grid(path):
    array = np.asarray(Image.open(path))
    return array[..., None] if array.ndim == 2 else array


def _sample_py(*commands):
    """Runs sample.py once per argument list, all at once; CompletedProcess each."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "sample.py"), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    out = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr))
    return out


def _gif_frames(path):
    """Every frame of a GIF as uint8 RGB, and each frame's duration (ms)."""
    frames, durations = [], []
    with Image.open(path) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
            durations.append(gif.info["duration"])
    return np.stack(frames), durations


@pytest.fixture
def odd_names(run, tmp_path):
    """A copy of the run's grids plus step_9.png and step_10.png (a string sort puts 10
    first), each different, and files that are not grids."""
    work = tmp_path / "odd"
    shutil.copytree(os.path.join(run, "samples"), work / "samples")
    first = _grid(work / "samples" / "step_00000002.png")
    Image.fromarray(255 - first[..., 0]).save(work / "samples" / "step_9.png")
    marked = first.copy()
    marked[:10, :10] = 255
    Image.fromarray(marked[..., 0]).save(work / "samples" / "step_10.png")
    (work / "samples" / ".step_00000011.123.tmp.png").write_bytes(b"half a file")
    (work / "samples" / "notes.txt").write_text("not a grid")
    return str(work)


def test_the_samples_folder_is_the_training_loops(run):
    from gan_jax.training import loop  # noqa: PLC0415 (loaded by the run already)

    assert timelapse.SAMPLES_DIR == loop.SAMPLES_DIR


def test_grids_sort_by_step_number_and_frames_hold_their_pixels(odd_names):
    files = timelapse.grid_files(odd_names)
    assert [s for s, _ in files] == [2, 4, 6, 9, 10]
    assert os.path.basename(files[-1][1]) == "step_10.png"
    frames, steps = timelapse.timelapse_frames(odd_names, scale=3)
    assert steps.tolist() == [2, 4, 6, 9, 10]
    grids = [_grid(path) for _, path in files]
    h, w, c = grids[0].shape
    bar = frames.shape[1] - 3 * h
    assert bar == timelapse.bar_height(3 * w) > 0
    assert frames.shape == (5, bar + 3 * h, 3 * w, c)
    for frame, grid in zip(frames, grids):
        np.testing.assert_array_equal(frame[bar:], video.upscale(grid, 3))  # never drawn over
    bars = frames[:, :bar]
    assert all(bars[i].any() for i in range(5))  # the text is there
    for i in range(4):
        assert not np.array_equal(bars[i], bars[i + 1]), (steps[i], steps[i + 1])
    unlabelled, _ = timelapse.timelapse_frames(odd_names, label=False)
    np.testing.assert_array_equal(unlabelled[3], grids[3])


def test_select_spreads_frames_and_keeps_the_first_and_last():
    steps = np.arange(1, 10_001) * 50  # a 10,000-grid run
    picked = timelapse.select(steps, max_frames=100)
    assert len(picked) == 100 and picked[0] == 0 and picked[-1] == 9_999
    assert set(np.diff(picked)) <= {100, 101}  # evenly spread
    picked = timelapse.select(steps, every=1_000)
    assert picked[0] == 0 and picked[-1] == 9_999
    assert np.all(np.diff(steps[picked])[:-1] == 1_000)
    assert len(timelapse.select(steps, every=1_000, max_frames=7)) == 7
    assert timelapse.select([5], max_frames=2).tolist() == [0]
    assert timelapse.select([5, 7, 9], every=10).tolist() == [0, 2]
    assert timelapse.select(steps[:3]).tolist() == [0, 1, 2]


def test_unreadable_and_resized_grids(run, tmp_path, caplog):
    work = tmp_path / "mixed"
    (work / "samples").mkdir(parents=True)
    small = np.arange(40 * 30, dtype=np.uint8).reshape(30, 40)
    Image.fromarray(small).save(work / "samples" / "step_1.png")  # grey, 40 x 30
    (work / "samples" / "step_2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    shutil.copy(
        os.path.join(run, "samples", f"step_{STEPS:08d}.png"), work / "samples" / "step_3.png"
    )
    last = _grid(work / "samples" / "step_3.png")
    colour = np.zeros((20, 20, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(work / "samples" / "step_0.png")  # colour, 20 x 20
    with caplog.at_level("WARNING"):
        frames, steps = timelapse.timelapse_frames(str(work), label=False)
    assert steps.tolist() == [0, 1, 3]
    assert "step_2.png" in caplog.text  # the unreadable one, named
    assert "40x30" in caplog.text and "20x20" in caplog.text
    assert frames.shape == (3, *last.shape[:2], 3)  # the last grid's size; all colour
    np.testing.assert_array_equal(frames[2], np.repeat(last, 3, axis=-1))
    assert frames[0][..., 0].max() == 200 and frames[0][..., 1].max() == 0
    (work / "samples" / "step_1.png").write_bytes(b"")
    for name in ("step_0.png", "step_3.png"):
        (work / "samples" / name).unlink()
    with pytest.raises(SamplingError, match="none of the sample grids could be read"):
        timelapse.timelapse_frames(str(work))
    for name in os.listdir(work / "samples"):
        (work / "samples" / name).unlink()
    with pytest.raises(SamplingError, match="no sample grids in .*sample_every"):
        timelapse.timelapse_frames(str(work))


def test_read_scalars_of_a_real_run(run):
    scalars = curves.read_scalars(run)
    for tag in ("d_loss", "g_loss", "d_real", "d_fake", "augment_p", "ada_rt"):
        steps, values = scalars[tag]
        assert steps.tolist() == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY)), tag
        assert np.all(np.isfinite(values)), tag
    assert np.all((scalars["d_real"][1] >= 0) & (scalars["d_real"][1] <= 1))
    assert "samples" not in scalars  # the image summary of the same grids
    assert not any(tag.startswith("_hparams_") for tag in scalars)
    titles = [title for title, _ in curves.groups(scalars)]
    assert titles == ["Losses", "D outputs", "Augmentation", "Gradient norms"]


def test_resumed_runs_scores_and_eval_folder(tmp_path):
    from clu import metric_writers  # noqa: PLC0415

    work = tmp_path / "resumed"
    first = metric_writers.SummaryWriter(str(work))
    for step in range(1, 6):
        first.write_scalars(step, {"d_loss": float(step), "g_loss": -float(step)})
    first.write_images(2, {"samples": np.zeros((1, 4, 4, 3), np.uint8)})
    first.close()
    again = metric_writers.SummaryWriter(str(work))  # resumed from step 2's checkpoint
    again.write_scalars(3, {"d_loss": 30.0})
    again.write_scalars(4, {"d_loss": 40.0, "fid": 120.0, "kid": 0.1})
    again.close()
    evaluate = metric_writers.SummaryWriter(str(work / "eval"))
    evaluate.write_scalars(4, {"fid": 110.0})
    evaluate.close()
    scalars = curves.read_scalars(str(work))
    assert scalars["d_loss"][0].tolist() == [1, 2, 3, 4]
    assert scalars["d_loss"][1].tolist() == [1.0, 2.0, 30.0, 40.0]
    assert scalars["g_loss"][0].tolist() == [1, 2, 3, 4, 5]  # not logged again: kept
    assert scalars["eval/fid"][1].tolist() == [110.0]
    assert "samples" not in scalars
    path = tmp_path / "c.png"
    drawn = curves.plot_curves(scalars, str(path), smoothing=0.5)
    assert drawn == ["Losses", "FID", "KID"]
    assert dict(curves.groups(scalars))["FID"] == [("fid", "FID"), ("eval/fid", "FID (eval)")]
    np.testing.assert_allclose(curves.smooth([1.0, 1.0, 1.0], 0.9), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(curves.smooth([0.0, 2.0], 0.5), [0.0, 4.0 / 3.0])


def test_compare_runs_overlays_tags_of_several_runs(tmp_path):
    """bench/compare_runs.py (the README's few-shot figure): one panel per tag, a line per
    run that logged it; a tag no run has is one message."""
    import importlib.util  # noqa: PLC0415

    from clu import metric_writers  # noqa: PLC0415

    for name, logs_p in (("ada", True), ("none", False)):
        writer = metric_writers.SummaryWriter(str(tmp_path / name))
        for step in range(1, 5):
            values = {"ada_rt": step / 10}
            if logs_p:
                values["augment_p"] = step / 100
            writer.write_scalars(step, values)
        writer.close()
    spec = importlib.util.spec_from_file_location(
        "compare_runs", os.path.join(ROOT, "bench", "compare_runs.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runs = [("ADA", str(tmp_path / "ada")), ("none", str(tmp_path / "none"))]
    out = tmp_path / "cmp.png"
    drawn = module.plot(runs, [("ada_rt", "r_t"), ("augment_p", "p")], str(out), smoothing=0.5)
    assert drawn == {"ada_rt": ["ADA", "none"], "augment_p": ["ADA"]}
    assert Image.open(out).size == (840, 340)  # two 4.2 x 3.4 inch panels at 100 dpi
    with pytest.raises(SystemExit, match="no run logged eval/fid"):
        module.plot(runs, [("eval/fid", "FID")], str(tmp_path / "x.png"))
    with pytest.raises(SystemExit, match="is not a folder"):
        module.main(["--run", f"x={tmp_path / 'missing'}", "--tag", "ada_rt=r", "--out", "y.png"])


def test_sample_py_timelapse_and_curves(run, odd_names, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    no_events = tmp_path / "no_events"
    shutil.copytree(os.path.join(run, "samples"), no_events / "samples")
    header_only = tmp_path / "header_only"  # what a run that has just started holds
    header_only.mkdir()
    (event,) = [n for n in os.listdir(run) if n.startswith("events.out.tfevents")]
    with open(os.path.join(run, event), "rb") as f:
        data = f.read()
    first_record = 12 + int.from_bytes(data[:8], "little") + 4
    (header_only / event).write_bytes(data[:first_record])
    stem = tmp_path / "tl"
    ok, curves_ok, no_grids, none_logged, no_scalars, unwritable, bad_flag = _sample_py(
        [f"--workdir={odd_names}", "--mode=timelapse", "--scale=2", f"--out={stem}"],
        [f"--workdir={run}", "--mode=curves", "--smoothing=0.6"],
        [f"--workdir={tmp_path}", "--mode=timelapse"],
        [f"--workdir={no_events}", "--mode=curves"],
        [f"--workdir={header_only}", "--mode=curves"],
        [f"--workdir={run}", "--mode=timelapse", f"--out={blocker}/sub/tl"],
        [f"--workdir={run}", "--mode=timelapse", "--frames=10"],
    )
    assert ok.returncode == 0, ok.stderr
    grids = [_grid(p) for _, p in timelapse.grid_files(odd_names)]
    h, w, _ = grids[0].shape
    frames, durations = _gif_frames(f"{stem}.gif")
    bar = frames.shape[1] - 2 * h
    assert frames.shape[:3] == (len(grids), bar + 2 * h, 2 * w)
    for frame, grid in zip(frames, grids):
        np.testing.assert_array_equal(frame[bar:, :, 0], video.upscale(grid, 2)[..., 0])
    assert durations[:-1] == [100] * (len(grids) - 1)  # --fps is 10 for a timelapse
    assert durations[-1] == 2000  # --hold=2: the last grid stays 2 s
    mp4 = iio.imread(f"{stem}.mp4", index=None)
    assert mp4.shape[:3] == (len(grids) + 19, bar + 2 * h, 2 * w)  # 20 frames of hold at 10 fps
    strip = np.asarray(Image.open(f"{stem}_strip.png"))
    assert strip.shape[1] == len(grids) * (2 * w + 2) + 2

    assert curves_ok.returncode == 0, curves_ok.stderr
    png = Image.open(os.path.join(run, "generated", "curves.png"))
    assert 800 <= png.size[0] <= 1400 and 500 <= png.size[1] <= 1000, png.size  # 2 x 2 plots
    assert np.asarray(png.convert("L")).std() > 10  # drawn, not blank

    assert_clean_failure(no_grids, "no sample grids in", "sample_every")
    assert_clean_failure(none_logged, "no TensorBoard event files")
    assert_clean_failure(no_scalars, "hold no scalars", "log_every")
    assert_clean_failure(unwritable, "cannot write")
    assert_clean_failure(bad_flag, "--frames", "--max_frames")
    assert not os.path.exists(os.path.join(tmp_path, "generated"))
