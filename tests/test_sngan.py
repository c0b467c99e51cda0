"""SNGAN ResNet (gan_jax.models.sngan): shapes, parameter counts and PyTorch parity.

Parity: the PyTorch port (`bench/torch_sngan.py`, PyTorch's own spectral norm and batch norm)
with random weights, batch-norm affines, running statistics, class embeddings and spectral
vectors is copied into the Flax model; both are run on the same inputs and must agree on the
outputs, on the 'batch_stats' / 'spectral' collections after one train-mode call, and on the
discriminator's input gradients. Widths are tiny so every test runs in seconds on 2 cores.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax.errors import ConfigError
from gan_jax.models import sngan
from tests import model_helpers
from tests.model_helpers import (
    allclose,
    check_discriminator_parity,
    check_generator_parity,
    check_label_errors,
    count,
    init_shapes,
    nhwc,
    randomize_running_stats,
)


def make_config(size=32, channels=3, classes=0, g_width=4, d_width=4, **model):
    return ml_collections.ConfigDict(
        {
            "model": {
                "name": "sngan",
                "z_dim": 8,
                "g_width": g_width,
                "d_width": d_width,
                "num_classes": classes,
                "dtype": "float32",
                **model,
            },
            "data": {"image_size": size, "channels": channels},
        },
        type_safe=False,  # the validation tests set wrongly typed values
    )


def torch_port():
    return model_helpers.torch_port("torch_sngan")


# ----------------------------------------------------------------------------------------------
# Shapes, dtypes, counts


@pytest.mark.parametrize("size", sngan.SIZES)
@pytest.mark.parametrize(("channels", "classes"), [(1, 0), (3, 0), (1, 5), (3, 5)])
def test_shapes(size, channels, classes):
    # Abstract evaluation (shapes and dtypes, nothing computed): 16 cases in seconds. The
    # values are checked by the PyTorch parity tests below.
    config = make_config(size, channels, classes, g_width=2, d_width=1)
    sngan.validate(config)
    g, d = sngan.build(config)
    b = 2
    z = jax.ShapeDtypeStruct((b, 8), jnp.float32)
    labels = jax.ShapeDtypeStruct((b,), jnp.int32) if classes else None
    key = jax.random.key(0)
    gv = jax.eval_shape(lambda z, y: g.init(key, z, y), z, labels)
    assert set(gv) == {"params", "batch_stats"}
    x, new = jax.eval_shape(
        lambda v, z, y: g.apply(v, z, y, train=True, mutable=["batch_stats"]), gv, z, labels
    )
    assert (x.shape, x.dtype) == ((b, size, size, channels), jnp.float32)
    assert jax.tree.map(lambda a: a.shape, new) == {
        "batch_stats": jax.tree.map(lambda a: a.shape, gv["batch_stats"])
    }
    dv = jax.eval_shape(lambda x, y: d.init(key, x, y), x, labels)
    assert set(dv) == {"params", "spectral"}
    logits = jax.eval_shape(lambda v, x, y: d.apply(v, x, y), dv, x, labels)
    assert (logits.shape, logits.dtype) == ((b,), jnp.float32)
    # The last D block's width is d_width * 16 at 48 px and up (the paper's `ch * 16`).
    top = 1 if size == 32 else 16
    assert dv["params"]["linear"]["kernel"].shape == (top, 1)
    if classes:
        assert dv["params"]["embed"]["embedding"].shape == (classes, top)


@pytest.mark.parametrize("size", sngan.SIZES)
@pytest.mark.parametrize("classes", [0, 7])
def test_parameter_counts_match_torch(size, classes):
    tsn = torch_port()
    g_width, d_width = (256, 128) if size == 32 else (64, 64)
    config = make_config(size, 3, classes, g_width=g_width, d_width=d_width)
    g, d = sngan.build(config)
    z = jnp.zeros((2, 8))
    labels = jnp.zeros((2,), jnp.int32) if classes else None
    x = jnp.zeros((2, size, size, 3))
    tg = tsn.Generator(size, 3, g_width, 8, classes)
    td = tsn.Discriminator(size, 3, d_width, classes)
    assert count(init_shapes(g, z, labels)["params"]) == tsn.count_params(tg)
    assert count(init_shapes(d, x, labels)["params"]) == tsn.count_params(td)
    # And every variable's shape, name by name (the weight copy relies on it).
    for ours, theirs in ((init_shapes(g, z, labels), tg), (init_shapes(d, x, labels), td)):
        shapes = jax.tree.map(lambda a: tuple(a.shape), ours)
        assert jax.tree.map(lambda a: tuple(a.shape), tsn.to_flax(theirs)) == shapes


def test_cifar_parameter_counts_are_miyatos():
    # Miyato et al.'s CIFAR-10 ResNet, counted by hand from the paper's layer table (z 128):
    #   G: Linear 128 -> 4*4*256 (+bias) = 528,384; 3 blocks x (BN 512 + conv3x3 590,080 +
    #      BN 512 + conv3x3 590,080 + conv1x1 65,792) = 3,740,928; BN 512; conv3x3 -> 3: 6,915.
    #   D: block1 3,584 + 147,584 + 512; block2 147,584 * 2 + 16,512; blocks 3-4 147,584 * 4;
    #      Linear 128 -> 1: 129 (with Mimicry's bias; the paper's code has none there).
    config = make_config(32, 3, 0, g_width=256, d_width=128, z_dim=128)
    g, d = sngan.build(config)
    gv = init_shapes(g, jnp.zeros((2, 128)), None)
    dv = init_shapes(d, jnp.zeros((2, 32, 32, 3)), None)
    assert count(gv["params"]) == 528_384 + 3 * 1_246_976 + 512 + 6_915 == 4_276_739
    assert count(dv["params"]) == 151_680 + 311_680 + 4 * 147_584 + 129 == 1_053_825


@pytest.fixture(scope="module")
def tiny32():
    """A conditional 32 px pair at width 8, its inputs and its (jitted) initial variables."""
    g, d = sngan.build(make_config(32, 3, 5, g_width=8, d_width=8))
    z = jax.random.normal(jax.random.key(1), (4, 8))
    labels = jnp.array([0, 4, 2, 0])
    gv = jax.jit(g.init)(jax.random.key(0), z, labels)
    x = jax.random.uniform(jax.random.key(2), (4, 32, 32, 3), minval=-1, maxval=1)
    dv = jax.jit(d.init)(jax.random.key(0), x, labels)
    return g, d, z, labels, x, gv, dv


def test_outputs_and_labels(tiny32):
    # Real values once: images in [-1, 1], finite logits, and the class label matters.
    g, d, z, labels, x, gv, dv = tiny32
    fake, _ = g.apply(gv, z, labels, train=True, mutable=["batch_stats"])
    assert bool(jnp.all(jnp.abs(fake) <= 1.0)) and float(jnp.std(fake)) > 0
    logits = d.apply(dv, x, labels)
    assert bool(jnp.all(jnp.isfinite(logits)))
    # D's projection embeddings differ between classes from the start; G's cBN gains
    # (ones) only after training, so compare D.
    assert not np.allclose(d.apply(dv, x, labels[::-1]), logits)


def test_init_distributions_match_torch(tiny32):
    # The weight copy makes the parity tests blind to initialisation; compare the two
    # initialisers' draws instead (Xavier gains sqrt(2) / 1, zero biases, unit BN gains,
    # unit spectral vectors), tensor by tensor, on tensors large enough for the statistics.
    tsn = torch_port()
    g, d, *_, gv, dv = tiny32
    import torch

    torch.manual_seed(0)  # the global RNG's state otherwise depends on which tests ran before
    tg, td = tsn.Generator(32, 3, 8, 8, 5), tsn.Discriminator(32, 3, 8, 5)
    for ours, theirs in ((gv, tsn.to_flax(tg)), (dv, tsn.to_flax(td))):
        for path, a in jax.tree_util.tree_leaves_with_path(ours):
            b = theirs
            for k in path:
                b = b[k.key]
            a, name = np.asarray(a), jax.tree_util.keystr(path)
            if "spectral" in name:
                np.testing.assert_allclose(np.linalg.norm(a), 1.0, rtol=1e-5, err_msg=name)
            elif a.std() == 0 or b.std() == 0:  # constant init: must be the same constant
                np.testing.assert_array_equal(a, b, err_msg=name)
            elif a.size >= 500:
                # Bounds of 5 standard errors for two independent draws of n values: a
                # gain of sqrt(2) instead of 1 (or a normal for a uniform) still fails.
                se = np.sqrt(2.0 / a.size)
                assert abs(a.std() / b.std() - 1) < 5 * se / np.sqrt(2), name
                assert abs(a.mean() - b.mean()) < 5 * se * b.std(), name
                # Uniform, with the same bound.
                assert 0.95 < np.abs(a).max() / np.abs(b).max() < 1.05, name


def test_bfloat16_compute_float32_variables(tiny32):
    g32, d32, z, labels, x, gv, dv = tiny32
    g, d = sngan.build(make_config(32, 3, 5, g_width=8, d_width=8, dtype="bfloat16"))
    fake, stats = g.apply(gv, z, labels, train=True, mutable=["batch_stats"])
    logits, spec = d.apply(dv, x, labels, train=True, mutable=["spectral"])
    assert fake.dtype == jnp.float32 and logits.dtype == jnp.float32
    for tree in (stats, spec):
        assert {a.dtype for a in jax.tree.leaves(tree)} == {jnp.dtype(jnp.float32)}
    # The same function as float32 up to bfloat16 rounding.
    fake32 = g32.apply(gv, z, labels, train=True, mutable=["batch_stats"])[0]
    assert 0 < float(jnp.abs(fake - fake32).max()) < 0.1
    ref = d32.apply(dv, x, labels, train=True, mutable=["spectral"])[0]
    np.testing.assert_allclose(logits, ref, rtol=0.05, atol=0.05 * float(jnp.abs(ref).max()))


def test_conditional_needs_labels():
    g, d = sngan.build(make_config(32, 3, 4))
    check_label_errors(g, d, jnp.zeros((2, 8)), jnp.zeros((2, 32, 32, 3)))


# ----------------------------------------------------------------------------------------------
# validate


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("data.image_size", 28),
        ("data.image_size", 256),
        ("data.image_size", 32.0),
        ("data.channels", 2),
        ("model.g_width", 0),
        ("model.g_width", -3),
        ("model.g_width", 2.5),
        ("model.d_width", 0),
        ("model.d_width", True),
        ("model.z_dim", 0),
        ("model.dtype", "float16"),
        ("model.upsample", "bicubic"),
    ],
)
def test_validate_rejects(key, value):
    config = make_config(upsample="nearest")
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        sngan.validate(config)


def test_validate_accepts():
    for size in sngan.SIZES:
        sngan.validate(make_config(size, 1, 10))
    sngan.validate(make_config(upsample="bilinear", dtype="bfloat16"))


# ----------------------------------------------------------------------------------------------
# PyTorch parity


def test_upsample_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    for mode in sngan.UPSAMPLES:
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=2, mode=mode)
        ours = sngan.upsample2x(jnp.asarray(nhwc(x)), mode)
        np.testing.assert_allclose(ours, nhwc(ref), atol=1e-6)


def randomize(torch, module, seed):
    """Random weights, affines, running statistics and unit spectral vectors, in place.

    Init values (BN gain 1, bias 0, mean 0, var 1, u/v from the init weights) would hide a
    copy that forgot them; random ones make every variable matter.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen) + (1.0 if "gain" in name else 0))
        for name, buf in module.named_buffers():
            if randomize_running_stats(torch, name, buf, gen):
                continue
            if name.endswith(("._u", "._v")):
                v = torch.randn(buf.shape, generator=gen)
                buf.copy_(v / v.norm())


G_CASES = [
    (32, 0, "nearest"),
    (32, 3, "nearest"),
    (48, 3, "nearest"),
    (64, 0, "bilinear"),
    (32, 3, "bilinear"),
]


@pytest.mark.parametrize(("size", "classes", "upsample"), G_CASES)
def test_generator_matches_torch(size, classes, upsample):
    torch = pytest.importorskip("torch")
    tsn = torch_port()
    torch.manual_seed(0)
    width = 4 if size == 32 else 1
    tg = tsn.Generator(size, 3, width, 8, classes, upsample)
    randomize(torch, tg, seed=1)
    g, _ = sngan.build(make_config(size, 3, classes, g_width=width, upsample=upsample))

    # Train mode (running statistics updated once), then eval mode with the updated ones.
    check_generator_parity(
        tg,
        g,
        tsn.to_flax(tg),
        (6, 8),
        classes,
        to_flax=tsn.to_flax,
        collections=["batch_stats"],
        check_out=allclose(rtol=1e-5, atol=2e-5),
        check_state=allclose(rtol=1e-5, atol=1e-5),
        jit=True,
    )


D_CASES = [(32, 0), (32, 3), (48, 3), (64, 0)]


@pytest.mark.parametrize(("size", "classes"), D_CASES)
def test_discriminator_matches_torch(size, classes):
    torch = pytest.importorskip("torch")
    tsn = torch_port()
    torch.manual_seed(0)
    width = 4 if size == 32 else 1
    channels = 3 if classes else 1
    td = tsn.Discriminator(size, channels, width, classes)
    randomize(torch, td, seed=3)
    _, d = sngan.build(make_config(size, channels, classes, d_width=width))
    variables = tsn.to_flax(td)

    _, after = check_discriminator_parity(
        td,
        d,
        variables,
        (4, size, size, channels),
        classes,
        to_flax=tsn.to_flax,
        check_out=allclose(rtol=1e-5, atol=1e-5),
        check_grad=allclose(rtol=1e-4, atol=1e-6),
        check_state=allclose(rtol=1e-5, atol=1e-6),
        jit=True,
    )
    v_before, v_after = (
        variables["spectral"]["block1"]["c1"]["v"],
        after["spectral"]["block1"]["c1"]["v"],
    )
    assert not np.allclose(v_before, v_after)  # the iteration did move the vectors
