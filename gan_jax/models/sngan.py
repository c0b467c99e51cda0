"""SNGAN ResNet generator and discriminator (Miyato et al. 2018), for 32, 48, 64 and 128 px.

The architecture of the paper's ResNet models (chainer `sngan_projection`) and of Mimicry's /
StudioGAN's SNGAN, conditional by class-conditional batch norm (G) and projection (D, Miyato &
Koyama 2018) when `config.model.num_classes > 0`.

Generator: z -> Dense (no spectral norm) -> [start, start, w0] -> GBlock x n -> BN, ReLU,
conv3x3 -> tanh. GBlock(in, out): BN/cBN, ReLU, 2x upsample, conv3x3 (in -> out), BN/cBN, ReLU,
conv3x3 (out -> out); shortcut: 2x upsample, conv1x1 (in -> out). The last BN is plain even
when conditional (as the paper's and Mimicry's models). No spectral norm in G.

Discriminator (spectral norm on every conv, dense and embedding): OptimizedDBlock (conv3x3,
ReLU, conv3x3, avgpool2; shortcut avgpool2, conv1x1), then DBlocks (ReLU, conv3x3 (in -> in),
ReLU, conv3x3 (in -> out), avgpool2 if downsampling; shortcut conv1x1 (+ avgpool2) when the
channels change or it downsamples, else identity), ReLU, global SUM pooling, SNDense -> 1;
conditional: `logit += sum(SNEmbed(y) * h)`.

Widths (`g_width`, `d_width` are the paper's `ch`; standard values in brackets):

  size  start  G widths (first map, then each block's output)   D block widths (downsampling)
  32    4      ch x (1, 1, 1, 1)          [ch 256]               ch x (1, 1, 1, 1) (Y Y N N) [128]
  48    6      ch x (8, 4, 2, 1)          [ch 64]                ch x (1, 2, 4, 8, 16) (Y Y Y Y N)
  64    4      ch x (16, 8, 4, 2, 1)      [ch 64]                ch x (1, 2, 4, 8, 16) (all Y)
  128   4      ch x (16, 16, 8, 4, 2, 1)  [ch 64]                ch x (1, 2, 4, 8, 16, 16) (Y*5 N)

32 px at the standard widths is the paper's CIFAR-10 ResNet (`sngan_projection`'s
`resnet_32` / `snresnet_32`: G 4,276,739 parameters, D 1,053,825 unconditional); 48 px is
Mimicry's SNGAN-48 (the paper's STL-10 ResNet); 64 and 128 px are `sngan_projection`'s 64 and
128 px models with ch = 64 (= Mimicry's SNGAN-64 / -128 with ngf = ndf = 1024).

Choices, where the references differ:
  * Upsampling: nearest (the paper's chainer code, StudioGAN); Mimicry uses bilinear
    (align_corners=False), available as `model.upsample = 'bilinear'`.
  * Initialisation as the paper's code and Mimicry (StudioGAN defaults to orthogonal):
    Xavier-uniform with gain sqrt(2) for the two 3x3 convs of every block, gain 1 for the
    shortcut 1x1 convs, G's first Dense and last conv, D's Dense and the class embedding;
    biases zero (chainer's default; Mimicry keeps PyTorch's uniform bias init); batch-norm
    and cBN gains 1, biases 0.
  * DBlock's hidden width is its input width (paper, Mimicry; StudioGAN uses the output
    width), and every D block of the 64 px model downsamples (to 2x2; StudioGAN's last one
    does not).
  * Every conv and dense has a bias, D's last Dense included (Mimicry, StudioGAN; the paper's
    CIFAR D has none there: one parameter).
  * Shortcuts: the 1x1 conv runs before G's upsampling and after D's average pooling. Both
    operators are linear and per-channel (nearest and bilinear weights sum to 1, so biases
    commute too), so this is the same function with a quarter of the multiply-adds.
  * D's head (sum pooling, Dense, projection) runs in float32 whatever `model.dtype`.

Config keys (validated by `validate`):
  model.z_dim       noise size (the generator adapts to the input; validated >= 1).
  model.g_width     G's `ch` (see the table), integer >= 1.
  model.d_width     D's `ch`, integer >= 1.
  model.num_classes common key, read only: 0 unconditional, else the number of classes.
  model.dtype       compute dtype 'float32' | 'bfloat16' (params and statistics float32).
  model.upsample    optional, 'nearest' (default) | 'bilinear'.
  data.image_size   32, 48, 64 or 128;  data.channels  1 or 3.

Variables: 'params'; G 'batch_stats' (batch-norm running statistics); D 'spectral' ({'u', 'v'}
of every spectrally normalised layer). Names: G `linear`, `block1..n` (`b1`, `b2`, `c1`,
`c2`, `c_sc`), `bn_out`, `conv_out`; D `block1..n` (`c1`, `c2`, `c_sc`), `linear`, `embed`.
PyTorch port with the same names and a weight copy: `bench/torch_sngan.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax import config_lib
from gan_jax.models import blocks

SIZES = (32, 48, 64, 128)
UPSAMPLES = blocks.UPSAMPLES
Dtype = jnp.dtype | str


@dataclasses.dataclass(frozen=True)
class Layout:
    """One image size's architecture, widths as multiples of `ch`.

    Attributes:
      start: side of the generator's first feature map.
      g_mults: the first map's width, then each GBlock's output width (len = blocks + 1).
      d_mults: each discriminator block's output width (the first is the optimized block).
      d_down: whether each discriminator block halves the resolution.
    """

    start: int
    g_mults: tuple[int, ...]
    d_mults: tuple[int, ...]
    d_down: tuple[bool, ...]


LAYOUTS = {
    32: Layout(4, (1, 1, 1, 1), (1, 1, 1, 1), (True, True, False, False)),
    48: Layout(6, (8, 4, 2, 1), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    64: Layout(4, (16, 8, 4, 2, 1), (1, 2, 4, 8, 16), (True,) * 5),
    128: Layout(4, (16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
}


def layout(image_size: int) -> Layout:
    """The `Layout` of `image_size` (32, 48, 64 or 128; ValueError for other sizes)."""
    return blocks.pick_layout(LAYOUTS, image_size, "sngan")


def xavier(gain: float = 1.0) -> nn.initializers.Initializer:
    """`torch.nn.init.xavier_uniform_(w, gain)`: U(+-gain * sqrt(6 / (fan_in + fan_out)))."""
    return nn.initializers.variance_scaling(gain * gain, "fan_avg", "uniform")


XAVIER_1 = xavier(1.0)
XAVIER_SQRT2 = xavier(math.sqrt(2.0))


# `F.interpolate(x, scale_factor=2, mode=method)`, 'nearest' or 'bilinear' (align_corners=False).
upsample2x = blocks.upsample_2x


# The module docstring's GBlock, and its OptimizedDBlock (first: no pre-activation, hidden =
# out) and DBlocks (hidden = in), in the shared blocks' terms.
_GBlock = functools.partial(
    blocks.ResGBlock,
    names=("b1", "c1", "b2", "c2", "c_sc"),
    spectral=False,
    kernel_init=XAVIER_SQRT2,
    shortcut_init=XAVIER_1,
)
_DBlock = functools.partial(
    blocks.ResDBlock, names=("c1", "c2", "c_sc"), kernel_init=XAVIER_SQRT2, shortcut_init=XAVIER_1
)


class Generator(nn.Module):
    """z [B, z_dim] (+ labels [B]) -> images [B, image_size, image_size, channels] in [-1, 1].

    Attributes:
      image_size: 32, 48, 64 or 128.
      channels: image channels (1 or 3).
      width: the paper's `ch` (see the module docstring's table).
      num_classes: 0 unconditional, else class-conditional batch norm in every block.
      upsample: 'nearest' or 'bilinear'.
      dtype: compute dtype; params and batch-norm statistics stay float32.
    """

    image_size: int = 32
    channels: int = 3
    width: int = 256
    num_classes: int = 0
    upsample: str = "nearest"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, labels=None, train: bool = False) -> jax.Array:
        """Generates images; `train` uses batch statistics and updates 'batch_stats'.

        Args:
          z: noise [B, z_dim].
          labels: int class ids [B] (conditional models only; ignored when num_classes = 0).
          train: batch-norm mode.

        Returns:
          float32 images [B, image_size, image_size, channels] in [-1, 1].
        """
        lay = layout(self.image_size)
        widths = [self.width * m for m in lay.g_mults]
        labels = blocks.check_labels(labels, self.num_classes, z.shape[0])
        s = lay.start
        h = nn.Dense(
            s * s * widths[0],
            kernel_init=XAVIER_1,
            bias_init=nn.initializers.zeros,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            name="linear",
        )(z)
        h = h.reshape(z.shape[0], s, s, widths[0])
        for i, w in enumerate(widths[1:]):
            block = _GBlock(
                w,
                num_classes=self.num_classes,
                upsample=self.upsample,
                dtype=self.dtype,
                name=f"block{i + 1}",
            )
            h = block(h, labels, train)
        return blocks.image_output(
            h, self.channels, kernel_init=XAVIER_1, dtype=self.dtype, train=train, spectral=False
        )


class Discriminator(blocks.ResNetDiscriminator):
    """images [B, H, W, C] (+ labels [B]) -> logits [B] float32 (`blocks.ResNetDiscriminator`).

    Attributes:
      image_size: 32, 48, 64 or 128.
      width: the paper's `ch` (see the module docstring's table).
      num_classes: 0 unconditional, else a projection head.
      dtype: compute dtype; params, spectral vectors and the head stay float32.
    """

    width: int = 128

    def body(self, x: jax.Array, train: bool) -> jax.Array:
        """The OptimizedDBlock, then the DBlocks."""
        lay = layout(self.image_size)
        for i, (m, down) in enumerate(zip(lay.d_mults, lay.d_down, strict=True)):
            first = i == 0
            x = _DBlock(
                self.width * m,
                downsample=down,
                preactivation=not first,
                hidden_is_input=not first,
                dtype=self.dtype,
                name=f"block{i + 1}",
            )(x, train)
        return x

    def head(self, h: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
        """`blocks.projection_head` with Xavier initialisation (gain 1)."""
        return blocks.projection_head(
            h, labels, self.num_classes, kernel_init=XAVIER_1, sn_eps=1e-12, train=train
        )


def latent_weight(params, config, layers=None):
    """The weight [outputs, z_dim] of the layer that reads z (SeFa's closed form uses it)."""
    del config, layers  # one layer reads z
    return jnp.asarray(params["linear"]["kernel"], jnp.float32).T


def validate(config) -> None:
    """Checks the keys SNGAN reads: model.{z_dim, g_width, d_width, dtype, upsample}, data.*.

    Args:
      config: the run's ConfigDict.

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    blocks.validate_common(config, SIZES)
    if "upsample" in config.model:
        config_lib.choice(config, "model.upsample", UPSAMPLES)


def build(config) -> tuple[Generator, Discriminator]:
    """Builds the SNGAN pair from `config.model` and `config.data` (keys: module docstring).

    Args:
      config: ConfigDict with model.{g_width, d_width, dtype, [num_classes], [upsample]} and
        data.{image_size, channels}.

    Returns:
      (generator, discriminator) Flax modules.
    """
    dtype = jnp.dtype(config.model.dtype)
    size = config.data.image_size
    classes = int(config.model.get("num_classes", 0) or 0)
    generator = Generator(
        image_size=size,
        channels=config.data.channels,
        width=config.model.g_width,
        num_classes=classes,
        upsample=config.model.get("upsample", "nearest"),
        dtype=dtype,
    )
    discriminator = Discriminator(
        image_size=size, width=config.model.d_width, num_classes=classes, dtype=dtype
    )
    return generator, discriminator
