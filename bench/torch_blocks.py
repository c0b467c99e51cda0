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
  upsample_nearest_2x /           blocks.upsample_nearest_2x /
  upsample_2x                     upsample_2x
  avg_pool_2x                     blocks.avg_pool_2x
  ResGBlock / ResDBlock           blocks.ResGBlock / ResDBlock
  projection_head                 blocks.projection_head
  ==============================  =====================================

`ResGBlock` and `ResDBlock` run the shortcut convolution where the reference models run it
(after G's upsampling; before D's pooling in pre-activated blocks), not where the Flax blocks
do: the two orders are the same function, and the parity tests check exactly that. The model
ports (`torch_sngan.py`, `torch_biggan.py`) configure them with their layers and names.

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


def init_layer(layer: nn.Module, weight_init, sn: bool = False, eps: float = 1e-12) -> nn.Module:
    """`weight_init(layer.weight)` in place and a zero bias; then spectral norm if `sn`.

    The norm is applied after the initialisation, so that its constructor's 15 power
    iterations run on the final weight (as the Flax layer's initialisation does).
    """
    with torch.no_grad():
        weight_init(layer.weight)
        if getattr(layer, "bias", None) is not None:
            nn.init.zeros_(layer.bias)
    return spectral_norm(layer, eps=eps) if sn else layer


def count_params(module: nn.Module) -> int:
    """Trainable parameters (raw weights of spectral-normed layers; no buffers)."""
    return sum(p.numel() for p in module.parameters())


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


def upsample_2x(x: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """2x upsampling of NCHW: 'nearest' or 'bilinear' (align_corners=False, as Mimicry)."""
    if mode == "nearest":
        return upsample_nearest_2x(x)
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def avg_pool_2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling with stride 2 of NCHW (`F.avg_pool2d(x, 2)`)."""
    return F.avg_pool2d(x, 2)


class ResGBlock(nn.Module):
    """norm1(c), ReLU, up, conv3x3, norm2(c), ReLU, conv3x3; shortcut up, conv1x1.

    `norm(channels)` and `conv(cin, cout, k)` build the layers; `names` (norm1, conv1, norm2,
    conv2, shortcut conv) are the children's attribute names, the Flax block's submodules.
    """

    def __init__(self, cin, cout, norm, conv, names, mode="nearest"):
        super().__init__()
        self.names, self.mode = names, mode
        n1, c1, n2, c2, c_sc = names
        # Registered (and so initialised from the global RNG) norms first, then the convs.
        self.add_module(n1, norm(cin))
        self.add_module(n2, norm(cout))
        self.add_module(c1, conv(cin, cout, 3))
        self.add_module(c2, conv(cout, cout, 3))
        self.add_module(c_sc, conv(cin, cout, 1))

    def forward(self, x, cond=None):
        norm1, conv1, norm2, conv2, conv_sc = (getattr(self, n) for n in self.names)
        h = F.relu(norm1(x, cond))
        h = conv1(upsample_2x(h, self.mode))
        h = conv2(F.relu(norm2(h, cond)))
        return h + conv_sc(upsample_2x(x, self.mode))


class ResDBlock(nn.Module):
    """[ReLU], conv3x3 (cin -> hidden), ReLU, conv3x3 (hidden -> cout), [avgpool]; shortcut.

    The shortcut is a conv1x1 when the block downsamples or changes the width, else the
    identity; pre-activated blocks pool after it, the first (not pre-activated) before it.
    `conv(cin, cout, k)` builds the layers; `names` (conv1, conv2, shortcut conv) are their
    attribute names; `hidden` defaults to `cout`.
    """

    def __init__(self, cin, cout, downsample, preactivation, conv, names, hidden=None):
        super().__init__()
        self.names, self.downsample, self.preactivation = names, downsample, preactivation
        hidden = cout if hidden is None else hidden
        c1, c2, c_sc = names
        self.add_module(c1, conv(cin, hidden, 3))
        self.add_module(c2, conv(hidden, cout, 3))
        self.learnable_sc = downsample or cin != cout
        if self.learnable_sc:
            self.add_module(c_sc, conv(cin, cout, 1))

    def shortcut(self, x):
        pool = avg_pool_2x if self.downsample else (lambda t: t)
        conv = getattr(self, self.names[2]) if self.learnable_sc else (lambda t: t)
        return pool(conv(x)) if self.preactivation else conv(pool(x))

    def forward(self, x):
        conv1, conv2 = getattr(self, self.names[0]), getattr(self, self.names[1])
        h = F.relu(x) if self.preactivation else x
        h = conv2(F.relu(conv1(h)))
        if self.downsample:
            h = avg_pool_2x(h)
        return h + self.shortcut(x)


def projection_head(h, linear, embed=None, y=None):
    """ReLU, global sum pooling, `linear` -> 1, plus `sum(embed(y) * h)` when `embed`.

    Args:
      h: the last block's features [B, C, H, W].
      linear: the Linear C -> 1.
      embed: the class Embedding [num_classes, C], or None (unconditional).
      y: int64 class ids [B] (conditional).

    Returns:
      Logits [B].
    """
    h = F.relu(h).sum((2, 3))
    out = linear(h)[:, 0]
    if embed is not None:
        out = out + (embed(y) * h).sum(1)
    return out


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
