"""The training loop: `train_and_evaluate(config, workdir) -> GANState`.

train.py, the tests and the Colab notebook all call this one function. Running it again on
the same workdir resumes: step, parameters, optimiser states, RNG and the data position
come back from the latest checkpoint, so a resumed run ends where an uninterrupted one does.
"""

import collections
import contextlib
import copy
import dataclasses
import errno
import fcntl
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import asynclib
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import config_lib, events
from gan_jax import images as images_lib
from gan_jax import input as input_lib
from gan_jax import progress as progress_lib
from gan_jax.errors import CheckpointError, NonFiniteError, WorkdirBusyError
from gan_jax.logs import quiet_library_logs
from gan_jax.training import checkpoint as ckpt_lib
from gan_jax.training import fid_hook as fid_hook_lib
from gan_jax.training import state as state_lib
from gan_jax.training import step as step_lib
from gan_jax.training import validation

SAMPLES_DIR = "samples"
LOCK_FILE = ".lock"


@contextlib.contextmanager
def _workdir_lock(workdir: str, enabled: bool):
    """Holds an exclusive lock on the workdir so two runs never write the same checkpoints."""
    if not enabled:
        yield
        return
    path = os.path.join(workdir, LOCK_FILE)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            raise WorkdirBusyError(
                f"workdir '{workdir}' is in use by {owner}; wait for it to end, stop it, "
                "or choose another --workdir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _StopSignal:
    """Turns SIGTERM/SIGINT into a flag the loop checks, so it can save before exiting.

    In a multi-process run JAX's preemption service owns SIGTERM: it makes all processes
    agree on one step to save and stop at (`reached_preemption`), where a flag of our own
    would stop each process at a different step. Ctrl-C is handed to it as a SIGTERM.
    """

    def __init__(self, multi_process: bool = False):
        self.received = None
        self.multi_process = multi_process
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT,) if self.multi_process else (signal.SIGTERM, signal.SIGINT):
            # Off the main thread (some notebook runners) signals cannot be caught: skip.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signal.Signals(signum).name
        if self.multi_process:
            signal.raise_signal(signal.SIGTERM)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


_WRITE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM)


def _write_failure(error: Exception) -> str | None:
    """The reason when `error` is a failed write to the workdir, else None."""
    if isinstance(error, OSError):
        return error.strerror if error.errno in _WRITE_ERRNOS else None
    # The event writer's AsyncError carries the OSError of its thread as its cause (TF's
    # writer once hid it in message text; ours does not).
    cause = error.__cause__
    if isinstance(cause, OSError) and cause.errno in _WRITE_ERRNOS:
        return cause.strerror
    return f"writing TensorBoard events failed: {str(cause or error).splitlines()[0][:200]}"


def num_train_steps(config, steps_per_epoch: int) -> int:
    """Generator steps of the run: `num_steps`, or `num_epochs` passes over the data, where
    each generator step reads `d_steps` real batches (one per D update)."""
    if config.num_steps > 0:
        return config.num_steps
    return max(1, config.num_epochs * steps_per_epoch // config.d_steps)


def _check_finite(state, config):
    bad_step = int(jax.device_get(state.nonfinite_step))
    if bad_step >= 0 and config.on_nonfinite == "stop":
        raise NonFiniteError(
            f"non-finite loss or gradient (NaN/Inf) at step {bad_step + 1}; the update was "
            "not applied and training stopped. The last good checkpoint is kept. Try a lower "
            "learning rate, or --config.on_nonfinite=skip to drop such updates."
        )


def _flatten(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


MAX_GRID_CLASSES = 16


def fixed_noise(config, num_classes: int = 0):
    """Latents and labels of the sample grids, and the grid's columns.

    Fixed across the run and across resumes, so successive grids show the same latents. A
    conditional run's grid has one row per class (the first 16 classes), each column one
    latent shared by every row, so a column shows the classes in one style.

    Returns:
      (z [N, z_dim], labels [N] int32 or None, cols)
    """
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0x5A11)
    n = config.num_sample_images
    if not num_classes:
        z = jax.random.normal(key, (n, config.model.z_dim), jnp.float32)
        return z, None, None
    rows = min(num_classes, MAX_GRID_CLASSES)
    cols = max(1, n // rows)
    z = jax.random.normal(key, (cols, config.model.z_dim), jnp.float32)
    z = jnp.tile(z, (rows, 1))
    labels = jnp.repeat(jnp.arange(rows, dtype=jnp.int32), cols)
    return z, labels, cols


def _init_from(source: str, state):
    """`state` with G's variables and EMA taken from the latest checkpoint of run `source`.

    D, the optimisers and the counters start fresh: a new run that begins where another
    run's generator ended (SR's adversarial fine-tuning of an L1-trained model).
    """
    other = ckpt_lib.Checkpointer(source, read_only=True)
    try:
        if other.latest_step() is None:
            raise CheckpointError(f"config.init_from: no checkpoint in '{source}'")
        restored = other.restore(state)
    finally:
        other.close()
    logging.info("G initialised from %s (step %d)", source, int(restored.step))
    return state.replace(
        g=state.g.replace(variables=restored.g.variables), ema_params=restored.ema_params
    )


def train_and_evaluate(config, workdir: str, *, progress: str = "auto") -> state_lib.GANState:
    """Trains (or resumes) a GAN described by `config`, writing everything under `workdir`.

    Args:
      config: an ml_collections.ConfigDict like configs/dcgan.py's.
      workdir: folder for checkpoints, config.json, TensorBoard events and sample PNGs.
      progress: 'auto' | 'on' | 'off': a live progress line (rate, ETA) on stderr from
        process 0, under the periodic log lines; 'auto' when stderr is a terminal.

    Returns:
      The final GANState (replicated over the mesh).
    """
    quiet_library_logs()
    show_progress = progress_lib.wanted(progress)  # a bad mode fails before any work
    process_index, process_count = jax.process_index(), jax.process_count()
    validation.validate(config, num_devices=jax.device_count(), num_processes=process_count)
    is_chief = process_index == 0
    try:
        os.makedirs(workdir, exist_ok=True)
        if is_chief:
            probe = os.path.join(workdir, ".write_test")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
    except OSError as e:
        raise CheckpointError(f"workdir '{workdir}' is not writable: {e.strerror or e}") from None

    with _workdir_lock(workdir, is_chief), _StopSignal(process_count > 1) as stop:
        return _train(config, workdir, stop, is_chief, process_index, process_count, show_progress)


@dataclasses.dataclass
class Programs:
    """The jitted functions of one (config, mesh): the objective, state init, sampling, and the
    train step per run length. Equal configs on an equal mesh reuse them, so a run resumed in
    the same process (a notebook cell run again, a retry) skips tracing and compiling."""

    config: object  # a private copy: the caller may change theirs after the run
    mesh: jax.sharding.Mesh
    objective: object
    init: object
    sample_fn: object
    sampling_variables: object
    steps: dict = dataclasses.field(default_factory=dict)  # total steps -> jitted step

    def train_step(self, total: int):
        if total not in self.steps:
            self.steps[total] = step_lib.jit_train_step(
                self.config, self.mesh, total_steps=total, objective=self.objective
            )
        return self.steps[total]


_PROGRAMS: collections.OrderedDict = collections.OrderedDict()
_PROGRAMS_KEPT = 2  # configs whose compiled programs stay in memory (least recently used go)


def programs(config, mesh) -> Programs:
    """The jitted init, sample and train-step functions `train_and_evaluate` runs for `config`
    on `mesh`, compiled once and kept for the last configs used (`clear_compiled` drops them).

    A notebook or a test that steps a model by hand takes these to share the loop's compiles:
    `p = programs(config, mesh); state = p.init(key); state, metrics = p.train_step(n)(state,
    batch)`, where n is the run's total steps (the learning-rate schedule's length).
    """
    key = (
        config.to_json(sort_keys=True),
        tuple(int(d.id) for d in mesh.devices.flat),
        tuple(mesh.axis_names),
    )
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    config = copy.deepcopy(config)
    replicated = NamedSharding(mesh, P())
    objective = step_lib.objective_for(config)
    init = jax.jit(
        lambda key: state_lib.create_state(config, key, objective=objective),
        out_shardings=replicated,
    )
    if "source" in objective.batch_keys:  # image-to-image: G on held-out inputs
        sample_fn = jax.jit(
            lambda variables, x, y: objective.translate(variables, x), out_shardings=replicated
        )
    else:
        sample_fn = jax.jit(
            lambda variables, z, y: objective.run_G(variables, z, y, train=False)[0],
            out_shardings=replicated,  # every process holds the whole grid
        )
    kept = Programs(
        config=config,
        mesh=mesh,
        objective=objective,
        init=init,
        sample_fn=sample_fn,
        sampling_variables=state_lib.sampling_variables_fn(config, objective),
    )
    _PROGRAMS[key] = kept
    while len(_PROGRAMS) > _PROGRAMS_KEPT:
        _PROGRAMS.popitem(last=False)
    return kept


def clear_compiled() -> int:
    """Drops the compiled programs kept for the last configs' runs (their memory goes back).

    A notebook that trained a large model and moves on calls this; the next run of any config
    traces and compiles again.

    Returns:
      How many configs' programs were dropped.
    """
    count = len(_PROGRAMS)
    _PROGRAMS.clear()
    return count


def _train(config, workdir, stop, is_chief, process_index, process_count, show_progress=False):
    mesh = step_lib.make_mesh()
    replicated = NamedSharding(mesh, P())
    logging.info(
        "Mesh: %d devices (%s) over %d process(es); global batch %d",
        jax.device_count(),
        jax.devices()[0].platform,
        process_count,
        config.batch_size,
    )

    # Before the checkpointer: missing Inception weights fail here, with nothing to clean up.
    fid = fid_hook_lib.FidHook.create(config, workdir, is_chief=is_chief)  # None when off
    checkpointer = ckpt_lib.Checkpointer(workdir, keep=config.keep_checkpoints)
    # Missing feature weights fail here. Without data to size the schedule the step itself
    # is built below, once `total` is known.
    compiled = programs(config, mesh)
    objective = compiled.objective
    state = compiled.init(jax.random.PRNGKey(config.seed))
    if checkpointer.latest_step() is not None:
        state = checkpointer.restore(state)
        logging.info("Resumed from step %d in %s", int(state.step), checkpointer.directory)
    else:
        if config.get("init_from", ""):
            state = _init_from(config.init_from, state)
        if is_chief:
            config_lib.save(config, workdir)
    start_step = int(jax.device_get(state.step))

    # Each generator step reads d_steps batches: the data position is counted in batches.
    dataset = input_lib.create_dataset(
        config,
        process_index=process_index,
        process_count=process_count,
        start_step=start_step * config.d_steps,
    )
    total = num_train_steps(config, dataset.steps_per_epoch)
    logging.info(
        "Data: %d examples (%d skipped as undecodable), %d steps/epoch; training %d steps",
        dataset.num_examples,
        dataset.skipped,
        dataset.steps_per_epoch,
        total,
    )

    # TensorBoard only: the console gets the one progress line below, not a second copy.
    writer = events.EventWriter(workdir) if is_chief else events.NullWriter()
    if start_step == 0:
        writer.write_hparams(_flatten(config.to_dict()))
    train_step = compiled.train_step(total)
    batch_sharding = step_lib.batch_shardings(mesh, objective.batch_keys)
    sample_fn, sampling_variables = compiled.sample_fn, compiled.sampling_variables
    preview = None
    if "source" in objective.batch_keys:  # image-to-image: validation inputs, not latents
        preview = objective.preview(config, dataset)
        fixed_z, fixed_y, grid_cols = preview["input"], None, int(preview.get("cols", 3))
    else:
        fixed_z, fixed_y, grid_cols = fixed_noise(config, objective.num_classes)
    fixed_z = jax.device_put(fixed_z, replicated)
    fixed_y = None if fixed_y is None else jax.device_put(fixed_y, replicated)

    def write_samples(step):
        imgs = jax.device_get(sample_fn(sampling_variables(state), fixed_z, fixed_y))
        if preview is not None:  # rows of input, output, target
            imgs = objective.grid_images(imgs, preview)
        grid = images_lib.make_grid(imgs, cols=grid_cols)
        if is_chief:
            images_lib.save_png(grid, os.path.join(workdir, SAMPLES_DIR, f"step_{step:08d}.png"))
            writer.write_images(step, {"samples": grid[None]})

    bar, clear_before_log = None, None
    if show_progress and is_chief:
        bar = progress_lib.ProgressBar(total, start_step, config.batch_size)
        clear_before_log = progress_lib.ClearBeforeLog(bar)
        logging.get_absl_handler().addFilter(clear_before_log)  # last: after quiet_library_logs

    data_iter = iter(dataset)
    pending = []
    t_log, step_log = time.perf_counter(), start_step
    t_start = t_log
    step = start_step
    try:
        while step < total:
            local = step_lib.stack_batches([next(data_iter) for _ in range(config.d_steps)])
            batch = {
                k: jax.make_array_from_process_local_data(batch_sharding[k], v)
                for k, v in local.items()
            }
            state, metrics = train_step(state, batch)
            pending.append(metrics)  # device arrays: no host sync per step
            if len(pending) >= 2:
                # At most two steps in flight. Dispatch is asynchronous: unchecked, the host
                # runs up to a log interval ahead of the device, and a stop signal (a
                # preemption's grace period) would wait for every queued step before the save.
                jax.block_until_ready(pending[-2]["d_loss"])
            step += 1

            if process_count > 1:  # all processes must stop at the same step
                stopping = checkpointer.reached_preemption(step)
            else:
                stopping = stop.received is not None
            if step % config.log_every == 0 or step == total or stopping:
                _check_finite(state, config)
                host = jax.device_get(pending)
                summary = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
                skipped_at = [
                    step - len(host) + i + 1 for i, m in enumerate(host) if m["nonfinite"]
                ]
                if skipped_at:  # on_nonfinite == 'skip': say which updates were dropped
                    logging.warning(
                        "Skipped the non-finite (NaN/Inf) update of step(s) %s; %d skipped so far",
                        ", ".join(map(str, skipped_at)),
                        int(jax.device_get(state.skipped_updates)),
                    )
                now = time.perf_counter()
                rate = (step - step_log) / max(now - t_log, 1e-9)
                summary["images_per_sec"] = rate * config.batch_size
                summary["steps_per_sec"] = rate
                summary["uptime"] = now - t_start
                writer.write_scalars(step, summary)
                # One progress line per job: every process computes the same means.
                (logging.info if is_chief else logging.debug)(
                    "Epoch [%d/%d], Step [%d/%d], D_loss: %.4f, G_loss: %.4f, D(x): %.3f, "
                    "D(G(z)): %.3f, %.1f img/s, ETA %s",
                    (step * config.d_steps - 1) // dataset.steps_per_epoch + 1,
                    -(-total * config.d_steps // dataset.steps_per_epoch),
                    step,
                    total,
                    summary["d_loss"],
                    summary["g_loss"],
                    summary["d_real"],
                    summary["d_fake"],
                    summary["images_per_sec"],
                    progress_lib.format_duration((total - step) / max(rate, 1e-9)),
                )
                pending.clear()
                t_log, step_log = now, step
                if bar is not None:
                    bar.losses = (summary["d_loss"], summary["g_loss"])
            if step % config.sample_every == 0 or step == total:
                write_samples(step)
            if stopping or step == total or step % config.checkpoint_every == 0:
                _check_finite(state, config)
                checkpointer.save(step, state, force=True)
            if fid is not None and not stopping:  # FID, and the best-FID checkpoint
                fid(step, state, total=total, writer=writer)
            if stopping:
                reason = stop.received or "a preemption notice (SIGTERM)"
                logging.warning("Received %s: saved step %d, exiting.", reason, step)
                break
            if bar is not None:  # host time only: the step before last is already done
                bar.update(step)
        checkpointer.wait()
        writer.flush()  # inside the try: a full disk here is reported like one during the loop
    except (OSError, asynclib.AsyncError) as e:
        # Sample PNGs and TensorBoard events on a full or read-only disk: one clear message.
        reason = _write_failure(e)
        if reason is None:
            raise
        # A save may still be in flight on the same full disk: let it finish or fail before
        # naming the step that is kept (its own failure adds nothing to this message).
        with contextlib.suppress(Exception):
            checkpointer.wait()
        raise CheckpointError(
            f"cannot write to workdir '{workdir}': {reason}; "
            f"the last complete checkpoint (step {checkpointer.last_complete_step()}) is kept"
        ) from None
    finally:
        if bar is not None:  # end the bar's line before what prints next (a traceback too)
            bar.close()
            logging.get_absl_handler().removeFilter(clear_before_log)
        # Whatever ends the loop, finish the saves already started and close the logs; when
        # an error is already on its way out, a second one from here must not replace it.
        with contextlib.suppress(Exception):
            checkpointer.wait()
        checkpointer.close()
        if fid is not None:
            fid.close()
        with contextlib.suppress(Exception):
            writer.close()
    logging.info(
        "Done: step %d in %.1f s; workdir %s", step, time.perf_counter() - t_start, workdir
    )
    return state
