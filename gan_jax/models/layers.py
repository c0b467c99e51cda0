"""DCGAN's convolutions, exactly as PyTorch computes them, in formulations that are fast on XLA.

The seed uses two 4x4 convolutions with stride 2 and padding 1 and no bias:

  * `torch.nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)` (generator, doubles H and W);
  * `torch.nn.Conv2d(cin, cout, 4, 2, 1, bias=False)` (discriminator, halves H and W).

On XLA:CPU the weight gradient of a stride-2 transposed convolution is pathologically slow
(about 10x the rest of the layer; see docs/FACTS.md), so besides the plain `lax` reference
(`impl='lax'`) each layer has an exact formulation built from faster products (`impl='fast'`).
The other exact formulations that were timed while choosing 'fast' are benchmark code, in
`bench/layer_variants.py`.

Parameter layout (the same for every `impl`, so checkpoints do not depend on it)
--------------------------------------------------------------------------------
Every kernel is PyTorch's weight with its axes permuted to (kH, kW, in, out) and nothing
flipped:

  * ConvTranspose2d: `kernel[kh, kw, i, o] == torch_weight[i, o, kh, kw]`, i.e.
    `torch_weight.permute(2, 3, 0, 1)`. This is the *scatter* form: input pixel `x[h]`
    adds `x[h] * kernel[kh]` to output pixel `2h - 1 + kh`. (Flax's `nn.ConvTranspose`
    stores the spatially flipped kernel instead; we do not use it.)
  * Conv2d: `kernel[kh, kw, i, o] == torch_weight[o, i, kh, kw]`, i.e.
    `torch_weight.permute(2, 3, 1, 0)`, which is also Flax's `nn.Conv` layout.

Strided convolution as space-to-depth
-------------------------------------
One spatial axis: `y[m] = sum_k xp[2m + k] w[k]`, with `xp` the input padded by one on each
side. Space-to-depth of `xp`, `s[j, t] = xp[2j + t]`, turns it into
`y[m] = sum_{a, t in {0,1}} s[m + a, t] w[2a + t]`: a stride-1 2x2 convolution over s with
kernel `w` reshaped from (4,) to (2 [a], 2 [t]).

Transposed convolution as an adjoint
------------------------------------
A transposed convolution is the input gradient (the linear transpose) of the strided
convolution with the same kernel, its channel axes swapped. So any strided formulation gives
a transposed one through `jax.linear_transpose`; that of space-to-depth is a stride-1 2x2
convolution's input gradient followed by depth-to-space, all stride-1 work.

Implementations (`impl`)
------------------------
  * 'lax': `lax.conv_general_dilated`, the direct definition (reference; also the choice on
    GPU/TPU, where cuDNN and the TPU compiler handle strided and dilated convolutions well).
  * 'fast' (XLA:CPU): the forward pass, the input gradient and the weight gradient each in
    the formulation that XLA:CPU runs fastest, joined by `jax.custom_vjp`. The transposed
    and the strided convolution are each other's adjoint, so a layer of either kind needs
    only three products: a strided convolution (`lax`), a transposed convolution (the
    adjoint of space-to-depth, or `lax` on 4x4 maps) and the *strided* convolution's weight
    gradient (`lax`; for a transposed layer with input and output swapped). The slow product
    of the issue, the transposed convolution's weight gradient, is never asked of XLA.

The first generator layer (`ConvTranspose2d(z, c, k, 1, 0)` on a 1x1 input) and the last
discriminator layer (`Conv2d(c, 1, k, 1, 0)` on a kxk input) are plain matrix products:
`DenseToMap` and `MapToDense`, with the same parameter count and layout convention.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

Dtype = jnp.dtype | str

CONV_TRANSPOSE_IMPLS = ("lax", "fast")
CONV_IMPLS = ("lax", "fast")

_NHWC = ("NHWC", "HWIO", "NHWC")
# Said when an impl name is not ours: the benchmark's variants are often tried here first.
_VARIANTS_NOTE = "benchmark-only formulations are in bench/layer_variants.py"


def dcgan_init(stddev: float = 0.02):
    """DCGAN's weight initialiser, N(0, 0.02) (Radford et al. 2015, the seed's `weights_init`)."""
    return nn.initializers.normal(stddev)


def _conv(x, kernel, padding="VALID"):
    """Stride-1 NHWC correlation (the kernel is not flipped)."""
    return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC)


def _swap_io(kernel):
    return kernel.transpose(0, 1, 3, 2)


def _lax_conv_transpose(x, kernel):
    """'lax' `conv_transpose_4x4_s2`."""
    # Correlation of the 2x-dilated input with the flipped kernel, padded by k - 1 - p = 2.
    pad = ((2, 2), (2, 2))
    flipped = kernel[::-1, ::-1]
    return lax.conv_general_dilated(
        x, flipped, (1, 1), pad, lhs_dilation=(2, 2), dimension_numbers=_NHWC
    )


def _lax_conv(x, kernel):
    """'lax' `conv_4x4_s2`."""
    return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NHWC)


def _space_to_depth(x):
    """Pads [B, H, W, C] (H, W even) by one pixel, then folds each 2x2 block into channels.

    Returns [B, H/2 + 1, W/2 + 1, 4C] with `s[b, j, l, (th, tw, c)] = xp[b, 2j + th, 2l + tw, c]`.
    """
    b, h, w, c = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    s = xp.reshape(b, h // 2 + 1, 2, w // 2 + 1, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return s.reshape(b, h // 2 + 1, w // 2 + 1, 4 * c)


def _s2d_conv(x, kernel):
    """`conv_4x4_s2` as space-to-depth + a stride-1 2x2 convolution (see the module doc)."""
    cin, cout = kernel.shape[2:]
    # kernel[2a + th, 2c + tw, i, o] -> k[a, c, (th, tw, i), o]
    k = kernel.reshape(2, 2, 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5)
    return _conv(_space_to_depth(x), k.reshape(2, 2, 4 * cin, cout))


def _conv_transpose_by_adjoint(strided, x, kernel):
    """`conv_transpose_4x4_s2(x, kernel)` as the transpose of `strided(y, kernel)`, a formulation
    of `conv_4x4_s2`: the transposed convolution IS the strided one's input gradient, with the
    kernel's channel axes swapped."""
    b, h, w, _ = x.shape
    big = jax.ShapeDtypeStruct((b, 2 * h, 2 * w, kernel.shape[-1]), jnp.result_type(x, kernel))
    return jax.linear_transpose(lambda y: strided(y, _swap_io(kernel)), big)(x)[0]


def _s2d_conv_transpose(x, kernel):
    """`conv_transpose_4x4_s2` as the adjoint of `_s2d_conv`."""
    return _conv_transpose_by_adjoint(_s2d_conv, x, kernel)


def conv_transpose_4x4_s2(x: jax.Array, kernel: jax.Array, impl: str = "fast") -> jax.Array:
    """PyTorch's `ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)`, NHWC.

    Args:
      x: [B, H, W, cin].
      kernel: [4, 4, cin, cout], `torch_weight.permute(2, 3, 0, 1)` (see the module doc).
      impl: one of `CONV_TRANSPOSE_IMPLS`.

    Returns:
      [B, 2H, 2W, cout], in the common dtype of `x` and `kernel`.
    """
    if impl == "fast":
        return _fast(x, kernel, True, *_fast_plan(x.shape[1]))
    if impl == "lax":
        return _lax_conv_transpose(x, kernel)
    raise ValueError(
        f"unknown conv-transpose impl {impl!r}; expected one of {CONV_TRANSPOSE_IMPLS} "
        f"({_VARIANTS_NOTE})"
    )


def conv_4x4_s2(x: jax.Array, kernel: jax.Array, impl: str = "fast") -> jax.Array:
    """PyTorch's `Conv2d(cin, cout, 4, stride=2, padding=1, bias=False)`, NHWC, even H and W.

    Args:
      x: [B, H, W, cin] with H and W even.
      kernel: [4, 4, cin, cout], `torch_weight.permute(2, 3, 1, 0)` (Flax's `nn.Conv` layout).
      impl: one of `CONV_IMPLS`.

    Returns:
      [B, H/2, W/2, cout], in the common dtype of `x` and `kernel`.
    """
    h, w = x.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"conv_4x4_s2 needs even height and width, got {h}x{w}")
    if impl == "fast":
        return _fast(x, kernel, False, *_fast_plan(h // 2))
    if impl == "lax":
        return _lax_conv(x, kernel)
    raise ValueError(f"unknown conv impl {impl!r}; expected one of {CONV_IMPLS} ({_VARIANTS_NOTE})")


# ---------------------------------------------------------------------------------------------
# 'fast': each of the three products a layer's training needs (the forward pass, the input
# gradient, the weight gradient) in the formulation XLA:CPU runs fastest, joined by custom_vjp.
#
# A transposed convolution and a strided one with the same kernel are each other's adjoint:
# for a generator layer (h x h, cin -> cout at 2h x 2h) the input gradient is a strided
# convolution of the output gradient, and the weight gradient is the strided convolution's
# weight gradient with input and output swapped. So every layer, in G or D, is built from
#   * a strided convolution (G's input gradient, D's forward),
#   * a transposed convolution (G's forward, D's input gradient),
#   * the strided convolution's weight gradient, which XLA's own rule computes fast
#     (unlike the transposed convolution's, which it computes ~30x slower; see FACTS.md).
# Measured per product on a 2-core EPYC, batch 64, DCGAN-64 shapes (bench/README.md).


def _fast_plan(h: int):
    """(strided, transposed) formulations for a layer whose small side is h x h.

    Strided: `lax` (XLA's own strided convolution is as fast as any reformulation here).
    Transposed: the adjoint of space-to-depth (a stride-1 2x2 convolution's input gradient,
    then depth-to-space) is 2-4x faster than `lax`'s dilated convolution on the larger maps;
    on 4x4 maps `lax` wins (whole step 581 vs 604 ms, DCGAN-64). `python bench/layers.py`
    times every candidate per product.
    """
    return _lax_conv, (_lax_conv_transpose if h <= 4 else _s2d_conv_transpose)


def _strided_weight_grad(x, g):
    """d<conv_4x4_s2(x, k), g>/dk, shaped like k: [4, 4, x channels, g channels]."""
    k = jax.ShapeDtypeStruct((4, 4, x.shape[-1], g.shape[-1]), jnp.result_type(x, g))
    return jax.linear_transpose(lambda k: _lax_conv(x, k), k)(g)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _fast(x, kernel, up, strided, transposed):
    """A 'fast' layer: a transposed convolution if `up` (G's), else a strided one (D's)."""
    return transposed(x, kernel) if up else strided(x, kernel)


def _fast_fwd(x, kernel, up, strided, transposed):
    return _fast(x, kernel, up, strided, transposed), (x, kernel)


def _fast_bwd(up, strided, transposed, res, g):
    # Each kind's input gradient is the other kind with the kernel's channels swapped; both
    # weight gradients are the strided convolution's (a transposed layer's with x and g swapped).
    x, kernel = res
    if up:
        dx = strided(g, _swap_io(kernel))
        dk = _swap_io(_strided_weight_grad(g, x))
    else:
        dx = transposed(g, _swap_io(kernel))
        dk = _strided_weight_grad(x, g)
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


_fast.defvjp(_fast_fwd, _fast_bwd)


class ConvTranspose4x4S2(nn.Module):
    """`torch.nn.ConvTranspose2d(cin, features, 4, 2, 1, bias=False)`; param `kernel` [4,4,cin,out].

    Attributes:
      features: output channels.
      impl: see `conv_transpose_4x4_s2`.
      dtype: compute dtype (the kernel is stored in float32).
    """

    features: int
    impl: str = "fast"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init(), (4, 4, x.shape[-1], self.features))
        return conv_transpose_4x4_s2(x.astype(self.dtype), kernel.astype(self.dtype), self.impl)


class Conv4x4S2(nn.Module):
    """`torch.nn.Conv2d(cin, features, 4, 2, 1, bias=False)`; param `kernel` [4, 4, cin, out].

    Attributes:
      features: output channels.
      impl: see `conv_4x4_s2`.
      dtype: compute dtype (the kernel is stored in float32).
    """

    features: int
    impl: str = "fast"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init(), (4, 4, x.shape[-1], self.features))
        return conv_4x4_s2(x.astype(self.dtype), kernel.astype(self.dtype), self.impl)


class DenseToMap(nn.Module):
    """`ConvTranspose2d(cin, features, size, 1, 0, bias=False)` on a 1x1 input, as one matmul.

    Maps [B, cin] to [B, size, size, features]. Param `kernel` [size, size, cin, features]
    (`torch_weight.permute(2, 3, 0, 1)`, as for `ConvTranspose4x4S2`).
    """

    features: int
    size: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        s, cin = self.size, z.shape[-1]
        kernel = self.param("kernel", dcgan_init(), (s, s, cin, self.features))
        k = kernel.astype(self.dtype).transpose(2, 0, 1, 3).reshape(cin, s * s * self.features)
        return (z.astype(self.dtype) @ k).reshape(-1, s, s, self.features)


class MapToDense(nn.Module):
    """`Conv2d(cin, features, k, 1, 0, bias=False)` on a kxk input, as one matmul.

    Maps [B, k, k, cin] to [B, features]. Param `kernel` [k, k, cin, features]
    (`torch_weight.permute(2, 3, 1, 0)`, as for `Conv4x4S2`).
    """

    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init(), (*x.shape[1:], self.features))
        k = kernel.astype(self.dtype).reshape(-1, self.features)
        return x.astype(self.dtype).reshape(x.shape[0], -1) @ k


def _channel_sum(x: jax.Array) -> jax.Array:
    """Sums [N, ..., C] over all axes but the last, as N small matmuls with a ones vector.

    Why not `x.sum(axes)`: XLA:CPU rewrites that reduction into a `reduce-window` that walks
    the tensor one channel at a time, 3-4x slower than these matmuls for DCGAN's maps (the
    whole batch norm forward + backward on 64x32x32x64: 5.6 ms, 26.1 ms by autodiff of
    `x.mean`, PyTorch 11.2 ms; `python bench/layers.py --bn`). Summing each sample's H*W
    pixels first and then the N partial sums is also more accurate than one long float32
    accumulation, and it keeps the batch axis for sharding.
    """
    n, c = x.shape[0], x.shape[-1]
    if x.ndim < 3:
        return x.sum(0)
    rows = x.reshape(n, -1, c)
    ones = jnp.ones((n, 1, rows.shape[1]), x.dtype)
    return (ones @ rows).sum((0, 1))


def _channel_mean(x: jax.Array) -> jax.Array:
    return _channel_sum(x) / (x.size // x.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_train(x, scale, bias, epsilon):
    """Training-mode batch norm of float32 [N, ..., C]: returns (y, batch mean, biased var).

    The same function as the textbook definition (two-pass variance, as PyTorch), with a
    closed-form backward pass so that every reduction is a `_channel_sum`: autodiff of the
    forward would add its own reductions, which XLA:CPU runs slowly (see `_channel_sum`).
    """
    return _bn_forward(x, scale, bias, epsilon)[0]


def _bn_forward(x, scale, bias, epsilon):
    mean = _channel_mean(x)
    xc = x - mean
    var = _channel_mean(xc * xc)
    rstd = lax.rsqrt(var + epsilon)
    y = xc * (rstd * scale) + bias
    return (y, mean, var), (x, mean, rstd, scale)


def _bn_backward(epsilon, res, cotangents):
    x, mean, rstd, scale = res
    dy, dmean, dvar = cotangents
    n = x.size // x.shape[-1]
    xhat = (x - mean) * rstd
    dbias = _channel_sum(dy)
    dscale = _channel_sum(dy * xhat)
    # dy through the normalisation, then the (normally zero) cotangents of the statistics:
    # mean's gradient is 1/n per element, var's is 2 (x - mean) / n.
    dx = (scale * rstd) * (dy - (dbias + xhat * dscale) / n)
    dx = dx + (dmean + 2.0 * dvar * (x - mean)) / n
    return dx, dscale, dbias


batch_norm_train.defvjp(_bn_forward, _bn_backward)


class BatchNorm(nn.Module):
    """`torch.nn.BatchNorm2d` semantics over the last axis, in Flax's variable names.

    Differs from `flax.linen.BatchNorm` in one point, to match PyTorch exactly: the running
    variance is updated with the *unbiased* batch variance (n / (n - 1)), while normalisation
    uses the biased one. Statistics are computed in float32 whatever the compute dtype. Under
    `jax.jit` on a mesh with the batch sharded, the means are global batch means.

    Variables: params `scale` (init N(1, 0.02), DCGAN) and `bias` (0); batch_stats `mean` (0)
    and `var` (1). `momentum` is Flax's convention: new = momentum * old + (1 - momentum) * batch
    (PyTorch's momentum 0.1 is 0.9 here).
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", lambda k, s: 1.0 + 0.02 * jax.random.normal(k, s), (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
        xf = x.astype(jnp.float32)
        if train:
            y, mean, var = batch_norm_train(xf, scale, bias, self.epsilon)
            if not self.is_initializing():
                n = x.size // c
                m = self.momentum
                ra_mean.value = m * ra_mean.value + (1 - m) * mean
                ra_var.value = m * ra_var.value + (1 - m) * var * (n / max(n - 1, 1))
            return y.astype(self.dtype)
        mul = scale * lax.rsqrt(ra_var.value + self.epsilon)
        return ((xf - ra_mean.value) * mul + bias).astype(self.dtype)
