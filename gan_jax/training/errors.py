"""The errors a user can cause, and the exit code each one gives on the command line."""

from gan_jax.config_lib import ConfigError
from gan_jax.input import DataError
from gan_jax.training.checkpoint import CheckpointError
from gan_jax.training.loop import NonFiniteError, WorkdirBusyError

USER_ERRORS = (ConfigError, DataError, CheckpointError, NonFiniteError, WorkdirBusyError)

_CODES = {ConfigError: 2, DataError: 2, WorkdirBusyError: 3, CheckpointError: 4, NonFiniteError: 5}


def exit_code(error: Exception) -> int:
    for cls, code in _CODES.items():
        if isinstance(error, cls):
            return code
    return 1
