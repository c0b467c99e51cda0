"""PyTorch port of `gan_jax.models.sngan` (SNGAN ResNet, Miyato et al. 2018), and its weights.

For parity tests and speed benchmarks; imports only torch, numpy and `bench/torch_blocks.py`.
`Generator` / `Discriminator` compute, in NCHW, what the Flax modules compute in NHWC: the same
layouts (`LAYOUTS`, copied from sngan.py so this file needs no JAX), the same submodule names
(`linear`, `block1..n` with `b1`, `b2`, `c1`, `c2`, `c_sc`, `bn_out`, `conv_out`; D `linear`,
`embed`), the same initialisation. Spectral norm is PyTorch's own
`torch.nn.utils.parametrizations.spectral_norm`, applied after the initialisation.

The shortcut convolutions run where the reference models run them (after G's upsampling,
before D's pooling in DBlock), not where the Flax model does: the two orders are the same
function, and the parity tests check exactly that.

`to_flax(module)` gives the Flax variables {'params', 'batch_stats' | 'spectral'} (numpy):
`torch_blocks.to_flax` by submodule name, plus the generator's first Linear, whose outputs are
reordered from PyTorch's (C, H, W) view to the (H, W, C) reshape of the Flax model.

  python bench/torch_sngan.py     # parameter counts at the standard widths
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_blocks  # noqa: E402

# size -> (start, G width multipliers, D width multipliers, D downsampling); as sngan.LAYOUTS.
LAYOUTS = {
    32: (4, (1, 1, 1, 1), (1, 1, 1, 1), (True, True, False, False)),
    48: (6, (8, 4, 2, 1), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    64: (4, (16, 8, 4, 2, 1), (1, 2, 4, 8, 16), (True,) * 5),
    128: (4, (16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
}


def _init(layer: nn.Module, gain: float, sn: bool = False) -> nn.Module:
    """Xavier-uniform weight with `gain`, zero bias; then spectral norm if `sn`.

    The norm is applied after the initialisation, so that its constructor's 15 power
    iterations run on the final weight (as the Flax layer's initialisation does).
    """
    with torch.no_grad():
        nn.init.xavier_uniform_(layer.weight, gain)
        if getattr(layer, "bias", None) is not None:
            nn.init.zeros_(layer.bias)
    return spectral_norm(layer) if sn else layer


def _conv(cin, cout, k, gain, sn):
    return _init(nn.Conv2d(cin, cout, k, 1, k // 2), gain, sn)


def upsample(x: torch.Tensor, mode: str) -> torch.Tensor:
    """2x upsampling of NCHW: 'nearest' or 'bilinear' (align_corners=False, as Mimicry)."""
    if mode == "nearest":
        return torch_blocks.upsample_nearest_2x(x)
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class GBlock(nn.Module):
    """BN/cBN, ReLU, up, conv3x3, BN/cBN, ReLU, conv3x3; shortcut up, conv1x1."""

    def __init__(self, cin, cout, num_classes=0, mode="nearest"):
        super().__init__()
        self.mode = mode
        self.b1 = torch_blocks.ConditionalBatchNorm2d(cin, num_classes=num_classes)
        self.b2 = torch_blocks.ConditionalBatchNorm2d(cout, num_classes=num_classes)
        self.c1 = _conv(cin, cout, 3, math.sqrt(2), sn=False)
        self.c2 = _conv(cout, cout, 3, math.sqrt(2), sn=False)
        self.c_sc = _conv(cin, cout, 1, 1.0, sn=False)

    def forward(self, x, y=None):
        h = F.relu(self.b1(x, y))
        h = self.c1(upsample(h, self.mode))
        h = F.relu(self.b2(h, y))
        h = self.c2(h)
        return h + self.c_sc(upsample(x, self.mode))


class OptimizedDBlock(nn.Module):
    """conv3x3, ReLU, conv3x3, avgpool; shortcut avgpool, conv1x1 (all spectral-normed)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = _conv(cin, cout, 3, math.sqrt(2), sn=True)
        self.c2 = _conv(cout, cout, 3, math.sqrt(2), sn=True)
        self.c_sc = _conv(cin, cout, 1, 1.0, sn=True)

    def forward(self, x):
        h = self.c2(F.relu(self.c1(x)))
        return torch_blocks.avg_pool_2x(h) + self.c_sc(torch_blocks.avg_pool_2x(x))


class DBlock(nn.Module):
    """ReLU, conv3x3, ReLU, conv3x3, [avgpool]; shortcut [conv1x1, avgpool] (hidden = in)."""

    def __init__(self, cin, cout, downsample):
        super().__init__()
        self.downsample = downsample
        self.c1 = _conv(cin, cin, 3, math.sqrt(2), sn=True)
        self.c2 = _conv(cin, cout, 3, math.sqrt(2), sn=True)
        self.learnable_sc = downsample or cin != cout
        if self.learnable_sc:
            self.c_sc = _conv(cin, cout, 1, 1.0, sn=True)

    def forward(self, x):
        h = self.c2(F.relu(self.c1(F.relu(x))))
        sc = self.c_sc(x) if self.learnable_sc else x
        if self.downsample:
            h, sc = torch_blocks.avg_pool_2x(h), torch_blocks.avg_pool_2x(sc)
        return h + sc


class Generator(nn.Module):
    """z [B, z_dim] (+ y [B] int64) -> images [B, C, S, S] in [-1, 1]; see sngan.Generator."""

    def __init__(
        self, image_size=32, channels=3, width=256, z_dim=128, num_classes=0, mode="nearest"
    ):
        super().__init__()
        self.start, mults, _, _ = LAYOUTS[image_size]
        widths = [width * m for m in mults]
        self.widths = widths
        self.linear = _init(nn.Linear(z_dim, self.start**2 * widths[0]), 1.0)
        self.n_blocks = len(widths) - 1
        for i in range(self.n_blocks):
            self.add_module(f"block{i + 1}", GBlock(widths[i], widths[i + 1], num_classes, mode))
        self.bn_out = torch_blocks.ConditionalBatchNorm2d(widths[-1])
        self.conv_out = _conv(widths[-1], channels, 3, 1.0, sn=False)

    def forward(self, z, y=None):
        h = self.linear(z).view(z.shape[0], self.widths[0], self.start, self.start)
        for i in range(self.n_blocks):
            h = getattr(self, f"block{i + 1}")(h, y)
        h = F.relu(self.bn_out(h))
        return torch.tanh(self.conv_out(h))


class Discriminator(nn.Module):
    """images [B, C, S, S] (+ y [B] int64) -> logits [B]; see sngan.Discriminator."""

    def __init__(self, image_size=32, channels=3, width=128, num_classes=0):
        super().__init__()
        _, _, mults, down = LAYOUTS[image_size]
        widths = [width * m for m in mults]
        self.n_blocks = len(widths)
        self.block1 = OptimizedDBlock(channels, widths[0])
        for i in range(1, self.n_blocks):
            self.add_module(f"block{i + 1}", DBlock(widths[i - 1], widths[i], down[i]))
        self.linear = _init(nn.Linear(widths[-1], 1), 1.0, sn=True)
        self.num_classes = num_classes
        if num_classes:
            self.embed = _init(nn.Embedding(num_classes, widths[-1]), 1.0, sn=True)

    def forward(self, x, y=None):
        h = x
        for i in range(self.n_blocks):
            h = getattr(self, f"block{i + 1}")(h)
        h = F.relu(h).sum((2, 3))
        out = self.linear(h)[:, 0]
        if self.num_classes:
            out = out + (self.embed(y) * h).sum(1)
        return out


def to_flax(module: nn.Module) -> dict:
    """Flax variables (numpy float32) of a `Generator` or `Discriminator` of this file.

    Args:
      module: the torch model.

    Returns:
      {'params', 'batch_stats'} (generator) or {'params', 'spectral'} (discriminator), for
      `sngan.Generator` / `sngan.Discriminator` with the same size, widths and classes.
    """
    out = torch_blocks.to_flax(module)
    if isinstance(module, Generator):
        # PyTorch views the Linear's output as (C, s, s); the Flax model reshapes to (s, s, C).
        s, c = module.start, module.widths[0]
        lin = out["params"]["linear"]
        z = lin["kernel"].shape[0]
        lin["kernel"] = np.ascontiguousarray(
            lin["kernel"].reshape(z, c, s, s).transpose(0, 2, 3, 1).reshape(z, -1)
        )
        lin["bias"] = np.ascontiguousarray(lin["bias"].reshape(c, s, s).transpose(1, 2, 0).ravel())
    return out


def count_params(module: nn.Module) -> int:
    """Trainable parameters (raw weights of spectral-normed layers; no buffers)."""
    return sum(p.numel() for p in module.parameters())


def main():
    for size, gw, dw in ((32, 256, 128), (48, 64, 64), (64, 64, 64), (128, 64, 64)):
        for classes in (0, 10):
            g = Generator(size, 3, gw, 128, classes)
            d = Discriminator(size, 3, dw, classes)
            print(
                f"{size:4d} px  g_width {gw:3d}  d_width {dw:3d}  classes {classes:2d}:  "
                f"G {count_params(g):,}  D {count_params(d):,}"
            )


if __name__ == "__main__":
    main()
