"""CycleGAN: the history of fakes, the cycle and identity losses, unpaired domains (two
folders, or one source split in halves with a known stylisation), the engine's guarantees
(1 vs 8 devices, bit-identical resume with the histories, NaN gate), evaluate and translate."""

import collections
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    ROOT,
    assert_devices_agree,
    cg_config,
    device_pair,
    leaves,
    straight_and_preempted,
)
from PIL import Image
from test_pix2pix import _rgb_folder
from test_reliability import _poison, _restore_all

from gan_jax import input as input_lib
from gan_jax import objectives
from gan_jax.configs import cyclegan as cyclegan_config
from gan_jax.errors import ConfigError
from gan_jax.input import tasks, unpaired
from gan_jax.objectives.cyclegan import query_pool
from gan_jax.sampling import translate
from gan_jax.training import loop, train_and_evaluate, validation
from gan_jax.training import state as state_lib


def _multiset(images):
    return collections.Counter(float(v) for v in np.asarray(images).reshape(len(images), -1)[:, 0])


def test_history_pool_fills_then_swaps_half_and_loses_nothing():
    pool, count = jnp.zeros((3, 1)), jnp.zeros((), jnp.int32)
    first = jnp.arange(1, 3, dtype=jnp.float32)[:, None]  # 2 images: stored and shown
    shown, pool, count = query_pool(pool, count, first, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(shown, first)
    assert int(count) == 2 and pool[:2, 0].tolist() == [1.0, 2.0]
    # The third image fills the pool (stored and shown); the fourth meets a full pool.
    new = jnp.array([[3.0], [4.0]])
    shown, pool, count = query_pool(pool, count, new, jax.random.PRNGKey(1))
    assert int(count) == 3 and float(pool[2, 0]) == 3.0 and float(shown[0, 0]) == 3.0
    assert float(shown[1, 0]) in (4.0, *np.asarray(pool[:, 0]).tolist())
    swaps = 0
    query = jax.jit(query_pool)  # as the train step runs it; op by op, 200 calls take ~15 s
    for step in range(200):
        new = jnp.arange(10 + 4 * step, 14 + 4 * step, dtype=jnp.float32)[:, None]
        shown, after, count = query(pool, count, new, jax.random.PRNGKey(step + 2))
        # Full: every image is either shown or kept, never lost or duplicated.
        assert _multiset(after) + _multiset(shown) == _multiset(pool) + _multiset(new)
        swaps += int(np.sum(np.asarray(shown) != np.asarray(new)))  # a swap shows another
        pool = after
    assert int(count) == 3
    # Once full, each image is swapped with probability 1/2: 800 queries.
    assert 0.44 < swaps / 800 < 0.56
    same, *_ = query_pool(jnp.zeros((0, 1)), jnp.zeros((), jnp.int32), new, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(same, new)  # pool_size 0: no history


def test_cycle_and_identity_losses_vanish_for_perfect_reconstructions():
    config = cg_config()
    obj = objectives.build(config)
    g_vars, d_vars = obj.init(jax.random.PRNGKey(0), (32, 32, 1))
    a = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 1), minval=-1, maxval=1)
    b = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 32, 1), minval=-1, maxval=1)
    fake = {"fake_a": b, "fake_b": a, "rec_a": a, "rec_b": b, "idt_a": a, "idt_b": b}
    loss, (_, values) = obj.g_loss_of_fake(fake, a, d_vars, key=None, extra={}, real=b)
    assert float(values["cycle"]) == 0.0 and float(values["identity"]) == 0.0
    np.testing.assert_allclose(loss, values["g_adv"], rtol=1e-6)
    off = {**fake, "rec_a": a + 0.25, "idt_b": b - 0.5}
    loss, (_, values) = obj.g_loss_of_fake(off, a, d_vars, key=None, extra={}, real=b)
    np.testing.assert_allclose(values["cycle"], 0.25, rtol=1e-5)
    np.testing.assert_allclose(values["identity"], 0.5, rtol=1e-5)
    np.testing.assert_allclose(loss, values["g_adv"] + 10 * 0.25 + 10 * 0.5 * 0.5, rtol=1e-5)


def test_cel_stylisation_is_posterised_with_dark_outlines():
    rng = np.random.default_rng(0)
    img = np.full((32, 32, 3), -0.6, np.float32)
    img[8:24, 8:24] = rng.uniform(0.2, 0.9, 3)
    out = unpaired.cel(img)
    np.testing.assert_array_equal(out, unpaired.cel(img))  # deterministic
    levels = {round(-1 + 2 * k / 3, 5) for k in range(4)} | {unpaired.CEL_EDGE}
    assert {round(float(v), 5) for v in np.unique(out)} <= levels
    edges = tasks.canny((tasks.luma(img) + 1) / 2)
    assert edges.sum() > 20 and np.all(out[edges] == unpaired.CEL_EDGE)


def test_one_source_splits_into_disjoint_stylised_halves():
    config = cg_config()
    domains = unpaired.load_domains(config)
    a_images, a_keys, truth = domains["a"]
    b_images, b_keys, _ = domains["b"]
    assert not set(a_keys) & set(b_keys) and len(a_keys) + len(b_keys) == 1797
    assert all(unpaired.domain_of(k) == "a" for k in a_keys)
    np.testing.assert_array_equal(truth.astype(int), 255 - a_images.astype(int))  # 'invert'
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    it = iter(ds)
    batches = [next(it) for _ in range(3)]
    assert set(batches[0]) == {"source", "image", "label"}
    resumed = next(
        iter(input_lib.create_dataset(config, process_index=0, process_count=1, start_step=2))
    )
    for k in resumed:
        np.testing.assert_array_equal(resumed[k], batches[2][k])


def test_two_folders_and_config_errors(tmp_path):
    a = _rgb_folder(str(tmp_path / "a"), n=30, seed=0)
    b = _rgb_folder(str(tmp_path / "b"), n=30, seed=1)
    folders = {"data.source": "folder", "data.channels": 3, "data.domain_b": ""}
    config = cg_config(**folders, **{"data.path_a": a, "data.path_b": b})
    validation.validate(config, num_devices=1)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    batch = next(iter(ds))
    assert batch["source"].shape == batch["image"].shape == (8, 32, 32, 3)
    for overrides, key in [
        ({**folders, "data.path_a": a}, "data.path_a"),
        ({**folders, "data.path_a": a, "data.path_b": str(tmp_path / "none")}, "data.path_b"),
        ({"data.domain_b": "watercolour"}, "data.domain_b"),
        ({"data.path_a": a}, "data.domain_b"),  # both ways at once
        ({"loss.cycle": -1.0}, "loss.cycle"),
        ({"data.image_size": 30}, "data.image_size"),
        ({"optim.schedule": "cosine"}, "optim.schedule"),
    ]:
        with pytest.raises(ConfigError, match=f"config.{key}"):
            validation.validate(cg_config(**overrides), num_devices=1)


def test_two_tfds_splits_are_the_domains():
    tfds = pytest.importorskip("tensorflow_datasets")
    name = "cycle_gan/horse2zebra"
    tfds_keys = {"data.source": "tfds", "data.name": name, "data.channels": 3, "data.domain_b": ""}
    config = cg_config(**tfds_keys, **{"data.split_a": "trainA", "data.split_b": "trainB"})
    with tfds.testing.mock_data(num_examples=40):  # random 256 px images
        validation.validate(config, num_devices=1)
        domains = unpaired.load_domains(config)

        ds = input_lib.create_dataset(config, process_index=0, process_count=1)
        with pytest.raises(ConfigError, match="config.data.split_a: .*data.split_b"):
            validation.validate(cg_config(**tfds_keys, **{"data.split_a": "trainA"}), num_devices=1)
    a_images, a_keys, _ = domains["a"]
    b_images, b_keys, _ = domains["b"]
    assert len(a_keys) == len(b_keys) == 40
    # Each domain is its own split (keys '<split>/<index>'), resized to the config's size.
    assert a_keys[0] == "trainA/0" and b_keys[-1] == "trainB/39"
    assert a_images.shape == b_images.shape == (40, 32, 32, 3)
    # Training reads each domain's train split only.
    train_a = {a_images[i].tobytes() for i in range(40) if tasks.split_of(a_keys[i]) == "train"}
    assert {x.tobytes() for x in ds.images} == train_a
    assert ds.b_images.shape[1:] == (32, 32, 3)


@pytest.mark.parametrize("preset", cyclegan_config.PRESETS)
def test_every_preset_validates(preset, tmp_path):
    c = cyclegan_config.get_config(preset)
    if preset == "cel_anime":
        c.data.path = _rgb_folder(str(tmp_path / "faces"), n=3, size=64)
    if preset == "folder":
        c.data.path_a = _rgb_folder(str(tmp_path / "a"), n=3, size=64)
        c.data.path_b = _rgb_folder(str(tmp_path / "b"), n=3, size=64)
    validation.validate(c, num_devices=1)


def test_constant_then_linear_schedule():
    config = cg_config()
    g_tx, _ = state_lib.make_optimizers(config, total_steps=10)
    params = {"w": jnp.zeros(())}
    opt = g_tx.init(params)
    steps = []
    for _ in range(10):
        update, opt = g_tx.update({"w": jnp.ones(())}, opt, params)
        steps.append(-float(update["w"]))
    # Adam's first steps are lr * sign(g): constant for 5 steps, then 2e-4 * (1 - k / 5).
    np.testing.assert_allclose(steps[:5], 2e-4, rtol=1e-3)
    np.testing.assert_allclose(steps[5:], [2e-4 * (1 - k / 5) for k in range(5)], rtol=1e-3)


def test_resumed_run_is_bit_identical_with_its_histories(tmp_path, monkeypatch):
    config = cg_config(num_steps=6, checkpoint_every=100)
    straight, resumed, _ = straight_and_preempted(config, tmp_path, monkeypatch)
    assert int(resumed.extra["pool_a_n"]) == 4  # the history filled and came back
    for x, y in zip(leaves(straight), leaves(resumed), strict=True):
        np.testing.assert_array_equal(x, y)


_DEVICE_SETUP = """
from conftest import cg_config
c = cg_config(num_steps=6, checkpoint_every=100)  # the resume test's: its programs
k = jax.random.split(jax.random.PRNGKey(1))
a = jax.random.uniform(k[0], (1, 8, 32, 32, 1), minval=-1.0, maxval=1.0)
b = jax.random.uniform(k[1], (1, 8, 32, 32, 1), minval=-1.0, maxval=1.0)
batch = {'image': b, 'label': np.zeros((1, 8), np.int32), 'source': a}
"""


@pytest.mark.slow
def test_one_device_and_eight_devices_end_equal(tmp_path):
    # Two steps: the second sees a full history (4 of 8 fakes stored).
    one, m1, eight, m8 = device_pair(_DEVICE_SETUP, tmp_path, steps=2)
    assert {"cycle", "identity", "g_adv", "d_a", "d_b"} <= m1.keys()
    assert_devices_agree(one, m1, eight, m8)  # the histories' counts exactly


def test_nan_never_reaches_a_checkpoint(tmp_path, monkeypatch):
    _poison(monkeypatch, {3}, np.nan)  # a NaN in domain B's batch of step 3
    workdir = str(tmp_path / "run")
    with pytest.raises(loop.NonFiniteError, match=r"at step 3\b"):
        train_and_evaluate(cg_config(num_steps=6), workdir)
    restored = _restore_all(workdir)
    assert max(restored) == 2
    for arrays in restored.values():
        assert all(np.isfinite(x).all() for x in arrays if x.dtype.kind == "f")


def test_evaluate_and_translate_a_known_answer_run(tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(cg_config(num_steps=2), workdir)
    r = subprocess.run(
        [sys.executable, "evaluate.py", f"--workdir={workdir}", "--no_kid"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (name,) = os.listdir(os.path.join(workdir, "eval"))
    with open(os.path.join(workdir, "eval", name)) as f:
        result = json.load(f)
    assert set(result["methods"]) == {"model", "input"}
    # The input's score against the truth (its negative), recomputed here.
    pairs = unpaired.load_split(cg_config(), "test")
    x = np.round((pairs["input"] + 1) * 127.5)
    y = np.round((pairs["target"] + 1) * 127.5)
    mse = ((x - y) ** 2).mean(axis=(1, 2, 3))
    assert result["methods"]["input"]["psnr"] == pytest.approx(
        np.mean(10 * np.log10(255**2 / mse)), abs=1e-6
    )
    model = translate.load(workdir)
    image = np.asarray(Image.new("L", (40, 36), 30))[..., None]
    assert model(image).shape == (36, 40, 1)
