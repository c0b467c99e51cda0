"""GAN architectures, chosen by `config.model.name`.

Each architecture is one module with `build(config) -> (generator, discriminator)` and
`validate(config)`, which checks the `config.model` keys that module owns; adding one means
one file and one line in `MODELS`.

Interface of the built modules (Flax Linen):
  generator.apply(variables, z [B, z_dim], labels [B] int32 | None, train) -> images
      [B, H, W, C] float32 in [-1, 1]
  discriminator.apply(variables, x [B, H, W, C], labels | None, train) -> logits [B] float32
Variables: 'params', plus whichever non-parameter collections the model has: 'batch_stats'
(batch-norm running statistics), 'spectral' (spectral-norm power-iteration vectors). With
`train=True`, pass `mutable=` those collections and thread the updated ones to the next call;
with `train=False` nothing changes. Unconditional models take `labels=None` and ignore it.
"""

from __future__ import annotations

import importlib

from flax import linen as nn

from gan_jax import config_lib

# name -> module path; modules are imported on first use, so a model's dependencies load
# only when it is trained or sampled.
MODELS = {
    "dcgan": "gan_jax.models.dcgan",
    "sngan": "gan_jax.models.sngan",
    "biggan": "gan_jax.models.biggan",
    "stylegan2": "gan_jax.models.stylegan2",
    "pix2pix": "gan_jax.models.pix2pix",
    "cyclegan": "gan_jax.models.cyclegan",
}


def available() -> list[str]:
    """Names accepted by `config.model.name`."""
    return sorted(MODELS)


def module(name: str):
    """The Python module that implements model `name`."""
    if name not in MODELS:
        raise ValueError(f"unknown model.name {name!r}; available: {', '.join(available())}")
    return importlib.import_module(MODELS[name])


def num_classes(config) -> int:
    """Classes of a class-conditional model; 0 for an unconditional one (a common key)."""
    return int(config.model.get("num_classes", 0) or 0)


def has_latent(config) -> bool:
    """Whether the model generates from a latent z (False: it translates an input image)."""
    return getattr(module(config.model.name), "HAS_LATENT", True)


def validate(config) -> None:
    """Checks the model's name, the common model keys, then the model's own keys.

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    config_lib.choice(config, "model.name", tuple(available()))
    if has_latent(config):
        config_lib.positive_int(config, "model.z_dim")
    if "num_classes" in config.model:
        config_lib.positive_int(config, "model.num_classes", zero_ok=True)
    module(config.model.name).validate(config)


def latent_weight(config, params, layers=None):
    """The weight A [outputs, latent dim] of the first layer(s) that read the latent.

    SeFa's closed-form directions are the top eigenvectors of A^T A. The latent is z for
    most models and w for StyleGAN2 (`layers` then picks which ws' style layers).
    """
    return module(config.model.name).latent_weight(params, config, layers)


def build(config) -> tuple[nn.Module, nn.Module]:
    """Builds (generator, discriminator) for `config.model.name`.

    Args:
      config: the run's ConfigDict (uses `config.model` and `config.data`).

    Returns:
      (generator, discriminator) Flax modules; see the module docstring for their interface.
    """
    return module(config.model.name).build(config)
