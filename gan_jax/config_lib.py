"""Config files and the checks of the keys every run shares, before anything is compiled.

Each stage owns its own keys and checks them itself (`models.<name>.validate`, `losses`,
`augment`, `input`); this module holds the common keys and the helpers they all use.

A user's mistake (a typo in a key, a negative learning rate, a batch that does not split
over the devices) must end in one clear message naming the key and what is allowed, not
in a traceback from deep inside XLA twenty seconds later.
"""

import json
import math
import os

import ml_collections

from gan_jax import files
from gan_jax.errors import ConfigError

NONFINITE = ("stop", "skip")
OPTIMIZERS = ("adam", "adamw")
# linear: decay to zero at the last step (SNGAN, Mimicry); constant_linear: constant, then
# linear to zero from optim.decay_start (a fraction of the run: pix2pix, CycleGAN)
SCHEDULES = ("constant", "linear", "constant_linear")
EVAL_PREPROCESSINGS = ("pytorch-fid", "tf")  # gan_jax.evaluation.PREPROCESSINGS, JAX-free
CONFIG_FILE = "config.json"


def require(ok: bool, key: str, message: str):
    if not ok:
        raise ConfigError(f"config.{key}: {message}")


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def choice(config, key: str, allowed):
    value = get(config, key)
    # Same type too: 32.0 == 32 and True == 1, but neither works as an image size or channels.
    ok = any(value == a and type(value) is type(a) for a in allowed)
    require(ok, key, f"'{value}' is not one of: {', '.join(map(str, allowed))}")


def get(config, key: str):
    node = config
    for part in key.split("."):
        if part not in node:
            raise ConfigError(f"config.{key}: missing (the config file must define it)")
        node = node[part]
    return node


def positive_int(config, key: str, *, zero_ok: bool = False):
    value = get(config, key)
    low = 0 if zero_ok else 1
    require(
        is_int(value) and value >= low,
        key,
        f"must be an integer >= {low}, got {value!r}",
    )


def number_in(config, key: str, low: float, high: float, *, low_open=False, high_open=False):
    value = get(config, key)
    ok = is_number(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    require(ok, key, f"must be a number in {lo}{low}, {high}{hi}, got {value!r}")


def validate_common(config: ml_collections.ConfigDict, *, num_devices: int, num_processes: int = 1):
    """Raises ConfigError for a common key (not owned by a model, loss or data source) that
    cannot work. The full check, which dispatches to each stage's own `validate`, is
    `gan_jax.training.validation.validate`.

    Args:
      config: the full training config.
      num_devices: devices over all processes; the global batch must split evenly.
      num_processes: processes in the run; each one reads batch_size / num_processes.
    """
    positive_int(config, "seed", zero_ok=True)
    require(config.seed < 2**63, "seed", f"must be below 2**63, got {config.seed}")
    positive_int(config, "batch_size")
    batch = config.batch_size
    require(
        batch % num_devices == 0,
        "batch_size",
        f"{batch} does not divide over the {num_devices} devices; use a multiple of {num_devices}",
    )
    require(
        batch % num_processes == 0,
        "batch_size",
        f"{batch} does not divide over the {num_processes} processes",
    )
    positive_int(config, "num_epochs", zero_ok=True)
    positive_int(config, "num_steps", zero_ok=True)
    require(
        config.num_epochs > 0 or config.num_steps > 0,
        "num_steps",
        "set num_steps > 0 or num_epochs > 0; the run would train for zero steps",
    )
    positive_int(config, "data.shuffle_buffer")

    optim = config.optim
    if "name" in optim:
        choice(config, "optim.name", OPTIMIZERS)
    if "schedule" in optim:
        choice(config, "optim.schedule", SCHEDULES)
    if "decay_start" in optim:
        number_in(config, "optim.decay_start", 0.0, 1.0)
    if "weight_decay" in optim:
        number_in(config, "optim.weight_decay", 0.0, 1.0)
    for net in ("g", "d"):
        number_in(config, f"optim.{net}_lr", 0.0, 1.0, low_open=True)
        number_in(config, f"optim.{net}_b1", 0.0, 1.0, high_open=True)
        number_in(config, f"optim.{net}_b2", 0.0, 1.0, high_open=True)

    positive_int(config, "d_steps")
    number_in(config, "ema_decay", 0.0, 1.0, high_open=True)
    if "ema_start" in config:
        positive_int(config, "ema_start", zero_ok=True)
    if "ema_rampup" in config:  # 0 = no ramp
        number_in(config, "ema_rampup", 0.0, 1e12)
    choice(config, "on_nonfinite", NONFINITE)
    if config.get("init_from", ""):
        source = config.init_from
        require(isinstance(source, str), "init_from", "must be a workdir path or ''")
        require(
            os.path.isdir(os.path.join(source, "checkpoints")),
            "init_from",
            f"'{source}' holds no checkpoints (it must be the workdir of a finished run)",
        )
    for key in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints"):
        positive_int(config, key)
    positive_int(config, "num_sample_images")
    if "standing_stats" in config:
        positive_int(config, "standing_stats", zero_ok=True)
    if "eval" in config:  # configs written before FID-in-training have no eval section
        positive_int(config, "eval.fid_every", zero_ok=True)
        positive_int(config, "eval.num_samples")
        require(
            config.eval.num_samples >= 4,
            "eval.num_samples",
            "needs at least 4 (precision/recall k=3)",
        )
        positive_int(config, "eval.batch_size")
        choice(config, "eval.preprocessing", EVAL_PREPROCESSINGS)
        require(
            isinstance(get(config, "eval.inception_weights"), str),
            "eval.inception_weights",
            "must be a file path or '' (default weights)",
        )


def save(config: ml_collections.ConfigDict, workdir: str):
    """Writes the config beside the checkpoints so that resume and sampling need no flags."""
    path = os.path.join(workdir, CONFIG_FILE)
    files.write_text(path, config.to_json(indent=2, sort_keys=True))


def load(workdir: str) -> ml_collections.ConfigDict:
    """Reads the config saved by `save`."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise ConfigError(f"no {CONFIG_FILE} in workdir '{workdir}': is it a gan_jax run?")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))
