"""Building blocks of the ResNet GANs (SNGAN, BigGAN): conditional batch norm, self-attention.

Everything is NHWC and computes what its PyTorch port in `bench/torch_blocks.py` computes
(tests/test_blocks.py); spectral normalisation is `gan_jax.models.spectral`'s.

  * `ConditionalBatchNorm`: batch norm without affine, then a per-sample gain and bias from
    class embeddings (SNGAN, Miyato & Koyama 2018) or from spectral-normed linear maps of a
    conditioning vector (BigGAN, Brock et al. 2019); plain batch norm with affine when
    unconditional. PyTorch's `BatchNorm2d` statistics (running variance unbiased).
  * `SelfAttention`: the SAGAN / BigGAN non-local block (Zhang et al. 2019).
  * `upsample_nearest_2x`, `avg_pool_2x`, `max_pool_2x`: the ResNet blocks' resampling.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from gan_jax.models.layers import batch_norm_train
from gan_jax.models.spectral import Initializer, SNConv, SNDense

Dtype = jnp.dtype | str


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


def _pool_2x(x: jax.Array, reduce) -> jax.Array:
    b, h, w, c = x.shape
    # PyTorch's pooling drops a trailing odd row / column.
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return reduce(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def avg_pool_2x(x: jax.Array) -> jax.Array:
    """2x2 average pooling with stride 2, `F.avg_pool2d(x, 2)`.

    Args:
      x: [B, H, W, C].

    Returns:
      [B, H // 2, W // 2, C].
    """
    return _pool_2x(x, jnp.mean)


def max_pool_2x(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2, `F.max_pool2d(x, 2)`.

    Args:
      x: [B, H, W, C].

    Returns:
      [B, H // 2, W // 2, C].
    """
    return _pool_2x(x, jnp.max)


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
