"""StyleGAN2 (Karras et al. 2020) as in StyleGAN2-ADA: mapping network, modulated synthesis
with skip toRGB, residual discriminator with minibatch standard deviation.

Generator
  mapping     z (normalised by its second moment) [+ a label embedding, normalised] ->
              `map_layers` equalised dense layers (learning rate x `map_lr_mul`, 0.01) -> w,
              broadcast to every synthesis layer (`num_ws` copies). A running average of w
              (`w_avg`, decay 0.995, updated by every training call) serves the truncation
              trick: w' = w_avg + psi (w - w_avg).
  synthesis   a learned 4x4 constant; per resolution a 2x-upsampling modulated 3x3
              convolution and a plain one (weights scaled per sample by the style, then
              demodulated to unit output variance), per-pixel noise with a learned strength,
              bias, leaky ReLU x sqrt(2); a toRGB (modulated 1x1, no demodulation) per
              resolution, summed through upsampled skips.
Discriminator
  fromRGB at the top resolution; per resolution a residual block (3x3, then a blurred
  stride-2 3x3; the skip a blurred 1x1 stride 2; summed x sqrt(1/2)), or plain blocks with
  `d_architecture='orig'` (the paper's CIFAR-10 setting); at 4x4 the minibatch standard
  deviation (groups of `mbstd_group`), a 3x3 conv, a dense layer and the output: one logit, or
  for a conditional D the projection onto a mapped label embedding (StyleGAN2-ADA's cmap).

Every weight is stored N(0, 1) and scaled at run time by its He constant (equalised learning
rate), so Adam moves all layers at the same rate. Upsampling and downsampling use the
[1, 3, 3, 1] filter (`upfirdn2d`). Where StyleGAN2-ADA upsamples with a transposed
convolution followed by the filter, this G filters first and then convolves: the same
family of operators, and XLA:CPU's transposed convolutions are slow (docs/FACTS.md).

Channels at resolution r: min(channel_base // r, channel_max) (StyleGAN2-ADA's rule;
its `auto` setting is channel_base 16384 below 512 px, 32768 from 512, cap 512).

Variables: 'params' and 'tracked' ({'mapping': {'w_avg'}}). Noise: random noise comes from
the 'noise' PRNG stream; 'const' noise is a fixed map per layer (derived from the layer's
index, the same for every checkpoint); 'none' adds nothing.

Mixed precision: the `bf16_res` highest resolutions of G and D compute their convolutions in
bfloat16 (styles, demodulation, biases, noise, toRGB sums and all parameters float32;
activations clamped to +-256 there, as StyleGAN2-ADA does with float16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax import config_lib
from gan_jax.models import blocks
from gan_jax.models.upfirdn2d import DEFAULT_FILTER, blur_for_strided_conv, downsample2d, upsample2d

SIZES = (32, 64, 128, 256, 512, 1024)
NOISE_MODES = ("random", "const", "none")
D_ARCHITECTURES = ("resnet", "orig")
SQRT2 = math.sqrt(2.0)
CONV_CLAMP = 256.0
LRELU_SLOPE = 0.2


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at resolution `res` (StyleGAN2-ADA's rule)."""
    return max(1, min(channel_base // res, channel_max))


def num_ws(image_size: int) -> int:
    """How many w vectors the synthesis network reads: one per convolution plus the last toRGB."""
    return 2 * int(math.log2(image_size)) - 2


def noise_resolutions(image_size: int) -> tuple[int, ...]:
    """The resolution of each synthesis layer's noise map, by layer index (4, 8, 8, 16, 16, ...)."""
    top = int(math.log2(image_size))
    return (4, *(2**r for r in range(3, top + 1) for _ in range(2)))


def const_noise_maps(image_size: int) -> tuple[jax.Array, ...]:
    """Every layer's fixed noise map [1, res, res, 1] (what noise_mode='const' adds)."""
    return tuple(_const_noise(i, r) for i, r in enumerate(noise_resolutions(image_size)))


def lrelu(x):
    """Leaky ReLU (0.2) times sqrt(2), so that unit-variance inputs keep unit variance."""
    return jnp.where(x >= 0, x, LRELU_SLOPE * x) * jnp.asarray(SQRT2, x.dtype)


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def _clamp(x, on: bool):
    return jnp.clip(x, -CONV_CLAMP, CONV_CLAMP) if on else x


def conv2d(x: jax.Array, w: jax.Array, *, stride: int = 1, padding="SAME") -> jax.Array:
    """NHWC x HWIO convolution."""
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def modulated_conv2d(
    x: jax.Array,
    weight: jax.Array,
    styles: jax.Array,
    *,
    demodulate: bool = True,
    up: int = 1,
    eps: float = 1e-8,
) -> jax.Array:
    """StyleGAN2's modulated convolution, computed as scale -> shared conv -> scale.

    Mathematically the convolution of x[b] with weight * styles[b] (over input channels),
    divided per output channel by the norm of that modulated weight when demodulating. Scaling
    the input instead of the weight keeps one shared kernel, so the batch is one ordinary
    convolution (StyleGAN2-ADA's non-fused form); the test checks it against per-sample
    kernels.

    Args:
      x: [B, H, W, I].
      weight: [k, k, I, O] (already multiplied by any gain).
      styles: [B, I].
      demodulate: divide each output channel by its modulated weight's L2 norm.
      up: 1, or 2 to upsample x (zero insertion + [1, 3, 3, 1] filter) before the conv.
      eps: added under the square root.

    Returns:
      [B, H * up, W * up, O].
    """
    dtype = x.dtype
    x = x * styles[:, None, None, :].astype(dtype)
    if up > 1:
        x = upsample2d(x, DEFAULT_FILTER, up=up)
    x = conv2d(x, weight.astype(dtype))
    if demodulate:
        w2 = jnp.square(weight.astype(jnp.float32))  # [k, k, I, O]
        d = jax.lax.rsqrt(jnp.einsum("bi,io->bo", jnp.square(styles), w2.sum((0, 1))) + eps)
        x = x * d[:, None, None, :].astype(dtype)
    return x


class EqDense(nn.Module):
    """A dense layer with equalised learning rate (StyleGAN2-ADA's FullyConnectedLayer).

    Weights are stored N(0, 1 / lr_mul) and used times lr_mul / sqrt(fan_in); the bias is
    stored as `bias_init` and used times lr_mul.
    """

    features: int
    lr_mul: float = 1.0
    bias_init: float = 0.0
    activation: str = "linear"  # linear | lrelu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        w = self.param(
            "kernel",
            nn.initializers.normal(1.0 / self.lr_mul),
            (fan_in, self.features),
            jnp.float32,
        )
        b = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
        x = x.astype(jnp.float32) @ (w * (self.lr_mul / math.sqrt(fan_in)))
        x = x + b * self.lr_mul
        return lrelu(x) if self.activation == "lrelu" else x


class EqConv(nn.Module):
    """A convolution with equalised learning rate; `down=2` blurs then strides (D's layers)."""

    features: int
    kernel: int = 3
    bias: bool = True
    activation: str = "lrelu"
    down: int = 1
    gain: float = 1.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1] * self.kernel * self.kernel
        w = self.param(
            "kernel",
            nn.initializers.normal(1.0),
            (self.kernel, self.kernel, x.shape[-1], self.features),
            jnp.float32,
        )
        w = (w * (1.0 / math.sqrt(fan_in))).astype(self.dtype)
        x = x.astype(self.dtype)
        if self.down > 1:
            if self.kernel == 1:
                x = downsample2d(x, DEFAULT_FILTER, down=self.down)
                x = conv2d(x, w)
            else:
                x = blur_for_strided_conv(x, self.kernel)
                x = conv2d(x, w, stride=self.down, padding="VALID")
        else:
            x = conv2d(x, w)
        if self.bias:
            b = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            x = x + b.astype(self.dtype)
        if self.activation == "lrelu":
            x = lrelu(x)
        x = x * jnp.asarray(self.gain, x.dtype)
        return _clamp(x, self.dtype != jnp.float32)


# ----------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """z [, label] -> w; with `num_ws`, broadcast to [B, num_ws, w_dim] and truncatable.

    Attributes:
      z_dim: latent size (0: a label-only mapping, as D's cmap).
      num_classes: 0 unconditional.
      w_dim: width of w (and of every hidden layer).
      num_layers: dense layers.
      lr_mul: learning-rate multiplier of the dense layers.
      num_ws: copies of w to return (None: return [B, w_dim]).
      w_avg_beta: decay of the tracked average of w (None: not tracked).
    """

    z_dim: int
    num_classes: int
    w_dim: int
    num_layers: int = 8
    lr_mul: float = 0.01
    num_ws: int | None = None
    w_avg_beta: float | None = 0.995

    @nn.compact
    def __call__(
        self,
        z: jax.Array | None,
        labels: jax.Array | None,
        *,
        train: bool = False,
        psi: float | jax.Array = 1.0,
        cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> jax.Array:
        parts = []
        if self.z_dim:
            parts.append(normalize_2nd_moment(z.astype(jnp.float32)))
        if self.num_classes:
            one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)
            parts.append(normalize_2nd_moment(EqDense(self.w_dim, name="embed")(one_hot)))
        x = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = EqDense(self.w_dim, lr_mul=self.lr_mul, activation="lrelu", name=f"fc{i}")(x)
        if self.w_avg_beta is not None:
            w_avg = self.variable("tracked", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)
            if train and update_w_avg and not self.is_initializing():
                mean = jnp.mean(jax.lax.stop_gradient(x), axis=0)
                w_avg.value = mean + self.w_avg_beta * (w_avg.value - mean)
        if self.num_ws is None:
            return x
        x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        if self.w_avg_beta is not None and not (isinstance(psi, float | int) and psi == 1):
            avg = w_avg.value[None, None, :]
            truncated = avg + jnp.asarray(psi, jnp.float32) * (x - avg)
            if cutoff is None:
                x = truncated
            else:
                layer = jnp.arange(self.num_ws)[None, :, None]
                x = jnp.where(layer < cutoff, truncated, x)
        return x


def _const_noise(layer_index: int, res: int) -> jax.Array:
    """The fixed noise map of one layer (a function of the layer, not of the checkpoint)."""
    key = jax.random.fold_in(jax.random.PRNGKey(20_200_000), layer_index)
    return jax.random.normal(key, (1, res, res, 1), jnp.float32)


class SynthesisLayer(nn.Module):
    """A modulated 3x3 convolution (optionally 2x upsampling), noise, bias, leaky ReLU."""

    features: int
    resolution: int
    layer_index: int
    up: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, w: jax.Array, noise_mode: str, noise_map: jax.Array | None = None
    ) -> jax.Array:
        in_ch = x.shape[-1]
        styles = EqDense(in_ch, bias_init=1.0, name="affine")(w)
        weight = self.param("kernel", nn.initializers.normal(1.0), (3, 3, in_ch, self.features))
        x = modulated_conv2d(x.astype(self.dtype), weight, styles, up=self.up)
        strength = self.param("noise_strength", nn.initializers.zeros, (), jnp.float32)
        if noise_map is not None:  # given maps (the projector's) win over noise_mode
            noise = noise_map
        elif noise_mode == "random":
            shape = (x.shape[0], self.resolution, self.resolution, 1)
            noise = jax.random.normal(self.make_rng("noise"), shape, jnp.float32)
        elif noise_mode == "const":
            noise = _const_noise(self.layer_index, self.resolution)
        else:
            noise = None
        x = x.astype(jnp.float32)
        if noise is not None:
            x = x + noise * strength
        b = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        x = lrelu(x + b)
        return _clamp(x, self.dtype != jnp.float32).astype(self.dtype)


class ToRGB(nn.Module):
    """A modulated 1x1 convolution without demodulation, plus bias: features -> image."""

    channels: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        in_ch = x.shape[-1]
        styles = EqDense(in_ch, bias_init=1.0, name="affine")(w) * (1.0 / math.sqrt(in_ch))
        weight = self.param("kernel", nn.initializers.normal(1.0), (1, 1, in_ch, self.channels))
        y = modulated_conv2d(x.astype(self.dtype), weight, styles, demodulate=False)
        b = self.param("bias", nn.initializers.zeros, (self.channels,), jnp.float32)
        return _clamp(y.astype(jnp.float32) + b, self.dtype != jnp.float32)


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, S, S, C] (linear output, about [-1, 1])."""

    image_size: int
    channels: int
    channel_base: int
    channel_max: int
    bf16_res: int = 0

    def _dtype(self, res: int):
        top = int(math.log2(self.image_size))
        return jnp.bfloat16 if int(math.log2(res)) > top - self.bf16_res else jnp.float32

    @nn.compact
    def __call__(
        self, ws: jax.Array, noise_mode: str = "const", noise_maps: Sequence | None = None
    ) -> jax.Array:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        expected = num_ws(self.image_size)
        if ws.ndim != 3 or ws.shape[1] != expected:
            raise ValueError(f"ws must be [B, {expected}, w_dim], got shape {ws.shape}")
        num_noise = len(noise_resolutions(self.image_size))
        if noise_maps is not None:
            want = [(1, r, r, 1) for r in noise_resolutions(self.image_size)]
            got = [tuple(m.shape) for m in noise_maps]
            if len(got) != len(want) or any(g[1:] != w[1:] for g, w in zip(got, want)):
                raise ValueError(f"noise_maps must be {len(want)} maps [B, r, r, 1]: {want}")
        maps = list(noise_maps) if noise_maps is not None else [None] * num_noise
        ch = lambda r: channels_at(r, self.channel_base, self.channel_max)  # noqa: E731
        batch = ws.shape[0]
        const = self.param("const", nn.initializers.normal(1.0), (4, 4, ch(4)), jnp.float32)
        x = jnp.broadcast_to(const[None], (batch, 4, 4, ch(4)))
        layer = 0
        x = SynthesisLayer(ch(4), 4, layer, dtype=self._dtype(4), name="b4_conv1")(
            x, ws[:, 0], noise_mode, maps[0]
        )
        img = ToRGB(self.channels, dtype=self._dtype(4), name="b4_torgb")(x, ws[:, 1])
        res = 8
        while res <= self.image_size:
            dtype = self._dtype(res)
            x = SynthesisLayer(ch(res), res, layer + 1, up=2, dtype=dtype, name=f"b{res}_conv0")(
                x, ws[:, layer + 1], noise_mode, maps[layer + 1]
            )
            x = SynthesisLayer(ch(res), res, layer + 2, dtype=dtype, name=f"b{res}_conv1")(
                x, ws[:, layer + 2], noise_mode, maps[layer + 2]
            )
            img = upsample2d(img, DEFAULT_FILTER)
            img = img + ToRGB(self.channels, dtype=dtype, name=f"b{res}_torgb")(x, ws[:, layer + 3])
            layer += 2
            res *= 2
        return img.astype(jnp.float32)


class Generator(nn.Module):
    """StyleGAN2's generator with the package's interface: (z, labels, train) -> images.

    Methods beyond `__call__` (use with `apply(..., method=...)`):
      mapping(z, labels, train, psi, cutoff, update_w_avg) -> ws [B, num_ws, w_dim]
      synthesis(ws, noise_mode, noise_maps) -> images (noise_maps: one [B, r, r, 1] map per
        layer, `noise_resolutions`, instead of noise_mode's)
    Noise mode defaults: 'random' while training (needs the 'noise' PRNG stream), 'const'
    otherwise, so that sampling is deterministic.
    """

    image_size: int = 32
    channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    num_classes: int = 0
    map_layers: int = 8
    map_lr_mul: float = 0.01
    channel_base: int = 16384
    channel_max: int = 512
    w_avg_beta: float = 0.995
    bf16_res: int = 0

    def setup(self):
        self.map_net = MappingNetwork(
            z_dim=self.z_dim,
            num_classes=self.num_classes,
            w_dim=self.w_dim,
            num_layers=self.map_layers,
            lr_mul=self.map_lr_mul,
            num_ws=num_ws(self.image_size),
            w_avg_beta=self.w_avg_beta,
        )
        self.synthesis_net = SynthesisNetwork(
            image_size=self.image_size,
            channels=self.channels,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            bf16_res=self.bf16_res,
        )

    @property
    def num_ws(self) -> int:
        return num_ws(self.image_size)

    def mapping(self, z, labels=None, train: bool = False, psi=1.0, cutoff=None, update_w_avg=True):
        labels = blocks.check_labels(labels, self.num_classes, z.shape[0])
        return self.map_net(
            z, labels, train=train, psi=psi, cutoff=cutoff, update_w_avg=update_w_avg
        )

    def synthesis(self, ws, noise_mode: str = "const", noise_maps=None):
        return self.synthesis_net(ws, noise_mode, noise_maps)

    def __call__(self, z, labels=None, train: bool = False, psi=1.0, noise_mode=None):
        ws = self.mapping(z, labels, train=train, psi=psi)
        return self.synthesis(ws, noise_mode or ("random" if train else "const"))


# ----------------------------------------------------------------------------------------------
# Discriminator


def style_layers(image_size: int) -> list[tuple[int, str]]:
    """(index into ws, module name) of every modulated 3x3 convolution, coarse to fine."""
    out = [(0, "b4_conv1")]
    for k, res in enumerate(2**i for i in range(3, int(math.log2(image_size)) + 1)):
        out += [(2 * k + 1, f"b{res}_conv0"), (2 * k + 2, f"b{res}_conv1")]
    return out


def latent_weight(params, config, layers=None):
    """The style affines [sum of their outputs, w_dim] of the convolutions reading `layers`.

    SeFa on StyleGAN finds directions in w from the layers that turn w into styles; `layers`
    (indices into ws; None: all) picks coarse, middle or fine ones.
    """
    synthesis = params["synthesis_net"]
    picked = [
        jnp.asarray(synthesis[name]["affine"]["kernel"], jnp.float32).T
        for index, name in style_layers(int(config.data.image_size))
        if layers is None or index in layers
    ]
    if not picked:
        raise ValueError(f"no convolution reads ws {sorted(layers)}: pick other layers")
    return jnp.concatenate(picked, axis=0)


def minibatch_stddev(x: jax.Array, group_size: int, num_channels: int = 1) -> jax.Array:
    """Appends `num_channels` maps of the standard deviation over groups of samples.

    Sample i joins group i mod (B / G) (StyleGAN2's layout); G is the largest divisor of the
    batch not above `group_size`, so any batch size works.
    """
    b, h, w, c = x.shape
    g = max(d for d in range(1, min(group_size, b) + 1) if b % d == 0)
    f = num_channels
    y = x.astype(jnp.float32).reshape(g, b // g, h, w, f, c // f)
    y = y - y.mean(axis=0)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n, h, w, f, c/f]
    y = y.mean(axis=(1, 2, 4))  # [n, f]
    y = jnp.tile(y, (g, 1))  # [b, f]: sample i gets group i mod n
    y = jnp.broadcast_to(y[:, None, None, :], (b, h, w, f)).astype(x.dtype)
    return jnp.concatenate([x, y], axis=-1)


class Discriminator(nn.Module):
    """StyleGAN2's discriminator: (images, labels, train) -> logits [B]."""

    image_size: int = 32
    num_classes: int = 0
    channel_base: int = 16384
    channel_max: int = 512
    architecture: str = "resnet"
    mbstd_group: int = 4
    mbstd_channels: int = 1
    map_layers: int = 8
    cmap_dim: int = 0  # 0: the channels at 4x4
    bf16_res: int = 0

    def _dtype(self, res: int):
        top = int(math.log2(self.image_size))
        return jnp.bfloat16 if int(math.log2(res)) > top - self.bf16_res else jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, labels=None, train: bool = False) -> jax.Array:
        blocks.check_images(x, self.image_size)
        labels = blocks.check_labels(labels, self.num_classes, x.shape[0])
        ch = lambda r: channels_at(r, self.channel_base, self.channel_max)  # noqa: E731
        res = self.image_size
        h = EqConv(ch(res), 1, dtype=self._dtype(res), name=f"b{res}_fromrgb")(x)
        while res > 4:
            dtype = self._dtype(res)
            y = None
            if self.architecture == "resnet":
                y = EqConv(
                    ch(res // 2), 1, bias=False, activation="linear", down=2,
                    gain=math.sqrt(0.5), dtype=dtype, name=f"b{res}_skip",
                )(h)  # fmt: skip
            h = EqConv(ch(res), 3, dtype=dtype, name=f"b{res}_conv0")(h)
            gain = math.sqrt(0.5) if y is not None else 1.0
            h = EqConv(ch(res // 2), 3, down=2, gain=gain, dtype=dtype, name=f"b{res}_conv1")(h)
            if y is not None:
                h = y.astype(h.dtype) + h
            res //= 2
        h = h.astype(jnp.float32)
        if self.mbstd_group > 1:
            h = minibatch_stddev(h, self.mbstd_group, self.mbstd_channels)
        h = EqConv(ch(4), 3, name="b4_conv")(h)
        h = EqDense(ch(4), activation="lrelu", name="b4_fc")(h.reshape(h.shape[0], -1))
        if not self.num_classes:
            return EqDense(1, name="b4_out")(h)[:, 0]
        cmap_dim = self.cmap_dim or ch(4)
        out = EqDense(cmap_dim, name="b4_out")(h)
        cmap = MappingNetwork(
            z_dim=0,
            num_classes=self.num_classes,
            w_dim=cmap_dim,
            num_layers=self.map_layers,
            w_avg_beta=None,
            name="mapping",
        )(None, labels)
        return jnp.sum(out * cmap, axis=-1) / math.sqrt(cmap_dim)


# ----------------------------------------------------------------------------------------------
# Config


def _model(config, key, default):
    return config.model.get(key, default)


def validate(config) -> None:
    """Checks the keys StyleGAN2 reads (see `build`).

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    config_lib.choice(config, "data.image_size", SIZES)
    config_lib.choice(config, "data.channels", (1, 3))
    for key in ("model.z_dim", "model.w_dim", "model.channel_base", "model.channel_max"):
        config_lib.positive_int(config, key)
    for key, zero_ok in (("map_layers", False), ("mbstd_group", True), ("cmap_dim", True)):
        if key in config.model:
            config_lib.positive_int(config, f"model.{key}", zero_ok=zero_ok)
    if "map_lr_mul" in config.model:
        config_lib.number_in(config, "model.map_lr_mul", 0.0, 1.0, low_open=True)
    if "w_avg_beta" in config.model:
        config_lib.number_in(config, "model.w_avg_beta", 0.0, 1.0, high_open=True)
    if "style_mixing" in config.model:
        config_lib.number_in(config, "model.style_mixing", 0.0, 1.0)
    if "d_architecture" in config.model:
        config_lib.choice(config, "model.d_architecture", D_ARCHITECTURES)
    if "bf16_res" in config.model:
        config_lib.positive_int(config, "model.bf16_res", zero_ok=True)
        levels = int(math.log2(int(config.data.image_size))) - 1
        config_lib.require(
            int(config.model.bf16_res) <= levels,
            "model.bf16_res",
            f"is the number of top resolutions in bfloat16: 0 to {levels} at "
            f"{config.data.image_size} px, got {config.model.bf16_res}",
        )
    if "mbstd_channels" in config.model:
        config_lib.positive_int(config, "model.mbstd_channels")
        c4 = channels_at(4, int(config.model.channel_base), int(config.model.channel_max))
        config_lib.require(
            c4 % int(config.model.mbstd_channels) == 0,
            "model.mbstd_channels",
            f"must divide the channels at 4x4 ({c4})",
        )


def build(config) -> tuple[Generator, Discriminator]:
    """Builds StyleGAN2's pair from config.model.{z_dim, w_dim, map_layers, map_lr_mul,
    channel_base, channel_max, w_avg_beta, num_classes, d_architecture, mbstd_group,
    mbstd_channels, cmap_dim, bf16_res} and data.{image_size, channels}."""
    size = int(config.data.image_size)
    classes = int(_model(config, "num_classes", 0) or 0)
    base, cap = int(config.model.channel_base), int(config.model.channel_max)
    map_layers = int(_model(config, "map_layers", 8))
    bf16_res = int(_model(config, "bf16_res", 0))
    generator = Generator(
        image_size=size,
        channels=int(config.data.channels),
        z_dim=int(config.model.z_dim),
        w_dim=int(config.model.w_dim),
        num_classes=classes,
        map_layers=map_layers,
        map_lr_mul=float(_model(config, "map_lr_mul", 0.01)),
        channel_base=base,
        channel_max=cap,
        w_avg_beta=float(_model(config, "w_avg_beta", 0.995)),
        bf16_res=bf16_res,
    )
    discriminator = Discriminator(
        image_size=size,
        num_classes=classes,
        channel_base=base,
        channel_max=cap,
        architecture=str(_model(config, "d_architecture", "resnet")),
        mbstd_group=int(_model(config, "mbstd_group", 4)),
        mbstd_channels=int(_model(config, "mbstd_channels", 1)),
        map_layers=map_layers,
        cmap_dim=int(_model(config, "cmap_dim", 0)),
        bf16_res=bf16_res,
    )
    return generator, discriminator
