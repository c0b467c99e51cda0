"""BigGAN (Brock et al. 2019) generator and discriminator for 32, 64 and 128 px images.

The layouts of BigGAN-PyTorch (the authors' code) and StudioGAN's `big_resnet`, with spectral
norm in both networks, a shared class embedding and hierarchical latents in G, projection in D.

Generator. z [B, z_dim] is split into `blocks + 1` equal chunks. The first goes through an
SNDense to the `4 x 4 x g0` map; block i gets the conditioning vector
`c_i = concat(shared(y), z_{i+1})` (`shared`: a plain `nn.Embed` of `model.shared_dim`, the
only layer of G without spectral norm, as in BigGAN) or just `z_{i+1}` when unconditional.
GBlock(in -> out): cBN(c), ReLU, 2x nearest upsample, SNConv3x3 (in -> out), cBN(c), ReLU,
SNConv3x3 (out -> out); shortcut: 2x upsample, SNConv1x1 (in -> out). cBN is BigGAN's
`BN(x) * (1 + SNDense(c)) + SNDense(c)` (`blocks.ConditionalBatchNorm(linear=True)`). Then
self-attention after the block whose output is `model.attn_res` px; BN (with affine), ReLU,
SNConv3x3 -> `channels`, tanh.

Discriminator. DBlocks (hidden width = output width, BigGAN's "wide" D): ReLU (not in the first
block), SNConv3x3 (in -> out), ReLU, SNConv3x3 (out -> out), 2x2 average pooling if the block
downsamples; shortcut SNConv1x1 + pooling when the width changes or it downsamples, else the
identity. Self-attention after the first block whose output is `model.attn_res` px. Then ReLU,
global sum pooling, SNDense -> 1, and when conditional `logit += sum(SNEmbed(y) * h)`.

Widths (multiples of `g_width` = `ch` / `d_width`), image resolution after each block:

  size  G: first map, block outputs     G res            D block outputs         D res
  32    4, 4, 4, 4                      8, 16, 32        2, 2, 2, 2 (Y Y N N)     16, 8, 8, 8
  64    16, 16, 8, 4, 2                 8, 16, 32, 64    1, 2, 4, 8, 16 (Y*4 N)   32, 16, 8, 4, 4
  128   16, 16, 8, 4, 2, 1              8 ... 128        1, 2, 4, 8, 16, 16       64 ... 4, 4

32 px is StudioGAN's CIFAR-10 BigGAN (G `g_conv_dim * 4`, D `d_conv_dim * 2`; BigGAN-PyTorch
uses `ch * 4` in D too); 64 and 128 px are BigGAN-PyTorch's ImageNet layouts (StudioGAN's
64 px G is half as wide). Parameter counts (also `python bench/torch_biggan.py`):
  * StudioGAN's CIFAR-10 setting (32 px, z 80, shared 128, g/d widths 96, attention at 16 px,
    10 classes): G 9,416,196, D 2,415,170 (unconditional: G 8,825,092, D 2,413,250).
  * The paper's 128 px ImageNet model (ch 96, z 120, shared 128, attention at 64 px, 1000
    classes): G 70,433,988, D 87,982,370, the counts compare_gan's BigGAN test asserts.

`model.attn_res` (0: no attention) must be a resolution where both networks have a block
output (32 px: 8, 16; 64 px: 8, 16, 32; 128 px: 8, 16, 32, 64), with a multiple of 8
channels there in both. With attn_res 8 at 32 px, D's attention follows its second block only
(BigGAN-PyTorch would add one after each of the three 8 px blocks).

Other choices, where the references differ or the code departs from them:
  * Initialisation: orthogonal for every weight (BigGAN's and StudioGAN's 'ortho'), zero
    biases; batch-norm affines 1 / 0; attention gamma 0.
  * Batch norm eps `model.bn_eps` (default 1e-4, StudioGAN; BigGAN-PyTorch 1e-5), PyTorch
    momentum 0.1; spectral norm eps 1e-6 (StudioGAN), one power iteration per train call.
  * Every conv and dense has a bias except the cBN maps and the attention convs (both
    references). The first SNDense's outputs are read as a (C, 4, 4) map, PyTorch's view, so
    that PyTorch weights copy over by transposition alone.
  * Shortcut 1x1 convs run before G's upsampling and after D's pooling: both resamplings are
    per-channel and linear with weights summing to 1, so this is the same function with a
    quarter of the multiply-adds (the parity tests check it against the references' order).
  * D's head (sum pooling, dense, projection) runs in float32 whatever `model.dtype`.

Config keys (checked by `validate`):
  model.z_dim        latent size; must split into `blocks + 1` equal chunks (32 px: 4,
                     64 px: 5, 128 px: 6 chunks; StudioGAN CIFAR 80, BigGAN 128 px 120).
  model.g_width      G's `ch`, integer >= 1.     model.d_width   D's `ch`, integer >= 1.
  model.shared_dim   size of the shared class embedding (128), integer >= 1.
  model.attn_res     0 or a resolution listed above.
  model.dtype        compute dtype 'float32' | 'bfloat16' (variables stay float32).
  model.bn_eps       optional, batch-norm eps in (0, 1) (default 1e-4).
  model.num_classes  common key, read only: 0 unconditional, else the number of classes.
  data.image_size    32, 64 or 128;   data.channels  1 or 3.

Variables: 'params', 'batch_stats' (G), 'spectral' (both). Names: G `shared`, `linear`,
`block1..n` (`bn1`, `conv1`, `bn2`, `conv2`, `conv_sc`), `attention`, `bn_out`, `conv_out`;
D `block1..n` (`conv1`, `conv2`, `conv_sc`), `attention`, `linear`, `embed`. The PyTorch
port uses the same names, and `torch_blocks.to_flax` copies its weights.

`orthogonal_penalty(params)` is BigGAN's modified orthogonal regularisation of G's weights.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax import config_lib
from gan_jax.models import blocks
from gan_jax.models.spectral import SNDense

SIZES = (32, 64, 128)
START = 4  # side of G's first map and of D's last
BN_EPS = 1e-4  # StudioGAN's batch-norm eps, the default of model.bn_eps
BN_MOMENTUM = 0.1  # PyTorch's convention
SN_EPS = 1e-6  # StudioGAN's spectral-norm eps
Dtype = jnp.dtype | str

ORTHO = nn.initializers.orthogonal()


@dataclasses.dataclass(frozen=True)
class Layout:
    """One image size's architecture, widths as multiples of the width `ch`.

    Attributes:
      g_mults: G's first map width, then each GBlock's output width (len = blocks + 1).
      d_mults: each DBlock's output width (the first block has no pre-activation).
      d_down: whether each DBlock halves the resolution.
    """

    g_mults: tuple[int, ...]
    d_mults: tuple[int, ...]
    d_down: tuple[bool, ...]

    @property
    def g_blocks(self) -> int:
        return len(self.g_mults) - 1

    def g_res(self) -> tuple[int, ...]:
        """Resolution after each GBlock."""
        return tuple(START * 2 ** (i + 1) for i in range(self.g_blocks))

    def d_res(self, image_size: int) -> tuple[int, ...]:
        """Resolution after each DBlock."""
        res, out = image_size, []
        for down in self.d_down:
            res //= 2 if down else 1
            out.append(res)
        return tuple(out)


LAYOUTS = {
    32: Layout((4, 4, 4, 4), (2, 2, 2, 2), (True, True, False, False)),
    64: Layout((16, 16, 8, 4, 2), (1, 2, 4, 8, 16), (True,) * 4 + (False,)),
    128: Layout((16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
}


def layout(image_size: int) -> Layout:
    """The `Layout` of `image_size` (32, 64 or 128; ValueError for other sizes)."""
    return blocks.pick_layout(LAYOUTS, image_size, "biggan")


def attention_resolutions(image_size: int) -> tuple[int, ...]:
    """Resolutions where both G and D have a block output: the allowed nonzero `attn_res`.

    Args:
      image_size: 32, 64 or 128.

    Returns:
      Sorted resolutions.
    """
    lay = layout(image_size)
    return tuple(sorted(set(lay.g_res()) & set(lay.d_res(image_size))))


def num_z_chunks(image_size: int) -> int:
    """Chunks z splits into: one for the first dense layer, one per GBlock."""
    return layout(image_size).g_blocks + 1


def _attention(dtype: Dtype) -> blocks.SelfAttention:
    return blocks.SelfAttention(sn_eps=SN_EPS, kernel_init=ORTHO, dtype=dtype, name="attention")


# The module docstring's GBlock and DBlock in the shared blocks' terms.
_GBlock = functools.partial(
    blocks.ResGBlock,
    names=("bn1", "conv1", "bn2", "conv2", "conv_sc"),
    linear_norm=True,
    bn_momentum=BN_MOMENTUM,
    sn_eps=SN_EPS,
    kernel_init=ORTHO,
    shortcut_init=ORTHO,
)
_DBlock = functools.partial(
    blocks.ResDBlock,
    names=("conv1", "conv2", "conv_sc"),
    kernel_init=ORTHO,
    shortcut_init=ORTHO,
    sn_eps=SN_EPS,
)


class Generator(nn.Module):
    """z [B, z_dim] (+ labels [B]) -> images [B, image_size, image_size, channels] in [-1, 1].

    Attributes:
      image_size: 32, 64 or 128.
      channels: image channels (1 or 3).
      width: BigGAN's `ch` (see the module docstring's table).
      shared_dim: size of the shared class embedding (conditional models).
      num_classes: 0 unconditional, else the number of classes.
      attn_res: resolution of the self-attention block, 0 for none.
      bn_eps: batch-norm eps.
      dtype: compute dtype; params, batch statistics and spectral vectors stay float32.
    """

    image_size: int = 32
    channels: int = 3
    width: int = 96
    shared_dim: int = 128
    num_classes: int = 0
    attn_res: int = 16
    bn_eps: float = BN_EPS
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, labels=None, train: bool = False) -> jax.Array:
        """Generates images; `train` uses batch statistics, updates 'batch_stats' and 'spectral'.

        Args:
          z: noise [B, z_dim], z_dim divisible by `num_z_chunks(image_size)`.
          labels: int class ids [B] (conditional models only; ignored when num_classes = 0).
          train: batch-norm and spectral-norm mode.

        Returns:
          float32 images [B, image_size, image_size, channels] in [-1, 1].
        """
        lay = layout(self.image_size)
        n = lay.g_blocks
        if z.ndim != 2 or z.shape[1] % (n + 1):
            raise ValueError(
                f"z must be [B, z_dim] with z_dim divisible by {n + 1} at {self.image_size} px "
                f"(one chunk for the first layer, one per block), got shape {z.shape}"
            )
        labels = blocks.check_labels(labels, self.num_classes, z.shape[0])
        widths = [self.width * m for m in lay.g_mults]
        chunks = jnp.split(z.astype(jnp.float32), n + 1, axis=1)
        if self.num_classes:
            shared = nn.Embed(
                self.num_classes, self.shared_dim, embedding_init=ORTHO, name="shared"
            )(labels)
            conds = [jnp.concatenate([shared, zi], axis=1) for zi in chunks[1:]]
        else:
            conds = chunks[1:]

        h = SNDense(
            START * START * widths[0],
            kernel_init=ORTHO,
            eps=SN_EPS,
            dtype=self.dtype,
            name="linear",
        )(chunks[0], update=train)
        # PyTorch's view(B, C, 4, 4), then NHWC: weights port by transposition alone.
        h = h.reshape(z.shape[0], widths[0], START, START).transpose(0, 2, 3, 1)
        for i, (w, res) in enumerate(zip(widths[1:], lay.g_res(), strict=True)):
            block = _GBlock(w, bn_eps=self.bn_eps, dtype=self.dtype, name=f"block{i + 1}")
            h = block(h, conds[i], train)
            if res == self.attn_res:
                h = _attention(self.dtype)(h, train)
        return blocks.image_output(
            h,
            self.channels,
            kernel_init=ORTHO,
            dtype=self.dtype,
            train=train,
            bn_eps=self.bn_eps,
            sn_eps=SN_EPS,
        )


class Discriminator(blocks.ResNetDiscriminator):
    """images [B, H, W, C] (+ labels [B]) -> logits [B] float32 (`blocks.ResNetDiscriminator`).

    Attributes:
      image_size: 32, 64 or 128.
      width: BigGAN's `ch` (see the module docstring's table).
      num_classes: 0 unconditional, else a projection head.
      dtype: compute dtype; params, spectral vectors and the head stay float32.
      attn_res: resolution of the self-attention block, 0 for none.
    """

    width: int = 96
    attn_res: int = 16

    def body(self, x: jax.Array, train: bool) -> jax.Array:
        """The DBlocks, self-attention after the first one at `attn_res`."""
        lay = layout(self.image_size)
        attended = False
        for i, (m, down, res) in enumerate(
            zip(lay.d_mults, lay.d_down, lay.d_res(self.image_size), strict=True)
        ):
            block = _DBlock(
                self.width * m,
                downsample=down,
                preactivation=i > 0,
                dtype=self.dtype,
                name=f"block{i + 1}",
            )
            x = block(x, train)
            if res == self.attn_res and not attended:
                x = _attention(self.dtype)(x, train)
                attended = True
        return x

    def head(self, h: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
        """`blocks.projection_head` with orthogonal initialisation."""
        return blocks.projection_head(
            h, labels, self.num_classes, kernel_init=ORTHO, sn_eps=SN_EPS, train=train
        )


def latent_weight(params, config, layers=None):
    """The weight [outputs, z_dim] of the dense layer that reads z's first chunk.

    The other chunks condition the blocks' batch norms; their columns are zero, so SeFa's
    directions move the first chunk (the global layout) only.
    """
    del layers
    kernel = jnp.asarray(params["linear"]["kernel"], jnp.float32)  # [chunk, outputs]
    z_dim = int(config.model.z_dim)
    return jnp.zeros((kernel.shape[1], z_dim), jnp.float32).at[:, : kernel.shape[0]].set(kernel.T)


def validate(config) -> None:
    """Checks the keys BigGAN reads (see the module docstring) and how they fit together.

    Args:
      config: the run's ConfigDict.

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    blocks.validate_common(config, SIZES)
    config_lib.positive_int(config, "model.shared_dim")
    config_lib.positive_int(config, "model.attn_res", zero_ok=True)
    if "bn_eps" in config.model:
        config_lib.number_in(config, "model.bn_eps", 0.0, 1.0, low_open=True, high_open=True)
    if "num_classes" in config.model:
        config_lib.positive_int(config, "model.num_classes", zero_ok=True)

    size = config.data.image_size
    chunks = num_z_chunks(size)
    z_dim = config.model.z_dim
    lo, hi = z_dim // chunks * chunks, -(-z_dim // chunks) * chunks
    near = f"{lo} or {hi}" if lo else f"{hi}"
    config_lib.require(
        z_dim % chunks == 0,
        "model.z_dim",
        f"must split into {chunks} equal chunks at {size} px (one for the first layer, one per "
        f"generator block), e.g. {near}; got {z_dim}",
    )

    res = config.model.attn_res
    if res:
        allowed = attention_resolutions(size)
        config_lib.require(
            res in allowed,
            "model.attn_res",
            f"must be 0 (no attention) or a resolution with a block in both networks at "
            f"{size} px: {', '.join(map(str, allowed))}; got {res}",
        )
        lay = layout(size)
        g_ch = config.model.g_width * lay.g_mults[1 + lay.g_res().index(res)]
        d_ch = config.model.d_width * lay.d_mults[lay.d_res(size).index(res)]
        for key, ch in (("model.g_width", g_ch), ("model.d_width", d_ch)):
            config_lib.require(
                ch % 8 == 0,
                key,
                f"self-attention at {res} px needs a multiple of 8 channels there, this width "
                f"gives {ch}; change the width or model.attn_res",
            )


def build(config) -> tuple[Generator, Discriminator]:
    """Builds the BigGAN pair from `config.model` and `config.data` (keys: module docstring).

    Args:
      config: ConfigDict with model.{g_width, d_width, shared_dim, attn_res, dtype,
        [bn_eps], [num_classes]} and data.{image_size, channels}.

    Returns:
      (generator, discriminator) Flax modules.
    """
    m = config.model
    dtype = jnp.dtype(m.dtype)
    size = config.data.image_size
    classes = int(m.get("num_classes", 0) or 0)
    generator = Generator(
        image_size=size,
        channels=config.data.channels,
        width=m.g_width,
        shared_dim=m.shared_dim,
        num_classes=classes,
        attn_res=m.attn_res,
        bn_eps=float(m.get("bn_eps", BN_EPS)),
        dtype=dtype,
    )
    discriminator = Discriminator(
        image_size=size, width=m.d_width, num_classes=classes, attn_res=m.attn_res, dtype=dtype
    )
    return generator, discriminator
