"""Log filters shared by the entry points: our own INFO lines, everyone's warnings.

A leaf module, so that `sample.py` and `evaluate.py` can quiet the libraries' chatter without
importing the training loop (and with it TensorFlow).
"""

import logging as logging_std
import os
import re

from absl import logging

# What orbax's threads log when a save fails: the failure itself (a TensorStore status) and
# the two lines that follow it. The failure reaches the caller through `wait()` / `save()`,
# which report an I/O failure as one CheckpointError and re-raise anything else.
_SAVE_FAILURE_ECHO = re.compile(
    r"os_error_code=|_SignalingThread\.run\(\) raised an exception: [A-Z_]+: |"
    r"Failed to run \d+ Handler Commit operations|Save Finalize thread \(save_finalize\) failed"
)


# What orbax warns (twice) when a run resumes: it looks for a per-item
# `checkpoints/<step>/default/_CHECKPOINT_METADATA` that its own saves do not write (the
# step's `_CHECKPOINT_METADATA` is there), then restores the checkpoint all the same.
_MISSING_METADATA = "Metadata file does not exist: "


def is_save_failure_echo(message: str) -> bool:
    """Whether an orbax log line only echoes a failed save that the caller reports itself."""
    return bool(_SAVE_FAILURE_ECHO.search(message))


class _OwnInfoOnly(logging_std.Filter):
    """Lets through warnings from everyone but INFO lines only from gan_jax and its CLIs."""

    def filter(self, record):
        path = record.pathname.replace(os.sep, "/")
        if "/orbax/" in path or "/clu/asynclib" in path or record.name == "asyncio":
            # A failed save (disk full) makes orbax's threads log their tracebacks and asyncio
            # its unretrieved futures, and clu's TensorBoard thread its own; the loop reports
            # the failure once as a CheckpointError.
            if record.name == "asyncio" and "never retrieved" in str(record.msg):
                return False
            try:
                text = record.getMessage()
            except (TypeError, ValueError):  # a record whose arguments do not fit its format
                text = str(record.msg)
            if is_save_failure_echo(text):
                return False  # reported once, by the CheckpointError (or the re-raised error)
            if text.startswith(_MISSING_METADATA):
                return False  # a resume's notice, printed twice, about a file orbax never writes
            record.exc_info, record.exc_text = None, None
        return (
            record.levelno >= logging_std.WARNING
            or "/gan_jax/" in path
            or path.endswith(("/train.py", "/sample.py", "/evaluate.py", "/project.py"))
        )


def quiet_library_logs():
    """Hides orbax's and jax's INFO chatter (set GAN_JAX_VERBOSE=1 to see it)."""
    if os.environ.get("GAN_JAX_VERBOSE"):
        return
    handler = logging.get_absl_handler()  # every record, absl's or Python logging's, ends here
    if not any(isinstance(f, _OwnInfoOnly) for f in handler.filters):
        handler.addFilter(_OwnInfoOnly())


class _QuietOrbaxReads(logging_std.Filter):
    """Drops orbax's notices below ERROR ('setting max_to_keep=None', metadata not found):
    not news to a program that only reads checkpoints."""

    def filter(self, record):
        path = record.pathname.replace(os.sep, "/")
        return "/orbax/" not in path or record.levelno >= logging_std.ERROR


def quiet_checkpoint_reads():
    """For the read-only entry points (sample.py, evaluate.py, project.py)."""
    for target in (logging.get_absl_handler(), logging_std.getLogger()):
        if not any(isinstance(f, _QuietOrbaxReads) for f in target.filters):
            target.addFilter(_QuietOrbaxReads())
