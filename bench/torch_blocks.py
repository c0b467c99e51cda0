"""PyTorch ports of `gan_jax.models.spectral` and `.blocks`, and torch -> Flax weights.

For parity tests and benchmarks of the ResNet GANs (SNGAN, BigGAN); imports only torch and
numpy. Every module here computes what its Flax counterpart computes, with PyTorch's own
`torch.nn.utils.parametrizations.spectral_norm`:

  ==============================  =====================================
  torch (this file)               Flax (gan_jax.models)
  ==============================  =====================================
  sn_linear / sn_conv2d /         spectral.SNDense / SNConv / SNEmbed
  sn_embedding
  ConditionalBatchNorm2d          blocks.ConditionalBatchNorm
  SelfAttention                   blocks.SelfAttention
  upsample_nearest_2x             blocks.upsample_nearest_2x
  avg_pool_2x                     blocks.avg_pool_2x
  ==============================  =====================================

torch -> Flax: `to_flax(module)` returns `{'params': ..., 'spectral': ..., 'batch_stats': ...}`
(numpy float32; empty collections left out) for any module built from these pieces: leaf layers
are converted by type, other modules by recursion, each child under its attribute name (so a
model port whose children are named like the Flax submodules converts in one call). A child
called `0`, `1`, ... of an `nn.ModuleList` `blocks` becomes `blocks_0`, `blocks_1`, Flax's
naming of list attributes in `setup`. Use `nest` and `merge` to assemble trees by hand.

Mapping of one layer (spectral-normed or not):
  Linear    weight [out, in]          -> kernel [in, out]
  Conv2d    weight [out, in, kh, kw]  -> kernel [kh, kw, in, out]
  Embedding weight [num, features]    -> embedding (as is)
  parametrizations.weight.0._u, _v    -> spectral u, v (as is; torch's flattening order)
  BatchNorm2d weight, bias, running_mean, running_var -> scale, bias, mean, var

Never read `module.weight` of a spectral-normed module in training mode to copy it: that runs
a power iteration. `to_flax` reads `parametrizations.weight.original` and the buffers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

# ----------------------------------------------------------------------------------------------
# Spectral-normed layers


def sn_linear(in_features, out_features, bias=True, n_power_iterations=1, eps=1e-12):
    """`spectral_norm(nn.Linear(in_features, out_features, bias))`."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    return spectral_norm(layer, n_power_iterations=n_power_iterations, eps=eps)


def sn_conv2d(
    in_channels,
    out_channels,
    kernel_size,
    stride=1,
    padding=0,
    bias=True,
    n_power_iterations=1,
    eps=1e-12,
):
    """`spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias))`."""
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return spectral_norm(layer, n_power_iterations=n_power_iterations, eps=eps)


def sn_embedding(num_embeddings, features, n_power_iterations=1, eps=1e-12):
    """`spectral_norm(nn.Embedding(num_embeddings, features))`."""
    layer = nn.Embedding(num_embeddings, features)
    return spectral_norm(layer, n_power_iterations=n_power_iterations, eps=eps)


def spectral_sigma(module) -> torch.Tensor:
    """sigma = u . (W_mat v) of a spectral-normed layer from its stored vectors (no iteration)."""
    sn = module.parametrizations.weight[0]
    w_mat = module.parametrizations.weight.original.detach().flatten(1)
    return torch.dot(sn._u, w_mat @ sn._v)


# ----------------------------------------------------------------------------------------------
# Blocks


def upsample_nearest_2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling of NCHW (`F.interpolate(scale_factor=2)`)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def avg_pool_2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling with stride 2 of NCHW (`F.avg_pool2d(x, 2)`)."""
    return F.avg_pool2d(x, 2)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine transform depends on the sample; PyTorch's BatchNorm2d statistics.

    Modes:
      * `num_classes > 0` (SNGAN, Miyato & Koyama 2018): `gain = Embedding(y)` (init 1),
        `bias = Embedding(y)` (init 0), plain embeddings, `y` int64 class ids [B].
      * `cond_dim > 0` (BigGAN): `gain = 1 + SNLinear(c)`, `bias = SNLinear(c)`, both without
        bias terms, `c` float [B, cond_dim].
      * neither: `nn.BatchNorm2d` with its own affine (weight 1, bias 0).
    """

    def __init__(
        self,
        num_features,
        num_classes=0,
        cond_dim=0,
        eps=1e-5,
        momentum=0.1,
        n_power_iterations=1,
        sn_eps=1e-12,
    ):
        super().__init__()
        if num_classes and cond_dim:
            raise ValueError("give num_classes (embedding) or cond_dim (linear), not both")
        self.mode = "embed" if num_classes else "linear" if cond_dim else "plain"
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine=self.mode == "plain")
        if self.mode == "embed":
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        elif self.mode == "linear":
            kw = dict(bias=False, n_power_iterations=n_power_iterations, eps=sn_eps)
            self.gain = sn_linear(cond_dim, num_features, **kw)
            self.bias = sn_linear(cond_dim, num_features, **kw)

    def forward(self, x, cond=None):
        out = self.bn(x)
        if self.mode == "plain":
            return out
        gain = self.gain(cond)
        if self.mode == "linear":
            gain = 1 + gain
        return out * gain[:, :, None, None] + self.bias(cond)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN / BigGAN non-local block (Zhang et al. 2019) with spectral-normed 1x1 convolutions.

    theta: ch -> ch/8, phi: ch -> ch/8 then 2x2 max-pool, g: ch -> ch/2 then 2x2 max-pool;
    attention over the H*W / 4 pooled positions for each of the H*W positions;
    o: ch/2 -> ch; output `x + gamma * o` with gamma a learned scalar starting at 0.
    """

    def __init__(self, ch, n_power_iterations=1, eps=1e-12):
        super().__init__()
        kw = dict(bias=False, n_power_iterations=n_power_iterations, eps=eps)
        self.theta = sn_conv2d(ch, ch // 8, 1, **kw)
        self.phi = sn_conv2d(ch, ch // 8, 1, **kw)
        self.g = sn_conv2d(ch, ch // 2, 1, **kw)
        self.o = sn_conv2d(ch // 2, ch, 1, **kw)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [B, c/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [B, c/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [B, c/2, HW/4]
        beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [B, HW, HW/4]
        o = (g @ beta.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.o(o)


# ----------------------------------------------------------------------------------------------
# torch -> Flax weights

_PERMUTE = {nn.Linear: (1, 0), nn.Conv2d: (2, 3, 1, 0), nn.Embedding: None}


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _weight(module):
    """(raw weight, spectral collection or {}) of a possibly spectral-normed layer."""
    if parametrize.is_parametrized(module, "weight"):
        plist = module.parametrizations.weight
        sn = [p for p in plist if hasattr(p, "_u")]
        spectral = {"u": _np(sn[0]._u), "v": _np(sn[0]._v)} if sn else {}
        return plist.original, spectral
    return module.weight, {}


def _leaf(module):
    """Collections of one Linear / Conv2d / Embedding / BatchNorm2d, or None for other types."""
    if isinstance(module, nn.BatchNorm2d):
        out = {"batch_stats": {"mean": _np(module.running_mean), "var": _np(module.running_var)}}
        if module.affine:
            out["params"] = {"scale": _np(module.weight), "bias": _np(module.bias)}
        return out
    for kind, perm in _PERMUTE.items():
        if isinstance(module, kind):
            weight, spectral = _weight(module)
            w = _np(weight)
            name = "embedding" if kind is nn.Embedding else "kernel"
            params = {name: w if perm is None else np.ascontiguousarray(w.transpose(perm))}
            if getattr(module, "bias", None) is not None:
                params["bias"] = _np(module.bias)
            out = {"params": params}
            if spectral:
                out["spectral"] = spectral
            return out
    return None


def nest(name: str, collections: dict) -> dict:
    """{'params': tree, ...} -> {'params': {name: tree}, ...}: a submodule's variables."""
    return {col: {name: tree} for col, tree in collections.items() if tree}


def merge(*trees: dict) -> dict:
    """Deep-merges variable dicts ({'params': {...}, ...}); later ones win on equal leaves."""
    out: dict = {}
    for tree in trees:
        for key, value in tree.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            elif isinstance(value, dict):
                out[key] = merge(value)
            else:
                out[key] = value
    return out


def to_flax(module: nn.Module) -> dict:
    """Flax variables (numpy) of a torch module made of the layers and blocks above.

    Args:
      module: a Linear, Conv2d, Embedding (each optionally spectral-normed), BatchNorm2d,
        `ConditionalBatchNorm2d`, `SelfAttention`, or any module whose children are these
        (converted recursively under their attribute names; `ModuleList` items as `name_i`).
        Direct parameters of a composite module (e.g. `gamma`) are copied under their names.

    Returns:
      {'params': ..., 'spectral': ..., 'batch_stats': ...}, collections without entries left out.
    """
    leaf = _leaf(module)
    if leaf is not None:
        return leaf
    if isinstance(module, ConditionalBatchNorm2d):
        # Flax keeps the statistics (and the plain affine) at the block level, not under 'bn'.
        out = _leaf(module.bn)
        if module.mode != "plain":
            out = merge(out, nest("gain", to_flax(module.gain)), nest("bias", to_flax(module.bias)))
        return out
    out: dict = {}
    for name, param in module.named_parameters(recurse=False):
        out = merge(out, {"params": {name: _np(param)}})
    for name, child in module.named_children():
        if isinstance(child, (nn.ModuleList, nn.Sequential)):
            for i, item in enumerate(child):
                out = merge(out, nest(f"{name}_{i}", to_flax(item)))
        else:
            out = merge(out, nest(name, to_flax(child)))
    return out
