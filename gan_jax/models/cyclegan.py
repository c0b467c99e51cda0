"""CycleGAN (Zhu et al. 2017): two ResNet generators (A->B, B->A) and two PatchGANs (one per
domain), as `pix2pix.ResnetGenerator` and `pix2pix.PatchDiscriminator` build them.

The engine holds one G and one D per run, so each pair is one module: `CycleGenerators`
(params 'g_ab' and 'g_ba') and `CycleDiscriminators` ('d_a' and 'd_b'). One Adam over both
generators and one over both discriminators is what CycleGAN's code does (its
`itertools.chain` of the two generators' parameters; its two D optimisers share settings and
Adam is per parameter, so one over both is the same update).

Config keys (`model.*`): g_width (ngf, 64), d_width (ndf, 64), g_blocks (0: 6 up to 128 px,
9 above), d_layers (0: the PatchGAN share of the image pix2pix uses), norm ('instance'),
conv_impl, dtype; `model.pool_size` (50) belongs to the objective.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from gan_jax import config_lib
from gan_jax.errors import ConfigError
from gan_jax.input import unpaired
from gan_jax.input.sources import DataError
from gan_jax.models import pix2pix

HAS_LATENT = False
DTYPES = ("float32", "bfloat16")


class CycleGenerators(nn.Module):
    """G_AB and G_BA. `__call__(a, b)` -> {'fake_b', 'fake_a', 'rec_a', 'rec_b', 'idt_a',
    'idt_b'}: the translations, the cycles back, and each G on its own output domain."""

    channels: int = 3
    width: int = 64
    n_blocks: int | None = None
    norm: str = "instance"
    conv_impl: str = "auto"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        def make():
            return pix2pix.ResnetGenerator(
                out_channels=self.channels,
                width=self.width,
                n_blocks=self.n_blocks,
                norm=self.norm,
                conv_impl=self.conv_impl,
                dtype=self.dtype,
            )

        self.g_ab, self.g_ba = make(), make()

    def ab(self, x, train: bool = False):
        return self.g_ab(x, train)

    def ba(self, x, train: bool = False):
        return self.g_ba(x, train)

    def __call__(self, a, b, train: bool = False, identity: bool = True):
        fake_b, fake_a = self.g_ab(a, train), self.g_ba(b, train)
        out = {
            "fake_b": fake_b,
            "fake_a": fake_a,
            "rec_a": self.g_ba(fake_b, train),
            "rec_b": self.g_ab(fake_a, train),
        }
        if identity:
            out["idt_b"], out["idt_a"] = self.g_ab(b, train), self.g_ba(a, train)
        return out


class CycleDiscriminators(nn.Module):
    """D_A and D_B: `__call__(a, b)` -> (patch logits of a under D_A, of b under D_B)."""

    width: int = 64
    n_layers: int = 1
    norm: str = "instance"
    conv_impl: str = "auto"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        def make():
            return pix2pix.PatchDiscriminator(
                width=self.width,
                n_layers=self.n_layers,
                norm=self.norm,
                conv_impl=self.conv_impl,
                dtype=self.dtype,
            )

        self.d_a, self.d_b = make(), make()

    def __call__(self, a, b, train: bool = False):
        return self.d_a(a, None, train), self.d_b(b, None, train)


def validate(config) -> None:
    """Checks model.{g_width, d_width, g_blocks, d_layers, norm, pool_size, conv_impl, dtype},
    loss.{cycle, identity} and that the data gives two domains."""
    pix2pix.require_no_fid(config)
    config_lib.positive_int(config, "model.g_width")
    config_lib.positive_int(config, "model.d_width")
    config_lib.positive_int(config, "model.g_blocks", zero_ok=True)
    config_lib.positive_int(config, "model.d_layers", zero_ok=True)
    config_lib.positive_int(config, "model.pool_size", zero_ok=True)
    config_lib.choice(config, "model.norm", pix2pix.NORMS)
    config_lib.choice(config, "model.conv_impl", pix2pix.CONV_IMPLS)
    config_lib.choice(config, "model.dtype", DTYPES)
    config_lib.number_in(config, "loss.cycle", 0.0, 1e6)
    config_lib.number_in(config, "loss.identity", 0.0, 1e6)
    size = config.data.image_size
    config_lib.require(
        size % 4 == 0 and size >= 8, "data.image_size", f"needs a multiple of 4 >= 8, got {size}"
    )
    if config.model.d_layers:
        try:
            pix2pix.patch_grid(size, config.model.d_layers)
        except ValueError as e:
            raise ConfigError(f"config.model.d_layers: {e}") from None
    try:
        unpaired.validate(config)
    except DataError as e:
        raise ConfigError(str(e)) from None


def build(config):
    m = config.model
    dtype = jnp.dtype(m.dtype)
    generators = CycleGenerators(
        channels=config.data.channels,
        width=m.g_width,
        n_blocks=m.g_blocks or None,
        norm=m.norm,
        conv_impl=m.conv_impl,
        dtype=dtype,
    )
    discriminators = CycleDiscriminators(
        width=m.d_width,
        n_layers=m.d_layers or pix2pix.n_layers_for(config.data.image_size),
        norm=m.norm,
        conv_impl=m.conv_impl,
        dtype=dtype,
    )
    return generators, discriminators


def latent_weight(params, config, layers=None):
    raise ValueError("a CycleGAN has no latent space (it translates between two domains)")
