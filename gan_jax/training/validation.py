"""The whole config checked before anything is compiled or decoded, one stage at a time.

Each stage owns its keys and checks them: `config_lib` the common ones, `models` the model's
(through its own `validate`), `losses`, the regularisers, `augment` and `input` theirs. This
module, above all of them in the import order, only calls them in the data flow's order.
"""

from __future__ import annotations

from gan_jax import config_lib, losses, models
from gan_jax import input as input_lib
from gan_jax.augment import config as augment_config
from gan_jax.errors import ConfigError, DataError
from gan_jax.objectives import regularisers


def validate(config, *, num_devices: int, num_processes: int = 1) -> None:
    """Raises ConfigError (naming the key) for any value that cannot work.

    Args:
      config: the full training config.
      num_devices: devices over all processes; the global batch must split evenly.
      num_processes: processes in the run.
    """
    config_lib.validate_common(config, num_devices=num_devices, num_processes=num_processes)
    models.validate(config)
    losses.validate(config)
    regularisers.validate(config)
    augment_config.validate(config)
    # Last: the data checks may touch the disk (a folder that does not exist).
    try:
        input_lib.validate(config)
    except DataError as e:
        raise ConfigError(str(e) if str(e).startswith("config.") else f"config.{e}") from None
