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
    """Xavier-uniform weight with `gain`, zero bias; then spectral norm if `sn`."""
    return torch_blocks.init_layer(layer, lambda w: nn.init.xavier_uniform_(w, gain), sn)


def _conv(cin, cout, k, sn):
    """Conv2d(k, 1, k // 2): Xavier gain sqrt(2) for the 3x3 convs, 1 for the 1x1 shortcuts."""
    gain = math.sqrt(2) if k == 3 else 1.0
    return _init(nn.Conv2d(cin, cout, k, 1, k // 2), gain, sn)


def g_block(cin, cout, num_classes=0, mode="nearest"):
    """GBlock: BN/cBN, ReLU, up, conv3x3, BN/cBN, ReLU, conv3x3; shortcut up, conv1x1."""
    return torch_blocks.ResGBlock(
        cin,
        cout,
        norm=lambda ch: torch_blocks.ConditionalBatchNorm2d(ch, num_classes=num_classes),
        conv=lambda i, o, k: _conv(i, o, k, sn=False),
        names=("b1", "c1", "b2", "c2", "c_sc"),
        mode=mode,
    )


def d_block(cin, cout, downsample, first=False):
    """OptimizedDBlock (`first`) or DBlock (hidden = in), spectral-normed convs.

    OptimizedDBlock: conv3x3, ReLU, conv3x3, avgpool; shortcut avgpool, conv1x1. DBlock: ReLU,
    conv3x3, ReLU, conv3x3, [avgpool]; shortcut [conv1x1, avgpool].
    """
    return torch_blocks.ResDBlock(
        cin,
        cout,
        downsample,
        preactivation=not first,
        conv=lambda i, o, k: _conv(i, o, k, sn=True),
        names=("c1", "c2", "c_sc"),
        hidden=cout if first else cin,
    )


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
            self.add_module(f"block{i + 1}", g_block(widths[i], widths[i + 1], num_classes, mode))
        self.bn_out = torch_blocks.ConditionalBatchNorm2d(widths[-1])
        self.conv_out = _init(nn.Conv2d(widths[-1], channels, 3, 1, 1), 1.0)

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
        for i in range(self.n_blocks):
            cin = widths[i - 1] if i else channels
            self.add_module(f"block{i + 1}", d_block(cin, widths[i], down[i], first=i == 0))
        self.linear = _init(nn.Linear(widths[-1], 1), 1.0, sn=True)
        self.num_classes = num_classes
        if num_classes:
            self.embed = _init(nn.Embedding(num_classes, widths[-1]), 1.0, sn=True)

    def forward(self, x, y=None):
        h = x
        for i in range(self.n_blocks):
            h = getattr(self, f"block{i + 1}")(h)
        return torch_blocks.projection_head(h, self.linear, getattr(self, "embed", None), y)


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


count_params = torch_blocks.count_params


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
