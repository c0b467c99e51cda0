"""Multi-process training on one machine: two CPU processes on loopback act as two hosts.

Each process has two CPU devices and talks to the other through gloo, as the README's
loopback command does. The run must equal one process with four devices, its checkpoint
must resume on one process with one device, and a killed peer must not leave the other
process waiting forever.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import ROOT, TINY_FLAGS, leaves, tiny_config, xla_flags

from gan_jax import distributed
from gan_jax.training import checkpoint as ckpt_lib
from gan_jax.training import state as state_lib
from gan_jax.training import train_and_evaluate

pytestmark = pytest.mark.slow

HEARTBEAT_S = 10  # the kill test's heartbeat timeout (the default is 60 s)
DISTRIBUTED_ENV = (
    distributed.ENV_COORDINATOR,
    distributed.ENV_NUM_PROCESSES,
    distributed.ENV_PROCESS_ID,
    "JAX_COORDINATOR_ADDRESS",
    "JAX_NUM_PROCESSES",
    "JAX_PROCESS_ID",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED_ENV}
    env.update(XLA_FLAGS=xla_flags(devices), **extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _launch(workdir, log_path, *, devices, steps, extra=(), env_extra=None):
    cmd = [sys.executable, "train.py", f"--workdir={workdir}", *TINY_FLAGS]
    cmd += [f"--config.num_steps={steps}", *extra]
    log = open(log_path, "w")  # noqa: SIM115  (closed with the process below)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(devices, **(env_extra or {})), stdout=log, stderr=log
    )
    proc.log = log
    return proc


def _launch_two(workdir, tmp_path, *, steps, extra=(), env_extra=None, tag=""):
    """The README's loopback command: two processes with two CPU devices each."""
    port = _free_port()
    return [
        _launch(
            workdir,
            tmp_path / f"{tag}process{i}.log",
            devices=2,
            steps=steps,
            extra=[
                f"--coordinator_address=127.0.0.1:{port}",
                "--num_processes=2",
                f"--process_id={i}",
                *extra,
            ],
            env_extra=env_extra,
        )
        for i in range(2)
    ]


def _wait(procs, timeout):
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.log.close()
    return [p.returncode for p in procs]


def _restore(workdir, config):
    """The latest checkpoint of `workdir`, restored onto this (one-device) process."""
    target = state_lib.create_state(config, jax.random.PRNGKey(config.seed))
    ckpt = ckpt_lib.Checkpointer(str(workdir), read_only=True)
    try:
        return ckpt.restore(target)
    finally:
        ckpt.close()


def test_two_processes_equal_one_process_and_resume_on_one_device(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    procs = _launch_two(two, tmp_path, steps=4)
    procs.append(_launch(one, tmp_path / "one.log", devices=4, steps=4))
    codes = _wait(procs, timeout=600)
    logs = {p.name: p.read_text()[-3000:] for p in sorted(tmp_path.glob("*.log"))}
    assert codes == [0, 0, 0], logs
    assert "Mesh: 4 devices (cpu) over 2 process(es)" in logs["process1.log"], logs
    assert "Mesh: 4 devices (cpu) over 1 process(es)" in logs["one.log"], logs

    # Only process 0 prints the progress line, and writes the summaries and sample grids.
    chief, other = ((tmp_path / f"process{i}.log").read_text() for i in range(2))
    assert "Step [4/4]" in chief and "Step [" not in other, logs
    assert len(list(two.glob("events.out.tfevents*"))) == 1
    assert sorted(p.name for p in (two / "samples").iterdir()) == ["step_00000004.png"]

    config = tiny_config(num_steps=4)
    a, b = _restore(two, config), _restore(one, config)
    assert int(a.step) == int(b.step) == 4
    diffs = [float(np.max(np.abs(x - y), initial=0.0)) for x, y in zip(leaves(a), leaves(b))]
    print(f"max |2 processes x 2 devices - 1 process x 4 devices| = {max(diffs):.3g}")
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)

    # Resume the two-process checkpoint here: one process, one device, two more steps.
    assert jax.process_count() == 1 and jax.device_count() == 1
    resumed = train_and_evaluate(tiny_config(num_steps=6), str(two))
    assert int(resumed.step) == 6
    assert ckpt_lib.Checkpointer(str(two), read_only=True).all_steps()[-1] == 6
    moved = [not np.array_equal(x, y) for x, y in zip(leaves(a.g_params), leaves(resumed.g_params))]
    assert any(moved)
    assert all(np.isfinite(x).all() for x in leaves(resumed))


def test_killed_peer_stops_the_other_process(tmp_path):
    procs = _launch_two(
        tmp_path / "run",
        tmp_path,
        steps=100_000,
        extra=["--config.log_every=1", "--config.checkpoint_every=100000"],
        env_extra={distributed.ENV_HEARTBEAT_TIMEOUT: str(HEARTBEAT_S)},
    )
    survivor_log = tmp_path / "process0.log"
    try:
        deadline = time.monotonic() + 400
        while "Step [" not in survivor_log.read_text():  # mid-run: steps are being made
            assert all(p.poll() is None for p in procs), survivor_log.read_text()[-3000:]
            assert time.monotonic() < deadline, survivor_log.read_text()[-3000:]
            time.sleep(0.5)
        procs[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        code = procs[0].wait(timeout=180)
        detected_s = time.monotonic() - killed_at
    finally:
        _wait(procs, timeout=5)
    text = survivor_log.read_text()
    print(f"process 0 exited with {code} {detected_s:.1f} s after process 1 was killed")
    assert code != 0
    assert detected_s < 6 * HEARTBEAT_S, text[-3000:]
    assert ("another task died" in text) or ("another process died" in text), text[-3000:]


@pytest.fixture
def clean_env(monkeypatch):
    for name in DISTRIBUTED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distributed, "detect_cluster", lambda: None)


def test_single_process_unless_asked(clean_env):
    assert distributed.initialize() is False
    assert distributed.initialize(mode="off") is False
    assert distributed.initialize("127.0.0.1:1234", 2, 0, mode="off") is False


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(mode="on"), "--distributed=on"),
        (dict(num_processes=2), "missing: coordinator address, process id"),
        (dict(coordinator_address="10.0.0.1", num_processes=2, process_id=0), "HOST:PORT"),
        (dict(coordinator_address="h:1", num_processes=2, process_id=2), "not in [0, 2)"),
        (dict(mode="maybe"), "one of auto, on, off"),
    ],
)
def test_incomplete_settings_are_one_clear_error(clean_env, args, message):
    with pytest.raises(distributed.DistributedError, match=re.escape(message)):
        distributed.initialize(**args)


def test_settings_come_from_the_environment(clean_env, monkeypatch):
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "3")
    monkeypatch.setenv("JAX_PROCESS_ID", "5")
    with pytest.raises(distributed.DistributedError, match="missing: coordinator address"):
        distributed.initialize()
    monkeypatch.setenv(distributed.ENV_COORDINATOR, "h:1")
    with pytest.raises(distributed.DistributedError, match=r"process_id 5 is not in \[0, 3\)"):
        distributed.initialize()
