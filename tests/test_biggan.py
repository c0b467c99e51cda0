"""BigGAN (gan_jax.models.biggan): shapes, parameter counts, PyTorch parity, the orthogonal
regulariser and config validation.

Parity: the PyTorch port (`bench/torch_biggan.py`, PyTorch's own spectral norm and batch norm)
with random weights, batch-norm affines, running statistics, embeddings, attention gains and
spectral vectors is copied into the Flax model; both run on the same inputs and must agree on
the outputs (train and eval mode), on the 'batch_stats' and 'spectral' collections after one
train-mode call, and on the discriminator's input gradients. Widths are tiny so that every
test runs in seconds on 2 cores; the full-size counts use `jax.eval_shape` only.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import models
from gan_jax.errors import ConfigError
from gan_jax.models import biggan
from gan_jax.objectives import regularisers as reg_lib
from tests import model_helpers
from tests.model_helpers import (
    check_discriminator_parity,
    check_generator_parity,
    check_label_errors,
    close,
    count,
    init_shapes,
    randomize_running_stats,
)

ortho = reg_lib.orthogonal_matrix_penalty

Z_DIM = {32: 8, 64: 10, 128: 12}  # 4, 5, 6 chunks of 2


def make_config(size=32, channels=3, classes=0, g_width=2, d_width=4, attn_res=16, **model):
    return ml_collections.ConfigDict(
        {
            "model": {
                "name": "biggan",
                "z_dim": Z_DIM[size],
                "g_width": g_width,
                "d_width": d_width,
                "shared_dim": 6,
                "attn_res": attn_res,
                "num_classes": classes,
                "dtype": "float32",
                **model,
            },
            "data": {"image_size": size, "channels": channels},
        }
    )


def torch_port():
    return model_helpers.torch_port("torch_biggan")


def _labels(classes, b):
    return jnp.arange(b, dtype=jnp.int32) % classes if classes else None


# ----------------------------------------------------------------------------------------------
# Shapes and counts


@pytest.mark.parametrize(("channels", "classes", "attn_res"), [(3, 0, 16), (1, 5, 8), (3, 4, 0)])
def test_shapes_32px_run(channels, classes, attn_res):
    config = make_config(32, channels, classes, attn_res=attn_res)
    biggan.validate(config)
    g, d = biggan.build(config)
    b = 4
    z = jax.random.normal(jax.random.key(1), (b, 8))
    labels = _labels(classes, b)
    gv = g.init(jax.random.key(0), z, labels, train=False)
    assert set(gv) == {"params", "batch_stats", "spectral"}
    assert ("attention" in gv["params"]) == bool(attn_res)
    assert ("shared" in gv["params"]) == bool(classes)
    x, new = g.apply(gv, z, labels, train=True, mutable=["batch_stats", "spectral"])
    assert x.shape == (b, 32, 32, channels) and x.dtype == jnp.float32
    assert bool(jnp.all(jnp.abs(x) <= 1.0))
    assert set(new) == {"batch_stats", "spectral"}
    dv = d.init(jax.random.key(0), x, labels, train=False)
    assert set(dv) == {"params", "spectral"}
    assert ("attention" in dv["params"]) == bool(attn_res)
    assert ("embed" in dv["params"]) == bool(classes)
    logits, _ = d.apply(dv, x, labels, train=True, mutable=["spectral"])
    assert logits.shape == (b,) and logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(logits)))
    if classes:  # the projection makes the logit depend on the class
        other = d.apply(dv, x, labels[::-1], train=False)
        assert not np.allclose(np.asarray(other), np.asarray(d.apply(dv, x, labels)))


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize(("classes", "attn_res"), [(0, 0), (7, 32)])
def test_shapes_large_eval_shape(size, classes, attn_res):
    config = make_config(size, 3, classes, g_width=2, d_width=8, attn_res=attn_res)
    biggan.validate(config)
    g, d = biggan.build(config)
    z = jnp.zeros((2, Z_DIM[size]))
    labels = _labels(classes, 2)
    gv = init_shapes(g, z, labels)
    x = jax.eval_shape(
        lambda v: g.apply(v, z, labels, train=True, mutable=["batch_stats", "spectral"])[0], gv
    )
    assert x.shape == (2, size, size, 3) and x.dtype == jnp.float32
    x = jnp.zeros(x.shape)
    dv = init_shapes(d, x, labels)
    logits = jax.eval_shape(lambda v: d.apply(v, x, labels, train=False), dv)
    assert logits.shape == (2,) and logits.dtype == jnp.float32
    assert ("attention" in gv["params"]) == ("attention" in dv["params"]) == bool(attn_res)


COUNT_CASES = [(32, 0, 16), (32, 5, 8), (64, 3, 32), (128, 0, 0), (128, 3, 64)]


@pytest.mark.parametrize(("size", "classes", "attn_res"), COUNT_CASES)
def test_parameter_counts_match_torch(size, classes, attn_res):
    tbg = torch_port()
    config = make_config(size, 3, classes, g_width=4, d_width=8, attn_res=attn_res)
    biggan.validate(config)
    g, d = biggan.build(config)
    z = jnp.zeros((2, Z_DIM[size]))
    labels = _labels(classes, 2)
    x = jnp.zeros((2, size, size, 3))
    tg = tbg.Generator(size, 3, 4, Z_DIM[size], 6, classes, attn_res)
    td = tbg.Discriminator(size, 3, 8, classes, attn_res)
    gv, dv = init_shapes(g, z, labels), init_shapes(d, x, labels)
    assert count(gv["params"]) == tbg.count_params(tg)
    assert count(dv["params"]) == tbg.count_params(td)
    # Every variable's name and shape (the weight copy relies on it).
    for ours, theirs in ((gv, tg), (dv, td)):
        assert jax.tree.map(np.shape, tbg.to_flax(theirs)) == jax.tree.map(np.shape, ours)


def test_reference_parameter_counts():
    # BigGAN at 128 px (ch 96, z 120, shared 128, attention at 64, 1000 classes): compare_gan's
    # resnet_biggan_test asserts exactly these counts for its port of the paper's model.
    config = make_config(128, 3, 1000, g_width=96, d_width=96, attn_res=64, shared_dim=128)
    config.model.z_dim = 120
    biggan.validate(config)
    g, d = biggan.build(config)
    labels = jnp.zeros((2,), jnp.int32)
    assert count(init_shapes(g, jnp.zeros((2, 120)), labels)["params"]) == 70_433_988
    assert count(init_shapes(d, jnp.zeros((2, 128, 128, 3)), labels)["params"]) == 87_982_370

    # StudioGAN's CIFAR-10 BigGAN (z 80, shared 128, g/d_conv_dim 96, attention after G's
    # 2nd and D's 1st block, i.e. at 16 px), counted by hand. G (ch 384, cond 20 + 128 = 148):
    #   linear 20 -> 16*384 (+bias) 129,024; 3 blocks x (two conv3x3 1,327,488 + conv1x1
    #   147,840 + four cBN maps 148*384) = 3 x 3,030,144; attention 2*384*48 + 2*384*192 + 1
    #   = 184,321; bn_out 768; conv_out 10,371; shared 10*128.
    # D (ch 192): block1 5,376 + 331,968 + 768; block2 2*331,968 + 37,056; blocks 3-4
    #   4*331,968; attention 2*192*24 + 2*192*96 + 1 = 46,081; linear 193; embed 10*192.
    config = make_config(32, 3, 10, g_width=96, d_width=96, attn_res=16, shared_dim=128)
    config.model.z_dim = 80
    biggan.validate(config)
    g, d = biggan.build(config)
    labels = jnp.zeros((2,), jnp.int32)
    g_count = 129_024 + 3 * 3_030_144 + 184_321 + 768 + 10_371 + 1_280
    d_count = 338_112 + 700_992 + 4 * 331_968 + 46_081 + 193 + 1_920
    assert count(init_shapes(g, jnp.zeros((2, 80)), labels)["params"]) == g_count == 9_416_196
    assert count(init_shapes(d, jnp.zeros((2, 32, 32, 3)), labels)["params"]) == d_count
    assert d_count == 2_415_170


def test_bfloat16_compute_float32_variables():
    g, d = biggan.build(make_config(32, 3, 3, dtype="bfloat16"))
    b = 4
    z = jax.random.normal(jax.random.key(1), (b, 8))
    labels = _labels(3, b)
    gv = g.init(jax.random.key(0), z, labels)
    x, g_new = g.apply(gv, z, labels, train=True, mutable=["batch_stats", "spectral"])
    dv = d.init(jax.random.key(0), x, labels)
    logits, d_new = d.apply(dv, x, labels, train=True, mutable=["spectral"])
    assert x.dtype == jnp.float32 and logits.dtype == jnp.float32
    for tree in (gv, dv, g_new, d_new):
        assert {a.dtype for a in jax.tree.leaves(tree)} == {jnp.dtype(jnp.float32)}
    g32, d32 = biggan.build(make_config(32, 3, 3))
    x32 = g32.apply(gv, z, labels, train=True, mutable=["batch_stats", "spectral"])[0]
    np.testing.assert_allclose(np.asarray(x), np.asarray(x32), atol=0.1)
    l32 = d32.apply(dv, x32, labels)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(l32), rtol=0.1, atol=0.1)


def test_labels_and_z_errors():
    g, d = biggan.build(make_config(32, 3, 4))
    z = jnp.zeros((2, 8))
    check_label_errors(g, d, z, jnp.zeros((2, 32, 32, 3)))
    with pytest.raises(ValueError, match="divisible by 4"):
        g.init(jax.random.key(0), jnp.zeros((2, 9)), jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match="32px"):
        d.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)), jnp.zeros((2,), jnp.int32))
    # Unconditional models ignore labels.
    g0, _ = biggan.build(make_config(32, 3, 0))
    v = g0.init(jax.random.key(0), z)
    np.testing.assert_array_equal(g0.apply(v, z, jnp.ones((2,), jnp.int32)), g0.apply(v, z))


# ----------------------------------------------------------------------------------------------
# PyTorch parity


def randomize(torch, module, seed):
    """Random weights, affines, running statistics and spectral vectors, in place.

    Init values (BN gain 1, bias 0, mean 0, var 1, attention gamma 0, u/v fitted to the
    init weights) would hide a copy that forgot them; random ones make every variable matter.
    The spectral vectors start random and get three power iterations, so that sigma is a
    positive estimate (not a near-zero one that blows activations up) yet one more iteration
    still moves them.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if name.endswith("gamma") else 0.3
            p.copy_(scale * torch.randn(p.shape, generator=gen))
            if name.endswith("bn.weight"):
                p.add_(1.0)
        for name, buf in module.named_buffers():
            randomize_running_stats(torch, name, buf, gen)
        for layer in module.modules():
            if hasattr(layer, "parametrizations"):
                sn = layer.parametrizations.weight[0]
                for buf in (sn._u, sn._v):
                    v = torch.randn(buf.shape, generator=gen)
                    buf.copy_(v / v.norm())
                sn._power_method(layer.parametrizations.weight.original.flatten(1), 3)


def _moved(before, after):
    """Whether any leaf changed (the train call really did update the collection)."""
    return any(
        not np.allclose(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))
    )


G_CASES = [(32, 0, 16, 2), (32, 3, 8, 2), (64, 3, 32, 2)]


@pytest.mark.parametrize(("size", "classes", "attn_res", "width"), G_CASES)
def test_generator_matches_torch(size, classes, attn_res, width):
    torch = pytest.importorskip("torch")
    tbg = torch_port()
    torch.manual_seed(0)
    z_dim = Z_DIM[size]
    tg = tbg.Generator(size, 3, width, z_dim, 6, classes, attn_res)
    randomize(torch, tg, seed=1)
    g, _ = biggan.build(make_config(size, 3, classes, g_width=width, attn_res=attn_res))
    variables = jax.tree.map(jnp.asarray, tbg.to_flax(tg))

    # Train mode (running statistics and spectral vectors updated once), then eval mode with
    # the updated statistics and vectors.
    new = check_generator_parity(
        tg,
        g,
        variables,
        (5, z_dim),
        classes,
        to_flax=tbg.to_flax,
        collections=["batch_stats", "spectral"],
        check_out=close,
        check_state=close,
    )
    assert _moved(variables["spectral"], new["spectral"])
    assert _moved(variables["batch_stats"], new["batch_stats"])


D_CASES = [(32, 0, 16, 4, 3), (32, 3, 8, 4, 1), (64, 3, 16, 4, 3)]


@pytest.mark.parametrize(("size", "classes", "attn_res", "width", "channels"), D_CASES)
def test_discriminator_matches_torch(size, classes, attn_res, width, channels):
    torch = pytest.importorskip("torch")
    tbg = torch_port()
    torch.manual_seed(0)
    td = tbg.Discriminator(size, channels, width, classes, attn_res)
    randomize(torch, td, seed=3)
    _, d = biggan.build(make_config(size, channels, classes, d_width=width, attn_res=attn_res))
    variables = jax.tree.map(jnp.asarray, tbg.to_flax(td))

    new, _ = check_discriminator_parity(
        td,
        d,
        variables,
        (3, size, size, channels),
        classes,
        to_flax=tbg.to_flax,
        check_out=close,
        check_grad=lambda a, b: close(a, b, rtol=1e-4),
        check_state=close,
    )
    assert _moved(variables["spectral"], new["spectral"])


# ----------------------------------------------------------------------------------------------
# Orthogonal regularisation


def test_orthogonal_penalty_values():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(12, 5)))
    # Orthogonal columns of any lengths: only off-diagonal entries of W^T W count.
    assert float(ortho({"d": {"kernel": q}})) == pytest.approx(0, abs=1e-10)
    scaled = q * np.array([0.1, 1.0, 2.0, 3.0, 7.0])
    assert float(ortho({"d": {"kernel": scaled}})) == pytest.approx(0, abs=1e-8)
    # A conv kernel [kh, kw, in, out] whose [kh*kw*in, out] reshape has orthogonal columns.
    conv = q.reshape(2, 2, 3, 5)
    assert float(ortho({"c": {"kernel": conv}})) == pytest.approx(0, abs=1e-10)

    # By hand: W = [[1, 2], [3, 4]], W^T W = [[10, 14], [14, 20]], off-diagonal 14^2 * 2 = 392.
    w = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    # Biases, 1-D affines, scalars and the excluded shared embedding do not count.
    params = {
        "layer": {"kernel": w, "bias": np.ones(2, np.float32)},
        "bn": {"scale": np.ones(2, np.float32)},
        "attention": {"gamma": np.float32(3.0)},
        "shared": {"embedding": np.ones((3, 2), np.float32)},
    }
    assert float(ortho(params)) == pytest.approx(392.0)
    # The same matrix as a 1x1 conv kernel; both layers add up.
    params["conv"] = {"kernel": w.reshape(1, 1, 2, 2)}
    assert float(ortho(params)) == pytest.approx(784.0)
    # With nothing excluded the shared embedding adds (ones [3, 2]: off-diagonal 3, 3) 18.
    assert float(ortho(params, exclude=())) == pytest.approx(802.0)


def test_orthogonal_penalty_gradient_matches_closed_form():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
    dense = rng.normal(size=(7, 5)).astype(np.float32)
    params = {"conv": {"kernel": kernel}, "dense": {"kernel": dense}}
    grads = jax.grad(reg_lib.orthogonal_matrix_penalty)(params)

    def closed_form(w):
        # d/dW ||(W^T W) * M||_F^2 = 4 W ((W^T W) * M), M = 1 - I, in float64.
        w = w.astype(np.float64).reshape(-1, w.shape[-1])
        a = (w.T @ w) * (1.0 - np.eye(w.shape[1]))
        return 4.0 * w @ a

    for name, w in (("conv", kernel), ("dense", dense)):
        expected = closed_form(w).reshape(w.shape)
        np.testing.assert_allclose(grads[name]["kernel"], expected, rtol=1e-4, atol=1e-3)
        # BigGAN-PyTorch's update on its [out, fan_in] weight Wt = W^T is 2 (Wt Wt^T * M) Wt:
        # half our gradient, transposed (so its `strength` multiplies penalty / 2).
        wt = w.astype(np.float64).reshape(-1, w.shape[-1]).T
        theirs = 2.0 * ((wt @ wt.T) * (1.0 - np.eye(wt.shape[0]))) @ wt
        np.testing.assert_allclose(theirs.T.reshape(w.shape), expected / 2, rtol=1e-10)


def test_orthogonal_penalty_on_generator_params():
    g, _ = biggan.build(make_config(32, 3, 3))
    z = jnp.zeros((2, 8))
    params = g.init(jax.random.key(0), z, _labels(3, 2))["params"]
    # Orthogonal initialisation: every regularised matrix starts (numerically) orthogonal
    # where it can be (fan_in >= out); the shared embedding is excluded by default.
    value = float(ortho(params))
    assert np.isfinite(value)
    manual = 0.0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        keys = [k.key for k in path]
        if leaf.ndim < 2 or "shared" in keys:
            continue
        w = np.asarray(leaf, np.float64).reshape(-1, leaf.shape[-1])
        a = (w.T @ w) * (1 - np.eye(w.shape[1]))
        manual += float((a * a).sum())
    assert value == pytest.approx(manual, rel=1e-4)
    assert float(ortho(params, exclude=())) > value


# ----------------------------------------------------------------------------------------------
# Config validation


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("data.image_size", 48, "image_size"),
        ("data.channels", 2, "channels"),
        ("model.g_width", -3, r"g_width: must be an integer >= 1, got -3"),
        ("model.d_width", 0, "d_width"),
        ("model.shared_dim", 0, "shared_dim"),
        ("model.z_dim", 10, r"z_dim: must split into 4 equal chunks at 32 px .* 8 or 12; got 10"),
        ("model.attn_res", 32, r"attn_res: must be 0 .* 8, 16; got 32"),
        ("model.attn_res", -1, "attn_res"),
        ("model.dtype", "float16", "dtype"),
        ("model.bn_eps", 0.0, "bn_eps"),
        ("model.num_classes", -1, "num_classes"),
    ],
)
def test_validate_rejects(key, value, match):
    config = make_config(32, 3, 3)
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=match):
        biggan.validate(config)


def test_validate_z_chunks_per_size_and_attention_channels():
    for size, chunks in ((32, 4), (64, 5), (128, 6)):
        config = make_config(size, attn_res=0)
        config.model.z_dim = 7
        with pytest.raises(ConfigError, match=f"{chunks} equal chunks at {size} px"):
            biggan.validate(config)
        config.model.z_dim = 20 * chunks
        biggan.validate(config)
    # Attention at 32 px of a 64 px model: G has 4 * g_width channels there, D d_width.
    config = make_config(64, g_width=1, d_width=8, attn_res=32)
    with pytest.raises(ConfigError, match=r"g_width: self-attention at 32 px .* gives 4"):
        biggan.validate(config)
    config = make_config(64, g_width=2, d_width=4, attn_res=32)
    with pytest.raises(ConfigError, match=r"d_width: self-attention at 32 px .* gives 4"):
        biggan.validate(config)
    assert biggan.attention_resolutions(32) == (8, 16)
    assert biggan.attention_resolutions(64) == (8, 16, 32)
    assert biggan.attention_resolutions(128) == (8, 16, 32, 64)


def test_validate_accepts_and_registry_builds():
    config = make_config(32, 3, 3, bn_eps=1e-5)
    biggan.validate(config)
    models.validate(config)
    g, d = models.build(config)
    assert isinstance(g, biggan.Generator) and isinstance(d, biggan.Discriminator)
    assert g.bn_eps == 1e-5 and g.num_classes == 3 and d.attn_res == 16
    del config.model["num_classes"]  # optional common key: unconditional
    biggan.validate(config)
    assert biggan.build(config)[0].num_classes == 0
