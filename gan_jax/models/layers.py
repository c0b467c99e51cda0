"""DCGAN's convolutions, exactly as PyTorch computes them, in formulations that are fast on XLA.

The seed uses two 4x4 convolutions with stride 2 and padding 1 and no bias:

  * `torch.nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)` (generator, doubles H and W);
  * `torch.nn.Conv2d(cin, cout, 4, 2, 1, bias=False)` (discriminator, halves H and W).

On XLA:CPU the weight gradient of a stride-2 transposed convolution is pathologically slow
(about 10x the rest of the layer; see docs/FACTS.md), so besides the plain `lax` reference
(`impl='lax'`) each layer has exact stride-1 reformulations (`impl='fast'` and named variants).

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

Tap mapping of the transposed convolution (one spatial axis; the 2-D case is the product)
----------------------------------------------------------------------------------------
PyTorch: `y[o] = sum_{h, k : o = 2h - 1 + k} x[h] w[k]` for `k in 0..3`, output length 2H.
Pad the input by one on each side, `xp[j] = x[j - 1]` (zero outside), and split the output
by parity, `o = 2m + r`:

  * r = 0: `2m = 2h - 1 + k` needs odd k: k=1 (h=m), k=3 (h=m-1), so
    `y[2m] = xp[m] w[3] + xp[m+1] w[1]`;
  * r = 1: `2m + 1 = 2h - 1 + k` needs even k: k=0 (h=m+1), k=2 (h=m), so
    `y[2m+1] = xp[m+1] w[2] + xp[m+2] w[0]`.

So phase r is a stride-1, 2-tap correlation of `xp[r : r + H + 1]` with taps
`(w[3 - r], w[1 - r])`, i.e. tap a in {0, 1} reads `xp[m + r + a]` with weight
`w[3 - r - 2a]`. In 2-D there are four phases (rh, rw), each a stride-1 2x2 convolution, and
the output interleaves them: `y[2m + rh, 2n + rw] = phase[rh, rw][m, n]` (depth-to-space).
All four phases read inside the same 3x3 window `xp[m : m + 3]`, so they can also be fused into
ONE stride-1 3x3 convolution with 4 * cout outputs whose kernel holds each phase's 2x2 taps
zero-padded to 3x3 (phase r = 0 at window rows 0..1, r = 1 at rows 1..2). That costs 9/4 of
the multiply-adds but runs as a single large operation.

Strided convolution
-------------------
`y[m] = sum_k xp[2m + k] w[k]`. Space-to-depth of the padded input, `s[j, t] = xp[2j + t]`,
turns it into `y[m] = sum_{a, t in {0,1}} s[m + a, t] w[2a + t]`: a stride-1 2x2 convolution
over s with kernel `w` reshaped from (4,) to (2 [a], 2 [t]). Alternatively it is one `dot`
over the 16 strided patches of xp (im2col), with the kernel reshaped to (16 * cin, cout).

Implementations (`impl`)
------------------------
  * 'lax': `lax.conv_general_dilated`, the direct definition (reference; also the choice on
    GPU/TPU, where cuDNN and the TPU compiler handle strided and dilated convolutions well).
  * 'fast' (XLA:CPU): the forward pass, the input gradient and the weight gradient each in
    the formulation that XLA:CPU runs fastest, joined by `jax.custom_vjp`. The transposed
    and the strided convolution are each other's adjoint, so a layer of either kind needs
    only three products: a strided convolution (`lax`), a transposed convolution
    ('adjoint_s2d_conv', or `lax` on 4x4 maps) and the *strided* convolution's weight
    gradient (`lax`; for a transposed layer with input and output swapped). The slow product
    of the issue, the transposed convolution's weight gradient, is never asked of XLA.
  * Transposed-conv variants: 'phase_conv' (four 2x2 `lax.conv`s), 'fused_conv' (one 3x3
    `lax.conv` with 4 * cout outputs), 'phase_dot' (four im2col `dot`s), 'fused_dot' (one
    im2col `dot` with 4 * cout outputs), 'scatter_dot' (one `dot` from cin to the 16 taps'
    outputs per input pixel, then each output phase sums four shifted tap slices),
    'adjoint_<strided variant>' (the transpose of a strided formulation, via
    `jax.linear_transpose`).
  * Strided-conv variants: 's2d_conv' (space-to-depth + 2x2 `lax.conv`), 'im2col_dot',
    's2d_dot' (space-to-depth, one `dot` to the four taps' outputs per s2d pixel, then the sum
    of four shifted tap slices).

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

CONV_TRANSPOSE_IMPLS = (
    "lax",
    "fast",
    "phase_conv",
    "fused_conv",
    "phase_dot",
    "fused_dot",
    "scatter_dot",
    "adjoint_s2d_conv",
    "adjoint_im2col_dot",
)
CONV_IMPLS = ("lax", "fast", "s2d_conv", "im2col_dot", "s2d_dot")

_NHWC = ("NHWC", "HWIO", "NHWC")


def dcgan_init(stddev: float = 0.02):
    """DCGAN's weight initialiser, N(0, 0.02) (Radford et al. 2015, the seed's `weights_init`)."""
    return nn.initializers.normal(stddev)


def _conv(x, kernel, padding="VALID"):
    return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC)


def _patches(x, offsets, size, stride=1):
    """Concatenates on channels the windows `x[:, i::stride, j::stride][:, :h, :w]` at offsets."""
    h, w = size
    cols = [x[:, i : i + stride * h : stride, j : j + stride * w : stride, :] for i, j in offsets]
    return jnp.concatenate(cols, axis=-1)


def _depth_to_space(phases, h, w):
    """[2 (rh), 2 (rw), B, h, w, C] -> [B, 2h, 2w, C] with y[2m + rh, 2n + rw] = phases[rh, rw]."""
    b, c = phases.shape[2], phases.shape[-1]
    return phases.transpose(2, 3, 0, 4, 1, 5).reshape(b, 2 * h, 2 * w, c)


def _phase_kernel(kernel, rh, rw):
    """The 2x2 stride-1 kernel of output phase (rh, rw), from a (4, 4, cin, cout) kernel."""
    # Tap a reads kernel row 3 - r - 2a: rows (3, 1) for r = 0, (2, 0) for r = 1.
    return kernel[3 - rh :: -2, 3 - rw :: -2]


def _fused_kernel(kernel):
    """(4, 4, cin, cout) -> (3, 3, cin, 4 * cout): all phases in one 3x3 window, (rh, rw, o)."""
    pad = ((0, 1), (1, 0))  # phase r's 2x2 taps sit at window offsets r, r + 1
    out = [
        jnp.pad(_phase_kernel(kernel, rh, rw), (pad[rh], pad[rw], (0, 0), (0, 0)))
        for rh in (0, 1)
        for rw in (0, 1)
    ]
    return jnp.concatenate(out, axis=-1)


def conv_transpose_4x4_s2(x: jax.Array, kernel: jax.Array, impl: str = "fast") -> jax.Array:
    """PyTorch's `ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)`, NHWC.

    Args:
      x: [B, H, W, cin].
      kernel: [4, 4, cin, cout], `torch_weight.permute(2, 3, 0, 1)` (see the module doc).
      impl: one of `CONV_TRANSPOSE_IMPLS`.

    Returns:
      [B, 2H, 2W, cout], in the common dtype of `x` and `kernel`.
    """
    b, h, w, cin = x.shape
    cout = kernel.shape[-1]
    if impl == "fast":
        return _fast(x, kernel, True, *_fast_plan(h))
    if impl.startswith("adjoint_"):
        # The transposed convolution IS the input gradient of the strided one (with the kernel's
        # channel axes swapped), so any strided formulation gives one through its transpose.
        big = jax.ShapeDtypeStruct((b, 2 * h, 2 * w, cout), jnp.result_type(x, kernel))
        strided = functools.partial(
            conv_4x4_s2, kernel=kernel.transpose(0, 1, 3, 2), impl=impl[len("adjoint_") :]
        )
        return jax.linear_transpose(strided, big)(x)[0]
    if impl == "lax":
        # Correlation of the 2x-dilated input with the flipped kernel, padded by k - 1 - p = 2.
        pad = ((2, 2), (2, 2))
        flipped = kernel[::-1, ::-1]
        return lax.conv_general_dilated(
            x, flipped, (1, 1), pad, lhs_dilation=(2, 2), dimension_numbers=_NHWC
        )
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if impl in ("phase_conv", "phase_dot"):
        phases = []
        for rh in (0, 1):
            for rw in (0, 1):
                k = _phase_kernel(kernel, rh, rw)
                if impl == "phase_conv":
                    phases.append(_conv(xp[:, rh : rh + h + 1, rw : rw + w + 1], k))
                else:
                    offsets = [(rh + a, rw + c) for a in (0, 1) for c in (0, 1)]
                    phases.append(_patches(xp, offsets, (h, w)) @ k.reshape(4 * cin, cout))
        return _depth_to_space(jnp.stack(phases).reshape(2, 2, b, h, w, cout), h, w)
    if impl in ("fused_conv", "fused_dot"):
        k = _fused_kernel(kernel)
        if impl == "fused_conv":
            y = _conv(xp, k)
        else:
            offsets = [(i, j) for i in range(3) for j in range(3)]
            y = _patches(xp, offsets, (h, w)) @ k.reshape(9 * cin, 4 * cout)
        # Channels are (rh, rw, o): y[m, n, (rh, rw, o)] -> out[2m + rh, 2n + rw, o].
        y = y.reshape(b, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, 2 * h, 2 * w, cout)
    if impl == "scatter_dot":
        # Scatter form: one dot makes every pixel's 16 taps, cols[b, h, w, kh, kw, o] =
        # sum_i x[b, h, w, i] kernel[kh, kw, i, o]; then phase r sums, per axis, the taps
        # a in {0, 1} of padded cols at offset r + a with kernel row 3 - r - 2a.
        k = kernel.transpose(2, 0, 1, 3).reshape(cin, 16 * cout)
        cols = (x.reshape(b * h * w, cin) @ k).reshape(b, h, w, 4, 4, cout)
        cp = jnp.pad(cols, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
        phases = [
            sum(
                cp[:, rh + a : rh + a + h, rw + c : rw + c + w, 3 - rh - 2 * a, 3 - rw - 2 * c]
                for a in (0, 1)
                for c in (0, 1)
            )
            for rh in (0, 1)
            for rw in (0, 1)
        ]
        return _depth_to_space(jnp.stack(phases).reshape(2, 2, b, h, w, cout), h, w)
    raise ValueError(
        f"unknown conv-transpose impl {impl!r}; expected one of {CONV_TRANSPOSE_IMPLS}"
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
    b, h, w, cin = x.shape
    cout = kernel.shape[-1]
    if h % 2 or w % 2:
        raise ValueError(f"conv_4x4_s2 needs even height and width, got {h}x{w}")
    if impl == "fast":
        return _fast(x, kernel, False, *_fast_plan(h // 2))
    if impl == "lax":
        return lax.conv_general_dilated(
            x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NHWC
        )
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ho, wo = h // 2, w // 2
    if impl == "s2d_conv":
        # s[b, j, l, (th, tw, c)] = xp[b, 2j + th, 2l + tw, c]
        s = xp.reshape(b, ho + 1, 2, wo + 1, 2, cin).transpose(0, 1, 3, 2, 4, 5)
        s = s.reshape(b, ho + 1, wo + 1, 4 * cin)
        # kernel[2a + th, 2c + tw, i, o] -> k[a, c, (th, tw, i), o]
        k = kernel.reshape(2, 2, 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5)
        return _conv(s, k.reshape(2, 2, 4 * cin, cout))
    if impl == "s2d_dot":
        # Space-to-depth, then the 2x2 stride-1 convolution in scatter form: one dot gives
        # every s-pixel's four taps, full[b, j, l, (a, c, o)] = s[b, j, l] . k[a, c], and
        # y[m, n] = sum_{a, c} full[m + a, n + c, a, c].
        s = xp.reshape(b, ho + 1, 2, wo + 1, 2, cin).transpose(0, 1, 3, 2, 4, 5)
        s = s.reshape(b * (ho + 1) * (wo + 1), 4 * cin)
        # kernel[2a + th, 2c + tw, i, o] -> k[(th, tw, i), (a, c, o)]
        k = kernel.reshape(2, 2, 2, 2, cin, cout).transpose(1, 3, 4, 0, 2, 5)
        full = (s @ k.reshape(4 * cin, 4 * cout)).reshape(b, ho + 1, wo + 1, 2, 2, cout)
        return sum(full[:, a : a + ho, c : c + wo, a, c] for a in (0, 1) for c in (0, 1))
    if impl == "im2col_dot":
        offsets = [(i, j) for i in range(4) for j in range(4)]
        return _patches(xp, offsets, (ho, wo), stride=2) @ kernel.reshape(16 * cin, cout)
    raise ValueError(f"unknown conv impl {impl!r}; expected one of {CONV_IMPLS}")


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


def _fast_plan(h: int) -> tuple[str, str]:
    """(strided impl, transposed impl) for a layer whose small side is h x h.

    Strided: `lax` (XLA's own strided convolution is as fast as any reformulation here).
    Transposed: the adjoint of space-to-depth (a stride-1 2x2 convolution's input gradient,
    then depth-to-space) is 2-4x faster than `lax`'s dilated convolution on the larger maps;
    on 4x4 maps `lax` wins (whole step 581 vs 604 ms, DCGAN-64).
    """
    return "lax", ("lax" if h <= 4 else "adjoint_s2d_conv")


def _strided_weight_grad(x, g):
    """d<conv_4x4_s2(x, k), g>/dk, shaped like k: [4, 4, x channels, g channels]."""
    k = jax.ShapeDtypeStruct((4, 4, x.shape[-1], g.shape[-1]), jnp.result_type(x, g))
    return jax.linear_transpose(lambda k: conv_4x4_s2(x, k, "lax"), k)(g)[0]


def _swap_io(kernel):
    return kernel.transpose(0, 1, 3, 2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _fast(x, kernel, up, strided, transposed):
    """A 'fast' layer: a transposed convolution if `up` (G's), else a strided one (D's)."""
    return conv_transpose_4x4_s2(x, kernel, transposed) if up else conv_4x4_s2(x, kernel, strided)


def _fast_fwd(x, kernel, up, strided, transposed):
    return _fast(x, kernel, up, strided, transposed), (x, kernel)


def _fast_bwd(up, strided, transposed, res, g):
    # Each kind's input gradient is the other kind with the kernel's channels swapped; both
    # weight gradients are the strided convolution's (a transposed layer's with x and g swapped).
    x, kernel = res
    if up:
        dx = conv_4x4_s2(g, _swap_io(kernel), strided)
        dk = _swap_io(_strided_weight_grad(g, x))
    else:
        dx = conv_transpose_4x4_s2(g, _swap_io(kernel), transposed)
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
