"""Building blocks of the ResNet GANs (SNGAN, BigGAN): conditional batch norm, self-attention.

Everything is NHWC and computes what its PyTorch port in `bench/torch_blocks.py` computes
(tests/test_blocks.py); spectral normalisation is `gan_jax.models.spectral`'s.

  * `ConditionalBatchNorm`: batch norm without affine, then a per-sample gain and bias from
    class embeddings (SNGAN, Miyato & Koyama 2018) or from spectral-normed linear maps of a
    conditioning vector (BigGAN, Brock et al. 2019); plain batch norm with affine when
    unconditional. PyTorch's `BatchNorm2d` statistics (running variance unbiased).
  * `SelfAttention`: the SAGAN / BigGAN non-local block (Zhang et al. 2019).
  * `upsample_2x`, `pool_2x` (`upsample_nearest_2x`, `avg_pool_2x`, `max_pool_2x`): the
    ResNet blocks' resampling.
  * `ResGBlock`, `ResDBlock`, `image_output`, `projection_head`, `ResNetDiscriminator`: the
    residual blocks, G's last layers, D's head and D itself as both models build them (each
    configures names, initialisers, conv and norm types), with `padded_conv`, `pick_layout`,
    `check_labels`, `check_images` and `validate_common` (the config keys both models read).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from gan_jax import config_lib
from gan_jax.models.layers import batch_norm_train
from gan_jax.models.spectral import Initializer, SNConv, SNDense, SNEmbed

Dtype = jnp.dtype | str
DTYPES = ("float32", "bfloat16")  # model.dtype of the ResNet GANs
UPSAMPLES = ("nearest", "bilinear")


def upsample_nearest_2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling, `F.interpolate(x, scale_factor=2)`.

    Args:
      x: [B, H, W, C].

    Returns:
      [B, 2H, 2W, C] with every pixel repeated in a 2x2 square.
    """
    b, h, w, c = x.shape
    # One broadcast and a reshape: cheaper than two `jnp.repeat`s (each a gather on XLA:CPU).
    y = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
    return y.reshape(b, 2 * h, 2 * w, c)


def _bilinear_2x_axis(x: jax.Array, axis: int) -> jax.Array:
    """Exact 2x linear interpolation along `axis` with half-pixel centres, edges clamped.

    Output 2i samples input i - 1/4 (0.25 x[i-1] + 0.75 x[i]) and 2i + 1 samples i + 1/4
    (0.75 x[i] + 0.25 x[i+1]); PyTorch clamps the source index at the borders, which is
    repeating the edge pixel.
    """
    n = x.shape[axis]
    first = lax.slice_in_dim(x, 0, 1, axis=axis)
    last = lax.slice_in_dim(x, n - 1, n, axis=axis)
    prev = jnp.concatenate([first, lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis=axis)
    nxt = jnp.concatenate([lax.slice_in_dim(x, 1, n, axis=axis), last], axis=axis)
    even = 0.25 * prev + 0.75 * x
    odd = 0.75 * x + 0.25 * nxt
    out = jnp.stack([even, odd], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return out.reshape(shape).astype(x.dtype)


def upsample_2x(x: jax.Array, method: str = "nearest") -> jax.Array:
    """Doubles H and W of [B, H, W, C] as `F.interpolate(x, scale_factor=2, mode=method)`.

    Args:
      x: feature map.
      method: 'nearest' or 'bilinear' (align_corners=False, i.e. half-pixel centres).

    Returns:
      [B, 2H, 2W, C] in x's dtype.
    """
    if method == "nearest":
        return upsample_nearest_2x(x)
    if method == "bilinear":
        return _bilinear_2x_axis(_bilinear_2x_axis(x, 1), 2)
    raise ValueError(f"upsample must be one of {UPSAMPLES}, got {method!r}")


def pool_2x(x: jax.Array, reduce: Callable = jnp.mean) -> jax.Array:
    """2x2 pooling with stride 2, as PyTorch's `F.avg_pool2d(x, 2)` / `F.max_pool2d(x, 2)`.

    Args:
      x: [B, H, W, C]; a trailing odd row / column is dropped, as PyTorch does.
      reduce: `jnp.mean` (average pooling) or `jnp.max` (max pooling).

    Returns:
      [B, H // 2, W // 2, C].
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return reduce(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def avg_pool_2x(x: jax.Array) -> jax.Array:
    """`F.avg_pool2d(x, 2)` of NHWC [B, H, W, C] -> [B, H // 2, W // 2, C] (`pool_2x`)."""
    return pool_2x(x, jnp.mean)


def max_pool_2x(x: jax.Array) -> jax.Array:
    """`F.max_pool2d(x, 2)` of NHWC [B, H, W, C] -> [B, H // 2, W // 2, C] (`pool_2x`)."""
    return pool_2x(x, jnp.max)


class ConditionalBatchNorm(nn.Module):
    """Batch norm (PyTorch's `BatchNorm2d` statistics) with a per-sample affine transform.

    Modes (fixed by the attributes):
      * `num_classes > 0` (SNGAN): `cond` is int class ids [B]; `gain = Embed(cond)` (init 1)
        and `bias = Embed(cond)` (init 0), plain embeddings. Params `gain/embedding`,
        `bias/embedding`, each [num_classes, C].
      * `linear=True` (BigGAN): `cond` is float [B, D]; `gain = 1 + SNDense(cond)`,
        `bias = SNDense(cond)`, spectral-normed, without bias terms. Params `gain/kernel`,
        `bias/kernel` [D, C]; spectral `gain/{u, v}`, `bias/{u, v}` (updated when `train`).
      * neither: plain batch norm with affine, params `scale` (1) and `bias` (0); `cond` None.

    Batch stats `mean` (0) and `var` (1), updated when `train` (not at `init`):
    `new = (1 - momentum) * old + momentum * batch`, with the unbiased batch variance, as
    PyTorch (note: `layers.BatchNorm` uses Flax's momentum convention instead). Statistics
    and normalisation are computed in float32 whatever `dtype`.

    Attributes:
      num_classes: classes of the embedding mode (0: not that mode).
      linear: the linear (BigGAN) mode.
      momentum: PyTorch's running-average momentum.
      epsilon: added to the variance (PyTorch's `eps`).
      n_power_iterations: spectral norm's power iterations per update (linear mode).
      sn_eps: spectral norm's eps (linear mode).
      kernel_init: initialiser of the linear mode's kernels.
      dtype: output dtype.
    """

    num_classes: int = 0
    linear: bool = False
    momentum: float = 0.1
    epsilon: float = 1e-5
    n_power_iterations: int = 1
    sn_eps: float = 1e-12
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array | None = None, *, train: bool) -> jax.Array:
        """Normalises [B, ..., C] and applies the (conditional) affine transform.

        Args:
          x: [B, ..., C] features (NHWC for images).
          cond: class ids [B] (embedding mode), conditioning vectors [B, D] (linear mode) or
            None (plain mode).
          train: batch statistics (and running-stat / spectral updates) if True, running
            statistics if False.

        Returns:
          [B, ..., C] in `dtype`.
        """
        if self.num_classes and self.linear:
            raise ValueError("ConditionalBatchNorm: set num_classes or linear, not both")
        conditional = bool(self.num_classes) or self.linear
        if conditional and cond is None:
            raise ValueError("ConditionalBatchNorm: this conditional mode needs `cond`")
        if not conditional and cond is not None:
            raise ValueError("ConditionalBatchNorm: `cond` given to an unconditional batch norm")
        c = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
        xf = x.astype(jnp.float32)
        if train:
            ones, zeros = jnp.ones((c,), jnp.float32), jnp.zeros((c,), jnp.float32)
            xhat, mean, var = batch_norm_train(xf, ones, zeros, self.epsilon)
            if not self.is_initializing():
                n = x.size // c
                m = self.momentum
                ra_mean.value = (1 - m) * ra_mean.value + m * mean
                ra_var.value = (1 - m) * ra_var.value + m * var * (n / max(n - 1, 1))
        else:
            xhat = (xf - ra_mean.value) * lax.rsqrt(ra_var.value + self.epsilon)

        if not conditional:
            scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
            bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
            return (xhat * scale + bias).astype(self.dtype)
        if self.linear:
            dense = functools.partial(
                SNDense,
                c,
                use_bias=False,
                kernel_init=self.kernel_init,
                n_power_iterations=self.n_power_iterations,
                eps=self.sn_eps,
            )
            condf = cond.astype(jnp.float32)
            gain = 1.0 + dense(name="gain")(condf, update=train)
            bias = dense(name="bias")(condf, update=train)
        else:
            embed = functools.partial(nn.Embed, self.num_classes, c, param_dtype=jnp.float32)
            gain = embed(embedding_init=nn.initializers.ones, name="gain")(cond)
            bias = embed(embedding_init=nn.initializers.zeros, name="bias")(cond)
        # [B, C] -> [B, 1, ..., 1, C], one gain and bias per sample and channel.
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
        return (xhat * gain.reshape(shape) + bias.reshape(shape)).astype(self.dtype)


class SelfAttention(nn.Module):
    """SAGAN / BigGAN non-local block with spectral-normed 1x1 convolutions, NHWC.

    With C input channels: theta = conv(x) [C/8]; phi = maxpool2(conv(x)) [C/8];
    g = maxpool2(conv(x)) [C/2]; every position attends over the H*W/4 pooled positions,
    `beta = softmax(theta phi^T)`; `out = x + gamma * conv_o(beta g)` [C], gamma a scalar
    param initialised to 0 (so the block starts as the identity). No biases.

    Params `theta`, `phi`, `g`, `o` (each SNConv `kernel` [1, 1, in, out]) and `gamma` [];
    spectral `theta`, `phi`, `g`, `o` {u, v}, updated when `train`. Needs C divisible by 8
    and even H, W.

    Attributes:
      n_power_iterations: spectral norm's power iterations per update.
      sn_eps: spectral norm's eps.
      kernel_init: initialiser of the convolutions.
      dtype: compute dtype (the softmax runs in float32).
    """

    n_power_iterations: int = 1
    sn_eps: float = 1e-12
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Applies the block to [B, H, W, C]; `train` updates the spectral vectors.

        Args:
          x: [B, H, W, C] with C % 8 == 0 and H, W even.
          train: whether to run (and store) spectral-norm power iterations.

        Returns:
          [B, H, W, C] in `dtype`.
        """
        b, h, w, c = x.shape
        if c % 8 or h % 2 or w % 2:
            raise ValueError(f"SelfAttention needs channels % 8 == 0 and even H, W; got {x.shape}")
        conv = functools.partial(
            SNConv,
            kernel_size=(1, 1),
            padding="VALID",
            use_bias=False,
            kernel_init=self.kernel_init,
            n_power_iterations=self.n_power_iterations,
            eps=self.sn_eps,
            dtype=self.dtype,
        )
        x = x.astype(self.dtype)
        theta = conv(c // 8, name="theta")(x, train).reshape(b, h * w, c // 8)
        phi = max_pool_2x(conv(c // 8, name="phi")(x, train)).reshape(b, h * w // 4, c // 8)
        g = max_pool_2x(conv(c // 2, name="g")(x, train)).reshape(b, h * w // 4, c // 2)
        logits = jnp.einsum("bqc,bkc->bqk", theta, phi, preferred_element_type=jnp.float32)
        beta = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
        attended = jnp.einsum("bqk,bkc->bqc", beta, g).reshape(b, h, w, c // 2)
        o = conv(c, name="o")(attended, train)
        gamma = self.param("gamma", nn.initializers.zeros, (), jnp.float32)
        return x + gamma.astype(self.dtype) * o


# ----------------------------------------------------------------------------------------------
# The ResNet GANs' residual blocks, discriminator head and input / config checks


def padded_conv(
    features: int,
    kernel: int,
    *,
    kernel_init: Initializer,
    dtype: Dtype,
    name: str,
    train: bool,
    spectral: bool = True,
    sn_eps: float = 1e-12,
) -> Callable[[jax.Array], jax.Array]:
    """PyTorch's `Conv2d(k, stride 1, padding k // 2)` with a zero-initialised bias.

    Call it inside a compact method: the layer becomes that module's submodule `name`.

    Args:
      features: output channels.
      kernel: odd kernel side k.
      kernel_init: initialiser of the kernel [k, k, in, features].
      dtype: compute dtype (params stay float32).
      name: submodule name.
      train: whether calls run (and store) a power iteration (spectral layers only).
      spectral: `SNConv` (params kernel, bias; spectral u, v) or a plain `nn.Conv`.
      sn_eps: spectral norm's eps.

    Returns:
      The layer as a function [B, H, W, in] -> [B, H, W, features].
    """
    pad = kernel // 2
    common = dict(
        padding=((pad, pad), (pad, pad)),
        kernel_init=kernel_init,
        bias_init=nn.initializers.zeros,
        dtype=dtype,
        name=name,
    )
    if spectral:
        return functools.partial(
            SNConv(features, (kernel, kernel), eps=sn_eps, **common), update=train
        )
    return nn.Conv(features, (kernel, kernel), param_dtype=jnp.float32, **common)


class ResGBlock(nn.Module):
    """Generator residual block: 2x upsampling, `in -> features` channels (hidden = features).

    norm1(cond), ReLU, 2x upsample, conv3x3 (in -> features), norm2(cond), ReLU, conv3x3
    (features -> features); shortcut conv1x1 (in -> features), then 2x upsample. The shortcut
    conv runs before the upsampling (the references run it after): both are linear and per
    channel with upsampling weights summing to 1 (so the bias commutes too), the same function
    with a quarter of the multiply-adds.

    Attributes:
      features: output channels.
      names: submodule names (norm1, conv1, norm2, conv2, shortcut conv).
      num_classes: > 0 for batch norm conditioned on class ids (SNGAN).
      linear_norm: batch norm conditioned linearly on a vector (BigGAN).
      bn_momentum: batch norm's PyTorch momentum.
      bn_eps: batch norm's eps.
      spectral: spectral-normed convs (BigGAN) or plain ones (SNGAN).
      sn_eps: spectral norm's eps (convs and the linear norm's maps).
      kernel_init: initialiser of the 3x3 convs and of the linear norm's maps.
      shortcut_init: initialiser of the 1x1 shortcut conv.
      upsample: 'nearest' or 'bilinear'.
      dtype: compute dtype.
    """

    features: int
    names: tuple[str, str, str, str, str] = ("bn1", "conv1", "bn2", "conv2", "conv_sc")
    num_classes: int = 0
    linear_norm: bool = False
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    spectral: bool = True
    sn_eps: float = 1e-12
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    shortcut_init: Initializer = nn.initializers.xavier_uniform()
    upsample: str = "nearest"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array | None, train: bool) -> jax.Array:
        """[B, H, W, in] -> [B, 2H, 2W, features].

        Args:
          x: input features.
          cond: class ids [B] (num_classes > 0), vectors [B, D] (linear_norm) or None.
          train: batch statistics and spectral / running-statistics updates.

        Returns:
          The block's output in `dtype`.
        """
        n1, c1, n2, c2, c_sc = self.names

        def norm(name):
            return ConditionalBatchNorm(
                num_classes=self.num_classes,
                linear=self.linear_norm,
                momentum=self.bn_momentum,
                epsilon=self.bn_eps,
                sn_eps=self.sn_eps,
                kernel_init=self.kernel_init,
                dtype=self.dtype,
                name=name,
            )

        conv = functools.partial(
            padded_conv,
            self.features,
            dtype=self.dtype,
            train=train,
            spectral=self.spectral,
            sn_eps=self.sn_eps,
        )
        h = nn.relu(norm(n1)(x, cond, train=train))
        h = upsample_2x(h, self.upsample)
        h = conv(3, kernel_init=self.kernel_init, name=c1)(h)
        h = nn.relu(norm(n2)(h, cond, train=train))
        h = conv(3, kernel_init=self.kernel_init, name=c2)(h)
        sc = conv(1, kernel_init=self.shortcut_init, name=c_sc)(x.astype(self.dtype))
        return h + upsample_2x(sc, self.upsample)


class ResDBlock(nn.Module):
    """Discriminator residual block with spectral-normed convs, `in -> features` channels.

    [ReLU], conv3x3 (in -> hidden), ReLU, conv3x3 (hidden -> features), 2x2 average pooling
    if `downsample`; shortcut: the pooling if `downsample`, then a conv1x1 (in -> features)
    when the block downsamples or changes the width, else the identity. The references pool
    after the shortcut conv in pre-activated blocks: both are linear and per channel, the same
    function with a quarter of the multiply-adds.

    Attributes:
      features: output channels.
      downsample: whether to halve H and W.
      preactivation: ReLU on the input (every block but the first).
      hidden_is_input: hidden width = input width (SNGAN's DBlock), else `features`.
      names: submodule names (conv1, conv2, shortcut conv).
      kernel_init: initialiser of the 3x3 convs.
      shortcut_init: initialiser of the 1x1 shortcut conv.
      sn_eps: spectral norm's eps.
      dtype: compute dtype.
    """

    features: int
    downsample: bool = True
    preactivation: bool = True
    hidden_is_input: bool = False
    names: tuple[str, str, str] = ("conv1", "conv2", "conv_sc")
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    shortcut_init: Initializer = nn.initializers.xavier_uniform()
    sn_eps: float = 1e-12
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """[B, H, W, in] -> [B, H', W', features] (H' = H // 2 when downsampling).

        Args:
          x: input features.
          train: whether to run (and store) spectral-norm power iterations.

        Returns:
          The block's output in `dtype`.
        """
        c1, c2, c_sc = self.names
        conv = functools.partial(padded_conv, dtype=self.dtype, train=train, sn_eps=self.sn_eps)
        x = x.astype(self.dtype)
        hidden = x.shape[-1] if self.hidden_is_input else self.features
        h = nn.relu(x) if self.preactivation else x
        h = conv(hidden, 3, kernel_init=self.kernel_init, name=c1)(h)
        h = conv(self.features, 3, kernel_init=self.kernel_init, name=c2)(nn.relu(h))
        sc = x
        if self.downsample:
            h = avg_pool_2x(h)
            sc = avg_pool_2x(sc)
        if self.downsample or x.shape[-1] != self.features:
            sc = conv(self.features, 1, kernel_init=self.shortcut_init, name=c_sc)(sc)
        return h + sc


def projection_head(
    h: jax.Array,
    labels: jax.Array | None,
    num_classes: int,
    *,
    kernel_init: Initializer,
    sn_eps: float,
    train: bool,
) -> jax.Array:
    """The discriminator head: ReLU, global sum pooling, SNDense -> 1, and the projection.

    When conditional, `logit += sum(SNEmbed(y) * h)` (Miyato & Koyama 2018). Runs in float32
    whatever h's dtype: a bfloat16 sum over 64 pixels would lose ~2 digits. Call it inside a
    compact method: the layers become that module's submodules `linear` and `embed`.

    Args:
      h: the last block's features [B, H, W, C].
      labels: int32 class ids [B] (conditional) or None.
      num_classes: 0 unconditional, else the number of classes.
      kernel_init: initialiser of the dense kernel and the class embedding.
      sn_eps: spectral norm's eps.
      train: whether to run (and store) spectral-norm power iterations.

    Returns:
      float32 logits [B].
    """
    h = nn.relu(h).astype(jnp.float32).sum((1, 2))
    out = SNDense(1, kernel_init=kernel_init, eps=sn_eps, name="linear")(h, update=train)[:, 0]
    if num_classes:
        embed = SNEmbed(
            num_classes, h.shape[-1], embedding_init=kernel_init, eps=sn_eps, name="embed"
        )
        out = out + (embed(labels, update=train) * h).sum(-1)
    return out


def image_output(
    h: jax.Array,
    channels: int,
    *,
    kernel_init: Initializer,
    dtype: Dtype,
    train: bool,
    bn_eps: float = 1e-5,
    spectral: bool = True,
    sn_eps: float = 1e-12,
) -> jax.Array:
    """The generator's last layers: batch norm (with affine), ReLU, conv3x3, tanh.

    Call it inside a compact method: the layers become that module's submodules `bn_out`
    (PyTorch momentum 0.1) and `conv_out` (`padded_conv`).

    Args:
      h: the last block's features [B, S, S, C].
      channels: image channels.
      kernel_init: initialiser of the conv.
      dtype: compute dtype.
      train: batch statistics and spectral / running-statistics updates.
      bn_eps: batch norm's eps.
      spectral: whether the conv is spectral-normed.
      sn_eps: spectral norm's eps.

    Returns:
      float32 images [B, S, S, channels] in [-1, 1].
    """
    h = ConditionalBatchNorm(epsilon=bn_eps, dtype=dtype, name="bn_out")(h, None, train=train)
    conv = padded_conv(
        channels,
        3,
        kernel_init=kernel_init,
        dtype=dtype,
        name="conv_out",
        train=train,
        spectral=spectral,
        sn_eps=sn_eps,
    )
    return jnp.tanh(conv(nn.relu(h)).astype(jnp.float32))


class ResNetDiscriminator(nn.Module):
    """images [B, H, W, C] (+ labels [B]) -> logits [B] float32: the ResNet GANs' D skeleton.

    Checks the inputs, runs the model's `body` (its residual blocks), then its `head`
    (`projection_head` with the model's initialiser). Subclasses define both methods.

    Attributes:
      image_size: the side of the input images.
      width: the model's width multiplier `ch` (see its module docstring).
      num_classes: 0 unconditional, else a projection head.
      dtype: compute dtype; params, spectral vectors and the head stay float32.
    """

    image_size: int = 32
    width: int = 128
    num_classes: int = 0
    dtype: Dtype = jnp.float32

    def body(self, x: jax.Array, train: bool) -> jax.Array:
        """The residual blocks: images [B, S, S, C] -> features [B, s, s, C']."""
        raise NotImplementedError

    def head(self, h: jax.Array, labels: jax.Array | None, train: bool) -> jax.Array:
        """Features and labels -> float32 logits [B]."""
        raise NotImplementedError

    @nn.compact
    def __call__(self, x: jax.Array, labels=None, train: bool = False) -> jax.Array:
        """Scores images; `train` runs one power iteration per layer and updates 'spectral'.

        Args:
          x: images [B, image_size, image_size, C].
          labels: int class ids [B] (conditional models only; ignored when num_classes = 0).
          train: spectral-norm mode.

        Returns:
          float32 logits [B].
        """
        check_images(x, self.image_size)
        labels = check_labels(labels, self.num_classes, x.shape[0])
        return self.head(self.body(x, train), labels, train)


def pick_layout(layouts: dict, image_size: int, model: str):
    """`layouts[image_size]`, or a ValueError naming the sizes `model` supports.

    Args:
      layouts: image size -> the model's layout.
      image_size: output / input image side.
      model: the model's name, for the message.

    Returns:
      The size's layout.
    """
    if image_size not in layouts:
        raise ValueError(f"{model} supports image_size in {tuple(layouts)}, got {image_size}")
    return layouts[image_size]


def check_labels(labels, num_classes: int, batch: int) -> jax.Array | None:
    """Labels as int32 [batch] for a conditional model; None for an unconditional one.

    Args:
      labels: class ids [batch] or None.
      num_classes: 0 unconditional (labels are then ignored), else the number of classes.
      batch: the batch size.

    Returns:
      int32 labels, or None when unconditional.
    """
    if num_classes == 0:
        return None
    if labels is None:
        raise ValueError(f"this model is class-conditional ({num_classes} classes): pass labels")
    labels = jnp.asarray(labels)
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {labels.shape}")
    return labels.astype(jnp.int32)


def check_images(x: jax.Array, image_size: int) -> None:
    """Raises ValueError unless `x` is [B, image_size, image_size, C].

    Args:
      x: the discriminator's input.
      image_size: the model's image side.
    """
    if x.ndim != 4 or x.shape[1:3] != (image_size, image_size):
        raise ValueError(f"expected {image_size}px images, got shape {x.shape}")


def validate_common(config, sizes: tuple[int, ...]) -> None:
    """Checks the keys both ResNet GANs read the same way.

    data.image_size in `sizes`, data.channels 1 or 3, model.{z_dim, g_width, d_width}
    integers >= 1, model.dtype in `DTYPES`.

    Args:
      config: the run's ConfigDict.
      sizes: the model's image sizes.

    Raises:
      ConfigError: naming the key and what is allowed.
    """
    config_lib.choice(config, "data.image_size", sizes)
    config_lib.choice(config, "data.channels", (1, 3))
    for key in ("model.z_dim", "model.g_width", "model.d_width"):
        config_lib.positive_int(config, key)
    config_lib.choice(config, "model.dtype", DTYPES)
