"""Exact-convolution layers: every formulation equals `lax` and PyTorch, values and gradients.

'lax' and 'fast' are the library's (`gan_jax.models.layers`); the other formulations are the
benchmark's (`bench/layer_variants.py`), checked here so its timings compare equal functions.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from bench import layer_variants
from gan_jax.models import layers

TORCH_REASON = "torch (CPU, ==2.13.0) is an optional test dependency for PyTorch parity checks"


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _value_and_grads(fn, x, kernel, cot):
    """fn(x, kernel), and the gradients of <fn(x, kernel), cot> wrt x and kernel."""
    y, vjp = jax.vjp(fn, jnp.asarray(x), jnp.asarray(kernel))
    gx, gk = vjp(jnp.asarray(cot))
    return np.asarray(y), np.asarray(gx), np.asarray(gk)


def _conv_transpose(x, kernel, impl):
    """The library's own impls from `layers`, the benchmark-only variants from `bench`."""
    lib = layers if impl in layers.CONV_TRANSPOSE_IMPLS else layer_variants
    return lib.conv_transpose_4x4_s2(x, kernel, impl)


def _conv(x, kernel, impl):
    lib = layers if impl in layers.CONV_IMPLS else layer_variants
    return lib.conv_4x4_s2(x, kernel, impl)


def _assert_close(actual, expected, rtol=1e-5):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# Odd, non-square spatial sizes catch swapped axes and off-by-one taps.
CT_X, CT_K = (2, 5, 6, 3), (4, 4, 3, 4)
CONV_X, CONV_K = (2, 6, 8, 3), (4, 4, 3, 4)


@pytest.mark.parametrize("impl", [i for i in layer_variants.CONV_TRANSPOSE_IMPLS if i != "lax"])
def test_conv_transpose_impls_match_lax(impl):
    x, k, cot = _rand(CT_X, 0), _rand(CT_K, 1), _rand((2, 10, 12, 4), 2)
    ref = _value_and_grads(lambda a, b: layers.conv_transpose_4x4_s2(a, b, "lax"), x, k, cot)
    got = _value_and_grads(lambda a, b: _conv_transpose(a, b, impl), x, k, cot)
    for g, r in zip(got, ref, strict=True):
        _assert_close(g, r)


@pytest.mark.parametrize("impl", [i for i in layer_variants.CONV_IMPLS if i != "lax"])
def test_conv_impls_match_lax(impl):
    x, k, cot = _rand(CONV_X, 0), _rand(CONV_K, 1), _rand((2, 3, 4, 4), 2)
    ref = _value_and_grads(lambda a, b: layers.conv_4x4_s2(a, b, "lax"), x, k, cot)
    got = _value_and_grads(lambda a, b: _conv(a, b, impl), x, k, cot)
    for g, r in zip(got, ref, strict=True):
        _assert_close(g, r)


@pytest.mark.parametrize("hw", [(4, 4), (5, 6), (8, 8)])  # 'fast' picks per map size
@pytest.mark.parametrize("kind", ["conv_transpose", "conv"])
def test_fast_gradients_of_gradients_match_lax(kind, hw):
    """The gradient penalty differentiates the input gradient: through 'fast''s custom_vjp."""
    h, w = hw
    if kind == "conv_transpose":
        fn, x, out = layers.conv_transpose_4x4_s2, _rand((2, h, w, 3), 0), (2, 2 * h, 2 * w, 4)
    else:
        fn, x, out = layers.conv_4x4_s2, _rand((2, 2 * h, 2 * w, 3), 0), (2, h, w, 4)
    k, cot = jnp.asarray(_rand((4, 4, 3, 4), 1)), jnp.asarray(_rand(out, 2))

    def penalty(x, k, impl):
        gx = jax.grad(lambda x: jnp.sum(jnp.tanh(fn(x, k, impl)) * cot))(x)
        return jnp.sum(jnp.square(gx))

    for impl_args in ((0,), (1,)):
        ref = jax.grad(penalty, argnums=impl_args)(jnp.asarray(x), k, "lax")[0]
        got = jax.grad(penalty, argnums=impl_args)(jnp.asarray(x), k, "fast")[0]
        _assert_close(np.asarray(got), np.asarray(ref), rtol=1e-4)


def _torch_value_and_grads(torch, fn, x_nhwc, weight, cot_nhwc):
    """PyTorch's fn(x NCHW, weight) and gradients, returned in NHWC and torch weight layout."""
    x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2), requires_grad=True)
    w = torch.tensor(weight, requires_grad=True)
    y = fn(x, w)
    y.backward(torch.tensor(cot_nhwc.transpose(0, 3, 1, 2)))
    to_nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1)
    return to_nhwc(y), to_nhwc(x.grad), w.grad.numpy()


@pytest.mark.parametrize("impl", layer_variants.CONV_TRANSPOSE_IMPLS)
@pytest.mark.parametrize("hw", [(5, 6), (4, 4)])  # 'fast' takes another path on 4x4 maps
def test_conv_transpose_matches_torch(impl, hw):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    h, w_ = hw
    x, w, cot = _rand((2, h, w_, 3), 3), _rand((3, 4, 4, 4), 4), _rand((2, 2 * h, 2 * w_, 4), 5)
    fn = lambda a, b: torch.nn.functional.conv_transpose2d(a, b, stride=2, padding=1)
    y_t, gx_t, gw_t = _torch_value_and_grads(torch, fn, x, w, cot)
    kernel = w.transpose(2, 3, 0, 1)  # the documented layout
    y, gx, gk = _value_and_grads(lambda a, b: _conv_transpose(a, b, impl), x, kernel, cot)
    _assert_close(y, y_t)
    _assert_close(gx, gx_t)
    _assert_close(gk, gw_t.transpose(2, 3, 0, 1))


@pytest.mark.parametrize("impl", layer_variants.CONV_IMPLS)
@pytest.mark.parametrize("hw", [(3, 4), (4, 4)])
def test_conv_matches_torch(impl, hw):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    h, w_ = hw
    x, w, cot = _rand((2, 2 * h, 2 * w_, 3), 3), _rand((4, 3, 4, 4), 4), _rand((2, h, w_, 4), 5)
    fn = lambda a, b: torch.nn.functional.conv2d(a, b, stride=2, padding=1)
    y_t, gx_t, gw_t = _torch_value_and_grads(torch, fn, x, w, cot)
    kernel = w.transpose(2, 3, 1, 0)
    y, gx, gk = _value_and_grads(lambda a, b: _conv(a, b, impl), x, kernel, cot)
    _assert_close(y, y_t)
    _assert_close(gx, gx_t)
    _assert_close(gk, gw_t.transpose(2, 3, 1, 0))


def test_dense_layers_match_torch_convs():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    z, w_up = _rand((3, 5), 0), _rand((5, 6, 4, 4), 1)  # ConvTranspose2d(5, 6, 4, 1, 0)
    ref = torch.nn.functional.conv_transpose2d(
        torch.tensor(z[:, :, None, None]), torch.tensor(w_up)
    )
    params = {"params": {"kernel": w_up.transpose(2, 3, 0, 1)}}
    got = layers.DenseToMap(6, 4).apply(params, jnp.asarray(z))
    _assert_close(np.asarray(got), ref.numpy().transpose(0, 2, 3, 1))

    x, w_down = _rand((3, 4, 4, 6), 2), _rand((1, 6, 4, 4), 3)  # Conv2d(6, 1, 4, 1, 0)
    ref = torch.nn.functional.conv2d(torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(w_down))
    params = {"params": {"kernel": w_down.transpose(2, 3, 1, 0)}}
    got = layers.MapToDense(1).apply(params, jnp.asarray(x))
    _assert_close(np.asarray(got), ref.numpy().reshape(3, 1))


def test_batchnorm_matches_torch_train_and_eval():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = _rand((4, 3, 5, 6), 0) * 3 + 1
    bn_t = torch.nn.BatchNorm2d(6)
    with torch.no_grad():
        bn_t.weight.copy_(torch.tensor(_rand((6,), 1)))
        bn_t.bias.copy_(torch.tensor(_rand((6,), 2)))
        bn_t.running_mean.copy_(torch.tensor(_rand((6,), 3)))
        bn_t.running_var.copy_(torch.tensor(np.abs(_rand((6,), 4)) + 0.5))
    vars_ = {
        "params": {"scale": bn_t.weight.detach().numpy(), "bias": bn_t.bias.detach().numpy()},
        "batch_stats": {"mean": bn_t.running_mean.numpy(), "var": bn_t.running_var.numpy()},
    }
    x_t = torch.tensor(x.transpose(0, 3, 1, 2))
    bn = layers.BatchNorm()
    _assert_close(
        np.asarray(bn.apply(vars_, jnp.asarray(x), False)),
        bn_t.eval()(x_t).detach().numpy().transpose(0, 2, 3, 1),
    )
    y, new = bn.apply(vars_, jnp.asarray(x), True, mutable=["batch_stats"])
    y_t = bn_t.train()(x_t).detach().numpy().transpose(0, 2, 3, 1)
    _assert_close(np.asarray(y), y_t, rtol=1e-4)
    _assert_close(np.asarray(new["batch_stats"]["mean"]), bn_t.running_mean.numpy())
    _assert_close(np.asarray(new["batch_stats"]["var"]), bn_t.running_var.numpy())

    # Gradients (our closed-form backward pass) against torch's autograd.
    cot = _rand(x.shape, 5)
    x_t.requires_grad_(True)
    bn_t.weight.grad = bn_t.bias.grad = None
    (bn_t.train()(x_t) * torch.tensor(cot.transpose(0, 3, 1, 2))).sum().backward()

    def loss(x, params):
        y, _ = bn.apply({**vars_, "params": params}, x, True, mutable=["batch_stats"])
        return (y * cot).sum()

    dx, dp = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), vars_["params"])
    _assert_close(np.asarray(dx), x_t.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4)
    _assert_close(np.asarray(dp["scale"]), bn_t.weight.grad.numpy(), rtol=1e-4)
    _assert_close(np.asarray(dp["bias"]), bn_t.bias.grad.numpy(), rtol=1e-4)


def _batch_norm_by_autodiff(x, scale, bias, eps):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axes)
    var = jnp.square(x - mean).mean(axes)
    return (x - mean) * lax.rsqrt(var + eps) * scale + bias, mean, var


@pytest.mark.parametrize("shape", [(16, 6), (4, 3, 5, 6), (2, 8, 8, 3)])
def test_batch_norm_backward_matches_autodiff_to_second_order(shape):
    """The closed-form VJP equals autodiff of the textbook definition, including the cotangents
    of the returned statistics and gradients of gradients (WGAN-GP differentiates D twice)."""
    x = jnp.asarray(_rand(shape, 0) * 2 + 0.5)
    scale, bias = jnp.asarray(_rand(shape[-1:], 1) + 1), jnp.asarray(_rand(shape[-1:], 2))
    cots = (jnp.asarray(_rand(shape, 3)), jnp.asarray(_rand(shape[-1:], 4)))
    cots += (jnp.asarray(_rand(shape[-1:], 5)),)
    outs = {}
    for name, fn in (("ours", layers.batch_norm_train), ("ref", _batch_norm_by_autodiff)):
        values, vjp = jax.vjp(lambda x, s, b, fn=fn: fn(x, s, b, 1e-5), x, scale, bias)

        def input_grad_norm(s, x, fn=fn):
            # A penalty on the input gradient of sum(y * cot), differentiated w.r.t. scale.
            g = jax.grad(lambda x: (fn(x, s, bias, 1e-5)[0] * cots[0]).sum())(x)
            return jnp.sum(g * g)

        outs[name] = (*values, *vjp(cots), jax.grad(input_grad_norm)(scale, x))
    for got, want in zip(outs["ours"], outs["ref"], strict=True):
        _assert_close(np.asarray(got), np.asarray(want), rtol=1e-4)


def test_bfloat16_compute_keeps_float32_params():
    x = jnp.asarray(_rand((2, 4, 4, 3), 0))
    module = layers.ConvTranspose4x4S2(5, dtype=jnp.bfloat16)
    variables = module.init(jax.random.key(0), x)
    assert variables["params"]["kernel"].dtype == jnp.float32
    y = module.apply(variables, x)
    assert y.dtype == jnp.bfloat16
    y32 = layers.ConvTranspose4x4S2(5).apply(variables, x)
    _assert_close(np.asarray(y, np.float32), np.asarray(y32), rtol=2e-2)


def test_unknown_impl_raises():
    x, k = jnp.zeros((1, 4, 4, 2)), jnp.zeros((4, 4, 2, 3))
    for lib, impl in ((layers, "fast"), (layer_variants, "s2d_dot")):
        with pytest.raises(ValueError, match="impl"):
            lib.conv_transpose_4x4_s2(x, k, "nope")
        with pytest.raises(ValueError, match="impl"):
            lib.conv_4x4_s2(x, k, "nope")
        with pytest.raises(ValueError, match="even"):
            lib.conv_4x4_s2(jnp.zeros((1, 5, 4, 2)), k, impl)
    with pytest.raises(ValueError, match="impl"):
        layer_variants.conv_transpose_4x4_s2(x, k, "adjoint_nope")
    # The library serves only what the models use; a variant's name points to the benchmark.
    with pytest.raises(ValueError, match="bench/layer_variants.py"):
        layers.conv_transpose_4x4_s2(x, k, "phase_conv")
    with pytest.raises(ValueError, match="bench/layer_variants.py"):
        layers.conv_4x4_s2(x, k, "s2d_conv")
