"""The live progress bar (rate and ETA from host time, compile step left out) and train.py's
console: plain log lines into a pipe, the bar with --progress=on, start-up lines printed once."""

import io
import logging
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, TINY_FLAGS

from gan_jax import progress

# ---------------------------------------------------------------------------------------------
# pure parts: arithmetic and formatting


def test_eta_arithmetic_and_format():
    # 100 steps in 50 s (after compiling), 400 left: 200 s.
    assert progress.eta_seconds(100, 50.0, 400) == 200.0
    assert progress.format_duration(200.0) == "3m20s"
    assert progress.format_duration(3725.9) == "1h02m"
    assert progress.format_duration(59.9) == "0m59s"
    assert progress.format_duration(-5) == "0m00s"
    assert progress.eta_seconds(0, 0.0, 400) is None


def test_rate_leaves_out_the_compile_step_and_counts_from_the_resume_step():
    rate = progress.StepRate(start_step=1000)  # a run resumed at step 1000 of 1501
    rate.add(1001, 130.0)  # the first step: 130 s of compiling
    assert rate.seconds_per_step() is None and rate.eta(1001, 1501) is None
    for i in range(1, 101):  # then 100 steps of 0.5 s
        rate.add(1001 + i, 130.0 + 0.5 * i)
    assert rate.seconds_per_step() == pytest.approx(0.5)
    assert rate.eta(1101, 1501) == pytest.approx(200.0)  # not (130 + 50) / 101 per step


def test_rate_windows_follow_a_change_of_speed():
    rate = progress.StepRate(start_step=0, eta_window=100)
    t = 10.0
    rate.add(1, t)
    for step in range(2, 202):  # 200 steps of 1 s, then 100 of 0.25 s
        t += 1.0
        rate.add(step, t)
    for step in range(202, 302):
        t += 0.25
        rate.add(step, t)
    assert rate.seconds_per_step() == pytest.approx(0.25)  # the last 100 steps only
    assert rate.seconds_per_step(last=10) == pytest.approx(0.25)
    assert rate.eta(301, 401) == pytest.approx(25.0)


def test_line_format_with_known_values():
    line = progress.format_line(
        1200,
        5000,
        seconds_per_step=0.5,
        eta=1900.0,
        batch_size=64,
        losses=(1.2345, 0.98),
        width=200,
        bar_width=10,
    )
    assert line == (
        "step 1200/5000 [##........]  24% | 128.0 img/s | 0.5 s/step | ETA 31m40s | d 1.234 g 0.980"
    )
    before = progress.format_line(1, 5000, seconds_per_step=None, eta=None, batch_size=64)
    assert before.startswith("step    1/5000 [") and before.endswith("| ETA --")


def test_line_fits_a_narrow_console_and_keeps_the_eta():
    kw = dict(seconds_per_step=0.57, eta=2172.0, batch_size=64, losses=(1.23, 0.98))
    wide = progress.format_line(1200, 5000, width=200, **kw)
    assert "s/step" in wide and "d 1.230 g 0.980" in wide
    for width in (100, 80, 60, 50):
        line = progress.format_line(1200, 5000, width=width, **kw)
        assert len(line) <= width - 1 and "ETA 36m12s" in line, (width, line)
    assert "s/step" not in progress.format_line(1200, 5000, width=80, **kw)


def test_auto_means_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    assert not progress.wanted("auto", io.StringIO())
    assert progress.wanted("on", io.StringIO())
    assert not progress.wanted("off", io.StringIO())
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as tty:
        assert progress.wanted("auto", tty)
        monkeypatch.setenv("TERM", "dumb")
        assert not progress.wanted("auto", tty)
    os.close(primary)
    with pytest.raises(ValueError, match="auto, on, off"):
        progress.wanted("yes")


def test_bar_redraws_in_place_at_most_every_interval_and_clears_before_log_lines(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    bar = progress.ProgressBar(10, 0, 8, stream=out, min_interval=1.0)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    handler.addFilter(progress.ClearBeforeLog(bar))
    logger = logging.getLogger("test_progress_bar")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        bar.update(1, 100.0)  # drawn at once (compile step: no rate yet)
        bar.update(2, 100.5)  # throttled: 0.5 s since the last draw
        bar.update(3, 101.0)  # due
        logger.warning("saved")  # erases the bar first
        bar.update(4, 101.1)  # redrawn at once after a log line
        bar.close()
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "\n" not in text.split("LOG saved")[0]  # no newline spam from the bar
    frames = [f for f in text.split("\r") if f.strip()]
    assert frames[0].startswith("step  1/10 [") and frames[0].rstrip().endswith("ETA --")
    assert frames[1].startswith("step  3/10 [") and "ETA 0m03s" in frames[1]  # 7 x 0.5 s
    assert frames[2] == "LOG saved\n"  # on a clean line: the bar was erased before it
    assert frames[3].startswith("step  4/10 [") and text.endswith("\n")
    assert not any(f.startswith("step  2/") for f in frames)


# ---------------------------------------------------------------------------------------------
# train.py in a subprocess: into a pipe (auto: today's lines), then resumed with --progress=on

TINY = [*TINY_FLAGS, "--config.log_every=2"]
LOG_MARK = r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.]+:\d+\] "  # absl's line prefix


def _startup_messages(text):
    """The lines before training starts (the first log line or bar), without absl's prefix."""
    end = min(i for i in (text.find("Epoch ["), text.find("\r"), len(text)) if i >= 0)
    return [re.sub("^" + LOG_MARK, "", ln) for ln in text[:end].splitlines() if ln.strip()]


def _train_py(workdir, *extra):
    # TF's variables unset: train.py itself must keep TensorFlow's banners away.
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GAN_JAX_VERBOSE")
    }
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    cmd = [sys.executable, "train.py", f"--workdir={workdir}", *TINY, *extra]
    # Bytes, not text=True: universal newlines would turn each '\r' into a '\n'.
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=600)
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    assert out.returncode == 0, stderr[-3000:]
    return stdout + stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("progress") / "run"
    plain = _train_py(workdir, "--config.num_steps=4")
    bar = _train_py(workdir, "--config.num_steps=8", "--progress=on")  # resumes at step 4
    return plain, bar


def test_into_a_pipe_it_prints_todays_lines_and_no_bar(runs):
    plain, _ = runs
    assert "\r" not in plain
    steps = re.findall(r"Step \[(\d+)/4\], D_loss: [\d.]+, G_loss: .* img/s, ETA \d+m\d\ds", plain)
    assert steps == ["2", "4"]
    assert "step 4/4 [" not in plain


def test_startup_messages_print_once(runs):
    for text in runs:  # a fresh run and a resumed one
        assert text.count("oneDNN") == 0, text[:2000]  # TF printed its banner twice before
        assert "absl::InitializeLog" not in text
        assert text.count("Mesh: 1 devices") == 1
        assert text.count("Data: 1797 examples") == 1
        messages = _startup_messages(text)
        assert len(messages) >= 3 and len(messages) == len(set(messages)), messages
    assert "Metadata file does not exist" not in runs[1]  # orbax's notice on resume, twice


def test_progress_on_draws_the_bar_in_place_from_the_resume_step(runs):
    _, bar = runs
    assert "\r" in bar and "ETA" in bar
    assert "Resumed from step 4" in bar
    frames = [f for line in bar.split("\n") for f in line.split("\r")]
    bars = [f for f in frames if f.startswith("step ")]
    assert bars[0].startswith("step 5/8 [") and bars[0].rstrip().endswith("ETA --")
    measured = r"\| [\d.]+ img/s \|.* ETA \dm\d\ds \| d [\d.]+ g [\d.]+"  # after a log line
    assert any(re.search(measured, b) for b in bars), bars
    assert bars[-1].startswith("step 8/8 [##########") and " 100% " in bars[-1]
    # Log lines never land on the bar's line: each starts on a fresh (erased) line.
    for frame in bars:
        assert not re.search(LOG_MARK, frame), frame
    lines = [ln.split("\r")[-1] for ln in bar.split("\n")]  # what a terminal keeps
    kept_bars = [ln for ln in lines if ln.startswith("step ")]
    assert kept_bars == [bars[-1]]  # only the final bar stays, once
    assert re.search(r"Step \[8/8\], D_loss: .* img/s, ETA ", bar)  # the log lines remain


def test_quiet_tensorflow_keeps_the_users_own_values(monkeypatch):
    from gan_jax import platform

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")  # the user's choice
    platform.quiet_tensorflow()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
