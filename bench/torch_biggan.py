"""PyTorch port of `gan_jax.models.biggan` (BigGAN, Brock et al. 2019) for parity tests and speed.

Imports only torch, numpy and `bench/torch_blocks.py`. `Generator` / `Discriminator` compute,
in NCHW, what the Flax modules compute in NHWC, with PyTorch's own spectral norm
(`torch.nn.utils.parametrizations.spectral_norm`) and batch norm: the same layouts (`LAYOUTS`,
copied from biggan.py so this file needs no JAX), the same submodule names (G `shared`,
`linear`, `block1..n` with `bn1`, `conv1`, `bn2`, `conv2`, `conv_sc`, `attention`, `bn_out`,
`conv_out`; D `block1..n` with `conv1`, `conv2`, `conv_sc`, `attention`, `linear`, `embed`), the
same orthogonal initialisation, batch-norm eps (1e-4 default) and spectral-norm eps (1e-6).

The shortcut convolutions run where BigGAN-PyTorch and StudioGAN run them (after G's
upsampling, before D's pooling in pre-activated blocks), not where the Flax model does: the
two orders are the same function, and the parity tests check exactly that.

`to_flax(module)` gives the Flax variables {'params', 'batch_stats', 'spectral'} (numpy); the
Flax generator reads its first Linear's outputs in PyTorch's (C, 4, 4) order, so no reordering
is needed.

  python bench/torch_biggan.py     # parameter counts at the reference settings
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_blocks  # noqa: E402

START = 4
BN_EPS = 1e-4
SN_EPS = 1e-6
INIT_POWER_ITERATIONS = 15  # PyTorch's spectral_norm constructor

# size -> (G width multipliers, D width multipliers, D downsampling); as biggan.LAYOUTS.
LAYOUTS = {
    32: ((4, 4, 4, 4), (2, 2, 2, 2), (True, True, False, False)),
    64: ((16, 16, 8, 4, 2), (1, 2, 4, 8, 16), (True,) * 4 + (False,)),
    128: ((16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
}


def _orthogonal_sn(layer: nn.Module) -> nn.Module:
    """Orthogonal weight and zero bias, then spectral norm (its vectors fit the final weight)."""
    return torch_blocks.init_layer(layer, nn.init.orthogonal_, sn=True, eps=SN_EPS)


def _reinit_orthogonal(module: nn.Module):
    """Orthogonal init of every spectral-normed weight inside a `torch_blocks` block.

    The blocks build their layers already normalised, so the raw weight is replaced in place
    and the vectors are recomputed as PyTorch's constructor does (random, 15 iterations).
    """
    for layer in module.modules():
        if not hasattr(layer, "parametrizations"):
            continue
        with torch.no_grad():
            weight = layer.parametrizations.weight.original
            nn.init.orthogonal_(weight)
            sn = layer.parametrizations.weight[0]
            w_mat = weight.flatten(1)
            sn._u.copy_(nn.functional.normalize(torch.randn_like(sn._u), dim=0, eps=SN_EPS))
            sn._v.copy_(nn.functional.normalize(torch.randn_like(sn._v), dim=0, eps=SN_EPS))
            sn._power_method(w_mat, INIT_POWER_ITERATIONS)


def _conv(cin, cout, k):
    return _orthogonal_sn(nn.Conv2d(cin, cout, k, 1, k // 2))


def _attention(ch):
    attn = torch_blocks.SelfAttention(ch, eps=SN_EPS)
    _reinit_orthogonal(attn)
    return attn


def resolutions(image_size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(G's resolution after each block, D's resolution after each block)."""
    g_mults, _, down = LAYOUTS[image_size]
    g_res = tuple(START * 2 ** (i + 1) for i in range(len(g_mults) - 1))
    d_res, res = [], image_size
    for dn in down:
        res //= 2 if dn else 1
        d_res.append(res)
    return g_res, tuple(d_res)


def _cbn(ch, cond_dim, bn_eps):
    """BigGAN's linear cBN, its spectral-normed maps orthogonally initialised."""
    norm = torch_blocks.ConditionalBatchNorm2d(ch, cond_dim=cond_dim, eps=bn_eps, sn_eps=SN_EPS)
    _reinit_orthogonal(norm)
    return norm


def g_block(cin, cout, cond_dim, bn_eps=BN_EPS):
    """GBlock: cBN(c), ReLU, up, conv3x3, cBN(c), ReLU, conv3x3; shortcut up, conv1x1."""
    return torch_blocks.ResGBlock(
        cin,
        cout,
        norm=lambda ch: _cbn(ch, cond_dim, bn_eps),
        conv=_conv,
        names=("bn1", "conv1", "bn2", "conv2", "conv_sc"),
    )


def d_block(cin, cout, downsample, preactivation):
    """DBlock: [ReLU], conv3x3, ReLU, conv3x3, [avgpool]; shortcut as BigGAN-PyTorch."""
    return torch_blocks.ResDBlock(
        cin, cout, downsample, preactivation, conv=_conv, names=("conv1", "conv2", "conv_sc")
    )


class Generator(nn.Module):
    """z [B, z_dim] (+ y [B] int64) -> images [B, C, S, S] in [-1, 1]; see biggan.Generator."""

    def __init__(
        self,
        image_size=32,
        channels=3,
        width=96,
        z_dim=80,
        shared_dim=128,
        num_classes=0,
        attn_res=16,
        bn_eps=BN_EPS,
    ):
        super().__init__()
        mults = LAYOUTS[image_size][0]
        self.widths = [width * m for m in mults]
        self.n_blocks = len(mults) - 1
        if z_dim % (self.n_blocks + 1):
            raise ValueError(f"z_dim {z_dim} does not split into {self.n_blocks + 1} chunks")
        self.chunk = z_dim // (self.n_blocks + 1)
        self.num_classes = num_classes
        if num_classes:
            self.shared = nn.Embedding(num_classes, shared_dim)
            nn.init.orthogonal_(self.shared.weight)
        cond_dim = self.chunk + (shared_dim if num_classes else 0)
        self.linear = _orthogonal_sn(nn.Linear(self.chunk, START * START * self.widths[0]))
        self.attn_after = None
        for i, res in enumerate(resolutions(image_size)[0]):
            cin, cout = self.widths[i], self.widths[i + 1]
            self.add_module(f"block{i + 1}", g_block(cin, cout, cond_dim, bn_eps))
            if res == attn_res:
                self.attention = _attention(cout)
                self.attn_after = i
        self.bn_out = torch_blocks.ConditionalBatchNorm2d(self.widths[-1], eps=bn_eps)
        self.conv_out = _conv(self.widths[-1], channels, 3)

    def forward(self, z, y=None):
        zs = torch.split(z, self.chunk, dim=1)
        if self.num_classes:
            shared = self.shared(y)
            conds = [torch.cat([shared, zi], 1) for zi in zs[1:]]
        else:
            conds = list(zs[1:])
        h = self.linear(zs[0]).view(z.shape[0], self.widths[0], START, START)
        for i in range(self.n_blocks):
            h = getattr(self, f"block{i + 1}")(h, conds[i])
            if i == self.attn_after:
                h = self.attention(h)
        h = torch.relu(self.bn_out(h))
        return torch.tanh(self.conv_out(h))


class Discriminator(nn.Module):
    """images [B, C, S, S] (+ y [B] int64) -> logits [B]; see biggan.Discriminator."""

    def __init__(self, image_size=32, channels=3, width=96, num_classes=0, attn_res=16):
        super().__init__()
        _, mults, down = LAYOUTS[image_size]
        widths = [width * m for m in mults]
        self.n_blocks = len(widths)
        self.attn_after = None
        cin = channels
        for i, res in enumerate(resolutions(image_size)[1]):
            self.add_module(f"block{i + 1}", d_block(cin, widths[i], down[i], i > 0))
            cin = widths[i]
            if res == attn_res and self.attn_after is None:
                self.attention = _attention(widths[i])
                self.attn_after = i
        self.linear = _orthogonal_sn(nn.Linear(widths[-1], 1))
        self.num_classes = num_classes
        if num_classes:
            self.embed = _orthogonal_sn(nn.Embedding(num_classes, widths[-1]))

    def forward(self, x, y=None):
        h = x
        for i in range(self.n_blocks):
            h = getattr(self, f"block{i + 1}")(h)
            if i == self.attn_after:
                h = self.attention(h)
        return torch_blocks.projection_head(h, self.linear, getattr(self, "embed", None), y)


# The Flax generator reads its first Linear's outputs in PyTorch's (C, 4, 4) order, and every
# child has the Flax submodule's name: the generic conversion is the whole weight copy.
to_flax = torch_blocks.to_flax
count_params = torch_blocks.count_params


def main():
    settings = (
        # (label, size, g_width, d_width, z_dim, classes, attn_res)
        ("StudioGAN CIFAR-10", 32, 96, 96, 80, 10, 16),
        ("StudioGAN CIFAR-10, unconditional", 32, 96, 96, 80, 0, 16),
        ("BigGAN ImageNet 128 px", 128, 96, 96, 120, 1000, 64),
        ("64 px, ch 64", 64, 64, 64, 120, 1000, 32),
    )
    for label, size, gw, dw, z, classes, attn in settings:
        g = Generator(size, 3, gw, z, 128, classes, attn)
        d = Discriminator(size, 3, dw, classes, attn)
        print(f"{label:36s} G {count_params(g):>12,}  D {count_params(d):>12,}")


if __name__ == "__main__":
    main()
