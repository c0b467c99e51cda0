"""Joins a multi-process (multi-host) run through JAX's own distributed runtime.

One process per host (or per group of accelerators) runs the same `train.py` command; they
find each other through a coordinator (process 0's address and a free port) and then form
one global device mesh: NCCL between GPUs, ICI/DCN on TPU pods, gloo between CPU processes.

`initialize` must run before anything touches JAX's devices. Where the three numbers come
from, first found wins:

1. the arguments (train.py's `--coordinator_address`, `--num_processes`, `--process_id`);
2. the environment: `GAN_JAX_COORDINATOR`, `GAN_JAX_NUM_PROCESSES`, `GAN_JAX_PROCESS_ID`,
   or JAX's own `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`;
3. a cluster JAX detects by itself: SLURM (`srun`), Open MPI (`mpirun`), Cloud TPU VMs,
   Kubernetes. This one is used only when it holds more than one process, so a plain
   `python train.py` (laptop, one SLURM task, one TPU host) stays a single-process run and
   never waits for peers.

A process that loses a peer stops: JAX's coordination service notices missing heartbeats
after `GAN_JAX_HEARTBEAT_TIMEOUT` seconds (60 by default) and terminates the survivors with
"Terminating process because the JAX distributed service detected fatal errors"; a
collective that fails earlier (e.g. gloo's "Connection reset by peer") ends train.py with a
one-line error. Either way the exit status is non-zero and no process waits forever.
"""

import os
import re
import warnings

import jax
from absl import logging

ENV_COORDINATOR = "GAN_JAX_COORDINATOR"
ENV_NUM_PROCESSES = "GAN_JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "GAN_JAX_PROCESS_ID"
ENV_HEARTBEAT_TIMEOUT = "GAN_JAX_HEARTBEAT_TIMEOUT"
ENV_INIT_TIMEOUT = "GAN_JAX_INIT_TIMEOUT"
MODES = ("auto", "on", "off")

# Long enough to ride out a GC pause or a slow filesystem, short enough that a job whose
# peer died is released well within a scheduler's patience.
DEFAULT_HEARTBEAT_TIMEOUT = 60
# Cluster schedulers may start the processes of one job minutes apart.
DEFAULT_INIT_TIMEOUT = 300


class DistributedError(RuntimeError):
    """The multi-process settings are incomplete or contradictory; the message says which."""


def _first(*values):
    for v in values:
        if v is not None and v != "":
            return v
    return None


def _as_int(name: str, value) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DistributedError(f"{name} must be an integer, got {value!r}") from None


def _env_seconds(name: str, default: int) -> int:
    seconds = _as_int(name, os.environ.get(name)) or default
    if seconds < 1:
        raise DistributedError(f"{name} must be a positive number of seconds, got {seconds}")
    return seconds


def detect_cluster() -> tuple[str, int] | None:
    """The cluster environment `jax.distributed.initialize()` would bootstrap from, if any.

    Returns:
      (name, number of processes) of the first environment JAX recognises (SLURM, Open MPI,
      Cloud TPU VM, Kubernetes...), or None outside such an environment.
    """
    try:
        from jax._src import clusters  # noqa: PLC0415  (JAX's own list; no public API)

        kinds = list(clusters.ClusterEnv._cluster_types)
    except (ImportError, AttributeError):  # a JAX that moved it: be single-process
        return None
    for kind in kinds:
        if getattr(kind, "opt_in_only_method", False):
            continue  # mpi4py and the like are only used when asked for by name
        try:
            with warnings.catch_warnings():
                # Kubernetes' check warns on every pod without the `kubernetes` package.
                warnings.simplefilter("ignore")
                if kind.is_env_present():
                    return (kind.name or kind.__name__), int(kind.get_process_count())
        except Exception as e:  # a half-set environment: not a cluster we can join
            logging.debug("Cluster check %s failed: %s", kind.__name__, e)
    return None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    mode: str = "auto",
) -> bool:
    """Joins a multi-process run if one is asked for or detected; otherwise does nothing.

    Args:
      coordinator_address: 'host:port' of process 0, reachable from every process.
      num_processes: processes in the run.
      process_id: this process, 0 <= process_id < num_processes.
      mode: 'auto' joins when the arguments, the environment or a multi-process cluster
        say so; 'on' requires a multi-process setting (error otherwise); 'off' never joins.

    Returns:
      True when this process is part of a distributed run (also when it already was).

    Raises:
      DistributedError: missing or inconsistent settings, or JAX already started.
    """
    if mode not in MODES:
        raise DistributedError(f"--distributed must be one of {', '.join(MODES)}, got {mode!r}")
    if jax.distributed.is_initialized():  # e.g. a notebook cell run twice
        return True
    env = os.environ
    coordinator_address = _first(
        coordinator_address, env.get(ENV_COORDINATOR), env.get("JAX_COORDINATOR_ADDRESS")
    )
    num_processes = _as_int(
        "num_processes",
        _first(num_processes, env.get(ENV_NUM_PROCESSES), env.get("JAX_NUM_PROCESSES")),
    )
    process_id = _as_int(
        "process_id", _first(process_id, env.get(ENV_PROCESS_ID), env.get("JAX_PROCESS_ID"))
    )
    explicit = {
        "coordinator address": coordinator_address,
        "number of processes": num_processes,
        "process id": process_id,
    }
    if mode == "off":
        if any(v is not None for v in explicit.values()):
            logging.warning("--distributed=off: ignoring the multi-process settings given")
        return False

    cluster = None if all(v is not None for v in explicit.values()) else detect_cluster()
    if all(v is None for v in explicit.values()) and (cluster is None or cluster[1] < 2):
        if mode == "on":
            found = f"{cluster[0]} with {cluster[1]} process" if cluster else "no cluster"
            raise DistributedError(
                f"--distributed=on, but no coordinator was given and {found} was detected; "
                "pass --coordinator_address=HOST:PORT --num_processes=N --process_id=I "
                f"(or {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID}), or launch "
                "with srun / mpirun / on every TPU VM worker"
            )
        return False  # plain single-process run
    if cluster is None:
        missing = [k for k, v in explicit.items() if v is None]
        if missing:
            raise DistributedError(
                f"a multi-process run needs the coordinator address, the number of processes "
                f"and this process's id; missing: {', '.join(missing)} (flags "
                f"--coordinator_address, --num_processes, --process_id, or {ENV_COORDINATOR}, "
                f"{ENV_NUM_PROCESSES}, {ENV_PROCESS_ID})"
            )
    if coordinator_address is not None and not re.fullmatch(r".+:\d+", coordinator_address):
        raise DistributedError(
            f"coordinator address must be HOST:PORT (process 0's host), got {coordinator_address!r}"
        )
    if num_processes is not None and num_processes < 1:
        raise DistributedError(f"num_processes must be >= 1, got {num_processes}")
    if None not in (num_processes, process_id) and not 0 <= process_id < num_processes:
        raise DistributedError(f"process_id {process_id} is not in [0, {num_processes})")

    # CPU processes talk through gloo; without it a CPU mesh cannot span processes. This
    # setting only concerns the CPU backend, so it is harmless on GPU and TPU hosts.
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    heartbeat = _env_seconds(ENV_HEARTBEAT_TIMEOUT, DEFAULT_HEARTBEAT_TIMEOUT)
    source = "flags/environment" if cluster is None else f"{cluster[0]} cluster"
    logging.info(
        "Joining a distributed run (%s): coordinator %s, process %s of %s",
        source,
        coordinator_address or "auto",
        "auto" if process_id is None else process_id,
        num_processes or "auto",
    )
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=_env_seconds(ENV_INIT_TIMEOUT, DEFAULT_INIT_TIMEOUT),
            heartbeat_timeout_seconds=heartbeat,
        )
    except RuntimeError as e:
        if "before any JAX calls" in str(e):
            raise DistributedError(
                "JAX devices were used before joining the distributed run; call "
                "gan_jax.distributed.initialize() first thing (in a notebook: restart the "
                "kernel and run it before anything else)"
            ) from None
        raise DistributedError(f"could not join the distributed run: {e}") from None
    except (ValueError, TypeError) as e:
        raise DistributedError(f"could not join the distributed run: {e}") from None
    logging.info(
        "Process %d of %d: %d local of %d global %s devices; a process whose peer dies stops "
        "within ~%d s",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
        jax.devices()[0].platform,
        heartbeat,
    )
    return True
