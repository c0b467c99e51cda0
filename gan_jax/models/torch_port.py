"""Weights between the seed's PyTorch DCGAN and ours, with numpy only (no torch import).

A PyTorch `state_dict` of the seed's `nn.Sequential` models (`main.0.weight`,
`main.1.running_mean`, ...; see `shared/reference/torch_dcgan.py`) becomes Flax variables
`{'params': ..., 'batch_stats': ...}` for `dcgan.Generator` / `dcgan.Discriminator`, and back.
Pass numpy arrays, e.g. `{k: v.numpy() for k, v in module.state_dict().items()}`.

Mapping: the k-th convolution of the Sequential is our `conv{k}` and the k-th BatchNorm2d is
our k-th BatchNorm (`bn*` in layer order). Kernels are permuted, never flipped (see `layers`):
  ConvTranspose2d weight [in, out, kH, kW] -> kernel [kH, kW, in, out]  (generator)
  Conv2d weight          [out, in, kH, kW] -> kernel [kH, kW, in, out]  (discriminator)
  BatchNorm2d weight, bias, running_mean, running_var -> scale, bias, mean, var
`num_batches_tracked` has no counterpart (momentum is fixed) and is dropped; the reverse
direction writes it as 0.
"""

from __future__ import annotations

import re

import numpy as np

# ConvTranspose2d stores [in, out, kH, kW], Conv2d [out, in, kH, kW].
_TO_FLAX = {"generator": (2, 3, 0, 1), "discriminator": (2, 3, 1, 0)}
_BN_KEYS = (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "var"))
_KEY = re.compile(r"(?:^|\.)(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def _check_kind(kind):
    if kind not in _TO_FLAX:
        raise ValueError(f"kind must be 'generator' or 'discriminator', got {kind!r}")


def _torch_layers(state_dict):
    """Groups a Sequential's state_dict into [(index, {'weight': ..., ...})] by index."""
    groups = {}
    for key, value in state_dict.items():
        m = _KEY.search(key)
        if m is None:
            raise ValueError(f"unexpected state_dict key {key!r}")
        groups.setdefault(int(m.group(1)), {})[m.group(2)] = np.asarray(value)
    return sorted(groups.items())


def _by_index(names, prefix):
    return sorted((n for n in names if n.startswith(prefix)), key=lambda n: int(n[len(prefix) :]))


def from_torch(state_dict: dict, kind: str) -> dict:
    """Converts a seed PyTorch state_dict to our Flax variables.

    Args:
      state_dict: name -> numpy array, from the seed's `Generator` or `Discriminator`.
      kind: 'generator' or 'discriminator'.

    Returns:
      {'params': {...}, 'batch_stats': {...}} of float32 numpy arrays, for the matching
      `dcgan.Generator` / `dcgan.Discriminator` at the same size and widths.
    """
    _check_kind(kind)
    params, stats = {}, {}
    n_conv = n_bn = 0
    for _, layer in _torch_layers(state_dict):
        if "running_mean" in layer:  # BatchNorm2d
            # Generator BN i follows conv i; discriminator BN i follows conv i (none after conv0).
            name = f"bn{n_bn if kind == 'generator' else n_bn + 1}"
            p = {ours: layer[theirs].astype(np.float32) for theirs, ours in _BN_KEYS}
            params[name] = {"scale": p["scale"], "bias": p["bias"]}
            stats[name] = {"mean": p["mean"], "var": p["var"]}
            n_bn += 1
        else:  # convolution, no bias in the seed
            if set(layer) != {"weight"} or layer["weight"].ndim != 4:
                raise ValueError(f"expected a bias-free conv layer, got keys {sorted(layer)}")
            kernel = layer["weight"].transpose(_TO_FLAX[kind]).astype(np.float32)
            params[f"conv{n_conv}"] = {"kernel": kernel}
            n_conv += 1
    return {"params": params, "batch_stats": stats}


def to_torch(variables: dict, kind: str) -> dict:
    """Converts our Flax variables back to the seed's PyTorch state_dict layout.

    Args:
      variables: {'params', 'batch_stats'} of `dcgan.Generator` or `dcgan.Discriminator`.
      kind: 'generator' or 'discriminator'.

    Returns:
      'main.{i}.{weight,bias,running_mean,running_var,num_batches_tracked}' -> numpy array,
      loadable with `module.load_state_dict({k: torch.from_numpy(v) ...})`.
    """
    _check_kind(kind)
    params, stats = variables["params"], variables.get("batch_stats", {})
    inverse = np.argsort(_TO_FLAX[kind])
    convs, bns = _by_index(params, "conv"), _by_index(params, "bn")
    # Sequential indices: G [conv, bn, relu]*, conv, tanh; D conv, lrelu, [conv, bn, lrelu]*, ...
    out = {}
    for i, name in enumerate(convs):
        idx = 3 * i if kind == "generator" else max(3 * i - 1, 0)
        out[f"main.{idx}.weight"] = np.asarray(params[name]["kernel"]).transpose(inverse)
    for name in bns:
        k = int(name[2:])
        idx = 3 * k + 1 if kind == "generator" else 3 * k
        out[f"main.{idx}.weight"] = np.asarray(params[name]["scale"])
        out[f"main.{idx}.bias"] = np.asarray(params[name]["bias"])
        out[f"main.{idx}.running_mean"] = np.asarray(stats[name]["mean"])
        out[f"main.{idx}.running_var"] = np.asarray(stats[name]["var"])
        out[f"main.{idx}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    return out
