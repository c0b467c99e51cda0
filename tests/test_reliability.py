"""Faults injected for real: kills, unwritable and full disks, a busy workdir, broken images,
bad flags and NaNs. Nothing is mocked where the real thing can run: train.py runs in a
subprocess and is killed, stopped, starved of disk space or fed broken files from outside.

Other timings: GAN_JAX_KILL_SEED=<int> draws other kill moments, GAN_JAX_KILLS=<n> sets how
many SIGKILLs the kill test sends (default 8; more keep the same mix of moments).
"""

import contextlib
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import jax
import ml_collections
import numpy as np
import pytest
from conftest import ROOT, tiny_config, xla_flags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gan_jax import config_lib, logs
from gan_jax import input as input_lib
from gan_jax.training import checkpoint as ckpt_lib
from gan_jax.training import loop, train_and_evaluate, validation

NUM_STEPS = 40
TINY = [
    "--config.num_epochs=0",
    f"--config.num_steps={NUM_STEPS}",
    "--config.batch_size=8",
    "--config.model.g_width=8",
    "--config.model.d_width=8",
    "--config.model.z_dim=16",
    "--config.log_every=5",
    "--config.sample_every=1000",
    "--config.checkpoint_every=1",
    "--config.num_sample_images=4",
    "--config.standing_stats=0",
]
TMP_MARK = "orbax-checkpoint-tmp"


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """train.py's environment: one device, and a shared persistent compilation cache."""
    cache = str(tmp_path_factory.mktemp("jax_cache"))
    e = dict(os.environ, PYTHONUNBUFFERED="1", JAX_COMPILATION_CACHE_DIR=cache)
    e.update(JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    e.update(JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    e["XLA_FLAGS"] = xla_flags()  # one device
    e.pop("GAN_JAX_VERBOSE", None)
    return e


def _cmd(workdir, *extra, config="configs/dcgan.py"):
    return [sys.executable, "train.py", f"--config={config}", f"--workdir={workdir}", *TINY, *extra]


class _Run:
    """train.py in a subprocess; its stderr lines are collected as they arrive."""

    def __init__(self, cmd, env, **kwargs):
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )
        self.lines = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern, count=1, timeout=300.0, fail_on_timeout=True):
        """The `count`-th line matching `pattern`; None if the process ended (or timed out)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in map(rx.search, self.lines) if m]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if self._eof or (left <= 0 and not fail_on_timeout):
                    return None
                if left <= 0:
                    self.proc.kill()
                    raise AssertionError(f"no {pattern!r} in {timeout} s:\n{self.text[-3000:]}")
                self._cond.wait(min(left, 0.5))

    def finish(self, timeout=300.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(10)
        return rc


def _run(cmd, env, timeout=300, **kwargs):
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def _restore_all(workdir) -> dict:
    """Every checkpoint orbax lists in `workdir`, restored without a target: step -> leaves."""
    import orbax.checkpoint as ocp  # noqa: PLC0415

    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return {}
    options = ocp.CheckpointManagerOptions(read_only=True, create=False)
    manager = ocp.CheckpointManager(directory, options=options)
    try:
        return {
            step: [
                np.asarray(x)
                for x in jax.tree.leaves(
                    jax.device_get(manager.restore(step, args=ocp.args.StandardRestore()))
                )
            ]
            for step in manager.all_steps()
        }
    finally:
        manager.close()


def _partial_saves(workdir) -> list[str]:
    directory = os.path.join(workdir, "checkpoints")
    return (
        sorted(n for n in os.listdir(directory) if TMP_MARK in n)
        if os.path.isdir(directory)
        else []
    )


def _assert_equal_params(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _assert_clean_error(result_text, rc, expected_rc, needle):
    """One 'error: ...' line naming the problem, the right exit code, no traceback."""
    assert rc == expected_rc, result_text[-3000:]
    assert "Traceback" not in result_text, result_text[-3000:]
    errors = [line for line in result_text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result_text[-3000:]
    assert re.search(needle, errors[0]), errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """The uninterrupted run that every interrupted lineage must end bit-identical to."""
    workdir = str(tmp_path_factory.mktemp("reference"))
    t = time.monotonic()
    out = _run(_cmd(workdir), env)
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"\nreference run: {time.monotonic() - t:.1f} s")
    return _restore_all(workdir)[NUM_STEPS]


# ---------------------------------------------------------------------------------------------
# kills


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path, env, reference):
    seed = int(os.environ.get("GAN_JAX_KILL_SEED", "6"))
    num_kills = int(os.environ.get("GAN_JAX_KILLS", "8"))
    rng = random.Random(seed)
    # Half inside checkpoint saves, where a kill can leave a partial save. Each life costs a
    # train.py start-up (~25 s on 2 cores); GAN_JAX_KILLS=24 sends this mix three times.
    base = ["save"] * 4 + ["compile", "restore", "startup", "startup"]
    moments = [base[i % len(base)] for i in range(num_kills)]
    rng.shuffle(moments)
    workdir = str(tmp_path / "killed")
    latest, partial_seen, lifetimes = 0, 0, []
    t0 = time.monotonic()
    for i, moment in enumerate(moments):
        run = _Run(_cmd(workdir), env)
        started = time.monotonic()
        # Each trigger is capped at the first or second save, so no life gets far: the
        # lineage must not reach the last step before the kills run out.
        if moment == "startup":  # imports, lock, restore or compile: whatever is running
            run.wait_for("Saving checkpoint", timeout=rng.uniform(0.5, 6.0), fail_on_timeout=False)
        elif moment == "restore":  # right after the mesh is up: init, restore, data
            run.wait_for("Mesh: ")
            run.wait_for("Saving checkpoint", timeout=rng.uniform(0, 0.5), fail_on_timeout=False)
        elif moment == "compile":  # the step compiles (or loads from the cache), first steps
            run.wait_for(r"Data: \d+ examples")
            run.wait_for("Saving checkpoint", timeout=rng.uniform(0, 1.5), fail_on_timeout=False)
        else:  # inside an async checkpoint save
            assert run.wait_for("Saving checkpoint", count=rng.choice((1, 1, 2, 3)))
            time.sleep(rng.uniform(0, 0.06))
        run.proc.send_signal(signal.SIGKILL)
        rc = run.finish()
        lifetimes.append(time.monotonic() - started)
        assert rc == -signal.SIGKILL, f"kill {i} ({moment}) came too late: rc {rc}\n{run.text}"
        partial = _partial_saves(workdir)
        partial_seen += bool(partial)
        restored = _restore_all(workdir)  # every listed checkpoint must read back
        steps = sorted(restored)
        assert not steps or steps[-1] >= latest, f"kill {i}: latest went back {latest} -> {steps}"
        latest = steps[-1] if steps else 0
        assert latest < NUM_STEPS, f"the lineage finished after {i + 1} kills; use more steps"
        print(f"kill {i + 1:2d} ({moment:7s}) at {lifetimes[-1]:5.1f} s: steps {steps} {partial}")

    final = _Run(_cmd(workdir), env)
    assert final.finish() == 0, final.text[-3000:]
    assert re.search(rf"Resumed from step {latest}\b", final.text) or latest == 0
    assert f"Done: step {NUM_STEPS}" in final.text
    assert not _partial_saves(workdir), "a partial save was left behind"
    _assert_equal_params(_restore_all(workdir)[NUM_STEPS], reference)
    print(
        f"{num_kills} SIGKILLs (seed {seed}): {partial_seen} left a partial save, all ignored "
        f"and cleaned; every listed checkpoint restored after every kill; final step "
        f"{NUM_STEPS} bit-identical to the uninterrupted run; {time.monotonic() - t0:.0f} s"
    )


@pytest.mark.slow
def test_sigterm_and_sigint_save_and_exit_and_a_second_run_is_refused(tmp_path, env, reference):
    workdir = str(tmp_path / "run")
    first = _Run(_cmd(workdir), env)
    assert first.wait_for(r"Saving checkpoint for step 3\b")
    first.proc.send_signal(signal.SIGSTOP)  # frozen, still holding the workdir
    try:
        second = _run(_cmd(workdir), env)
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.proc.send_signal(signal.SIGCONT)
    _assert_clean_error(second.stderr, second.returncode, 3, rf"in use by pid {first.proc.pid}\b")
    assert first.finish() == 0, first.text[-3000:]
    saved = int(re.search(r"Received SIGTERM: saved step (\d+), exiting", first.text)[1])
    assert max(_restore_all(workdir)) == saved

    resumed = _Run(_cmd(workdir), env)
    assert resumed.wait_for(rf"Resumed from step {saved}\b")
    assert resumed.wait_for("Saving checkpoint", count=2)
    resumed.proc.send_signal(signal.SIGINT)
    assert resumed.finish() == 0, resumed.text[-3000:]
    saved_again = int(re.search(r"Received SIGINT: saved step (\d+), exiting", resumed.text)[1])
    assert saved_again > saved and max(_restore_all(workdir)) == saved_again

    final = _run(_cmd(workdir), env)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"Resumed from step {saved_again}" in final.stderr
    _assert_equal_params(_restore_all(workdir)[NUM_STEPS], reference)


# ---------------------------------------------------------------------------------------------
# disks


@contextlib.contextmanager
def _tmpfs(path, size, *options):
    """A small tmpfs at `path`; skips the test where mounting is not allowed."""
    os.makedirs(path, exist_ok=True)
    opts = ",".join((f"size={size}", *options))
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], capture_output=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


def _fill(path):
    """Writes zeros into `path` until the disk is full."""
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 16))


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["under_a_file", "full_disk", "read_only_mount"])
def test_unwritable_workdir_is_one_clear_error(tmp_path, env, fault):
    disk = str(tmp_path / "disk")
    workdir = os.path.join(disk, "run")
    with contextlib.ExitStack() as stack:
        if fault == "under_a_file":
            os.makedirs(disk)
            (tmp_path / "disk" / "plain_file").write_text("x")
            workdir = os.path.join(disk, "plain_file", "run")
        elif fault == "full_disk":
            stack.enter_context(_tmpfs(disk, "1m"))
            _fill(os.path.join(disk, "filler"))
        else:
            stack.enter_context(_tmpfs(disk, "1m", "ro"))
        out = _run(_cmd(workdir), env)
    _assert_clean_error(out.stderr, out.returncode, 4, r"not writable")


@pytest.mark.slow
@pytest.mark.parametrize("when", ["between_saves", "during_a_save"])
def test_disk_that_fills_is_one_clear_error_and_keeps_the_last_checkpoint(tmp_path, env, when):
    with _tmpfs(str(tmp_path / "disk"), "8m") as disk:
        workdir = os.path.join(disk, "run")
        every = 10 if when == "between_saves" else 1
        run = _Run(_cmd(workdir, f"--config.checkpoint_every={every}"), env)
        if when == "between_saves":
            assert run.wait_for(r"Saving checkpoint for step 10\b")
            deadline = time.monotonic() + 60
            while not os.path.isdir(os.path.join(workdir, "checkpoints", "10")):
                assert time.monotonic() < deadline, run.text[-2000:]
                time.sleep(0.01)
        else:
            assert run.wait_for(r"Saving checkpoint for step 3\b")
        _fill(os.path.join(disk, "filler"))
        rc = run.finish()
        assert rc == 4, run.text[-3000:]
        last = run.lines[-1]
        # Whichever write meets the full disk first (a checkpoint, or TensorBoard's events file
        # flushed from clu's thread) is the one reported; both keep the last checkpoint.
        assert last.startswith(
            ("error: cannot write checkpoint step", "error: cannot write to workdir")
        ), run.text[-3000:]
        assert "No space left on device" in last or "no space left on device" in last
        m = re.search(r"the last complete checkpoint \(step (\d+)\) is kept", last)
        # No traceback at all: not ours, and not the echoes of orbax's in-flight writes that
        # a disk filling mid-save once printed by the dozen. No unawaited-coroutine warnings.
        assert "Traceback" not in run.text, run.text[-3000:]
        assert "RuntimeWarning" not in run.text, run.text[-3000:]
        # Nor orbax's own log lines about the failed save (five, the longest 1,845 characters).
        assert "os_error_code" not in run.text and "save_finalize" not in run.text, run.text[-3000:]
        os.remove(os.path.join(disk, "filler"))
        restored = _restore_all(workdir)
        assert restored and max(restored) == int(m[1]), (sorted(restored), last)
        for leaves in restored.values():
            assert all(np.isfinite(x).all() for x in leaves if x.dtype.kind == "f")


def test_error_names_the_newest_finished_save_not_one_in_flight(tmp_path):
    """orbax lists a step once its async save starts; the kept step must be one on disk."""
    ckpt = ckpt_lib.Checkpointer(str(tmp_path))
    try:
        ckpt.save(1, {"w": np.arange(4.0, dtype=np.float32)}, force=True)
        ckpt.wait()
        # What a save of step 2 that met a full disk leaves: orbax's unfinished temp folder.
        os.makedirs(os.path.join(ckpt.directory, "2.orbax-checkpoint-tmp-1795900000"))
        assert ckpt.last_complete_step() == 1
        with pytest.raises(ckpt_lib.CheckpointError, match=r"step 2 .*\(step 1\) is kept"):
            ckpt._raise_if_io(OSError(28, "No space left on device"), 2)
    finally:
        ckpt.close()
    empty = ckpt_lib.Checkpointer(str(tmp_path / "empty"))
    assert empty.last_complete_step() is None
    empty.close()


def test_only_orbax_echoes_of_a_failed_save_are_hidden():
    echoes = [
        "[process=0][thread=array_type_handler][operation_id=3] _SignalingThread.run() raised an "
        "exception: RESOURCE_EXHAUSTED: Error opening \"zarr\" driver: ... [os_error_code='28']",
        "[process=0] Failed to run 3 Handler Commit operations or the Commit callback in "
        "background save thread, directory: /w/checkpoints/3",
        "[process=0][thread=MainThread][step=3][wait_until_finished] Save Finalize thread "
        "(save_finalize) failed.",
    ]
    assert all(logs.is_save_failure_echo(m) for m in echoes)
    others = ["Saving checkpoint for step 3", "[process=0] Checkpoint directory is read-only"]
    assert not any(logs.is_save_failure_echo(m) for m in others)


# ---------------------------------------------------------------------------------------------
# bad data


def _png_one_colour(path, width, height, value=128):
    """A grey PNG of any size, streamed through zlib so the test never holds the pixels."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" + bytes([value]) * width
    z = zlib.compressobj(9)
    parts = [z.compress(row) for _ in range(height)] + [z.flush()]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", b"".join(parts)))
        f.write(chunk(b"IEND", b""))


def _write_broken_folder(root):
    """Writes images of every awkward kind; returns (decodable, undecodable) counts."""
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    rgb = rng.integers(0, 256, (48, 64, 3), np.uint8)
    good = {
        "photo.jpg": lambda p: Image.fromarray(rgb).save(p, quality=90),
        "progressive.jpg": lambda p: Image.fromarray(rgb).save(p, progressive=True),
        "UPPER.JPG": lambda p: Image.fromarray(rgb).save(p, "JPEG"),
        "jpeg_named.png": lambda p: Image.fromarray(rgb).save(p, "JPEG"),
        "cmyk.jpg": lambda p: Image.fromarray(rgb).convert("CMYK").save(p),
        "gray.png": lambda p: Image.fromarray(rgb[..., 0]).save(p),
        "sixteen.png": lambda p: Image.fromarray(
            rng.integers(0, 65536, (30, 20), np.uint16).astype(np.uint16)
        ).save(p),
        "palette.png": lambda p: Image.fromarray(rgb).convert("P").save(p),
        "palette_transparent.png": lambda p: (
            Image.fromarray(rgb).convert("P").save(p, transparency=0)
        ),
        "rgba.png": lambda p: Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(p),
        "la.png": lambda p: Image.fromarray(rgb[..., :2].copy(), "LA").save(p),
        "bilevel.png": lambda p: Image.fromarray(rgb[..., 0] > 127).save(p),
        "animated.gif": lambda p: Image.fromarray(rgb).save(
            p, save_all=True, append_images=[Image.fromarray(255 - rgb)] * 2, duration=50
        ),
        "tiny.png": lambda p: Image.new("RGB", (1, 1), (10, 200, 30)).save(p),
        "wide.png": lambda p: Image.new("RGB", (900, 3), (0, 0, 255)).save(p),
        "tall.bmp": lambda p: Image.new("RGB", (5, 700), (255, 0, 0)).save(p),
        "photo.webp": lambda p: Image.fromarray(rgb).save(p),
        "sub/nested.png": lambda p: Image.fromarray(rgb[:7, :9]).save(p),
        "huge_12000.png": lambda p: _png_one_colour(p, 12000, 12000),
    }
    for name, write in good.items():
        write(str(root / name))
    jpeg = (root / "photo.jpg").read_bytes()
    png = (root / "gray.png").read_bytes()
    bad = {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "header_only.jpg": jpeg[:20],
        "zero.jpg": b"",
        "zero.png": b"",
        "zero.gif": b"",
        "text.png": b"this is not an image\n",
        "page.jpg": b"<html><body>404 not found</body></html>",
        "noise.gif": rng.integers(0, 256, 4096, np.uint8).tobytes(),
        "sub/zip.webp": b"PK\x03\x04" + bytes(100),
    }
    for name, data in bad.items():
        (root / name).write_bytes(data)
    os.symlink(root / "missing_target.png", root / "dangling_link.png")
    # Over twice PIL's decompression-bomb limit: refused from the header, never decoded.
    _png_one_colour(str(root / "bomb_20000.png"), 20000, 20000)
    (root / "readme.txt").write_text("not an image extension: not counted")
    return len(good), len(bad) + 2


@pytest.mark.slow
def test_train_py_on_a_folder_of_broken_images(tmp_path, env):
    data = tmp_path / "images"
    num_good, num_bad = _write_broken_folder(data)
    flags = [
        f"--config.data.path={data}",
        "--config.data.image_size=32",
        "--config.num_steps=2",
        "--config.checkpoint_every=2",
    ]
    run = _Run(_cmd(tmp_path / "run", *flags, config="configs/dcgan.py:folder"), env)
    started = time.monotonic()
    _, status, usage = os.wait4(run.proc.pid, 0)
    run._reader.join(10)
    elapsed = time.monotonic() - started
    assert os.waitstatus_to_exitcode(status) == 0, run.text[-3000:]
    assert f"Data: {num_good} examples ({num_bad} skipped as undecodable)" in run.text, run.text
    assert re.search(rf"skipped {num_bad} of {num_good + num_bad} files", run.text)
    assert "Traceback" not in run.text
    print(
        f"\n{num_good + num_bad} files ({num_good} decodable, {num_bad} not): trained in "
        f"{elapsed:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB"
    )


@pytest.mark.slow
def test_train_py_on_a_folder_where_nothing_decodes(tmp_path, env):
    data = tmp_path / "images"
    data.mkdir()
    for name, payload in [("a.jpg", b""), ("b.png", b"junk"), ("c.gif", b"GIF89a")]:
        (data / name).write_bytes(payload)
    out = _run(
        _cmd(tmp_path / "run", f"--config.data.path={data}", config="configs/dcgan.py:folder"), env
    )
    _assert_clean_error(out.stderr, out.returncode, 2, r"no decodable images.*3 files tried")


# ---------------------------------------------------------------------------------------------
# bad configs


def _flat_keys(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat_keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


KEYS = sorted(_flat_keys(tiny_config().to_dict()))
CHOICES = ("data.source", "data.crop", "model.name", "model.conv_impl", "model.dtype", "loss.name")
ANY_VALUE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 3, 7, 28, 32, 64, 128, 2**31, 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 32.0, 0.5, 1e-300, -0.0]),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["digits", "folder", "npz", "tfds", "center", "skip", "bfloat16", "lax"]),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
)


def _set(d, key, value):
    parts = key.split(".")
    for p in parts[:-1]:
        if not isinstance(d.get(p), dict):
            d[p] = {}
        d = d[p]
    d[parts[-1]] = value


def _delete(d, key):
    parts = key.split(".")
    for p in parts[:-1]:
        d = d[p]
    d.pop(parts[-1], None)


# derandomize: the same examples every run, so a failure can always be replayed; wider
# random searches (4,000 examples) are run by hand when validation changes.
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(
    edits=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(KEYS), st.sampled_from(["bogus", "data.bogus", "model.x.y"])),
            st.one_of(ANY_VALUE, st.just("<delete>")),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_validate_passes_or_raises_config_error(edits):
    d = tiny_config().to_dict()
    for key, value in edits:
        if value == "<delete>" and key in KEYS:
            _delete(d, key)
        elif value != "<delete>":
            _set(d, key, value)
    config = ml_collections.ConfigDict(d)
    try:
        validation.validate(config, num_devices=1)
    except config_lib.ConfigError as e:
        assert str(e).startswith("config."), str(e)
        return
    # What passes must have the types the run needs: no 32.0 image size, no True channels.
    defaults = tiny_config().to_dict()
    final = dict(edits)  # a key edited twice (set, then deleted) is checked as it ended
    for key, value in final.items():
        if key not in KEYS or value == "<delete>":
            continue  # a deleted optional key (data.data_dir) has no type to check
        node, default = config, defaults
        for p in key.split("."):
            node, default = node[p], default[p]
        if isinstance(default, int) and not isinstance(default, bool):
            assert type(node) is int, (key, node)
        if key in CHOICES:
            assert isinstance(node, str), (key, node)
    assert 0 <= config.seed < 2**63


FLAG_VALUES = st.one_of(
    st.integers(-5, 300).map(str),
    st.sampled_from(["nan", "inf", "-1", "0", "1e309", "true", "None", "[1, 2]", "0x10", ""]),
    st.sampled_from(["2.5", "32.0", "bfloat16", "skip", "center", "tfds", "folder", "99" * 12]),
    st.text(alphabet="abcxyz_.-/ ", max_size=8),
)


@pytest.mark.slow
@settings(
    max_examples=10,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(
    key=st.one_of(st.sampled_from(KEYS), st.sampled_from(["bogus", "data.sorce", "model"])),
    value=FLAG_VALUES,
)
def test_train_py_flags_either_run_or_stop_with_one_message(tmp_path_factory, key, value):
    # The workdir sits under a plain file: a valid config stops at the workdir (exit 4) before
    # anything compiles; an invalid one must stop earlier with its own message (exit 2).
    tmp = tmp_path_factory.mktemp("flags")
    (tmp / "file").write_text("x")
    cmd = [
        sys.executable,
        "train.py",
        "--config=configs/dcgan.py",
        f"--workdir={tmp / 'file' / 'run'}",
        f"--config.{key}={value}",
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in out.stderr, (cmd, out.stderr[-3000:])
    assert out.returncode in (2, 4), (cmd, out.returncode, out.stderr[-3000:])
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, (cmd, out.stderr[-3000:])
    if out.returncode == 4:
        assert "not writable" in errors[0]


# ---------------------------------------------------------------------------------------------
# non-finite values


def _poison(monkeypatch, bad_steps, value):
    """Makes the real dataset yield `value` in the first pixel of the batches of `bad_steps`."""
    real = input_lib.create_dataset

    class Poisoned:
        def __init__(self, ds, start):
            self._ds, self._start = ds, start

        def __getattr__(self, name):
            return getattr(self._ds, name)

        def __iter__(self):
            for step, batch in enumerate(self._ds, start=self._start + 1):
                if step in bad_steps:
                    image = np.array(batch["image"])
                    image[0, 0, 0, 0] = value
                    batch = dict(batch, image=image)
                yield batch

    def create(config, **kwargs):
        return Poisoned(real(config, **kwargs), kwargs.get("start_step", 0))

    monkeypatch.setattr(loop.input_lib, "create_dataset", create)


def test_nan_in_a_batch_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    _poison(monkeypatch, {5}, np.nan)
    workdir = str(tmp_path / "run")
    config = tiny_config(num_steps=8, checkpoint_every=2, log_every=2)
    with pytest.raises(loop.NonFiniteError, match=r"at step 5\b"):
        train_and_evaluate(config, workdir)
    restored = _restore_all(workdir)
    assert max(restored) == 4, sorted(restored)
    for leaves in restored.values():
        assert all(np.isfinite(x).all() for x in leaves if x.dtype.kind == "f")


def test_inf_in_batches_is_skipped_and_counted(tmp_path, monkeypatch, caplog):
    _poison(monkeypatch, {3, 6}, np.inf)
    config = tiny_config(num_steps=8, checkpoint_every=4, log_every=4, on_nonfinite="skip")
    state = train_and_evaluate(config, str(tmp_path / "run"))
    assert int(state.step) == 8 and int(state.skipped_updates) == 2
    assert int(state.nonfinite_step) == 2  # 0-based: the 3rd step
    for x in jax.tree.leaves(jax.device_get(state.g_params)):
        assert np.isfinite(x).all()
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert re.search(r"[Ss]kipped .*non-finite.* step.*\b3\b", log), log
    assert re.search(r"[Ss]kipped .*non-finite.* step.*\b6\b", log), log
