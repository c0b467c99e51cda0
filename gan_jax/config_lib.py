"""Config checks that run before anything is compiled or read.

A user's mistake (a typo in a key, a negative learning rate, a batch that does not split
over the devices) must end in one clear message naming the key and what is allowed, not
in a traceback from deep inside XLA twenty seconds later.
"""

import json
import math
import os

import ml_collections

from gan_jax import losses

MODEL_DTYPES = ("float32", "bfloat16")
CONV_IMPLS = ("auto", "fast", "lax")
CROPS = ("none", "center")
NONFINITE = ("stop", "skip")
IMAGE_SIZES = (28, 32, 64, 128)
EVAL_PREPROCESSINGS = ("pytorch-fid", "tf")  # gan_jax.evaluation.PREPROCESSINGS, JAX-free
CONFIG_FILE = "config.json"


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def _require(ok: bool, key: str, message: str):
    if not ok:
        raise ConfigError(f"config.{key}: {message}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _choice(config, key: str, allowed):
    value = _get(config, key)
    # Same type too: 32.0 == 32 and True == 1, but neither works as an image size or channels.
    ok = any(value == a and type(value) is type(a) for a in allowed)
    _require(ok, key, f"'{value}' is not one of: {', '.join(map(str, allowed))}")


def _get(config, key: str):
    node = config
    for part in key.split("."):
        if part not in node:
            raise ConfigError(f"config.{key}: missing (the config file must define it)")
        node = node[part]
    return node


def _positive_int(config, key: str, *, zero_ok: bool = False):
    value = _get(config, key)
    low = 0 if zero_ok else 1
    _require(
        _is_int(value) and value >= low,
        key,
        f"must be an integer >= {low}, got {value!r}",
    )


def _number_in(config, key: str, low: float, high: float, *, low_open=False, high_open=False):
    value = _get(config, key)
    ok = _is_number(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    _require(ok, key, f"must be a number in {lo}{low}, {high}{hi}, got {value!r}")


def validate(config: ml_collections.ConfigDict, *, num_devices: int, num_processes: int = 1):
    """Raises ConfigError for any value that cannot work.

    Args:
      config: the full training config.
      num_devices: devices over all processes; the global batch must split evenly.
      num_processes: processes in the run; each one reads batch_size / num_processes.
    """
    from gan_jax import input as input_lib  # noqa: PLC0415 (keeps tf.data out of config parsing)
    from gan_jax import models  # noqa: PLC0415

    _positive_int(config, "seed", zero_ok=True)
    _require(config.seed < 2**63, "seed", f"must be below 2**63, got {config.seed}")
    _positive_int(config, "batch_size")
    batch = config.batch_size
    _require(
        batch % num_devices == 0,
        "batch_size",
        f"{batch} does not divide over the {num_devices} devices; use a multiple of {num_devices}",
    )
    _require(
        batch % num_processes == 0,
        "batch_size",
        f"{batch} does not divide over the {num_processes} processes",
    )
    _positive_int(config, "num_epochs", zero_ok=True)
    _positive_int(config, "num_steps", zero_ok=True)
    _require(
        config.num_epochs > 0 or config.num_steps > 0,
        "num_steps",
        "set num_steps > 0 or num_epochs > 0; the run would train for zero steps",
    )

    _choice(config, "data.source", input_lib.SOURCES)
    _choice(config, "data.image_size", IMAGE_SIZES)
    _choice(config, "data.channels", (1, 3))
    _choice(config, "data.crop", CROPS)
    _positive_int(config, "data.shuffle_buffer")

    _choice(config, "model.name", models.available())
    _positive_int(config, "model.z_dim")
    _positive_int(config, "model.g_width")
    _positive_int(config, "model.d_width")
    _choice(config, "model.conv_impl", CONV_IMPLS)
    _choice(config, "model.dtype", MODEL_DTYPES)

    _choice(config, "loss.name", tuple(losses.LOSSES))
    _number_in(config, "loss.gp_weight", 0.0, 1e6)

    for net in ("g", "d"):
        _number_in(config, f"optim.{net}_lr", 0.0, 1.0, low_open=True)
        _number_in(config, f"optim.{net}_b1", 0.0, 1.0, high_open=True)
        _number_in(config, f"optim.{net}_b2", 0.0, 1.0, high_open=True)

    _positive_int(config, "d_steps")
    _number_in(config, "ema_decay", 0.0, 1.0, high_open=True)
    _choice(config, "on_nonfinite", NONFINITE)
    for key in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints"):
        _positive_int(config, key)
    _positive_int(config, "num_sample_images")
    if "eval" in config:  # configs written before FID-in-training have no eval section
        _positive_int(config, "eval.fid_every", zero_ok=True)
        _positive_int(config, "eval.num_samples")
        _require(
            config.eval.num_samples >= 4,
            "eval.num_samples",
            "needs at least 4 (precision/recall k=3)",
        )
        _positive_int(config, "eval.batch_size")
        _choice(config, "eval.preprocessing", EVAL_PREPROCESSINGS)
        _require(
            isinstance(_get(config, "eval.inception_weights"), str),
            "eval.inception_weights",
            "must be a file path or '' (default weights)",
        )

    # Last: the data checks may touch the disk (a folder that does not exist).
    try:
        input_lib.validate(config)
    except input_lib.DataError as e:
        raise ConfigError(str(e) if str(e).startswith("config.") else f"config.{e}") from None


def save(config: ml_collections.ConfigDict, workdir: str):
    """Writes the config beside the checkpoints so that resume and sampling need no flags."""
    path = os.path.join(workdir, CONFIG_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(config.to_json(indent=2, sort_keys=True))
    os.replace(tmp, path)  # atomic: a kill never leaves half a config


def load(workdir: str) -> ml_collections.ConfigDict:
    """Reads the config saved by `save`."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise ConfigError(f"no {CONFIG_FILE} in workdir '{workdir}': is it a gan_jax run?")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))
