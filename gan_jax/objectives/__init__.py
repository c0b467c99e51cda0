"""Objectives: how a model family's G and D are run and what they minimise.

An objective owns everything the step must not know about a model: which variable
collections its networks thread (batch statistics, spectral-norm vectors), how labels and
latents are drawn, the augmentation every D input goes through, the adversarial loss and
the regularisers. The step (`gan_jax.training.step`) only orders the updates.

`OBJECTIVES` maps a model name to its objective class; the GAN families of this package
share `GANObjective`. A family with its own training phases (StyleGAN2's path-length
regulariser and style mixing) subclasses it.
"""

from gan_jax.objectives.cyclegan import CycleGANObjective
from gan_jax.objectives.gan import GANObjective
from gan_jax.objectives.pix2pix import Pix2PixObjective
from gan_jax.objectives.regularisers import Context, Regulariser
from gan_jax.objectives.stylegan2 import StyleGAN2Objective

OBJECTIVES = {
    "dcgan": GANObjective,
    "sngan": GANObjective,
    "biggan": GANObjective,
    "stylegan2": StyleGAN2Objective,
    "pix2pix": Pix2PixObjective,
    "cyclegan": CycleGANObjective,
}


def build(config) -> GANObjective:
    """The objective for `config.model.name`, with its networks built from the config."""
    cls = OBJECTIVES.get(config.model.name, GANObjective)
    return cls(config)


__all__ = [
    "OBJECTIVES",
    "Context",
    "CycleGANObjective",
    "GANObjective",
    "Pix2PixObjective",
    "Regulariser",
    "StyleGAN2Objective",
    "build",
]
