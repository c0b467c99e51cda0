"""DCGAN (Radford et al. 2015), the seed's architecture, for 28, 32, 64 and 128 px images.

At 64 px with widths 64 and z_dim 100 this is exactly the seed's PyTorch model
(`shared/reference/torch_dcgan.py`): generator 3,576,704 parameters, discriminator 2,765,568.
Other sizes keep the same family: the generator projects z to a `start x start` map, then
doubles it with `ConvTranspose2d(4, 2, 1)` layers (BatchNorm + ReLU between, tanh at the end);
the discriminator mirrors it with `Conv2d(4, 2, 1)` layers (LeakyReLU 0.2, BatchNorm on all but
the first) and reads one logit off the `start x start` map.

  image_size  start  up/down layers  widths at width=64 (generator, top first)
  28          7      2               128, 64, C        (MNIST: 7 -> 14 -> 28)
  32          4      3               256, 128, 64, C
  64          4      4               512, 256, 128, 64, C   (the seed)
  128         4      5               1024, 512, 256, 128, 64, C

The top width is `width * 2 ** (layers - 1)`, halving at each doubling of resolution; the
discriminator uses the same widths in reverse. 28 px starts at 7x7 rather than padding
MNIST to 32, so there is no border the generator must learn to leave blank.

Variables: {'params', 'batch_stats'}. The modules take `labels` for the common interface and
ignore it: DCGAN is unconditional. Layer names: generator `conv0` (the projection),
`conv1..convN` and `bn0..bn{N-1}` (bn_i follows conv_i); discriminator `conv0..convN`
(convN is the logit read-out) and `bn1..bn{N-1}` (no BatchNorm after conv0, like the seed).
Parameter layout: see `layers` (PyTorch weights with axes permuted to (kH, kW, in, out)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax import config_lib
from gan_jax.models import layers

SIZES = (28, 32, 64, 128)
CONV_IMPLS = ("auto", "fast", "lax")
DTYPES = ("float32", "bfloat16")


def geometry(image_size: int) -> tuple[int, int]:
    """Returns (start, n): the smallest feature map's side and the number of 2x layers."""
    if image_size not in SIZES:
        raise ValueError(f"dcgan supports image_size in {SIZES}, got {image_size}")
    start = 7 if image_size == 28 else 4
    return start, (image_size // start).bit_length() - 1


class Generator(nn.Module):
    """z [B, z_dim] -> images [B, image_size, image_size, channels] in [-1, 1], float32.

    Attributes:
      image_size: 28, 32, 64 or 128.
      channels: image channels (1 or 3).
      width: the seed's ngf, channels of the last hidden layer.
      dtype: compute dtype; params and BatchNorm statistics stay float32.
      conv_impl: 'lax' or 'fast', see `layers.conv_transpose_4x4_s2`.
    """

    image_size: int = 64
    channels: int = 3
    width: int = 64
    dtype: layers.Dtype = jnp.float32
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, z: jax.Array, labels=None, train: bool = False) -> jax.Array:
        del labels  # unconditional
        start, n = geometry(self.image_size)
        feats = self.width * 2 ** (n - 1)

        def bn(x, i):
            x = layers.BatchNorm(dtype=self.dtype, name=f"bn{i}")(x, train)
            return nn.relu(x)

        x = layers.DenseToMap(feats, start, dtype=self.dtype, name="conv0")(z)
        x = bn(x, 0)
        for i in range(1, n):
            feats //= 2
            x = layers.ConvTranspose4x4S2(feats, self.conv_impl, self.dtype, name=f"conv{i}")(x)
            x = bn(x, i)
        x = layers.ConvTranspose4x4S2(self.channels, self.conv_impl, self.dtype, name=f"conv{n}")(x)
        return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
    """images [B, H, W, channels] -> logits [B] float32 (the seed's Sigmoid is in the loss).

    Attributes:
      image_size: 28, 32, 64 or 128.
      width: the seed's ndf, channels of the first layer.
      dtype: compute dtype; params and BatchNorm statistics stay float32.
      conv_impl: 'lax' or 'fast', see `layers.conv_4x4_s2`.
    """

    image_size: int = 64
    width: int = 64
    dtype: layers.Dtype = jnp.float32
    conv_impl: str = "fast"

    @nn.compact
    def __call__(self, x: jax.Array, labels=None, train: bool = False) -> jax.Array:
        del labels  # unconditional
        _, n = geometry(self.image_size)
        if x.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}px images, got shape {x.shape}")
        feats = self.width
        for i in range(n):
            x = layers.Conv4x4S2(feats, self.conv_impl, self.dtype, name=f"conv{i}")(x)
            if i > 0:
                x = layers.BatchNorm(dtype=self.dtype, name=f"bn{i}")(x, train)
            x = nn.leaky_relu(x, 0.2)
            feats *= 2
        logits = layers.MapToDense(1, dtype=self.dtype, name=f"conv{n}")(x)
        return logits[:, 0].astype(jnp.float32)


def resolve_conv_impl(conv_impl: str, backend: str | None = None) -> str:
    """Maps 'auto' to 'fast' on CPU and 'lax' elsewhere; checks the name.

    'lax' is plain `lax` convolutions (the reference formulation). 'fast' is exact and, per
    product (forward, input gradient, weight gradient), the formulation XLA:CPU runs fastest
    (`layers`): it never asks XLA for the weight gradient of a stride-2 transposed
    convolution, which it computes ~30x slower than the forward. On GPU and TPU the vendor
    convolution libraries handle strided and transposed convolutions natively, so 'auto'
    keeps 'lax' there. Both share one parameter layout: checkpoints move freely between them.

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


def latent_weight(params, config, layers=None):
    """The weight [outputs, z_dim] of the layer that reads z (SeFa's closed form uses it)."""
    del config, layers  # one layer reads z
    kernel = jnp.asarray(params["conv0"]["kernel"], jnp.float32)  # [s, s, z_dim, features]
    return kernel.transpose(2, 0, 1, 3).reshape(kernel.shape[2], -1).T


def validate(config) -> None:
    """Checks the keys DCGAN owns: model.{g_width, d_width, conv_impl, dtype} and the size.

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    config_lib.choice(config, "data.image_size", SIZES)
    config_lib.choice(config, "data.channels", (1, 3))
    config_lib.positive_int(config, "model.g_width")
    config_lib.positive_int(config, "model.d_width")
    config_lib.choice(config, "model.conv_impl", CONV_IMPLS)
    config_lib.choice(config, "model.dtype", DTYPES)
    classes = int(config.model.get("num_classes", 0) or 0)
    config_lib.require(
        classes == 0,
        "model.num_classes",
        f"DCGAN is unconditional (0), got {classes}; use model.name=sngan or biggan for labels",
    )


def build(config) -> tuple[Generator, Discriminator]:
    """Builds the DCGAN pair from `config.model` and `config.data` (see configs/dcgan.py).

    Args:
      config: ConfigDict with model.{g_width, d_width, dtype, conv_impl} and
        data.{image_size, channels}. (z_dim is implied by the generator's input.)

    Returns:
      (generator, discriminator) Flax modules.
    """
    conv_impl = resolve_conv_impl(config.model.get("conv_impl", "auto"))
    dtype = jnp.dtype(config.model.dtype)
    size = config.data.image_size
    generator = Generator(
        image_size=size,
        channels=config.data.channels,
        width=config.model.g_width,
        dtype=dtype,
        conv_impl=conv_impl,
    )
    discriminator = Discriminator(
        image_size=size, width=config.model.d_width, dtype=dtype, conv_impl=conv_impl
    )
    return generator, discriminator
