"""The errors a user can cause, and the exit code each one gives on the command line.

A leaf module: every layer raises these, and the entry points (train.py, sample.py,
evaluate.py) catch them without importing the layers that raise them (sample.py must not
load the training loop, and with it TensorFlow, to report a missing checkpoint).
"""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


class DataError(ValueError):
    """A problem with the data named by the config, phrased for the user."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read; the message says which and why."""


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/Inf; the last good checkpoint is kept."""


class WorkdirBusyError(RuntimeError):
    """Another training process holds the workdir."""


class SamplingError(ValueError):
    """A sampling request that cannot work (bad number, label, output path); says why."""


USER_ERRORS = (
    ConfigError,
    DataError,
    CheckpointError,
    NonFiniteError,
    WorkdirBusyError,
    SamplingError,
)

_CODES = {
    ConfigError: 2,
    DataError: 2,
    SamplingError: 2,
    WorkdirBusyError: 3,
    CheckpointError: 4,
    NonFiniteError: 5,
}


def exit_code(error: Exception) -> int:
    for cls, code in _CODES.items():
        if isinstance(error, cls):
            return code
    return 1
