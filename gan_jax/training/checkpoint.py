"""Orbax checkpoints of the GANState: periodic, final, on preemption; restore to any mesh.

Orbax writes each step into a temporary folder and renames it when complete, so a kill in
the middle of a save leaves no checkpoint that looks finished; such leftovers are ignored
on restore and cleaned up.
"""

import gc
import os
import re
import shutil
import sys
import warnings

import jax
import orbax.checkpoint as ocp
from absl import logging

from gan_jax.errors import CheckpointError
from gan_jax.training import state as state_lib

CHECKPOINT_DIR = "checkpoints"


# Orbax writes through TensorStore, whose I/O failures (a full disk, a read-only mount) arrive
# as ValueError("RESOURCE_EXHAUSTED: ... [os_error_code='28']") rather than OSError.
_TENSORSTORE_STATUS = re.compile(
    r"^(RESOURCE_EXHAUSTED|PERMISSION_DENIED|UNAVAILABLE|DATA_LOSS|FAILED_PRECONDITION|"
    r"NOT_FOUND|ALREADY_EXISTS|ABORTED|INTERNAL|UNKNOWN): "
)


def _io_failure(error: Exception) -> str | None:
    """The reason, if `error` is a failed disk write or read; None for anything else."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    text = str(error)
    code = re.search(r"os_error_code='?(\d+)", text)
    if code:
        return os.strerror(int(code.group(1)))
    if isinstance(error, ValueError) and _TENSORSTORE_STATUS.match(text):
        return text.splitlines()[0][:300]
    return None


def _quiet_closed_loop_callbacks() -> None:
    """Stops orbax's late TensorStore callbacks from printing dozens of tracebacks.

    When one write of an async save fails (a disk that fills mid-write), orbax's event loop
    closes while TensorStore's other writes are still in flight; each of those then calls
    `loop.call_soon_threadsafe` on the closed loop and Python reports a RuntimeError through
    `sys.unraisablehook`. The failure itself reaches us through the save and is reported once,
    so these echoes are dropped; every other unraisable exception goes to the previous hook.
    """
    previous = sys.unraisablehook
    if getattr(previous, "_gan_jax", False):
        return

    def hook(unraisable):
        value = unraisable.exc_value
        if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
            logging.debug("dropped a late TensorStore callback on orbax's closed event loop")
            return
        previous(unraisable)

    hook._gan_jax = True
    sys.unraisablehook = hook


def _key(path) -> str:
    """'g_params.conv1.kernel' for a pytree path, whatever the key types along it."""
    return ".".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def checkpoint_dir(workdir: str, subdir: str = CHECKPOINT_DIR) -> str:
    return os.path.join(os.path.abspath(workdir), subdir)


class Checkpointer:
    """A thin wrapper over `ocp.CheckpointManager` with the run's save policy."""

    def __init__(
        self,
        workdir: str,
        *,
        keep: int = 3,
        read_only: bool = False,
        subdir: str = CHECKPOINT_DIR,
    ):
        self.directory = checkpoint_dir(workdir, subdir)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,
        )
        # The handler named up front lets the manager read a step's tree metadata itself; a
        # standalone reader of the item folder logged "Metadata file does not exist" twice
        # per load (the step's metadata file sits one level up).
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler()
        )
        if not read_only:
            _quiet_closed_loop_callbacks()
        self._failed = False
        self._in_flight = None  # step of the async save not yet known to be on disk
        self._checkpoint_bytes = None  # on-disk size of one checkpoint, once one exists

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def last_complete_step(self) -> int | None:
        """The newest step whose save is finished on disk, read from the directory.

        Not `latest_step()` for error messages: orbax lists a step as soon as its async save
        starts, so after a failed write that could name a step that never reached the disk.
        Call it when no save is in flight (after `wait()`, even one that raised).
        """
        try:
            return max(ocp.step.checkpoint_steps(self.directory), default=None)
        except OSError:
            return None

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def restore(self, target, step: int | None = None):
        """Restores `step` (default: latest) into the shapes and shardings of `target`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in '{self.directory}'")
        if step not in self.all_steps():
            raise CheckpointError(
                f"no checkpoint for step {step} in '{self.directory}'; "
                f"steps saved: {self.all_steps() or 'none'}"
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        meta = self._tree_metadata(step)  # read once for both checks below
        saved_keys = set(meta.keys()) if hasattr(meta, "keys") else set()
        legacy = set(state_lib.LEGACY_KEYS) <= saved_keys
        if legacy:
            abstract = self._legacy_target(step, abstract)
        mismatch = self._shape_mismatch(meta, abstract)
        if mismatch:
            # Found from the metadata, before orbax starts a restore that would fail in its
            # worker threads (which then print tracebacks of their own while shutting down).
            raise CheckpointError(
                f"checkpoint step {step} in '{self.directory}' does not match this config "
                f"(model or data shape changed?): {mismatch}"
            )
        try:
            restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
            if legacy:
                restored = state_lib.from_legacy(restored, target)
                logging.info("Read step %d from the pre-redesign (DCGAN) layout", step)
            return restored
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"checkpoint step {step} in '{self.directory}' does not match this config "
                f"(model or data shape changed?): {str(e).splitlines()[0][:300]}"
            ) from None

    def _tree_metadata(self, step: int):
        """The saved tree's metadata (shapes, dtypes), or None when unreadable."""
        try:
            meta = self.manager.item_metadata(step)
        except Exception:  # an unreadable or older layout: let orbax's restore decide
            return None
        return getattr(meta, "item_metadata", meta)

    def _legacy_target(self, step: int, abstract):
        """The pre-redesign layout of `abstract`, or a clear error if it cannot hold it."""
        collections = set(abstract.g.variables) | set(abstract.d.variables)
        if abstract.extra or not collections <= {"params", "batch_stats"}:
            raise CheckpointError(
                f"checkpoint step {step} in '{self.directory}' was written in the DCGAN-only "
                "layout of gan_jax before the engine redesign (0.1); it holds no "
                f"{'augmentation state' if abstract.extra else 'spectral-norm state'} that "
                "this config needs. Resume it with the config it was trained with."
            )
        return state_lib.to_legacy(abstract)

    @staticmethod
    def _shape_mismatch(meta, abstract) -> str | None:
        """The first array whose saved shape (in `meta`) differs from `abstract`'s, or None."""
        if meta is None:
            return None
        saved = {
            _key(path): tuple(m.shape)
            for path, m in jax.tree_util.tree_leaves_with_path(meta)
            if hasattr(m, "shape")
        }
        for path, x in jax.tree_util.tree_leaves_with_path(abstract):
            key = _key(path)
            if key in saved and saved[key] != tuple(x.shape):
                return f"{key} is {saved[key]} in the checkpoint but {tuple(x.shape)} here"
        return None

    def reached_preemption(self, step: int) -> bool:
        return self.manager.reached_preemption(step)

    def _require_space(self, step: int, state):
        """Refuses a save that cannot fit before orbax starts writing it.

        A write that fails half-way leaves orbax's threads logging tracebacks; a full disk
        found here is one clean error. Single-process only: processes that disagreed here
        would deadlock in the save's barriers.
        """
        if jax.process_count() > 1:
            return
        latest = self.latest_step()
        if self._checkpoint_bytes is None and latest is not None:
            self._checkpoint_bytes = sum(
                os.path.getsize(os.path.join(d, f))
                for d, _, files in os.walk(os.path.join(self.directory, str(latest)))
                for f in files
            )
        need = self._checkpoint_bytes or sum(x.nbytes for x in jax.tree.leaves(state))
        need += 64 * 1024  # metadata files
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError:
            return
        if free < need:
            raise CheckpointError(
                f"cannot write checkpoint step {step} to '{self.directory}': no space left on "
                f"device ({free / 2**20:.1f} MiB free, a checkpoint needs about "
                f"{need / 2**20:.1f} MiB); the last complete checkpoint (step {latest}) is kept"
            )

    def save(self, step: int, state, *, force: bool = False) -> bool:
        if force or self.manager.should_save(step):
            # orbax's save() starts by waiting for the previous save anyway; waiting first
            # names the step that failed and lets the space check see the disk as it is.
            self.wait()
            self._require_space(step, state)
        try:
            saved = self.manager.save(step, args=ocp.args.StandardSave(state), force=force)
        except Exception as e:
            self._raise_if_io(e, step)
            raise
        if saved:
            self._in_flight = step
            logging.info("Saving checkpoint for step %d in %s", step, self.directory)
        return saved

    def wait(self):
        """Blocks until async saves are on disk; raises CheckpointError if one failed."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            self._raise_if_io(e, self._in_flight)
            raise
        self._in_flight = None

    def _raise_if_io(self, error: Exception, step: int | None):
        """Turns a failed disk write into one CheckpointError naming the step it lost."""
        reason = _io_failure(error)
        if reason is None:
            return
        self._failed = True
        what = f"checkpoint step {step}" if step is not None else "a checkpoint"
        raise CheckpointError(
            f"cannot write {what} to '{self.directory}': {reason}; "
            f"the last complete checkpoint (step {self.last_complete_step()}) is kept"
        ) from None

    def close(self):
        """Finishes pending saves and releases orbax's threads; quiet after a failed save."""
        try:
            self.manager.close()
        except Exception:
            if not self._failed:
                raise
        if self._failed:
            # Free the failed save's suspended coroutines now: collected at interpreter exit
            # they print "Exception ignored in <coroutine ...>" tracebacks. Writes it never
            # started would warn "coroutine ... was never awaited" there; the failure they
            # belong to has been reported already.
            warnings.filterwarnings("ignore", r"coroutine .* was never awaited", RuntimeWarning)
            gc.collect()
