"""Benchmark-only formulations of DCGAN's two stride-2 4x4 convolutions, all exact.

`gan_jax.models.layers` keeps the two the models use: 'lax' (the direct definition) and 'fast'
(per product the formulation XLA:CPU ran fastest, joined by `jax.custom_vjp`). The variants
here are the other candidates `bench/layers.py` times per product (forward pass, input
gradient, weight gradient) when choosing 'fast' (`layers._fast_plan`), so that the choice can
be checked again on a new CPU. `conv_transpose_4x4_s2` and `conv_4x4_s2` below take every
name in `CONV_TRANSPOSE_IMPLS` / `CONV_IMPLS`, passing 'lax' and 'fast' on to the library.
Kernels use the library's layout (PyTorch's weight permuted to (kH, kW, in, out), see
`gan_jax.models.layers`); `tests/test_layers.py` checks every variant against 'lax' and PyTorch.

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

The strided convolution, `y[m] = sum_k xp[2m + k] w[k]`, is a stride-1 2x2 convolution after
space-to-depth (derived in `gan_jax.models.layers`), or one `dot` over the 16 strided patches
of xp (im2col) with the kernel reshaped to (16 * cin, cout).

Variants
--------
  * Transposed: 'phase_conv' (four 2x2 `lax.conv`s), 'fused_conv' (one 3x3 `lax.conv` with
    4 * cout outputs), 'phase_dot' (four im2col `dot`s), 'fused_dot' (one im2col `dot` with
    4 * cout outputs), 'scatter_dot' (one `dot` from cin to the 16 taps' outputs per input
    pixel, then each output phase sums four shifted tap slices), 'adjoint_<strided variant>'
    (the transpose of a strided formulation, via `jax.linear_transpose`; 'adjoint_s2d_conv'
    is what 'fast' uses on maps larger than 4x4).
  * Strided: 's2d_conv' (space-to-depth + 2x2 `lax.conv`, the library's), 'im2col_dot',
    's2d_dot' (space-to-depth, one `dot` to the four taps' outputs per s2d pixel, then the sum
    of four shifted tap slices).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_jax.models import layers

CONV_TRANSPOSE_IMPLS = (
    *layers.CONV_TRANSPOSE_IMPLS,
    "phase_conv",
    "fused_conv",
    "phase_dot",
    "fused_dot",
    "scatter_dot",
    "adjoint_s2d_conv",
    "adjoint_im2col_dot",
)
CONV_IMPLS = (*layers.CONV_IMPLS, "s2d_conv", "im2col_dot", "s2d_dot")


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


def conv_transpose_4x4_s2(x: jax.Array, kernel: jax.Array, impl: str) -> jax.Array:
    """`layers.conv_transpose_4x4_s2` in any formulation of `CONV_TRANSPOSE_IMPLS`.

    Args:
      x: [B, H, W, cin].
      kernel: [4, 4, cin, cout], `torch_weight.permute(2, 3, 0, 1)`.
      impl: one of `CONV_TRANSPOSE_IMPLS`.

    Returns:
      [B, 2H, 2W, cout], in the common dtype of `x` and `kernel`.
    """
    if impl in layers.CONV_TRANSPOSE_IMPLS:
        return layers.conv_transpose_4x4_s2(x, kernel, impl)
    b, h, w, cin = x.shape
    cout = kernel.shape[-1]
    if impl.startswith("adjoint_"):
        strided = impl[len("adjoint_") :]
        if strided not in CONV_IMPLS:
            raise ValueError(f"unknown conv-transpose impl {impl!r}: no strided impl {strided!r}")
        return layers._conv_transpose_by_adjoint(lambda y, k: conv_4x4_s2(y, k, strided), x, kernel)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if impl in ("phase_conv", "phase_dot"):
        phases = []
        for rh in (0, 1):
            for rw in (0, 1):
                k = _phase_kernel(kernel, rh, rw)
                if impl == "phase_conv":
                    phases.append(layers._conv(xp[:, rh : rh + h + 1, rw : rw + w + 1], k))
                else:
                    offsets = [(rh + a, rw + c) for a in (0, 1) for c in (0, 1)]
                    phases.append(_patches(xp, offsets, (h, w)) @ k.reshape(4 * cin, cout))
        return _depth_to_space(jnp.stack(phases).reshape(2, 2, b, h, w, cout), h, w)
    if impl in ("fused_conv", "fused_dot"):
        k = _fused_kernel(kernel)
        if impl == "fused_conv":
            y = layers._conv(xp, k)
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


def conv_4x4_s2(x: jax.Array, kernel: jax.Array, impl: str) -> jax.Array:
    """`layers.conv_4x4_s2` in any formulation of `CONV_IMPLS`.

    Args:
      x: [B, H, W, cin] with H and W even.
      kernel: [4, 4, cin, cout], `torch_weight.permute(2, 3, 1, 0)`.
      impl: one of `CONV_IMPLS`.

    Returns:
      [B, H/2, W/2, cout], in the common dtype of `x` and `kernel`.
    """
    if impl in layers.CONV_IMPLS:
        return layers.conv_4x4_s2(x, kernel, impl)
    b, h, w, cin = x.shape
    cout = kernel.shape[-1]
    if h % 2 or w % 2:
        raise ValueError(f"conv_4x4_s2 needs even height and width, got {h}x{w}")
    ho, wo = h // 2, w // 2
    if impl == "s2d_conv":
        return layers._s2d_conv(x, kernel)
    if impl == "s2d_dot":
        # Space-to-depth, then the 2x2 stride-1 convolution in scatter form: one dot gives
        # every s-pixel's four taps, full[b, j, l, (a, c, o)] = s[b, j, l] . k[a, c], and
        # y[m, n] = sum_{a, c} full[m + a, n + c, a, c].
        s = layers._space_to_depth(x).reshape(b * (ho + 1) * (wo + 1), 4 * cin)
        # kernel[2a + th, 2c + tw, i, o] -> k[(th, tw, i), (a, c, o)]
        k = kernel.reshape(2, 2, 2, 2, cin, cout).transpose(1, 3, 4, 0, 2, 5)
        full = (s @ k.reshape(4 * cin, 4 * cout)).reshape(b, ho + 1, wo + 1, 2, 2, cout)
        return sum(full[:, a : a + ho, c : c + wo, a, c] for a in (0, 1) for c in (0, 1))
    if impl == "im2col_dot":
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        offsets = [(i, j) for i in range(4) for j in range(4)]
        return _patches(xp, offsets, (ho, wo), stride=2) @ kernel.reshape(16 * cin, cout)
    raise ValueError(f"unknown conv impl {impl!r}; expected one of {CONV_IMPLS}")
