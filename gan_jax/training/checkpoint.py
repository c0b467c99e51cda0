"""Orbax checkpoints of the GANState: periodic, final, on preemption; restore to any mesh.

Orbax writes each step into a temporary folder and renames it when complete, so a kill in
the middle of a save leaves no checkpoint that looks finished; such leftovers are ignored
on restore and cleaned up.
"""

import os

import jax
import orbax.checkpoint as ocp
from absl import logging

CHECKPOINT_DIR = "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read; the message says which and why."""


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


class Checkpointer:
    """A thin wrapper over `ocp.CheckpointManager` with the run's save policy."""

    def __init__(self, workdir: str, *, keep: int = 3, read_only: bool = False):
        self.directory = checkpoint_dir(workdir)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

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
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"checkpoint step {step} in '{self.directory}' does not match this config "
                f"(model or data shape changed?): {str(e).splitlines()[0][:300]}"
            ) from None

    def reached_preemption(self, step: int) -> bool:
        return self.manager.reached_preemption(step)

    def save(self, step: int, state, *, force: bool = False) -> bool:
        try:
            saved = self.manager.save(step, args=ocp.args.StandardSave(state), force=force)
        except OSError as e:
            raise CheckpointError(
                f"cannot write checkpoint step {step} to '{self.directory}': {e.strerror or e}"
            ) from None
        if saved:
            logging.info("Saving checkpoint for step %d in %s", step, self.directory)
        return saved

    def wait(self):
        """Blocks until async saves are on disk; raises CheckpointError if one failed."""
        try:
            self.manager.wait_until_finished()
        except OSError as e:
            raise CheckpointError(
                f"writing a checkpoint to '{self.directory}' failed: {e.strerror or e}"
            ) from None

    def close(self):
        self.manager.close()
