"""Image-to-image training (configs/pix2pix.py): paired data, the objective, the engine's
guarantees (1 vs 8 devices, bit-identical resume, NaN gate, config errors), translate.py
(tiling, bad input) and evaluate.py's task scores."""

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
    assert_clean_failure,
    assert_devices_agree,
    cg_config,
    device_pair,
    leaves,
    p2p_config,
    straight_and_preempted,
    tiny_config,
)
from PIL import Image
from test_reliability import _poison, _restore_all

from gan_jax import input as input_lib
from gan_jax.configs import pix2pix as pix2pix_config
from gan_jax.errors import ConfigError, SamplingError
from gan_jax.input import paired, tasks
from gan_jax.models import srresnet
from gan_jax.sampling import translate
from gan_jax.training import loop, train_and_evaluate, validation

SR = {"data.task": "sr4", "model.generator": "srresnet", "model.norm": "none"}
# ESRGAN's choices: RRDB blocks and the relativistic average loss.
ESR = {**SR, "model.sr_block": "rrdb", "model.sr_growth": 4, "loss.name": "relativistic_average"}


def _rgb_folder(root, n=48, size=32, seed=0):
    """n smooth random RGB images (gradients + a disc), PNG, as an art folder would hold."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a, b, c = rng.uniform(0, 1, 3)
        img = np.stack([a * xx + (1 - a) * yy, b * yy, c * xx], axis=-1)
        cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.1, 0.3)]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
        Image.fromarray((img * 255).astype(np.uint8)).save(os.path.join(root, f"img_{i:03d}.png"))
    return root


# -- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", pix2pix_config.PRESETS)
def test_every_preset_validates(preset, tmp_path):
    c = pix2pix_config.get_config(preset)
    if c.data.source == "folder":
        c.data.path = _rgb_folder(str(tmp_path / "art"), n=3, size=64)
    validation.validate(c, num_devices=1)


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"data.task": "sr4"}, "model.generator"),  # the U-Net cannot upsample
        ({"model.generator": "srresnet"}, "model.generator"),  # SR net, inpainting task
        ({"data.task": "sr3", **{k: v for k, v in SR.items() if k != "data.task"}}, "model."),
        ({"data.task": "blur"}, "data.task"),
        ({"data.task": ""}, "data.task"),
        ({"data.task": "colorize"}, "data.task"),  # the digits have one channel
        ({"data.image_size": 48}, "data.image_size"),  # the U-Net halves down to 1x1
        ({"data.source": "npy"}, "data.source"),
        ({"loss.l1": -1.0}, "loss.l1"),
        ({"model.d_layers": 5}, "model.d_layers"),
        ({"init_from": "/nonexistent/run"}, "init_from"),
        ({"eval.fid_every": 100}, "eval.fid_every"),
        ({**SR, "model.sr_block": "rdb"}, "model.sr_block"),
        ({**SR, "model.sr_growth": 0}, "model.sr_growth"),
    ],
)
def test_impossible_configs_are_clear_errors(overrides, key):
    with pytest.raises(ConfigError, match=f"config.{key}"):
        validation.validate(p2p_config(**overrides), num_devices=1)


def test_relativistic_loss_is_refused_where_g_never_sees_reals():
    for config in (tiny_config(), cg_config()):
        config.loss.name = "relativistic_average"
        with pytest.raises(ConfigError, match="config.loss.name: 'relativistic_average'.*pix2pix"):
            validation.validate(config, num_devices=1)


# -- paired data -------------------------------------------------------------------------------


def test_splits_do_not_move_when_files_are_added(tmp_path):
    root = _rgb_folder(str(tmp_path / "art"), n=60)
    config = p2p_config(
        **{"data.source": "folder", "data.path": root, "data.channels": 3}, **{"data.task": "sr4"}
    )
    config.model.generator, config.model.norm = "srresnet", "none"
    first = input_lib.create_dataset(config, process_index=0, process_count=1)
    test_keys = set(first.held_out["test"][1]) | set(first.held_out["validation"][1])
    assert not test_keys & set(first.keys)  # held-out images never reach training
    assert len(first.keys) + len(test_keys) == 60
    _rgb_folder(str(tmp_path / "art" / "more"), n=30, seed=1)
    second = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert set(first.keys) <= set(second.keys)
    assert set(first.held_out["test"][1]) <= set(second.held_out["test"][1])
    # The split is the key's hash: the same as tasks.split_of says, whatever the listing.
    for k in second.keys:
        assert tasks.split_of(k) == "train"


def test_pairs_are_the_task_applied_and_resume_sees_the_same_batches():
    config = p2p_config()
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    batches = [next(it) for it in [iter(ds)] for _ in range(3)]
    b = batches[2]
    assert set(b) == {"image", "source", "label"}
    assert b["source"].shape == (8, 32, 32, 2)  # image + mask channel
    hole = b["source"][..., 1:]
    assert set(np.unique(hole)) <= {0.0, 1.0} and hole.sum() > 0
    np.testing.assert_array_equal(b["source"][..., :1], b["image"] * (1 - hole))
    # A dataset started at step 2 (a resume) yields step 2's batch, masks included.
    resumed = next(
        iter(input_lib.create_dataset(config, process_index=0, process_count=1, start_step=2))
    )
    for k in b:
        np.testing.assert_array_equal(resumed[k], b[k])
    # Held-out examples get one fixed mask each, whatever is asked with them.
    ex1 = ds.examples("validation", 4)
    ex2 = ds.examples("validation", 2)
    np.testing.assert_array_equal(ex1["input"][:2], ex2["input"])


def test_two_processes_read_halves_of_the_global_batch():
    config = p2p_config()
    whole = next(iter(input_lib.create_dataset(config, process_index=0, process_count=1)))
    parts = [
        next(iter(input_lib.create_dataset(config, process_index=p, process_count=2)))
        for p in range(2)
    ]
    for k in whole:
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])


# -- the SR generator -------------------------------------------------------------------------


def test_depth_to_space_is_pixel_shuffle():
    # PixelShuffle: out[c, h*r + i, w*r + j] = in[c*r*r + i*r + j, h, w] (NCHW).
    x = np.arange(2 * 3 * 4 * 8, dtype=np.float32).reshape(2, 3, 4, 8)  # NHWC, C = 2 * 2 * 2
    y = np.asarray(srresnet.depth_to_space(jnp.asarray(x), 2))
    assert y.shape == (2, 6, 8, 2)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                np.testing.assert_array_equal(y[:, i::2, j::2, c], x[..., c * 4 + i * 2 + j])


@pytest.mark.parametrize("block", srresnet.BLOCKS)
def test_sr_generator_starts_near_bicubic_and_its_reach_is_bounded(block):
    net = srresnet.SRResNet(factor=4, out_channels=3, width=8, n_blocks=2, block=block, growth=4)
    x = jax.random.uniform(jax.random.PRNGKey(0), (1, 24, 24, 3), minval=-1, maxval=1)
    v = net.init(jax.random.PRNGKey(1), x)
    y = net.apply(v, x)
    bicubic = srresnet.upsample_bicubic(x, 4)
    assert y.shape == (1, 96, 96, 3)
    assert float(jnp.abs(y - bicubic).mean()) < 0.05 * float(jnp.abs(bicubic).mean())
    # One input pixel changes outputs only within receptive_radius input pixels of it.
    r = srresnet.receptive_radius(2, 4, block)
    y2 = net.apply(v, x.at[0, 12, 12].add(1.0))
    changed = np.argwhere(np.abs(np.asarray(y2 - y))[0].max(-1) > 0)
    assert len(changed)
    assert changed.min() >= (12 - r) * 4 and changed.max() < (13 + r) * 4


def test_rrdb_generator_equals_an_independent_torch_port():
    torch = pytest.importorskip("torch")
    from torch import nn as tnn  # noqa: PLC0415

    width, growth = 8, 4
    net = srresnet.SRResNet(factor=2, out_channels=3, width=width, n_blocks=2, block="rrdb",
                            growth=growth)  # fmt: skip
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 10, 12, 3), minval=-1, maxval=1)
    params = net.init(jax.random.PRNGKey(1), x)["params"]
    # Larger weights than the 0.1-scaled init, so the blocks' outputs are not negligible.
    params = jax.tree.map(lambda w: w * 4 if w.ndim == 4 else w + 0.1, params)
    ours = net.apply({"params": params}, x) - srresnet.upsample_bicubic(x, 2)

    def conv(p):  # flax HWIO kernel -> a torch Conv2d with the same weights
        c = tnn.Conv2d(p["kernel"].shape[2], p["kernel"].shape[3], 3, padding=1)
        c.weight.data = torch.from_numpy(np.asarray(p["kernel"]).transpose(3, 2, 0, 1).copy())
        c.bias.data = torch.from_numpy(np.asarray(p["bias"]).copy())
        return c

    act = tnn.LeakyReLU(0.2)

    def rdb(p, h):  # written from ESRGAN's description: dense concatenation, 0.2 scaling
        feats = h
        for i in range(1, 5):
            feats = torch.cat([feats, act(conv(p[f"conv{i}"])(feats))], 1)
        return h + 0.2 * conv(p["conv5"])(feats)

    with torch.no_grad():
        t = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
        head = act(conv(params["conv_in"])(t))
        h = head
        for j in range(2):
            block = params[f"rrdb{j}"]
            r = h
            for i in range(1, 4):
                r = rdb(block[f"rdb{i}"], r)
            h = h + 0.2 * r
        h = conv(params["conv_body"])(h) + head
        h = act(tnn.functional.pixel_shuffle(conv(params["up0"])(h), 2))
        theirs = conv(params["conv_out"])(h).numpy().transpose(0, 2, 3, 1)
    assert float(np.abs(theirs).mean()) > 0.05  # the detail branch is not ~0
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-4, atol=1e-5)


# -- the engine's guarantees -------------------------------------------------------------------

_DEVICE_SETUP = """
from conftest import p2p_config
c = p2p_config(**OVERRIDES)
x = jax.random.uniform(jax.random.PRNGKey(1), (1, 8, 32, 32, 1), minval=-1.0, maxval=1.0)
batch = {'image': x, 'label': np.zeros((1, 8), np.int32), 'source': SOURCE}
"""

_SOURCES = {
    "inpaint": "np.concatenate([np.asarray(x) * 0, np.ones((1, 8, 32, 32, 1), np.float32)], -1)",
    "sr4": "np.asarray(x)[:, :, ::4, ::4]",
}


_RESUME_RUN = {"num_steps": 6, "checkpoint_every": 100}


@pytest.mark.parametrize("task", ["inpaint", "sr4", "esrgan"])
def test_resumed_run_is_bit_identical(task, tmp_path, monkeypatch):
    # The U-Net with dropout (its rng in use), the SR generator, and ESRGAN's options (RRDB
    # blocks; the relativistic loss, whose G step draws a second D key).
    overrides = {"inpaint": {}, "sr4": SR, "esrgan": ESR}[task]
    config = p2p_config(**_RESUME_RUN, **overrides)
    straight, resumed, workdir = straight_and_preempted(config, tmp_path, monkeypatch)
    for x, y in zip(leaves(straight), leaves(resumed), strict=True):
        np.testing.assert_array_equal(x, y)
    # The sample grid: rows of (input, output, target) of validation examples.
    grid = np.asarray(Image.open(os.path.join(workdir, "samples", "step_00000006.png")))
    assert grid.shape[:2] == (4 * 34 + 2, 3 * 34 + 2)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["inpaint", "sr4"])
def test_one_device_and_eight_devices_end_equal(task, tmp_path):
    # U-Net with batch norm and dropout (inpainting); ESRGAN's RRDB generator and relativistic
    # loss (sr4), whose G step runs D on the reals too.
    # The resume test's configs: the 1-device side reuses its compiled programs.
    overrides = {**_RESUME_RUN, **({} if task == "inpaint" else ESR)}
    setup = _DEVICE_SETUP.replace("OVERRIDES", repr(overrides)).replace("SOURCE", _SOURCES[task])
    one, m1, eight, m8 = device_pair(setup, tmp_path)
    assert {"l1", "g_adv", "d_loss"} <= m1.keys()
    assert_devices_agree(one, m1, eight, m8)


def test_nan_never_reaches_a_checkpoint(tmp_path, monkeypatch):
    _poison(monkeypatch, {3}, np.nan)  # a NaN target pixel: L1 turns NaN at step 3
    workdir = str(tmp_path / "run")
    with pytest.raises(loop.NonFiniteError, match=r"at step 3\b"):
        train_and_evaluate(p2p_config(num_steps=6), workdir)
    restored = _restore_all(workdir)
    assert max(restored) == 2
    for arrays in restored.values():
        assert all(np.isfinite(x).all() for x in arrays if x.dtype.kind == "f")


def test_l1_only_training_reduces_l1_and_init_from_starts_from_its_generator(tmp_path):
    l1_run = str(tmp_path / "l1")
    config = p2p_config(num_steps=30, checkpoint_every=10, log_every=10, **SR)
    config.loss.adv = 0.0
    config.optim.g_lr = 1e-3
    trained = train_and_evaluate(config, l1_run)
    pairs = paired.load_split(config, "validation")

    def l1_at(step):
        out = translate.load(l1_run, step, use_ema=False).translate_batch(pairs["input"])
        return np.abs(out - pairs["target"]).mean()

    assert l1_at(30) < l1_at(10)
    gan = p2p_config(num_steps=1, checkpoint_every=1, init_from=l1_run, **SR)
    gan.loss.adv = 0.01
    started = jax.device_get(loop._init_from(l1_run, _fresh_state(gan)))
    for x, y in zip(leaves(trained.g.params), leaves(started.g.params), strict=True):
        np.testing.assert_array_equal(x, y)
    assert int(started.step) == 0  # a new run: its own counters, optimisers and D


def _fresh_state(config):
    from gan_jax.training import state as state_lib  # noqa: PLC0415

    # Jitted: one compile, not one per operation of the RRDB generator.
    return jax.jit(lambda k: state_lib.create_state(config, k))(jax.random.PRNGKey(config.seed))


# -- translate -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sr_rgb_run(tmp_path_factory):
    """A 6-step x4 SR run on a folder of 32 px RGB images (weights moved from init)."""
    root = tmp_path_factory.mktemp("sr_rgb")
    art = _rgb_folder(str(root / "art"), n=48)
    config = p2p_config(
        num_steps=6, **SR, **{"data.source": "folder", "data.path": art, "data.channels": 3}
    )
    workdir = str(root / "run")
    train_and_evaluate(config, workdir)
    return workdir, art


def test_tiled_super_resolution_equals_untiled(sr_rgb_run):
    model = translate.load(sr_rgb_run[0])
    rng = np.random.default_rng(0)
    big = rng.uniform(-1, 1, (45, 70, 3)).astype(np.float32)  # odd sizes, several tiles
    whole = model.run(big)
    tiled = model.translate_source(big, tile=16)
    assert tiled.shape == (180, 280, 3)
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
    # Without the overlap the seams differ: the margin is what makes tiles agree.
    seams = model.translate_source(big, tile=16, margin=0)
    assert np.abs(seams - whole).max() > 1e-3


def test_translate_py_on_a_folder_with_bad_files(sr_rgb_run, tmp_path):
    workdir, art = sr_rgb_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.open(os.path.join(art, "img_000.png")).crop((0, 0, 27, 19)).save(inputs / "odd.png")
    Image.open(os.path.join(art, "img_001.png")).convert("L").save(inputs / "grey.png")
    Image.new("RGB", (6, 6)).save(inputs / "tiny.png")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out"
    r = _run("translate.py", f"--workdir={workdir}", f"--input={inputs}", f"--out={out}")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "3 of 4 image(s) could not be translated" in r.stderr
    assert "grey.png: a greyscale image, but this model translates RGB" in r.stderr
    assert "tiny.png: 6x6 is smaller than the model's input (8x8 px)" in r.stderr
    assert "broken.jpg: cannot decode" in r.stderr
    assert sorted(os.listdir(out)) == ["odd.png"]  # nothing half-written beside it
    result = np.asarray(Image.open(out / "odd.png"))
    assert result.shape == (76, 108, 3)
    # The command's output is the Python API's.
    model = translate.load(workdir)
    np.testing.assert_array_equal(result, model(np.asarray(Image.open(inputs / "odd.png"))))


def _run(*args):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_translate_errors(sr_rgb_run, tmp_path):
    workdir, art = sr_rgb_run
    image = os.path.join(art, "img_000.png")
    for flags, message in [
        ([f"--workdir={tmp_path}/none", f"--input={image}"], "does not exist"),
        ([f"--workdir={workdir}", f"--input={tmp_path}/none.png"], "does not exist"),
        ([f"--workdir={workdir}", f"--input={image}", "--tile=2"], "--tile must be >= 8"),
        ([f"--workdir={workdir}", f"--input={art}", f"--mask={image}"], "single --input"),
    ]:
        assert_clean_failure(_run("translate.py", *flags, f"--out={tmp_path}/o"), message)
    assert not os.path.exists(tmp_path / "o")


def test_inpainting_keeps_known_pixels_and_checks_the_mask(tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(p2p_config(num_steps=2), workdir)
    model = translate.load(workdir)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 72, 1), dtype=np.uint8)  # padded to 64x96 inside
    mask = np.zeros((40, 72), np.uint8)
    mask[10:20, 30:50] = 255
    out = model(image, mask=mask)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    with pytest.raises(SamplingError, match="mask is 72x39 but the image is 72x40"):
        model(image, mask=mask[:39])
    with pytest.raises(SamplingError, match="needs a mask"):
        model(image)


def test_sample_py_and_load_generator_point_to_translate(tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(p2p_config(num_steps=2), workdir)
    from gan_jax import sampling  # noqa: PLC0415

    with pytest.raises(SamplingError, match="image-to-image run .* use translate.py"):
        sampling.load_generator(workdir)
    assert_clean_failure(
        _run("sample.py", f"--workdir={workdir}", f"--out={tmp_path}/g.png"), "use translate.py"
    )


# -- evaluate ------------------------------------------------------------------------------------


def test_evaluate_py_scores_the_test_split_beside_bicubic(sr_rgb_run, tmp_path):
    workdir, art = sr_rgb_run
    r = _run("evaluate.py", f"--workdir={workdir}", "--no_kid", "--split=test")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "bicubic" in r.stdout and "lanczos" in r.stdout
    files = os.listdir(os.path.join(workdir, "eval"))
    (name,) = [f for f in files if f.startswith("test_step_")]
    with open(os.path.join(workdir, "eval", name)) as f:
        result = json.load(f)
    # Recomputed independently: the test images, PIL's bicubic, scikit-image's PSNR.
    from skimage.metrics import peak_signal_noise_ratio  # noqa: PLC0415

    keys = [
        k
        for k in (tasks.relative_key(p, art) for p in sorted(_paths(art)))
        if tasks.split_of(k) == "test"
    ]
    assert result["num_examples"] == len(keys) > 0
    psnrs = []
    for k in keys:
        hr = np.asarray(Image.open(os.path.join(art, k)), np.float32) / 127.5 - 1
        lr = tasks.downscale(hr, 4)
        lr8 = np.clip(np.round((lr + 1) * 127.5), 0, 255).astype(np.uint8)
        up = np.stack(
            [
                np.asarray(Image.fromarray(lr8[..., c]).resize((32, 32), Image.BICUBIC))
                for c in range(3)
            ],
            -1,
        )
        hr8 = np.clip(np.round((hr + 1) * 127.5), 0, 255).astype(np.uint8)
        psnrs.append(peak_signal_noise_ratio(hr8[4:-4, 4:-4], up[4:-4, 4:-4], data_range=255))
    assert result["methods"]["bicubic"]["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-6)
    assert result["methods"]["model"]["psnr"] > 0


def _paths(root):
    return [os.path.join(root, f) for f in os.listdir(root) if f.endswith(".png")]


# -- the perceptual feature loss -----------------------------------------------------------------


def test_inception_stem_is_the_fid_networks_first_layers():
    from gan_jax.evaluation import inception, weights  # noqa: PLC0415

    params, _ = weights.load_inception_params()
    x = jax.random.uniform(jax.random.PRNGKey(0), (1, 75, 75, 3), minval=-1, maxval=1)
    _, state = inception.InceptionV3().apply(
        {"params": params}, x, capture_intermediates=True, mutable=["intermediates"]
    )
    conv4a = state["intermediates"]["Conv2d_4a_3x3"]["__call__"][0]  # before its ReLU
    stem = inception.stem_features()(x)
    assert stem.shape == (1, 15, 15, 192)  # 75 -> 37 -> 35 -> 35 -> 17 -> 17 -> 15
    np.testing.assert_allclose(stem, jax.nn.relu(conv4a), rtol=1e-5, atol=1e-5)


def test_feature_loss_term_and_its_missing_weights_error(tmp_path):
    from gan_jax.evaluation import inception  # noqa: PLC0415
    from gan_jax.training import step as step_lib  # noqa: PLC0415

    config = p2p_config(**SR)
    config.loss.feature = 0.1
    obj = step_lib.objective_for(config)
    g_vars, d_vars = obj.init(jax.random.PRNGKey(0), (32, 32, 1))
    real = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 1), minval=-1, maxval=1)
    fake = jnp.clip(real + 0.3, -1, 1)
    loss, (_, values) = obj.g_loss_of_fake(
        fake, obj.condition(real[:, ::4, ::4]), d_vars, key=None, extra={}, real=real
    )
    f = inception.stem_features()
    expected = float(jnp.mean((f(fake) - f(real)) ** 2))
    np.testing.assert_allclose(values["feature"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        loss, values["g_adv"] + 100 * values["l1"] + 0.1 * expected, rtol=1e-5
    )
    config.loss.feature_weights = str(tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="config.loss.feature: the feature loss needs"):
        step_lib.objective_for(config)
