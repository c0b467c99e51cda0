"""GAN architectures, chosen by `config.model.name`.

Each architecture is one module with a `build(config, *, conv_impl) -> (generator,
discriminator)` function; adding one means one file and one line in `MODELS`.

Interface of the built modules (Flax Linen, variables {'params', 'batch_stats'}):
  generator.apply(variables, z [B, z_dim], train) -> images [B, H, W, C] float32 in [-1, 1]
  discriminator.apply(variables, x [B, H, W, C], train) -> logits [B] float32
With `train=True`, pass `mutable=['batch_stats']` to get the updated running statistics.

`config.model.conv_impl`:
  'lax'  : plain `lax` convolutions (the reference formulation).
  'fast' : exact, per product (forward, input gradient, weight gradient) the formulation
           XLA:CPU runs fastest (`layers`); it never asks XLA for the weight gradient of a
           stride-2 transposed convolution, which it computes ~30x slower than the forward.
  'auto' : 'fast' on CPU; 'lax' on GPU and TPU, where the vendor convolution libraries handle
           strided and transposed convolutions natively and the reformulations only add
           memory traffic (not yet measured on accelerators; revisit with bench numbers).
Both implementations share one parameter layout, so checkpoints move freely between them.
"""

from __future__ import annotations

import jax
from flax import linen as nn

from gan_jax.models import dcgan

MODELS = {
    "dcgan": dcgan.build,
}

CONV_IMPLS = ("auto", "fast", "lax")


def available() -> list[str]:
    """Names accepted by `config.model.name`."""
    return sorted(MODELS)


def resolve_conv_impl(conv_impl: str, backend: str | None = None) -> str:
    """Maps 'auto' to 'fast' on CPU and 'lax' elsewhere; checks the name.

    Args:
      conv_impl: 'auto', 'fast' or 'lax'.
      backend: JAX platform name; defaults to `jax.default_backend()`.

    Returns:
      'fast' or 'lax'.
    """
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"unknown model.conv_impl {conv_impl!r}; expected one of {CONV_IMPLS}")
    if conv_impl != "auto":
        return conv_impl
    backend = backend or jax.default_backend()
    return "fast" if backend == "cpu" else "lax"


def build(config) -> tuple[nn.Module, nn.Module]:
    """Builds (generator, discriminator) for `config.model.name`.

    Args:
      config: the run's ConfigDict (uses `config.model` and `config.data`).

    Returns:
      (generator, discriminator) Flax modules; see the module docstring for their interface.
    """
    name = config.model.name
    if name not in MODELS:
        raise ValueError(f"unknown model.name {name!r}; available: {available()}")
    return MODELS[name](config, conv_impl=resolve_conv_impl(config.model.conv_impl))
