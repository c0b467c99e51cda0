"""A super-resolution generator in the SRResNet family (Ledig et al. 2017), for `sr` tasks.

  conv 3x3 (width) - LeakyReLU 0.2
  n_blocks x [conv 3x3 - LeakyReLU 0.2 - conv 3x3, scaled by `res_scale`, + input]
      (or, with block='rrdb', ESRGAN's residual-in-residual dense blocks, below)
  conv 3x3, + the first conv's output (the long skip)
  log2(factor) x [conv 3x3 to 4 x width - depth-to-space x2 (sub-pixel) - LeakyReLU 0.2]
  conv 3x3 to C, + the bicubic upsampling of the input

Differences from SRResNet, all in the direction later SR networks took: no batch norm
(EDSR and ESRGAN drop it: it costs PSNR and makes artefacts in GAN training), LeakyReLU
instead of PReLU, residual scaling (EDSR's 0.1 keeps deep stacks stable without BN), and the
output is added to a bicubic upsampling of the input, so the network learns only the missing
detail (VDSR's global residual) and starts as bicubic. The output is not squashed by tanh;
it may leave [-1, 1] slightly, as bicubic does, and is clipped when saved.

Every layer is a stride-1 convolution at the input's or an upsampled resolution, so the
network is translation-equivariant away from the zero-padded border: `gan_jax.translate`
tiles large images with overlap and gets the untiled result away from the seams.
`receptive_radius` gives how far (in input pixels) one output depends on its input.

RRDB (Wang et al. 2018, ESRGAN): a block is three residual dense blocks in a chain, and its
output is input + 0.2 x chain(input). A residual dense block runs five 3x3 convolutions, each
reading the concatenation of the block's input and every earlier convolution's output
(`growth` channels each, LeakyReLU 0.2; the fifth back to `width`, no activation), and
returns input + 0.2 x the fifth's output. It is ESRGAN's body; its head, tail and upsampler
stay the ones above (sub-pixel rather than ESRGAN's nearest-neighbour upsampling + conv).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax.models import layers

FACTORS = (2, 4, 8)
BLOCKS = ("res", "rrdb")  # SRResNet/EDSR residual blocks | ESRGAN's RRDB
_CONVS_PER_BLOCK = {"res": 2, "rrdb": 3 * 5}


def _conv(features: int, name: str, dtype) -> nn.Conv:
    return nn.Conv(
        features,
        (3, 3),
        padding=1,
        dtype=dtype,
        kernel_init=nn.initializers.variance_scaling(0.1, "fan_in", "normal"),
        name=name,
    )


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
    """[B, H, W, C * b^2] -> [B, H b, W b, C]: PyTorch's PixelShuffle channel order."""
    b, h, w, c = x.shape
    out = c // (block * block)
    x = x.reshape(b, h, w, out, block, block)  # channel index = c * b^2 + i * b + j
    x = x.transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(b, h * block, w * block, out)


def upsample_bicubic(x: jax.Array, factor: int) -> jax.Array:
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, h * factor, w * factor, c), "bicubic", antialias=False)


def receptive_radius(n_blocks: int, factor: int, block: str = "res") -> int:
    """Input pixels on each side that one output pixel depends on (an upper bound)."""
    stages = factor.bit_length() - 1
    convs = 1 + _CONVS_PER_BLOCK[block] * n_blocks + 1  # at the input's resolution
    radius = convs  # one pixel per 3x3 conv
    # Each upsampling conv and the last conv see one pixel of their (finer) map: less than
    # one input pixel each; plus bicubic's 2 input pixels.
    return radius + stages + 1 + 2


class DenseBlock(nn.Module):
    """ESRGAN's residual dense block: x + 0.2 conv5([x, h1, h2, h3, h4]), h_i densely fed."""

    width: int
    growth: int
    dtype: layers.Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        feats = [x]
        for i in range(4):
            h = _conv(self.growth, f"conv{i + 1}", self.dtype)(jnp.concatenate(feats, -1))
            feats.append(nn.leaky_relu(h, 0.2))
        out = _conv(self.width, "conv5", self.dtype)(jnp.concatenate(feats, -1))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual in residual: x + 0.2 (three dense blocks in a chain)(x)."""

    width: int
    growth: int
    dtype: layers.Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for i in range(3):
            h = DenseBlock(self.width, self.growth, self.dtype, name=f"rdb{i + 1}")(h)
        return x + 0.2 * h


class SRResNet(nn.Module):
    """Images [B, h, w, C] in [-1, 1] -> [B, h f, w f, out_channels] (f = `factor`).

    Attributes:
      factor: 2, 4 or 8.
      out_channels: output channels.
      width: feature channels.
      n_blocks: residual blocks.
      res_scale: each residual block's residual is scaled by this before it is added.
      block: 'res' (SRResNet/EDSR blocks) or 'rrdb' (ESRGAN's blocks, their own 0.2 scaling).
      growth: channels each convolution of an RRDB's dense blocks adds.
      dtype: compute dtype (params float32).
    """

    factor: int = 4
    out_channels: int = 3
    width: int = 64
    n_blocks: int = 8
    res_scale: float = 0.1
    block: str = "res"
    growth: int = 32
    dtype: layers.Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        del train  # no batch norm, no dropout: training and evaluation are the same network
        if self.factor not in FACTORS:
            raise ValueError(f"SRResNet: factor must be one of {FACTORS}, got {self.factor}")
        if self.block not in BLOCKS:
            raise ValueError(f"SRResNet: block must be one of {BLOCKS}, got {self.block!r}")
        if x.ndim != 4:
            raise ValueError(f"SRResNet: expected NHWC images [B, H, W, C], got {x.shape}")
        dt = self.dtype
        h = x.astype(dt)
        head = nn.leaky_relu(_conv(self.width, "conv_in", dt)(h), 0.2)
        h = head
        for j in range(self.n_blocks):
            if self.block == "rrdb":
                h = RRDB(self.width, self.growth, dt, name=f"rrdb{j}")(h)
                continue
            r = nn.leaky_relu(_conv(self.width, f"block{j}_conv1", dt)(h), 0.2)
            r = _conv(self.width, f"block{j}_conv2", dt)(r)
            h = h + self.res_scale * r
        h = _conv(self.width, "conv_body", dt)(h) + head
        for i in range(self.factor.bit_length() - 1):
            h = _conv(4 * self.width, f"up{i}", dt)(h)
            h = nn.leaky_relu(depth_to_space(h, 2), 0.2)
        out = _conv(self.out_channels, "conv_out", dt)(h).astype(jnp.float32)
        base = upsample_bicubic(x[..., : self.out_channels].astype(jnp.float32), self.factor)
        return base + out
