"""Helpers shared by the command lines (train.py, sample.py, evaluate.py)."""

import os
import sys


def fail(message: str, code: int = 2):
    """Prints one `error:` line and exits with `code`: how a user's mistake ends.

    Once JAX is loaded, a failed orbax restore leaves background threads that print "Event
    loop is closed" tracebacks at interpreter shutdown. Every output has been written (and
    renamed into place) before this is called, so the process leaves at once instead.
    """
    print(f"error: {message}", file=sys.stderr)
    if "jax" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
