"""StyleGAN2's pieces against independent references: upfirdn2d (SciPy), the modulated
convolution (per-sample kernels), equalised learning rate, minibatch stddev, truncation,
path length (a linear G), the ADA pipeline's transforms, presets and config errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
from conftest import zoo_config

from gan_jax import objectives
from gan_jax.augment import ada
from gan_jax.augment import config as augment_config
from gan_jax.errors import ConfigError
from gan_jax.models import stylegan2 as sg2
from gan_jax.models import upfirdn2d as fir
from gan_jax.objectives import stylegan2 as sg2_objective
from gan_jax.training import validation

RNG = np.random.default_rng(0)


def _scipy_axis(x, taps, up, down, p0, axis, n_out):
    """SciPy's upfirdn (full convolution of the zero-stuffed signal), then our window."""
    full = scipy.signal.upfirdn(taps, x, up=up, down=1, axis=axis)
    start = len(taps) - 1 - p0
    idx = np.arange(start, start + n_out * down, down)
    # Samples beyond SciPy's (shorter) zero-stuffed signal are zeros of the padding.
    pad = [(0, 0)] * x.ndim
    pad[axis] = (max(0, -start), max(0, idx[-1] + 1 - full.shape[axis]))
    full = np.pad(full, pad)
    return np.take(full, idx + max(0, -start), axis=axis)


@pytest.mark.parametrize(
    "up,down,pad",
    [(2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (2, 2, 2, 2)), (2, 1, (3, 2, 1, 0))],
)
def test_upfirdn2d_matches_scipy(up, down, pad):
    x = RNG.normal(size=(2, 6, 7, 3)).astype(np.float32)
    taps = np.asarray([1.0, 3.0, 3.0, 1.0])
    gain = up * up
    got = np.asarray(fir.upfirdn2d(jnp.asarray(x), taps, up=up, down=down, padding=pad, gain=gain))
    f = taps / taps.sum() * math.sqrt(gain)
    px0, px1, py0, py1 = pad
    h_out = (6 * up + py0 + py1 - 4) // down + 1
    w_out = (7 * up + px0 + px1 - 4) // down + 1
    ref = _scipy_axis(x.astype(np.float64), f, up, down, py0, 1, h_out)
    ref = _scipy_axis(ref, f, up, down, px0, 2, w_out)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_resampling_keeps_a_constant_image_and_halves_or_doubles():
    x = jnp.full((1, 8, 8, 2), 3.0)
    up = fir.upsample2d(x)
    down = fir.downsample2d(x)
    assert up.shape == (1, 16, 16, 2) and down.shape == (1, 4, 4, 2)
    # Away from the zero-padded border the mean intensity is kept exactly.
    np.testing.assert_allclose(np.asarray(up)[0, 2:-2, 2:-2], 3.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(down)[0, 1:-1, 1:-1], 3.0, rtol=1e-6)
    with pytest.raises(ValueError, match="filter"):
        fir.setup_filter([0.0, 0.0])


def _per_sample_modconv(x, weight, styles, demodulate, up):
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, None, :, None]
        if demodulate:
            w = w / np.sqrt(np.sum(w**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        xb = x[b : b + 1]
        if up > 1:
            xb = fir.upsample2d(jnp.asarray(xb))
        outs.append(np.asarray(sg2.conv2d(jnp.asarray(xb), jnp.asarray(w, jnp.float32))))
    return np.concatenate(outs)


@pytest.mark.parametrize("demodulate,up,k", [(True, 1, 3), (True, 2, 3), (False, 1, 1)])
def test_modulated_conv_equals_per_sample_kernels(demodulate, up, k):
    x = RNG.normal(size=(3, 4, 4, 5)).astype(np.float32)
    weight = RNG.normal(size=(k, k, 5, 6)).astype(np.float32)
    styles = RNG.normal(size=(3, 5)).astype(np.float32) + 1.0
    got = sg2.modulated_conv2d(
        jnp.asarray(x), jnp.asarray(weight), jnp.asarray(styles), demodulate=demodulate, up=up
    )
    ref = _per_sample_modconv(x, weight, styles, demodulate, up)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-5, atol=2e-5)
    if demodulate:  # unit-variance inputs give unit-variance outputs, on average
        assert 0.3 < float(jnp.std(got)) < 3.0


def test_equalised_learning_rate_scaling():
    layer = sg2.EqDense(4, lr_mul=0.01, bias_init=2.0)
    params = layer.init(jax.random.PRNGKey(0), jnp.ones((1, 100)))["params"]
    # Stored N(0, 1 / lr_mul): std about 100 over 400 weights.
    assert 80 < float(jnp.std(params["kernel"])) < 120
    # Used times lr_mul / sqrt(fan_in); the bias times lr_mul.
    ones = {"params": {"kernel": jnp.ones((100, 4)), "bias": params["bias"]}}
    out = layer.apply(ones, jnp.ones((1, 100)))
    np.testing.assert_allclose(np.asarray(out), 100 * 0.01 / 10 + 2.0 * 0.01, rtol=1e-6)
    conv = sg2.EqConv(3, kernel=3, activation="linear")
    v = conv.init(jax.random.PRNGKey(1), jnp.ones((1, 5, 5, 2)))
    v = jax.tree.map(jnp.ones_like, v)
    out = conv.apply(v, jnp.ones((1, 5, 5, 2)))
    # The centre sees all 3x3x2 = 18 inputs: 18 / sqrt(18) + bias 1.
    np.testing.assert_allclose(float(out[0, 2, 2, 0]), 18 / math.sqrt(18) + 1.0, rtol=1e-6)


def test_minibatch_stddev_matches_numpy():
    x = RNG.normal(size=(8, 4, 4, 6)).astype(np.float32)
    got = np.asarray(sg2.minibatch_stddev(jnp.asarray(x), group_size=4, num_channels=2))
    assert got.shape == (8, 4, 4, 8)
    np.testing.assert_array_equal(got[..., :6], x)
    for i in range(8):
        members = x[[j for j in range(8) if j % 2 == i % 2]]  # groups of 4: i mod 2
        for f in range(2):
            sd = np.sqrt(members[..., f * 3 : (f + 1) * 3].var(axis=0) + 1e-8).mean()
            np.testing.assert_allclose(got[i, :, :, 6 + f], sd, rtol=1e-5)
    # A batch the group size does not divide uses the largest divisor below it.
    assert sg2.minibatch_stddev(jnp.asarray(x[:6]), group_size=4).shape == (6, 4, 4, 7)


def test_channel_rule_and_number_of_ws():
    assert [sg2.channels_at(r, 16384, 512) for r in (4, 32, 64, 256)] == [512, 512, 256, 64]
    assert sg2.num_ws(32) == 8 and sg2.num_ws(256) == 14 and sg2.num_ws(1024) == 18


@pytest.fixture(scope="module")
def tiny():
    config = zoo_config("stylegan2")
    objective = objectives.build(config)
    # Jitted: one compile instead of one per operation (63 s -> 22 s on a busy core).
    g_vars, d_vars = jax.jit(objective.init, static_argnums=1)(jax.random.PRNGKey(0), (32, 32, 1))
    return config, objective, g_vars, d_vars


def test_generator_and_discriminator_shapes(tiny):
    config, objective, g_vars, d_vars = tiny
    z = jax.random.normal(jax.random.PRNGKey(1), (4, config.model.z_dim))
    y = jnp.arange(4)
    images, rest = objective.run_G(g_vars, z, y, train=True, key=jax.random.PRNGKey(2))
    assert images.shape == (4, 32, 32, 1) and bool(jnp.isfinite(images).all())
    assert set(rest) == {"tracked"}
    logits, _ = objective.run_D(d_vars, images, y, train=False)
    assert logits.shape == (4,)
    # Sampling is deterministic (constant noise); training calls are not.
    a, _ = objective.run_G(g_vars, z, y, train=False)
    b, _ = objective.run_G(g_vars, z, y, train=False)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c, _ = objective.run_G(g_vars, z, y, train=True, key=jax.random.PRNGKey(3))
    assert not np.allclose(np.asarray(images), np.asarray(c))
    with pytest.raises(ValueError, match="class-conditional"):
        objective.generator.apply(g_vars, z, None)


def test_w_avg_tracks_and_truncation_pulls_toward_it(tiny):
    config, objective, g_vars, _ = tiny
    z = jax.random.normal(jax.random.PRNGKey(1), (8, config.model.z_dim))
    y = jnp.zeros((8,), jnp.int32)
    G = type(objective.generator)
    ws, new = objective.generator.apply(
        g_vars, z, y, train=True, method=G.mapping, mutable=["tracked"]
    )
    w_avg = new["tracked"]["map_net"]["w_avg"]
    beta = config.model.get("w_avg_beta", 0.995)
    np.testing.assert_allclose(
        np.asarray(w_avg), (1 - beta) * np.asarray(ws[:, 0]).mean(0), rtol=1e-5, atol=1e-7
    )
    v = {**g_vars, **new}
    at_avg = objective.generator.apply(v, z, y, psi=0.0, method=G.mapping)
    np.testing.assert_allclose(np.asarray(at_avg), np.broadcast_to(w_avg, at_avg.shape), atol=1e-6)
    plain = objective.generator.apply(v, z, y, method=G.mapping)
    half = objective.generator.apply(v, z, y, psi=0.5, method=G.mapping)
    np.testing.assert_allclose(
        np.asarray(half), 0.5 * (np.asarray(plain) + np.asarray(w_avg)), atol=1e-5
    )
    cut = objective.generator.apply(v, z, y, psi=0.0, cutoff=2, method=G.mapping)
    np.testing.assert_allclose(np.asarray(cut[:, 2:]), np.asarray(plain[:, 2:]))


def test_path_lengths_of_a_linear_generator():
    m = RNG.normal(size=(3, 5, 4, 4, 2)).astype(np.float32)  # ws [L=3, D=5] -> 4x4x2 image
    ws = RNG.normal(size=(2, 3, 5)).astype(np.float32)
    key = jax.random.PRNGKey(7)
    got = sg2_objective.path_lengths(
        lambda w: jnp.einsum("bld,ldhwc->bhwc", w, jnp.asarray(m)), jnp.asarray(ws), key
    )
    y = np.asarray(jax.random.normal(key, (2, 4, 4, 2))) / 4.0
    grad = np.einsum("bhwc,ldhwc->bld", y, m)
    want = np.sqrt((grad**2).sum(2).mean(1))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


# -- ADA ----------------------------------------------------------------------------------


def _images(b=16, h=8, w=8, c=3):
    return jnp.asarray(RNG.uniform(-1, 1, size=(b, h, w, c)).astype(np.float32))


def test_ada_at_p0_is_the_identity():
    x = _images()
    out = ada.augment(x, jax.random.PRNGKey(0), ops=ada.PRESETS["bgc"], p=0.0)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


@pytest.mark.parametrize("op,candidates", [("rotate90", 4), ("xflip", 2)])
def test_ada_flips_and_quarter_turns_move_pixels_exactly(op, candidates):
    x = np.asarray(_images(h=6, w=6))
    out = np.asarray(ada.augment(jnp.asarray(x), jax.random.PRNGKey(1), ops=(op,), p=1.0))
    seen = set()
    for i in range(x.shape[0]):
        if op == "rotate90":
            options = [np.rot90(x[i], k, axes=(0, 1)) for k in range(4)]
        else:
            options = [x[i], x[i, :, ::-1]]
        match = [k for k, o in enumerate(options) if np.array_equal(out[i], o)]
        assert match, f"sample {i} is not an exact {op} of its input"
        seen.add(match[0])
    assert len(seen) == candidates  # every outcome drawn over 16 samples


def test_ada_integer_translation_is_an_exact_reflected_shift():
    x = np.asarray(_images(b=8, h=8, w=8))
    out = np.asarray(ada.augment(jnp.asarray(x), jax.random.PRNGKey(2), ops=("xint",), p=1.0))
    padded = np.pad(x, ((0, 0), (8, 8), (8, 8), (0, 0)), mode="reflect")
    for i in range(8):
        hits = [
            (dy, dx)
            for dy in range(-1, 2)
            for dx in range(-1, 2)
            if np.array_equal(out[i], padded[i, 8 - dy : 16 - dy, 8 - dx : 16 - dx])
        ]
        assert hits, f"sample {i}"


def test_ada_colour_matrices_map_known_colours():
    b = 32
    key = jax.random.PRNGKey(3)
    red = jnp.broadcast_to(jnp.asarray([1.0, -1.0, -1.0]), (b, 2, 2, 3))
    # Luma flip: (1, -1, -1) reflects about the grey axis to (5/3, -1/3, -1/3).
    out = np.asarray(ada.augment(red, key, ops=("lumaflip",), p=1.0))[:, 0, 0]
    flipped = np.isclose(out, [5 / 3, -1 / 3, -1 / 3], atol=1e-6).all(1)
    same = np.isclose(out, [1, -1, -1], atol=1e-6).all(1)
    assert (flipped | same).all() and flipped.any() and same.any()
    # Grey stays grey under hue rotation and saturation; brightness adds one offset per image.
    grey = jnp.full((b, 2, 2, 3), 0.25)
    for op in ("hue", "saturation"):
        out = np.asarray(ada.augment(grey, key, ops=(op,), p=1.0))
        np.testing.assert_allclose(out, 0.25, atol=1e-6)
    x = _images(b=b)
    out = np.asarray(ada.augment(x, key, ops=("brightness",), p=1.0)) - np.asarray(x)
    np.testing.assert_allclose(out, out[:, :1, :1, :1] * np.ones_like(out), atol=1e-6)
    # Hue keeps each pixel's mean and its distance from grey.
    out = np.asarray(ada.augment(x, key, ops=("hue",), p=1.0))
    xn = np.asarray(x)
    np.testing.assert_allclose(out.mean(-1), xn.mean(-1), atol=1e-5)
    np.testing.assert_allclose(
        np.linalg.norm(out - out.mean(-1, keepdims=True), axis=-1),
        np.linalg.norm(xn - xn.mean(-1, keepdims=True), axis=-1),
        atol=1e-5,
    )
    # Contrast scales every value of an image by one factor.
    out = np.asarray(ada.augment(x, key, ops=("contrast",), p=1.0))
    ratio = out / xn
    np.testing.assert_allclose(ratio, ratio[:, :1, :1, :1] * np.ones_like(ratio), rtol=1e-4)


def test_ada_grey_images_and_gradients_through_every_op():
    x = _images(b=4, c=1)
    out = ada.augment(x, jax.random.PRNGKey(4), ops=ada.PRESETS["bgc"], p=1.0)
    assert out.shape == x.shape and bool(jnp.isfinite(out).all())
    xc = _images(b=4)
    for op in ada.OPS:
        weights = jnp.asarray(RNG.normal(size=xc.shape).astype(np.float32))
        grad = jax.grad(
            lambda v, op=op, weights=weights: jnp.sum(
                ada.augment(v, jax.random.PRNGKey(5), ops=(op,), p=1.0) * weights
            )
        )(xc)
        assert bool(jnp.isfinite(grad).all()) and float(jnp.abs(grad).sum()) > 0, op


def test_ada_reproducible_by_key_and_presets_parse():
    x = _images()
    a = ada.augment(x, jax.random.PRNGKey(9), ops=ada.PRESETS["bgc"], p=0.7)
    b = ada.augment(x, jax.random.PRNGKey(9), ops=ada.PRESETS["bgc"], p=0.7)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert ada.parse_preset("color,xflip") == (
        "xflip",
        "brightness",
        "contrast",
        "lumaflip",
        "hue",
        "saturation",
    )
    with pytest.raises(ValueError, match="unknown ADA op"):
        ada.parse_preset("bgc,zoom")


def test_augment_modes():
    c = zoo_config("stylegan2")
    s = augment_config.settings(c)
    assert (s.pipeline, s.policy, s.p, s.adaptive) == ("ada", ada.PRESETS["bgc"], 0.0, True)
    c.augment.mode = "fixed:0.3"
    s = augment_config.settings(c)
    assert (s.pipeline, s.p, s.adaptive) == ("ada", 0.3, False)
    c.augment.mode = "diffaugment"
    s = augment_config.settings(c)
    assert (s.pipeline, s.policy, s.p) == ("diffaugment", ("color", "translation", "cutout"), 1.0)
    c.augment.mode = "none"
    assert augment_config.settings(c).policy == ()


# -- configs ------------------------------------------------------------------------------


def test_presets_validate_and_follow_the_auto_rule():
    from gan_jax.configs import stylegan2 as cfg  # noqa: PLC0415

    for preset in (*cfg.PRESETS, "folder-64", "folder-1024"):
        c = cfg.get_config(preset)
        if c.data.source == "folder":  # no folder here: the model's keys are what is checked
            c.data.source, c.data.channels = "digits", 1
        validation.validate(c, num_devices=1)
    c = cfg.get_config("folder-64")
    assert (c.data.image_size, c.batch_size, c.model.channel_base) == (64, 32, 16384)
    np.testing.assert_allclose(c.reg.r1, 0.0002 * 64**2 / 32)
    np.testing.assert_allclose(c.ema_decay, 0.5 ** (32 / 10_000))
    assert cfg.get_config("folder-1024").model.channel_base == 32768
    with pytest.raises(ValueError, match="folder-N"):
        cfg.get_config("folder-48")
    with pytest.raises(ValueError, match="unknown"):
        cfg.get_config("stylegan3")


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("model.bf16_res", 9, "bf16_res"),
        ("model.d_architecture", "skip", "d_architecture"),
        ("model.map_lr_mul", 0.0, "map_lr_mul"),
        ("model.mbstd_channels", 3, "mbstd_channels"),
        ("augment.mode", "sometimes", "augment.mode"),
        ("augment.mode", "fixed:2", "augment.mode"),
        ("data.image_size", 48, "image_size"),
    ],
)
def test_config_errors(key, value, match):
    c = zoo_config("stylegan2", **{key: value})
    with pytest.raises(ConfigError, match=match):
        validation.validate(c, num_devices=1)


def test_path_length_is_stylegan2s_only():
    c = zoo_config("sngan", **{"reg.pl": 2.0})
    with pytest.raises(ConfigError, match="reg.pl"):
        validation.validate(c, num_devices=1)


# -- sampling -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handle(tiny):
    from gan_jax import sampling  # noqa: PLC0415

    config, objective, g_vars, _ = tiny
    # Move w_avg off zero, as training does, so truncation has somewhere to go.
    z = jax.random.normal(jax.random.PRNGKey(5), (16, config.model.z_dim))
    _, new = objective.run_G(g_vars, z, jnp.arange(16) % 10, train=True, key=jax.random.PRNGKey(6))
    return sampling.Generator(
        config=config,
        module=objective.generator,
        variables={**g_vars, **new},
        step=0,
        z_dim=int(config.model.z_dim),
        num_classes=10,
    )


def test_style_mixing_with_the_same_seed_is_the_plain_sample(handle):
    import dataclasses  # noqa: PLC0415

    from gan_jax import sampling  # noqa: PLC0415

    grid = sampling.style_mix_grid(handle, rows=[3, 4], cols=[3, 4, 5], layers="0-3", padding=0)
    cells = grid.reshape(3, 32, 4, 32, 1).transpose(0, 2, 1, 3, 4)  # [row, col, H, W, C]
    plain = [sampling.generate_array(handle, 1, seed=s, labels=0)[0] for s in (3, 4, 5)]
    for i, seed_image in enumerate(plain):
        np.testing.assert_array_equal(cells[0, 1 + i], seed_image)  # the columns' own images
    np.testing.assert_array_equal(cells[1, 0], plain[0])  # the rows' own images
    np.testing.assert_array_equal(cells[1, 1], plain[0])  # same seed both sides: the plain one
    np.testing.assert_array_equal(cells[2, 2], plain[1])
    assert not np.array_equal(cells[1, 3], plain[2])  # mixed: neither seed's own image
    # psi = 0: every seed renders the average w (constant noise): one image.
    flat = dataclasses.replace(handle, psi=0.0)
    images = sampling.generate_array(flat, 4, seed=0, labels=0)
    assert all(np.array_equal(images[0], im) for im in images[1:])
    # Random noise changes with the seed and repeats with it; constant noise does not change.
    noisy = dataclasses.replace(handle, noise_mode="random")
    a = sampling.generate_array(noisy, 2, seed=1, labels=0)
    b = sampling.generate_array(noisy, 2, seed=1, labels=0)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(sampling.SamplingError, match="layers"):
        sampling.style_mix_grid(handle, rows=[1], cols=[2], layers="0-99")
    with pytest.raises(sampling.SamplingError, match="layers"):
        sampling.parse_layers("coarse", 8)


def test_bfloat16_top_resolutions_stay_close_to_float32():
    kw = dict(
        image_size=32, channels=3, z_dim=8, w_dim=8, map_layers=1, channel_base=128, channel_max=16
    )
    g32, g16 = sg2.Generator(**kw), sg2.Generator(**kw, bf16_res=2)
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
    v = g32.init(jax.random.PRNGKey(1), z)
    a, b = g32.apply(v, z), g16.apply(v, z)  # same variables: the dtype is not a parameter
    assert b.dtype == jnp.float32 and bool(jnp.isfinite(b).all())
    assert float(jnp.max(jnp.abs(a - b))) < 0.1 * float(jnp.max(jnp.abs(a))) + 1e-3
    dkw = dict(image_size=32, channel_base=128, channel_max=16)
    d32, d16 = sg2.Discriminator(**dkw), sg2.Discriminator(**dkw, bf16_res=2)
    dv = d32.init(jax.random.PRNGKey(2), a)
    la, lb = d32.apply(dv, a), d16.apply(dv, a)
    assert lb.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(lb), np.asarray(la), rtol=0.1, atol=0.05)


def test_projector_recovers_a_generated_image(handle, tmp_path):
    from gan_jax import sampling  # noqa: PLC0415

    target_ws = sampling.seed_ws(handle, [7], labels=0)
    target = sampling.render_ws(handle, target_ws)[0].astype(np.float32) / 127.5 - 1.0
    other = sampling.render_ws(handle, sampling.seed_ws(handle, [8], labels=0))[0]
    baseline = sampling.psnr(other.astype(np.float32) / 127.5 - 1.0, target)
    result = sampling.project(handle, target, steps=60, feature_weight=0.0, frame_every=20)
    assert result.ws.shape == target_ws.shape[1:]
    assert result.frames.shape[0] == 4 and result.losses[-1] < result.losses[0]
    assert result.psnr > baseline + 3.0, (result.psnr, baseline)
    # A file for the model: cropped and resized; a grey file for a colour model is an error.
    from PIL import Image  # noqa: PLC0415

    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "grey.png")
    assert sampling.load_target(str(tmp_path / "grey.png"), handle).shape == (32, 32, 1)
    with pytest.raises(sampling.SamplingError, match="does not exist"):
        sampling.load_target(str(tmp_path / "missing.png"), handle)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(sampling.SamplingError, match="cannot read"):
        sampling.load_target(str(tmp_path / "bad.png"), handle)


def test_noise_regularisation_known_values():
    from gan_jax import sampling  # noqa: PLC0415

    ones = jnp.ones((1, 16, 16, 1))
    # A constant map: each neighbour product's mean is 1, two directions, scales 16 and 8.
    np.testing.assert_allclose(float(sampling.noise_regularisation([ones])), 4.0, rtol=1e-6)
    # A checkerboard: every neighbour product is -1 at 16; its 2x2 average is 0 at 8.
    board = jnp.asarray((np.indices((16, 16)).sum(0) % 2) * 2.0 - 1.0)[None, :, :, None]
    np.testing.assert_allclose(float(sampling.noise_regularisation([board])), 2.0, rtol=1e-6)
    # Maps add up; a 4x4 map has one scale.
    both = sampling.noise_regularisation([ones, board, jnp.ones((1, 4, 4, 1))])
    np.testing.assert_allclose(float(both), 8.0, rtol=1e-6)
    white = jax.random.normal(jax.random.PRNGKey(0), (1, 64, 64, 1))
    assert float(sampling.noise_regularisation([white])) < 0.01


def test_projector_fits_the_noise_maps(handle):
    """A target drawn with noise maps of its own: fitting the maps beats fitting w alone, the
    penalty keeps them noise-like, they stay normalised, and rendering w with them is the
    projected image (what sample.py --w does with noise.npz)."""
    import dataclasses  # noqa: PLC0415

    from gan_jax import sampling  # noqa: PLC0415

    # A model whose noise matters (the test model's strengths are still at their init, 0).
    variables = jax.tree_util.tree_map_with_path(
        lambda p, x: jnp.full_like(x, 0.7) if "noise_strength" in str(p[-1]) else x,
        handle.variables,
    )
    noisy = dataclasses.replace(handle, variables=variables)
    resolutions = sg2.noise_resolutions(32)
    assert resolutions == (4, 8, 8, 16, 16, 32, 32)
    keys = jax.random.split(jax.random.PRNGKey(11), len(resolutions))
    true_maps = [jax.random.normal(k, (1, r, r, 1)) for k, r in zip(keys, resolutions)]
    ws = sampling.seed_ws(noisy, [7], labels=0)
    cls = type(noisy.module)
    target = noisy.module.apply(variables, ws, "const", true_maps, method=cls.synthesis)[0]
    assert not np.allclose(sampling.render_ws(noisy, ws)[0] / 127.5 - 1.0, target, atol=0.1)
    kw = dict(steps=60, feature_weight=0.0, frame_every=30)
    w_only = sampling.project(noisy, target, noise=False, **kw)
    free = sampling.project(noisy, target, noise=True, noise_weight=0.0, **kw)
    held = sampling.project(noisy, target, noise=True, **kw)  # StyleGAN2's weight, 1e5
    assert w_only.noise_maps is None
    assert free.psnr > w_only.psnr + 3.0, (free.psnr, w_only.psnr)
    penalty = lambda maps: float(sampling.noise_regularisation(maps))  # noqa: E731
    start = penalty(sg2.const_noise_maps(32))
    assert penalty(held.noise_maps) < 0.1 * min(start, penalty(free.noise_maps))
    for m, r in zip(held.noise_maps, resolutions, strict=True):
        assert m.shape == (1, r, r, 1)
        assert abs(float(m.mean())) < 1e-4 and abs(float(m.std()) - 1.0) < 1e-3
    again = sampling.render_ws(noisy, held.ws[None], noise_maps=held.noise_maps)[0]
    np.testing.assert_array_equal(again, held.frames[-1])
    with pytest.raises(sampling.SamplingError, match="noise_maps must be 7 maps"):
        sampling.render_ws(noisy, ws, noise_maps=true_maps[:3])


def test_project_and_sample_w_command_lines(tmp_path):
    """project.py writes the projection with its noise maps; sample.py --w draws exactly the
    projected image from w.npy and the noise.npz beside it; --nonoise removes a stale one."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from conftest import ROOT, assert_clean_failure  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from gan_jax import config_lib  # noqa: PLC0415
    from gan_jax.training import checkpoint as ckpt_lib  # noqa: PLC0415
    from gan_jax.training import state as state_lib  # noqa: PLC0415

    workdir = tmp_path / "sg2"
    config = zoo_config("stylegan2")
    workdir.mkdir()
    config_lib.save(config, str(workdir))
    state = jax.jit(lambda k: state_lib.create_state(config, k))(jax.random.PRNGKey(0))
    # Strengths off their init (0), so that the noise maps change the image.
    state = jax.tree_util.tree_map_with_path(
        lambda p, x: jnp.full_like(x, 0.7) if "noise_strength" in jax.tree_util.keystr(p) else x,
        state,
    )
    checkpointer = ckpt_lib.Checkpointer(str(workdir))
    checkpointer.save(0, state, force=True)
    checkpointer.wait()
    checkpointer.close()
    yy, xx = np.mgrid[0:40, 0:50]
    Image.fromarray(((xx * 5 + yy * 3) % 256).astype(np.uint8)).save(tmp_path / "face.png")

    def run(script, *args):
        return subprocess.run(
            [sys.executable, os.path.join(ROOT, script), f"--workdir={workdir}", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
        )

    out = tmp_path / "proj"
    proj = run("project.py", f"--image={tmp_path / 'face.png'}", "--steps=8",
               "--feature_weight=0", f"--out={out}")  # fmt: skip
    assert proj.returncode == 0, proj.stderr[-3000:]
    for name in ("target.png", "projected.png", "w.npy", "noise.npz", "projection.gif"):
        assert (out / name).is_file(), name
    result = json.loads((out / "result.json").read_text())
    assert result["noise_maps_fitted"] and result["steps"] == 8
    with np.load(out / "noise.npz") as f:
        assert [f[k].shape[1] for k in sorted(f.files)] == list(sg2.noise_resolutions(32))
    projected = np.asarray(Image.open(out / "projected.png"))
    again = run("sample.py", f"--w={out / 'w.npy'}", f"--out={tmp_path / 'again.png'}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Noise maps from" in again.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again.png")), projected)

    # w alone (the model's constant maps): the stale noise.npz goes, and --w still matches.
    proj = run("project.py", f"--image={tmp_path / 'face.png'}", "--steps=8",
               "--feature_weight=0", f"--out={out}", "--nonoise")  # fmt: skip
    assert proj.returncode == 0, proj.stderr[-3000:]
    assert not (out / "noise.npz").exists()
    again = run("sample.py", f"--w={out / 'w.npy'}", f"--out={tmp_path / 'again2.png'}")
    assert again.returncode == 0, again.stderr[-3000:]
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "again2.png")),
        np.asarray(Image.open(out / "projected.png")),
    )
    # Maps of another model beside the w: one clear error.
    np.savez(out / "noise.npz", np.zeros((1, 4, 4, 1), np.float32))
    bad = run("sample.py", f"--w={out / 'w.npy'}", f"--out={tmp_path / 'bad.png'}")
    assert_clean_failure(bad, "noise_maps must be 7 maps")
    # --truncation=0 is psi 0, every w at the average: one image for every seed (it was read
    # as "unset" and drew psi 1).
    same = run("sample.py", "--truncation=0", "--label=3", "--num=3", "--mode=images",
               f"--out={tmp_path / 'psi0'}")  # fmt: skip
    assert same.returncode == 0, same.stderr[-3000:]
    psi0 = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "psi0").glob("*.png"))]
    assert len(psi0) == 3 and all(np.array_equal(x, psi0[0]) for x in psi0)
