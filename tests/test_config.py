"""Config mistakes stop before anything compiles, with one message naming the key."""

import importlib
import re
import subprocess
import sys

import pytest
from conftest import ROOT, tiny_config

from gan_jax import config_lib
from gan_jax.configs import dcgan
from gan_jax.training import validation


@pytest.mark.parametrize("preset", dcgan.PRESETS)
def test_presets_build(preset):
    c = dcgan.get_config(preset)
    assert c.preset == preset
    assert c.batch_size == 64


def test_celeba_preset_is_the_seed():
    c = dcgan.get_config("celeba")
    assert (c.data.source, c.data.name, c.data.image_size, c.data.crop) == (
        "tfds",
        "celeb_a",
        64,
        "center",
    )
    assert (c.model.z_dim, c.batch_size, c.num_epochs, c.loss.name) == (
        100,
        64,
        100,
        "nonsaturating",
    )
    assert (c.optim.g_lr, c.optim.g_b1, c.optim.g_b2) == (2e-4, 0.5, 0.999)
    assert (c.optim.d_lr, c.optim.d_b1, c.optim.d_b2) == (2e-4, 0.5, 0.999)


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("optim.g_lr", -1e-4, "config.optim.g_lr"),
        ("optim.d_b1", 1.5, "config.optim.d_b1"),
        ("batch_size", 0, "config.batch_size"),
        ("data.source", "ftp", "config.data.source: unknown source 'ftp'"),
        ("loss.name", "wgan", "config.loss.name: 'wgan' is not one of: nonsaturating"),
        ("model.name", "stylegan9", "config.model.name"),
        ("model.dtype", "float16", "config.model.dtype"),
        ("data.image_size", 48, "config.data.image_size"),
        ("d_steps", 0, "config.d_steps"),
        ("ema_decay", 1.0, "config.ema_decay"),
        ("on_nonfinite", "ignore", "config.on_nonfinite"),
        ("data.channels", 2, "config.data.channels"),
        ("log_every", -3, "config.log_every"),
        ("optim.name", "sgd", "config.optim.name: 'sgd' is not one of: adam, adamw"),
        ("optim.schedule", "cosine", "config.optim.schedule: 'cosine' is not one of"),
        ("reg.r1", -1.0, "config.reg.r1: must be a number in"),
        ("reg.r1_every", 0, "config.reg.r1_every: must be an integer >= 1"),
        ("augment.policy", "color,blur", "config.augment.policy: unknown"),
        ("augment.p", 1.5, "config.augment.p: must be a number in"),
        ("model.num_classes", 10, "config.model.num_classes: DCGAN is unconditional"),
        ("model.conv_impl", "fastest", "config.model.conv_impl"),
    ],
)
def test_bad_values_name_the_key(key, value, needle):
    with pytest.raises(config_lib.ConfigError, match=needle.replace(".", r"\.")):
        validation.validate(tiny_config(**{key: value}), num_devices=1)


def test_batch_must_divide_over_devices():
    with pytest.raises(config_lib.ConfigError, match="does not divide over the 3 devices"):
        validation.validate(tiny_config(batch_size=8), num_devices=3)
    validation.validate(tiny_config(batch_size=9), num_devices=3)


def test_missing_folder_is_a_config_error(tmp_path):
    c = tiny_config(**{"data.source": "folder", "data.path": str(tmp_path / "nope")})
    with pytest.raises(config_lib.ConfigError, match="data.path"):
        validation.validate(c, num_devices=1)


def test_saved_config_round_trips(tmp_path):
    c = tiny_config()
    config_lib.save(c, str(tmp_path))
    assert config_lib.load(str(tmp_path)).to_dict() == c.to_dict()
    with pytest.raises(config_lib.ConfigError, match="no config.json"):
        config_lib.load(str(tmp_path / "elsewhere"))


def _train_py(*args):
    return subprocess.run(
        [sys.executable, "train.py", "--config=configs/dcgan.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--config.optim.g_lr=-0.1"], "config.optim.g_lr: must be a number in (0.0, 1.0]"),
        (["--config.loss.name=wgan"], "config.loss.name: 'wgan' is not one of"),
        (["--config.data.source=folder", "--config.data.path=/no/such/dir"], "/no/such/dir"),
    ],
)
def test_train_py_user_errors_have_no_traceback(tmp_path, args, needle):
    out = _train_py(f"--workdir={tmp_path}", *args)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert needle in out.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_key_and_preset_have_no_traceback(tmp_path):
    for args, needle in (
        (["--config.bacth_size=8"], "bacth_size"),
        (["--config.batch_size=abc"], "batch_size"),
        (["--config=configs/dcgan.py:imagenet"], "imagenet"),
    ):
        out = _train_py(f"--workdir={tmp_path}", *args)
        assert out.returncode != 0
        assert needle in out.stderr
        assert "Traceback" not in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize(
    "name, key, value, needle",
    [
        ("sngan", "data.image_size", 28, "config.data.image_size: '28' is not one of: 32, 48"),
        ("sngan", "model.g_width", 0, "config.model.g_width: must be an integer >= 1"),
        ("sngan", "model.upsample", "cubic", "config.model.upsample"),
        ("biggan", "model.z_dim", 81, "config.model.z_dim"),
        ("biggan", "model.attn_res", 12, "config.model.attn_res"),
        ("biggan", "data.image_size", 48, "config.data.image_size"),
        ("biggan", "model.num_classes", 7, "config.model.num_classes: 7, but the data has 10"),
        ("sngan", "augment.adaptive", True, "config.augment.adaptive: needs augment.policy"),
    ],
)
def test_new_models_own_their_keys(name, key, value, needle):
    """Each model checks its own keys; a conditional config must agree with the data."""
    config = importlib.import_module(f"gan_jax.configs.{name}").get_config("digits")
    config.batch_size = 8
    node, *path = key.split(".")
    target = config[node]
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(config_lib.ConfigError, match=re.escape(needle)):
        validation.validate(config, num_devices=1)


@pytest.mark.parametrize("name", ["sngan", "biggan"])
def test_new_model_presets_validate(name):
    module = importlib.import_module(f"gan_jax.configs.{name}")
    for preset in module.PRESETS:
        config = module.get_config(preset)
        assert config.preset == preset
        if config.data.source == "digits":
            validation.validate(config, num_devices=1)
