"""DCGAN models: shapes, parameter counts, initialisation, registry, and parity with the seed."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import dcgan, torch_port

TORCH_REASON = "torch (CPU, ==2.13.0) is an optional test dependency for PyTorch parity checks"
REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "shared/reference/torch_dcgan.py"
SEED_G_PARAMS, SEED_D_PARAMS = 3_576_704, 2_765_568


def _reference():
    """The seed's PyTorch modules (shared/reference/torch_dcgan.py), or skip."""
    pytest.importorskip("torch", reason=TORCH_REASON)
    if not REFERENCE.exists():
        pytest.skip(f"seed reference model not found at {REFERENCE}")
    spec = importlib.util.spec_from_file_location("torch_dcgan", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shapes(module, x):
    """Variables and output as ShapeDtypeStructs, without computing anything."""
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
    out = jax.eval_shape(lambda v: module.apply(v, x, train=False), variables)
    return variables, out


def _count(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("size", dcgan.SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    g = dcgan.Generator(image_size=size, channels=channels, width=16)
    d = dcgan.Discriminator(image_size=size, width=16)
    g_vars, images = _shapes(g, jnp.zeros((2, 100)))
    assert images.shape == (2, size, size, channels) and images.dtype == jnp.float32
    d_vars, logits = _shapes(d, jnp.zeros((2, size, size, channels)))
    assert logits.shape == (2,) and logits.dtype == jnp.float32
    assert set(g_vars) == set(d_vars) == {"params", "batch_stats"}
    assert "bn0" not in d_vars["params"]  # the seed's D has no BatchNorm after its first conv


def test_param_counts_equal_seed():
    g_vars, _ = _shapes(dcgan.Generator(), jnp.zeros((1, 100)))
    d_vars, _ = _shapes(dcgan.Discriminator(), jnp.zeros((1, 64, 64, 3)))
    assert _count(g_vars["params"]) == SEED_G_PARAMS
    assert _count(d_vars["params"]) == SEED_D_PARAMS


def test_param_counts_equal_torch():
    ref = _reference()
    assert sum(p.numel() for p in ref.Generator().parameters()) == SEED_G_PARAMS
    assert sum(p.numel() for p in ref.Discriminator().parameters()) == SEED_D_PARAMS


def test_run_small_and_bfloat16():
    z = jax.random.normal(jax.random.key(1), (2, 100))
    kwargs = {"image_size": 28, "width": 8}
    g_vars = dcgan.Generator(channels=1, **kwargs).init(jax.random.key(0), z, train=False)
    d_vars = dcgan.Discriminator(**kwargs).init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)), False)
    for dtype in (jnp.float32, jnp.bfloat16):
        g = dcgan.Generator(channels=1, dtype=dtype, **kwargs)
        d = dcgan.Discriminator(dtype=dtype, **kwargs)
        # The params tree does not depend on the compute dtype: stored float32 either way.
        assert jax.eval_shape(lambda z, g=g: g.init(jax.random.key(0), z, train=False), z) == (
            jax.eval_shape(lambda: g_vars)
        )

        @jax.jit
        def run(z, g=g, d=d):
            images, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
            return images, d.apply(d_vars, images, train=False)

        images, logits = run(z)
        assert images.dtype == logits.dtype == jnp.float32
        assert float(jnp.abs(images).max()) <= 1.0 and bool(jnp.isfinite(logits).all())


def test_init_statistics():
    init = jax.jit(lambda z: dcgan.Generator().init(jax.random.key(0), z, train=False))
    g_vars = init(jnp.zeros((1, 100)))
    params, stats = g_vars["params"], g_vars["batch_stats"]
    for i in range(5):
        kernel = np.asarray(params[f"conv{i}"]["kernel"])
        assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 1e-3, i
    scale = np.concatenate([np.asarray(params[f"bn{i}"]["scale"]) for i in range(4)])
    assert abs(scale.mean() - 1.0) < 5e-3 and abs(scale.std() - 0.02) < 5e-3
    for i in range(4):
        assert not np.asarray(params[f"bn{i}"]["bias"]).any()
        assert not np.asarray(stats[f"bn{i}"]["mean"]).any()
        np.testing.assert_array_equal(stats[f"bn{i}"]["var"], 1.0)


def _config(**model):
    return ml_collections.ConfigDict(
        {
            "model": {"name": "dcgan", "z_dim": 100, "g_width": 64, "d_width": 64}
            | {"conv_impl": "auto", "dtype": "float32"}
            | model,
            "data": {"image_size": 32, "channels": 1},
        }
    )


def test_registry_and_build():
    assert {"dcgan", "sngan", "biggan"} <= set(models.available())
    g, d = models.build(_config(g_width=8, d_width=16, conv_impl="lax", dtype="bfloat16"))
    assert (g.image_size, g.channels, g.width, g.conv_impl) == (32, 1, 8, "lax")
    assert (d.width, d.dtype) == (16, jnp.bfloat16)
    with pytest.raises(ValueError, match="available"):
        models.build(_config(name="stylegan9"))
    with pytest.raises(ValueError, match="conv_impl"):
        models.build(_config(conv_impl="fastest"))
    assert dcgan.resolve_conv_impl("auto", "cpu") == "fast"
    assert dcgan.resolve_conv_impl("auto", "gpu") == "lax"
    assert dcgan.resolve_conv_impl("lax", "cpu") == "lax"


def _perturbed(torch, module, seed):
    """Random seed-style weights plus non-trivial BatchNorm affine parameters and statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return module


def _numpy_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _assert_close(actual, expected, rtol=1e-4):
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _assert_stats_match(ours, torch_module, kind):
    ref = torch_port.from_torch(_numpy_state(torch_module), kind)["batch_stats"]
    assert set(ref) == set(ours)
    for name in ref:
        for key in ("mean", "var"):
            _assert_close(ours[name][key], ref[name][key])


@pytest.mark.parametrize("impl", ["fast", "lax"])
def test_generator_matches_torch(impl):
    ref = _reference()
    torch = ref.torch
    torch.manual_seed(0)
    g_t = _perturbed(torch, ref.Generator(), 1)
    variables = torch_port.from_torch(_numpy_state(g_t), "generator")
    g = dcgan.Generator(conv_impl=impl)
    z = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    z_t = torch.tensor(z[:, :, None, None])
    with torch.no_grad():
        _assert_close(
            g.apply(variables, z, train=False), g_t.eval()(z_t).numpy().transpose(0, 2, 3, 1)
        )
        out_t = g_t.train()(z_t).numpy().transpose(0, 2, 3, 1)
    out, new = g.apply(variables, z, train=True, mutable=["batch_stats"])
    _assert_close(out, out_t)
    _assert_stats_match(new["batch_stats"], g_t, "generator")


@pytest.mark.parametrize("impl", ["fast", "lax"])
def test_discriminator_matches_torch(impl):
    ref = _reference()
    torch = ref.torch
    torch.manual_seed(0)
    d_t = _perturbed(torch, ref.Discriminator(), 2)
    variables = torch_port.from_torch(_numpy_state(d_t), "discriminator")
    d = dcgan.Discriminator(conv_impl=impl)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    x_t = torch.tensor(x.transpose(0, 3, 1, 2))
    with torch.no_grad():
        _assert_close(
            jax.nn.sigmoid(d.apply(variables, x, train=False)), d_t.eval()(x_t)[:, 0, 0, 0]
        )
        out_t = d_t.train()(x_t)[:, 0, 0, 0].numpy()
    logits, new = d.apply(variables, x, train=True, mutable=["batch_stats"])
    _assert_close(jax.nn.sigmoid(logits), out_t)
    _assert_stats_match(new["batch_stats"], d_t, "discriminator")


def test_discriminator_gradients_match_torch():
    ref = _reference()
    torch = ref.torch
    torch.manual_seed(0)
    d_t = _perturbed(torch, ref.Discriminator(), 3).train()
    variables = torch_port.from_torch(_numpy_state(d_t), "discriminator")
    x = np.random.default_rng(2).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    x_t = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    d_t(x_t).log().sum().backward()  # log D(x): gradients flow through the seed's Sigmoid
    grads_t = torch_port.from_torch(
        {k: p.grad.numpy() for k, p in d_t.named_parameters()}
        | {k: b.numpy() for k, b in d_t.named_buffers()},
        "discriminator",
    )["params"]

    def loss(params, images):
        logits, _ = dcgan.Discriminator().apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            images,
            train=True,
            mutable=["batch_stats"],
        )
        return jax.nn.log_sigmoid(logits).sum()

    g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)
    _assert_close(g_x, x_t.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-3)
    for name in grads_t:
        for key in grads_t[name]:
            _assert_close(g_params[name][key], grads_t[name][key], rtol=1e-3)


def test_torch_port_round_trip():
    ref = _reference()
    for kind, module in (("generator", ref.Generator()), ("discriminator", ref.Discriminator())):
        state = _numpy_state(_perturbed(ref.torch, module, 4))
        variables = torch_port.from_torch(state, kind)
        back = torch_port.to_torch(variables, kind)
        assert set(back) == set(state)
        for key, value in state.items():
            if not key.endswith("num_batches_tracked"):
                np.testing.assert_array_equal(back[key], value)
        module.load_state_dict({k: ref.torch.from_numpy(v) for k, v in back.items()})


def test_fast_second_order_gradients_match_lax():
    """Gradient penalties differentiate through D's input gradient: 'fast' must match there too."""
    x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    variables = dcgan.Discriminator(image_size=28, width=4).init(jax.random.key(1), x, False)

    def penalty(params, impl):
        d = dcgan.Discriminator(image_size=28, width=4, conv_impl=impl)
        v = {"params": params, "batch_stats": variables["batch_stats"]}
        logit_sum = lambda x: d.apply(v, x, True, mutable=["batch_stats"])[0].sum()
        return jnp.sum(jax.grad(logit_sum)(x) ** 2)

    grad = jax.jit(jax.grad(penalty), static_argnums=1)
    for fast, ref in zip(
        jax.tree.leaves(grad(variables["params"], "fast")),
        jax.tree.leaves(grad(variables["params"], "lax")),
        strict=True,
    ):
        _assert_close(fast, ref)
