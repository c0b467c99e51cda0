"""Image-to-image networks: pix2pix's U-Net generator and PatchGAN discriminator (Isola et al.
2017), CycleGAN's ResNet generator (Zhu et al. 2017).

Everything is NHWC; images are float32 in [-1, 1]. The layers, widths, biases and
initialisation are those of the authors' PyTorch code (`pytorch-CycleGAN-and-pix2pix`,
`networks.py`), so parameter counts equal theirs (tests/test_pix2pix_models.py builds
independent PyTorch ports, counts them and compares outputs with the same weights):

  UNetGenerator      unet_256, batch norm, 3 -> 3 channels, width 64   54,413,955
  PatchDiscriminator n_layers=3, batch norm, 6 input channels, width 64  2,768,705
  ResnetGenerator    9 blocks, instance norm, 3 -> 3 channels, width 64  11,378,179

(pix2pix and CycleGAN print these rounded: 54.414 M, 2.769 M, 11.378 M.)

U-Net generator (`UNetGenerator`)
---------------------------------
Encoder: `depth` convolutions 4x4 stride 2 (padding 1), widths `width * min(2**i, 8)`
(C64-C128-C256-C512-C512-...), LeakyReLU 0.2 before each but the first, a norm after each but
the first and the last (the 1x1 bottleneck is never normalised, as in pix2pix). Decoder,
innermost first: ReLU, a 4x4 stride-2 transposed convolution (padding 1), norm, and at each
level the encoder's output of that level concatenated in front of the decoder's
(`concat([skip, up])`, pix2pix's order); the outermost layer maps `2 * width` channels to
`out_channels` and ends in tanh. `depth` defaults to log2(image side), down to 1x1 as pix2pix:
8 at 256 px (`unet_256`), 7 at 128, 6 at 64, 5 at 32.

Dropout (rate `dropout`, 0.5) follows the norm of the decoder layers at the levels where
pix2pix puts it: the `depth - 5` levels of width 8 x `width` between the innermost level and
the four outer ones (3 at 256 px, 2 at 128, as `unet_256` / `unet_128`), and at least one
level below 256 px (1 at 64 and 32 px) so that the generator keeps its only noise source.
`dropout_layers` overrides the count. pix2pix's paper puts dropout on the first three decoder
layers; its code (the reference here) on the three after the innermost one.

Dropout is active when `train=True` and, with `dropout_at_test=True`, also when `train=False`
(pix2pix's noise: its test script runs the generator in training mode, dropout on); it then
needs a 'dropout' PRNG stream in both modes. pix2pix's test script also keeps batch norm in
training mode (statistics of the test batch); that is `train=True` with `mutable=
['batch_stats']` and the updated statistics thrown away.

Upsampling formulation. The decoder's `ConvTranspose2d(4, 2, 1)` layers are
`layers.conv_transpose_4x4_s2`, the exact formulations DCGAN uses: 'lax' (XLA's transposed
convolution, the reference; the choice on GPU and TPU) and 'fast' (XLA:CPU: the forward as the
adjoint of a space-to-depth convolution, and a custom gradient that never asks XLA for the
transposed convolution's weight gradient, which XLA:CPU computes ~30x slower than the forward).
Same function and parameter layout either way, unlike upsample + conv, which is a different
model; `conv_impl='auto'` picks 'fast' on CPU (`dcgan.resolve_conv_impl`) and 'lax' elsewhere.

PatchGAN discriminator (`PatchDiscriminator`)
--------------------------------------------
C64 (no norm) - C128 - C256 - ... : `n_layers` 4x4 stride-2 convolutions, widths
`width * min(2**i, 8)`, then a 4x4 stride-1 convolution (width `width * min(2**n_layers, 8)`),
then a 4x4 stride-1 convolution to one channel; padding 1 everywhere, LeakyReLU 0.2 and a norm
after every convolution but the first and the last. It returns one logit per patch,
`[B, H / 2**n_layers - 2, W / 2**n_layers - 2]` float32 (30x30 at 256 px for n_layers=3);
the loss averages over patches. For pix2pix pass the input image as `condition`: the network
reads `concat([condition, image])` along channels (pix2pix's `cat((real_A, fake_B), 1)`), so
its first layer has `C_condition + C_image` input channels. CycleGAN passes no condition.

Receptive field (`receptive_field`, computed from the layer geometry `patch_layers`):
16 px for n_layers=1, 34 for 2, 70 for 3 (pix2pix's "70x70 PatchGAN"), 142 for 4.
`n_layers_for(image_size)` keeps the receptive field at the fraction of the image that
pix2pix's 70 px cover at 256 px (70 / 256 = 27%), choosing n_layers whose receptive field is
nearest to it in ratio (|log(rf / target)|):

  image_size  target (px)  n_layers  receptive field
  32          8.8          1         16   (the smallest PatchGAN)
  64          17.5         1         16
  128         35           2         34
  256         70           3         70
  512         140          4         142

ResNet generator (`ResnetGenerator`, CycleGAN)
----------------------------------------------
c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 (Johnson et al.'s network as
CycleGAN uses it): 7x7 convolutions on reflection-padded inputs, 3x3 stride-2 convolutions
(zero padding 1), residual blocks of two reflection-padded 3x3 convolutions (norm, ReLU, [dropout],
norm; added to the input), 3x3 stride-2 transposed convolutions (padding 1, output padding 1),
tanh. Widths scale with `width`; `n_blocks` defaults to 9 above 128 px and 6 up to 128 px
(CycleGAN's `resnet_9blocks` / `resnet_6blocks`). Its transposed convolution is
`conv_transpose_3x3_s2`: 'lax', or 'fast', the exact sub-pixel form (one stride-1 2x2
convolution producing the four output phases, then depth-to-space), whose gradients are all
stride-1 convolutions: on this 2-core CPU, forward + both gradients of CycleGAN's u128 layer
(batch 4, 32x32x256 -> 64x64x128) take 144 ms against 1,509 ms for 'lax' (forward alone 32
vs 38 ms), and of u64 (64x64x128 -> 128x128x64) 226 ms against 979 ms.

Norms (`norm`): 'batch' (`layers.BatchNorm`: PyTorch's BatchNorm2d statistics, momentum 0.1,
scale initialised N(1, 0.02) as pix2pix's init), 'instance' (Flax's `nn.InstanceNorm`, eps
1e-5, without affine parameters and without running statistics, as pix2pix/CycleGAN's
`InstanceNorm2d(affine=False, track_running_stats=False)`; `instance_affine=True` adds a
per-channel scale and bias) or 'none'. Instance norm normalises each sample by its own
statistics, in training and evaluation alike. Biases follow pix2pix: convolutions have none
when batch norm is used (its `use_bias = norm is InstanceNorm2d`), except the layers pix2pix
always gives one (the U-Net's last layer, the PatchGAN's first and last, the ResNet's last).
With 'none' every convolution has a bias (pix2pix's code drops them there too, a quirk not
copied).

Variables: 'params', plus 'batch_stats' with batch norm. Kernels are initialised N(0, 0.02),
biases 0 (pix2pix's `init_type='normal'`). Parameter layout as in `layers`: a convolution's
kernel is PyTorch's weight permuted to (kH, kW, in, out) (`permute(2, 3, 1, 0)`), a transposed
convolution's is `permute(2, 3, 0, 1)` (the scatter form, not flipped). Layer names: U-Net
`down{i}`, `down_norm{i}`, `up{i}`, `up_norm{i}` (level i, 0 outermost); PatchGAN `conv{i}`,
`norm{i}`; ResNet `conv_in`, `norm_in`, `down{i}`, `down_norm{i}`, `block{j}`
(`conv1`, `norm1`, `conv2`, `norm2`), `up{i}`, `up_norm{i}`, `conv_out`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

from gan_jax import config_lib
from gan_jax.errors import ConfigError
from gan_jax.input import tasks
from gan_jax.models import layers, srresnet
from gan_jax.models.dcgan import resolve_conv_impl

NORMS = ("batch", "instance", "none")
CONV_IMPLS = ("auto", "fast", "lax")
PIX2PIX_RF_FRACTION = 70 / 256  # the 70x70 PatchGAN's share of a 256 px image
MAX_WIDTH_MULT = 8  # widths stop growing at 8 x width (pix2pix's ngf * 8, ndf * 8)
_NHWC = ("NHWC", "HWIO", "NHWC")
_INIT = layers.dcgan_init()  # N(0, 0.02), pix2pix's init_type='normal'


# ----------------------------------------------------------------------------------------------
# Geometry


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def unet_depth(image_size: int) -> int:
    """The U-Net depth that takes `image_size` down to 1x1: log2(image_size) (8 at 256 px).

    Raises:
      ValueError: the size is not a power of two >= 4.
    """
    if not isinstance(image_size, (int, np.integer)) or not _is_power_of_two(int(image_size)):
        raise ValueError(f"UNetGenerator: image side must be a power of two, got {image_size}")
    if image_size < 4:
        raise ValueError(f"UNetGenerator: image side must be at least 4, got {image_size}")
    return int(image_size).bit_length() - 1


def default_dropout_layers(depth: int) -> int:
    """Decoder levels with dropout by default: pix2pix's `depth - 5`, at least 1 (see module doc).

    Never more than the `depth - 2` levels between the outermost and the innermost one.
    """
    return max(0, min(max(depth - 5, 1), depth - 2))


def patch_layers(n_layers: int) -> tuple[tuple[int, int, int], ...]:
    """The PatchGAN's convolutions as (kernel, stride, padding), input first.

    `n_layers` 4x4 stride-2 convolutions, then two 4x4 stride-1 ones (the last to one channel).
    """
    if not isinstance(n_layers, (int, np.integer)) or n_layers < 1:
        raise ValueError(f"PatchDiscriminator: n_layers must be an integer >= 1, got {n_layers}")
    return ((4, 2, 1),) * int(n_layers) + ((4, 1, 1), (4, 1, 1))


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input square one PatchGAN logit sees (70 for n_layers=3).

    From the geometry: walking back from one output pixel, a layer (k, s) turns a window of
    r pixels into (r - 1) * s + k.
    """
    r = 1
    for k, s, _ in reversed(patch_layers(n_layers)):
        r = (r - 1) * s + k
    return r


def patch_window(index: int, n_layers: int) -> tuple[int, int]:
    """[start, stop) along one axis of the input window that patch logit `index` sees.

    The window may start before 0 or end past the image (those pixels are zero padding).
    """
    jump, start = 1, 0
    for _, s, p in patch_layers(n_layers):
        start -= p * jump
        jump *= s
    start += index * jump
    return start, start + receptive_field(n_layers)


def patch_grid(image_size: int, n_layers: int) -> int:
    """Logits per side for an `image_size` input: image_size / 2**n_layers - 2 (30 at 256, n=3).

    Raises:
      ValueError: the side is not divisible by 2**n_layers or leaves no logit.
    """
    side = int(image_size)
    for k, s, p in patch_layers(n_layers):
        if s == 2 and side % 2:
            raise ValueError(
                f"PatchDiscriminator: image side {image_size} must be divisible by "
                f"2**n_layers = {2**n_layers}"
            )
        side = (side + 2 * p - k) // s + 1
        if side < 1:
            raise ValueError(
                f"PatchDiscriminator: image side {image_size} is too small for n_layers="
                f"{n_layers} (needs at least {3 * 2**n_layers})"
            )
    return side


def n_layers_for(image_size: int, target_fraction: float = PIX2PIX_RF_FRACTION) -> int:
    """The n_layers whose receptive field is nearest (in ratio) to `target_fraction` of the image.

    Only n_layers the image allows (`patch_grid` >= 1) are considered; see the module doc's
    table (1 at 32 and 64 px, 2 at 128, 3 at 256, 4 at 512).
    """
    if not target_fraction > 0:
        raise ValueError(f"target_fraction must be > 0, got {target_fraction}")
    target = target_fraction * image_size
    best, best_err = None, math.inf
    n = 1
    while image_size % 2**n == 0 and image_size >= 3 * 2**n:
        err = abs(math.log(receptive_field(n) / target))
        if err < best_err:
            best, best_err = n, err
        n += 1
    if best is None:
        raise ValueError(f"no PatchGAN fits a {image_size} px image (needs a multiple of 2, >= 6)")
    return best


def resnet_blocks_for(image_size: int) -> int:
    """CycleGAN's block count: 9 above 128 px (`resnet_9blocks`), 6 up to 128 px."""
    return 9 if image_size > 128 else 6


def _check_common(name: str, norm: str, width: int, conv_impl: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{name}: unknown norm {norm!r}; expected one of {NORMS}")
    if not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"{name}: width must be an integer >= 1, got {width}")
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"{name}: unknown conv_impl {conv_impl!r}; expected one of {CONV_IMPLS}")


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {rate}")


def _check_images(name: str, x: jax.Array) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name}: expected NHWC images [B, H, W, C], got shape {x.shape}")


# ----------------------------------------------------------------------------------------------
# Layers


def _conv_lax(x, kernel, stride, padding):
    pad = ((padding, padding), (padding, padding))
    return lax.conv_general_dilated(x, kernel, (stride, stride), pad, dimension_numbers=_NHWC)


def conv_transpose_3x3_s2(x: jax.Array, kernel: jax.Array, impl: str = "fast") -> jax.Array:
    """PyTorch's `ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1,
    bias=False)`, NHWC: [B, H, W, cin] -> [B, 2H, 2W, cout].

    Args:
      x: [B, H, W, cin].
      kernel: [3, 3, cin, cout], `torch_weight.permute(2, 3, 0, 1)` (scatter form).
      impl: 'lax' (XLA's transposed convolution: dilated input, flipped kernel) or 'fast',
        the sub-pixel form. Along one axis input pixel m adds `x[m] w[k]` to output
        2m - 1 + k, so `y[2m] = x[m] w[1]` and `y[2m + 1] = x[m] w[2] + x[m + 1] w[0]`: a
        stride-1 2x2 convolution over x (zero-padded by one at the end) whose 4 * cout output
        channels are the four phases, then depth-to-space. Exact; all its gradients are
        stride-1 convolutions.

    Returns:
      [B, 2H, 2W, cout] in the common dtype of `x` and `kernel`.
    """
    if impl == "lax":
        pad = ((1, 2), (1, 2))  # k - 1 - p before, k - 1 - p + output_padding after
        return lax.conv_general_dilated(
            x, kernel[::-1, ::-1], (1, 1), pad, lhs_dilation=(2, 2), dimension_numbers=_NHWC
        )
    if impl != "fast":
        raise ValueError(f"unknown conv-transpose impl {impl!r}; expected 'fast' or 'lax'")
    b, h, w, _ = x.shape
    cin, cout = kernel.shape[2:]
    # sel[a, t, k] = 1 where tap a of the 2x2 convolution uses kernel index k for phase t.
    sel = np.zeros((2, 2, 3), np.float32)
    sel[0, 0, 1] = sel[0, 1, 2] = sel[1, 1, 0] = 1.0
    sel = jnp.asarray(sel, kernel.dtype)
    k2 = jnp.einsum("atk,bul,klio->abituo", sel, sel, kernel).reshape(2, 2, cin, 4 * cout)
    xp = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    y = lax.conv_general_dilated(xp, k2, (1, 1), "VALID", dimension_numbers=_NHWC)
    y = y.reshape(b, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, cout)


class Conv(nn.Module):
    """`torch.nn.Conv2d(cin, features, kernel, stride, padding, padding_mode)`, NHWC.

    Params `kernel` [k, k, cin, features] (N(0, 0.02)) and, with `use_bias`, `bias` (0).
    4x4 stride-2 zero-padded convolutions run as `layers.conv_4x4_s2(impl)`.

    Attributes:
      features: output channels.
      kernel_size: square kernel side k.
      stride: 1 or 2.
      padding: pixels on each side.
      reflect: reflection padding (`padding_mode='reflect'`) instead of zeros.
      use_bias: whether the layer has a bias.
      impl: 'fast' or 'lax' (resolved; only 4x4 stride-2 convolutions differ).
      dtype: compute dtype (params float32).
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    reflect: bool = False
    use_bias: bool = True
    impl: str = "fast"
    dtype: layers.Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", _INIT, (k, k, x.shape[-1], self.features), jnp.float32)
        x = x.astype(self.dtype)
        kernel = kernel.astype(self.dtype)
        if self.reflect and self.padding:
            p = self.padding
            x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
            y = _conv_lax(x, kernel, self.stride, 0)
        elif (k, self.stride, self.padding) == (4, 2, 1):
            y = layers.conv_4x4_s2(x, kernel, self.impl)
        else:
            y = _conv_lax(x, kernel, self.stride, self.padding)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


class ConvTranspose(nn.Module):
    """A stride-2 transposed convolution that doubles H and W, NHWC.

    kernel_size 4: `ConvTranspose2d(cin, features, 4, 2, padding=1)` (pix2pix's U-Net),
    `layers.conv_transpose_4x4_s2`; kernel_size 3: `ConvTranspose2d(cin, features, 3, 2,
    padding=1, output_padding=1)` (CycleGAN), `conv_transpose_3x3_s2`. Params `kernel`
    [k, k, cin, features] (`torch_weight.permute(2, 3, 0, 1)`) and optionally `bias`.

    Attributes:
      features: output channels.
      kernel_size: 3 or 4.
      use_bias: whether the layer has a bias.
      impl: 'fast' or 'lax' (resolved).
      dtype: compute dtype (params float32).
    """

    features: int
    kernel_size: int = 4
    use_bias: bool = True
    impl: str = "fast"
    dtype: layers.Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", _INIT, (k, k, x.shape[-1], self.features), jnp.float32)
        x = x.astype(self.dtype)
        kernel = kernel.astype(self.dtype)
        if k == 4:
            y = layers.conv_transpose_4x4_s2(x, kernel, self.impl)
        elif k == 3:
            y = conv_transpose_3x3_s2(x, kernel, self.impl)
        else:
            raise ValueError(f"ConvTranspose: kernel_size must be 3 or 4, got {k}")
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


def apply_norm(
    x: jax.Array, kind: str, *, train: bool, name: str, dtype, instance_affine: bool = False
) -> jax.Array:
    """The norm `kind` as submodule `name` of the calling compact method ('none': identity).

    'batch': `layers.BatchNorm` (batch statistics when `train`, running ones otherwise);
    'instance': `nn.InstanceNorm` over H, W per sample and channel, eps 1e-5, float32
    statistics, affine parameters only with `instance_affine`.
    """
    if kind == "batch":
        return layers.BatchNorm(dtype=dtype, name=name)(x, train)
    if kind == "instance":
        norm = nn.InstanceNorm(
            epsilon=1e-5,
            use_bias=instance_affine,
            use_scale=instance_affine,
            use_fast_variance=False,
            dtype=dtype,
            name=name,
        )
        return norm(x.astype(jnp.float32))
    if kind == "none":
        return x
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


# ----------------------------------------------------------------------------------------------
# U-Net generator


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: images [B, H, W, C] -> images [B, H, W, out_channels] in [-1, 1].

    Attributes:
      out_channels: output image channels.
      width: channels of the outermost level (pix2pix's ngf).
      depth: stride-2 levels; None: log2 of the image side (down to a 1x1 bottleneck).
        H and W must be divisible by 2**depth.
      norm: 'batch', 'instance' or 'none'.
      instance_affine: learned scale and bias in instance norm (pix2pix: no).
      dropout: dropout rate of the decoder's dropout levels (0 disables).
      dropout_layers: how many levels have dropout (at most depth - 2, the levels between the
        outermost and the innermost one); None: `default_dropout_layers(depth)`.
      dropout_at_test: keep dropout on when `train=False` (pix2pix's test-time noise).
      conv_impl: 'auto', 'fast' or 'lax' (see the module doc).
      dtype: compute dtype; params and norm statistics stay float32.
    """

    out_channels: int = 3
    width: int = 64
    depth: int | None = None
    norm: str = "batch"
    instance_affine: bool = False
    dropout: float = 0.5
    dropout_layers: int | None = None
    dropout_at_test: bool = False
    conv_impl: str = "auto"
    dtype: layers.Dtype = jnp.float32

    def __post_init__(self):
        _check_common("UNetGenerator", self.norm, self.width, self.conv_impl)
        _check_rate("UNetGenerator", self.dropout)
        if self.depth is not None and (not isinstance(self.depth, int) or self.depth < 2):
            raise ValueError(f"UNetGenerator: depth must be an integer >= 2, got {self.depth}")
        if self.dropout_layers is not None and self.dropout_layers < 0:
            raise ValueError(
                f"UNetGenerator: dropout_layers must be >= 0, got {self.dropout_layers}"
            )
        if self.out_channels < 1:
            raise ValueError(f"UNetGenerator: out_channels must be >= 1, got {self.out_channels}")
        super().__post_init__()

    def depth_for(self, height: int, width: int) -> int:
        """The depth used for an H x W input (checked: H and W divisible by 2**depth)."""
        depth = self.depth if self.depth is not None else unet_depth(min(height, width))
        if height % 2**depth or width % 2**depth:
            raise ValueError(
                f"UNetGenerator: a {height}x{width} image is too small or not divisible for depth "
                f"{depth}: H and W must be multiples of 2**depth = {2**depth}"
            )
        return depth

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Translates images; `train` uses batch statistics and enables dropout.

        Args:
          x: [B, H, W, C] images in [-1, 1].
          train: training mode. With batch norm pass `mutable=['batch_stats']`; with dropout
            active (train, or dropout_at_test) pass `rngs={'dropout': key}`.

        Returns:
          float32 [B, H, W, out_channels] in [-1, 1].
        """
        _check_images("UNetGenerator", x)
        depth = self.depth_for(x.shape[1], x.shape[2])
        impl = resolve_conv_impl(self.conv_impl)
        feats = [self.width * min(2**i, MAX_WIDTH_MULT) for i in range(depth)]
        n_drop = self.dropout_layers
        n_drop = default_dropout_layers(depth) if n_drop is None else min(n_drop, depth - 2)
        drop_levels = range(depth - 1 - n_drop, depth - 1)
        use_bias = self.norm != "batch"

        def norm(h, name):
            return apply_norm(
                h,
                self.norm,
                train=train,
                name=name,
                dtype=self.dtype,
                instance_affine=self.instance_affine,
            )

        skips = []
        h = x.astype(self.dtype)
        for i in range(depth):
            if i > 0:
                h = nn.leaky_relu(h, 0.2)
            h = Conv(
                feats[i], 4, 2, 1, use_bias=use_bias, impl=impl, dtype=self.dtype, name=f"down{i}"
            )(h)
            if 0 < i < depth - 1:
                h = norm(h, f"down_norm{i}")
            skips.append(h)

        for i in reversed(range(depth)):
            if i < depth - 1:
                h = jnp.concatenate([skips[i], h.astype(skips[i].dtype)], axis=-1)
            h = nn.relu(h)
            out = self.out_channels if i == 0 else feats[i - 1]
            up = ConvTranspose(
                out, 4, use_bias=use_bias or i == 0, impl=impl, dtype=self.dtype, name=f"up{i}"
            )
            h = up(h)
            if i == 0:
                break
            h = norm(h, f"up_norm{i}")
            if i in drop_levels and self.dropout > 0:
                active = train or self.dropout_at_test
                h = nn.Dropout(self.dropout, deterministic=not active)(h)
        return jnp.tanh(h.astype(jnp.float32))


# ----------------------------------------------------------------------------------------------
# PatchGAN discriminator


class PatchDiscriminator(nn.Module):
    """PatchGAN: images [B, H, W, C] (+ condition) -> patch logits [B, h, w] float32.

    Attributes:
      width: channels of the first layer (pix2pix's ndf).
      n_layers: stride-2 convolutions (3: the 70x70 PatchGAN); see `n_layers_for`.
      norm: 'batch' (pix2pix), 'instance' (CycleGAN) or 'none'.
      instance_affine: learned scale and bias in instance norm (pix2pix: no).
      conv_impl: 'auto', 'fast' or 'lax'.
      dtype: compute dtype; params, norm statistics and the logits stay float32.
    """

    width: int = 64
    n_layers: int = 3
    norm: str = "batch"
    instance_affine: bool = False
    conv_impl: str = "auto"
    dtype: layers.Dtype = jnp.float32

    def __post_init__(self):
        _check_common("PatchDiscriminator", self.norm, self.width, self.conv_impl)
        patch_layers(self.n_layers)  # checks n_layers
        super().__post_init__()

    @nn.compact
    def __call__(
        self, x: jax.Array, condition: jax.Array | None = None, train: bool = False
    ) -> jax.Array:
        """Scores every patch of `x` (given `condition`, pix2pix) or of `x` alone (CycleGAN).

        Args:
          x: images [B, H, W, C]; H and W multiples of 2**n_layers, at least 3 * 2**n_layers.
          condition: None, or the conditioning images [B, H, W, C'] (pix2pix's input image);
            the network reads `concat([condition, x], axis=-1)`.
          train: batch statistics (pass `mutable=['batch_stats']` with batch norm).

        Returns:
          float32 logits [B, patch_grid(H), patch_grid(W)].
        """
        _check_images("PatchDiscriminator", x)
        if condition is not None:
            if condition.ndim != 4 or condition.shape[:3] != x.shape[:3]:
                raise ValueError(
                    f"PatchDiscriminator: condition must be [B, H, W, C'] like the images "
                    f"{x.shape}, got {condition.shape}"
                )
            x = jnp.concatenate([condition.astype(x.dtype), x], axis=-1)
        patch_grid(x.shape[1], self.n_layers)
        patch_grid(x.shape[2], self.n_layers)
        impl = resolve_conv_impl(self.conv_impl)
        geometry = patch_layers(self.n_layers)
        last = len(geometry) - 1
        h = x.astype(self.dtype)
        for i, (k, s, p) in enumerate(geometry):
            feats = 1 if i == last else self.width * min(2**i, MAX_WIDTH_MULT)
            use_bias = i in (0, last) or self.norm != "batch"
            h = Conv(
                feats, k, s, p, use_bias=use_bias, impl=impl, dtype=self.dtype, name=f"conv{i}"
            )(h)
            if i == last:
                break
            if i > 0:
                h = apply_norm(
                    h,
                    self.norm,
                    train=train,
                    name=f"norm{i}",
                    dtype=self.dtype,
                    instance_affine=self.instance_affine,
                )
            h = nn.leaky_relu(h, 0.2)
        return h[..., 0].astype(jnp.float32)


# ----------------------------------------------------------------------------------------------
# CycleGAN's ResNet generator


class ResnetBlock(nn.Module):
    """x + [reflect pad 1, conv3x3, norm, ReLU, (dropout), reflect pad 1, conv3x3, norm](x)."""

    features: int
    norm: str = "instance"
    instance_affine: bool = False
    dropout: float = 0.0
    dtype: layers.Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_active: bool) -> jax.Array:
        use_bias = self.norm != "batch"

        def conv_norm(h, i):
            h = Conv(
                self.features,
                3,
                1,
                1,
                reflect=True,
                use_bias=use_bias,
                dtype=self.dtype,
                name=f"conv{i}",
            )(h)
            return apply_norm(
                h,
                self.norm,
                train=train,
                name=f"norm{i}",
                dtype=self.dtype,
                instance_affine=self.instance_affine,
            )

        h = nn.relu(conv_norm(x, 1))
        if self.dropout > 0:
            h = nn.Dropout(self.dropout, deterministic=not dropout_active)(h)
        h = conv_norm(h, 2)
        return x + h.astype(x.dtype)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: images [B, H, W, C] -> images [B, H, W, out_channels] in [-1, 1].

    Attributes:
      out_channels: output image channels.
      width: channels of the first layer (CycleGAN's ngf; the blocks have 4 x width).
      n_blocks: residual blocks; None: `resnet_blocks_for(min(H, W))` (9 above 128 px, else 6).
      norm: 'instance' (CycleGAN), 'batch' or 'none'.
      instance_affine: learned scale and bias in instance norm (CycleGAN: no).
      dropout: dropout rate inside the residual blocks (CycleGAN: 0).
      dropout_at_test: keep dropout on when `train=False`.
      conv_impl: 'auto', 'fast' or 'lax' (the transposed convolutions; see the module doc).
      dtype: compute dtype; params and norm statistics stay float32.
    """

    out_channels: int = 3
    width: int = 64
    n_blocks: int | None = None
    norm: str = "instance"
    instance_affine: bool = False
    dropout: float = 0.0
    dropout_at_test: bool = False
    conv_impl: str = "auto"
    dtype: layers.Dtype = jnp.float32

    def __post_init__(self):
        _check_common("ResnetGenerator", self.norm, self.width, self.conv_impl)
        _check_rate("ResnetGenerator", self.dropout)
        if self.n_blocks is not None and (not isinstance(self.n_blocks, int) or self.n_blocks < 0):
            raise ValueError(
                f"ResnetGenerator: n_blocks must be an integer >= 0, got {self.n_blocks}"
            )
        if self.out_channels < 1:
            raise ValueError(f"ResnetGenerator: out_channels must be >= 1, got {self.out_channels}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Translates images; `train` uses batch statistics and enables dropout.

        Args:
          x: [B, H, W, C] images in [-1, 1]; H and W multiples of 4, at least 8.
          train: training mode (`mutable=['batch_stats']` with batch norm; a 'dropout' rng
            when dropout is active).

        Returns:
          float32 [B, H, W, out_channels] in [-1, 1].
        """
        _check_images("ResnetGenerator", x)
        hgt, wid = x.shape[1:3]
        if hgt % 4 or wid % 4 or min(hgt, wid) < 8:
            raise ValueError(
                f"ResnetGenerator: H and W must be multiples of 4 and at least 8, got {hgt}x{wid}"
            )
        n_blocks = resnet_blocks_for(min(hgt, wid)) if self.n_blocks is None else self.n_blocks
        impl = resolve_conv_impl(self.conv_impl)
        use_bias = self.norm != "batch"

        def norm(h, name):
            return apply_norm(
                h,
                self.norm,
                train=train,
                name=name,
                dtype=self.dtype,
                instance_affine=self.instance_affine,
            )

        h = x.astype(self.dtype)
        h = Conv(
            self.width, 7, 1, 3, reflect=True, use_bias=use_bias, dtype=self.dtype, name="conv_in"
        )(h)
        h = nn.relu(norm(h, "norm_in"))
        for i in range(2):
            feats = self.width * 2 ** (i + 1)
            h = Conv(feats, 3, 2, 1, use_bias=use_bias, dtype=self.dtype, name=f"down{i}")(h)
            h = nn.relu(norm(h, f"down_norm{i}"))
        feats = self.width * 4
        for j in range(n_blocks):
            h = ResnetBlock(
                feats,
                self.norm,
                self.instance_affine,
                self.dropout,
                self.dtype,
                name=f"block{j}",
            )(h, train, train or self.dropout_at_test)
        for i in range(2):
            feats = self.width * 2 ** (1 - i)
            h = ConvTranspose(
                feats, 3, use_bias=use_bias, impl=impl, dtype=self.dtype, name=f"up{i}"
            )(h)
            h = nn.relu(norm(h, f"up_norm{i}"))
        h = Conv(self.out_channels, 7, 1, 3, reflect=True, dtype=self.dtype, name="conv_out")(h)
        return jnp.tanh(h.astype(jnp.float32))


# ----------------------------------------------------------------------------------------------
# The 'pix2pix' model family: a translation generator and a conditional PatchGAN, by config

# Translation models read an image, not a latent: `models.validate` skips `model.z_dim`.
HAS_LATENT = False
GENERATORS = ("unet", "resnet", "srresnet")
DTYPES = ("float32", "bfloat16")


def task_of(config):
    """The run's image-to-image task (`config.data.task`) as a `tasks.Task`.

    Raises:
      ConfigError: no task, or one that does not parse.
    """
    spec = config.data.get("task", "")
    config_lib.require(
        bool(spec), "data.task", "a pix2pix model needs a task, e.g. 'sr4', 'inpaint', 'colorize'"
    )
    try:
        return tasks.parse_task(spec)
    except ValueError as e:
        raise ConfigError(f"config.data.task: {e}") from None


def require_no_fid(config) -> None:
    """FID in training samples latents; an image-to-image run is scored by evaluate.py."""
    if "eval" in config:
        config_lib.require(
            not config.eval.get("fid_every", 0),
            "eval.fid_every",
            "image-to-image runs are scored on their test split by evaluate.py --workdir; set 0",
        )


def validate(config) -> None:
    """Checks the keys the pix2pix family owns: model.{generator, g_width, d_width, norm,
    dropout, d_layers, sr_blocks, sr_block, sr_growth, conv_impl, dtype}, and that the
    generator fits the task and the image size.

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    m = config.model
    config_lib.choice(config, "model.generator", GENERATORS)
    config_lib.positive_int(config, "model.g_width")
    config_lib.positive_int(config, "model.d_width")
    config_lib.choice(config, "model.norm", NORMS)
    config_lib.number_in(config, "model.dropout", 0.0, 1.0, high_open=True)
    config_lib.positive_int(config, "model.d_layers", zero_ok=True)
    config_lib.positive_int(config, "model.sr_blocks", zero_ok=True)
    # Runs written before RRDB existed have neither key: they are 'res' networks.
    if "sr_block" in m:
        config_lib.choice(config, "model.sr_block", srresnet.BLOCKS)
    if "sr_growth" in m:
        config_lib.positive_int(config, "model.sr_growth")
    config_lib.choice(config, "model.conv_impl", CONV_IMPLS)
    config_lib.choice(config, "model.dtype", DTYPES)
    # The objective's weights (`objectives.Pix2PixObjective`): this family's own loss keys.
    for key in ("loss.l1", "loss.adv", "loss.feature"):
        if key.split(".")[1] in config.loss:
            config_lib.number_in(config, key, 0.0, 1e6)
    require_no_fid(config)
    task = task_of(config)
    size = config.data.image_size
    if m.generator == "srresnet":
        config_lib.require(
            task.kind == "sr" and task.factor in srresnet.FACTORS,
            "model.generator",
            f"'srresnet' upsamples by 2, 4 or 8: it needs data.task sr2, sr4 or sr8, got "
            f"'{task}'; use 'unet' or 'resnet' for same-size tasks",
        )
    else:
        config_lib.require(
            task.kind != "sr",
            "model.generator",
            f"'{m.generator}' keeps the image size; data.task '{task}' makes the input smaller: "
            "use model.generator='srresnet'",
        )
    if m.generator == "unet":
        config_lib.require(
            _is_power_of_two(size) and size >= 4,
            "data.image_size",
            f"the U-Net needs a power of two >= 4, got {size}",
        )
    if m.generator == "resnet":
        config_lib.require(
            size % 4 == 0 and size >= 8,
            "data.image_size",
            f"the ResNet generator needs a multiple of 4 >= 8, got {size}",
        )
    if m.d_layers:
        try:
            patch_grid(size, m.d_layers)
        except ValueError as e:
            raise ConfigError(f"config.model.d_layers: {e}") from None
    else:
        try:
            n_layers_for(size)
        except ValueError as e:
            raise ConfigError(f"config.data.image_size: {e}") from None


def d_layers(config) -> int:
    """The PatchGAN's n_layers: `model.d_layers`, or 0 = pix2pix's share of the image."""
    return int(config.model.d_layers) or n_layers_for(config.data.image_size)


def build(config):
    """(generator, discriminator) for the task and `config.model`.

    The generator is applied as `generator.apply(variables, source, train=...)` (a 'dropout'
    rng when its dropout is active), the discriminator as `discriminator.apply(variables,
    image, condition, train=...)`, where the condition is the source at the image's size;
    `gan_jax.objectives.Pix2PixObjective` runs both.
    """
    m = config.model
    task = task_of(config)
    channels = config.data.channels
    dtype = jnp.dtype(m.dtype)
    if m.generator == "srresnet":
        generator = srresnet.SRResNet(
            factor=task.factor,
            out_channels=channels,
            width=m.g_width,
            n_blocks=m.sr_blocks,
            block=m.get("sr_block", "res"),
            growth=m.get("sr_growth", 32),
            dtype=dtype,
        )
    elif m.generator == "unet":
        generator = UNetGenerator(
            out_channels=channels,
            width=m.g_width,
            # Fixed by the training size, so larger images (translate.py) run the same network.
            depth=unet_depth(config.data.image_size),
            norm=m.norm,
            dropout=m.dropout,
            conv_impl=m.conv_impl,
            dtype=dtype,
        )
    else:
        generator = ResnetGenerator(
            out_channels=channels,
            width=m.g_width,
            norm=m.norm,
            dropout=m.dropout,
            conv_impl=m.conv_impl,
            dtype=dtype,
        )
    discriminator = PatchDiscriminator(
        width=m.d_width, n_layers=d_layers(config), norm=m.norm, conv_impl=m.conv_impl, dtype=dtype
    )
    return generator, discriminator


def latent_weight(params, config, layers=None):
    raise ValueError("a pix2pix model has no latent space (it translates an input image)")
