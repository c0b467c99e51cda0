"""Spectral normalisation (Miyato et al. 2018), as `torch.nn.utils.parametrizations.spectral_norm`.

A spectrally normalised layer uses `W / sigma(W)`, where `sigma` is the largest singular value
of the weight, estimated by power iteration with vectors `u` and `v` kept between calls.

Conventions (PyTorch's `_SpectralNorm` with its default `dim=0`)
----------------------------------------------------------------
The power iteration runs on PyTorch's weight matrix `W_mat = torch_weight.flatten(1)`:

  * `SNDense`: torch Linear weight [out, in]; our kernel is [in, out] (Flax), `W_mat = kernel.T`.
  * `SNConv`: torch Conv2d weight [out, in, kh, kw] flattened to [out, in * kh * kw] in
    (in, kh, kw) order; our kernel is [kh, kw, in, out] (Flax), i.e.
    `kernel = torch_weight.permute(2, 3, 1, 0)`, and `W_mat = kernel.transpose(3, 2, 0, 1)`
    reshaped. `v` keeps PyTorch's (in, kh, kw) order.
  * `SNEmbed`: torch Embedding weight [num, features] = our `embedding`, `W_mat = embedding`.

So `u` has W_mat's row count and `v` its column count, and PyTorch's buffers `_u` and `_v`
copy into our collection 'spectral' {'u', 'v'} unchanged (see `bench/torch_blocks.py`).

Per call, as PyTorch's training / eval forward:

  * `update=True`: `n_power_iterations` steps `u = normalize(W_mat v)`,
    `v = normalize(W_mat^T u)` (no gradient), stored back into 'spectral' (which must then be
    mutable, as for Flax's BatchNorm statistics); then `sigma = u . (W_mat v)` with `u`, `v`
    constants, so gradients flow through the weight in both `W` and `sigma`.
  * `update=False`: `sigma` from the stored `u`, `v`, nothing iterated or written.

`normalize(x) = x / max(||x||, eps)` as `torch.nn.functional.normalize`. At initialisation, as
PyTorch's constructor, `u` and `v` are normalised Gaussian vectors (from the 'params' rng)
improved by 15 power iterations on the initial weight; `init` does not iterate further even
with `update=True` (PyTorch's first training forward is the first update). Each layer sows its
`sigma` into 'intermediates' for monitoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

Dtype = jnp.dtype | str
Initializer = Callable[..., jax.Array]
Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]

INIT_POWER_ITERATIONS = 15  # PyTorch's _SpectralNorm constructor


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """`torch.nn.functional.normalize(x, dim=0, eps=eps)` of a vector: `x / max(||x||, eps)`.

    Args:
      x: a vector.
      eps: lower bound of the norm that divides.

    Returns:
      x scaled to unit norm (unchanged direction).
    """
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


def power_iteration(
    w_mat: jax.Array, u: jax.Array, v: jax.Array, n: int, eps: float = 1e-12
) -> tuple[jax.Array, jax.Array]:
    """`n` power-iteration steps for the top singular vectors of `w_mat`, as PyTorch's.

    Args:
      w_mat: [rows, cols] matrix.
      u: [rows] current left vector (only used if n == 0).
      v: [cols] current right vector.
      n: number of steps (u from v, then v from u).
      eps: `l2_normalize`'s eps.

    Returns:
      (u, v) after the steps, without gradient.
    """
    w_mat = lax.stop_gradient(w_mat)

    def one(_, uv):
        u = l2_normalize(w_mat @ uv[1], eps)
        return u, l2_normalize(w_mat.T @ u, eps)

    if n > 2:  # the 15 steps at initialisation: a loop, not 15 unrolled copies to compile
        u, v = lax.fori_loop(0, n, one, (u, v))
    else:
        for i in range(n):
            u, v = one(i, (u, v))
    return lax.stop_gradient(u), lax.stop_gradient(v)


def spectral_sigma(w_mat: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """PyTorch's `sigma = vdot(u, W_mat v)`, differentiable in `w_mat` only.

    Args:
      w_mat: [rows, cols] weight matrix.
      u: [rows] left vector.
      v: [cols] right vector.

    Returns:
      Scalar estimate of the largest singular value of `w_mat`.
    """
    return lax.stop_gradient(u) @ (w_mat @ lax.stop_gradient(v))


def _spectral_variables(module: nn.Module, w_mat: jax.Array, eps: float):
    """Creates (or finds) `module`'s 'spectral' {'u', 'v'}; call in `setup` or `@compact`."""
    rows, cols = w_mat.shape
    if module.has_variable("spectral", "u"):
        u0 = v0 = None  # never read: the variables exist, so their init functions do not run
    elif not module.is_initializing():
        raise ValueError(
            f"{type(module).__name__} at /{'/'.join(module.path)}: no 'spectral' variables; "
            "apply it with the 'spectral' collection from `init` (next to 'params')"
        )
    else:
        # PyTorch's constructor: normalised Gaussian vectors, then 15 power iterations.
        ku, kv = jax.random.split(module.make_rng("params"))
        u0 = l2_normalize(jax.random.normal(ku, (rows,), jnp.float32), eps)
        v0 = l2_normalize(jax.random.normal(kv, (cols,), jnp.float32), eps)
        u0, v0 = power_iteration(w_mat, u0, v0, INIT_POWER_ITERATIONS, eps)
    u = module.variable("spectral", "u", lambda: u0)
    v = module.variable("spectral", "v", lambda: v0)
    return u, v


def _divide_by_sigma(module, weight, w_mat, u, v, update, n_power_iterations, eps):
    """`weight / sigma(w_mat)`, first updating the variables `u`, `v` if `update`."""
    if n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
    if update and not module.is_initializing():
        u.value, v.value = power_iteration(w_mat, u.value, v.value, n_power_iterations, eps)
    sigma = spectral_sigma(w_mat, u.value, v.value)
    module.sow("intermediates", "sigma", sigma)
    return weight / sigma


def _normalized(
    module: nn.Module,
    weight: jax.Array,
    to_matrix: Callable[[jax.Array], jax.Array],
    update: bool,
    n_power_iterations: int,
    eps: float,
) -> jax.Array:
    """`weight / sigma`, with `module`'s 'spectral' {'u', 'v'} created, used and updated."""
    w_mat = to_matrix(weight)
    u, v = _spectral_variables(module, w_mat, eps)
    return _divide_by_sigma(module, weight, w_mat, u, v, update, n_power_iterations, eps)


def _apply_normalized(module, x, kernel_shape, to_matrix, op, update: bool) -> jax.Array:
    """SNDense's / SNConv's call: `op(x, kernel / sigma) + bias` in `module.dtype`.

    Creates the params `kernel` (`kernel_shape`) and, if `module.use_bias`, `bias`
    [features], both float32; `op(inputs, kernel)` is the layer's linear map.
    """
    kernel = module.param("kernel", module.kernel_init, kernel_shape, jnp.float32)
    kernel = _normalized(module, kernel, to_matrix, update, module.n_power_iterations, module.eps)
    y = op(x.astype(module.dtype), kernel.astype(module.dtype))
    if module.use_bias:
        bias = module.param("bias", module.bias_init, (module.features,), jnp.float32)
        y = y + bias.astype(module.dtype)
    return y


def dense_matrix(kernel: jax.Array) -> jax.Array:
    """PyTorch Linear's weight [out, in] from our kernel [in, out]."""
    return kernel.T


def conv_matrix(kernel: jax.Array) -> jax.Array:
    """PyTorch Conv2d's `weight.flatten(1)` [out, in * kh * kw] from our [kh, kw, in, out]."""
    return kernel.transpose(3, 2, 0, 1).reshape(kernel.shape[-1], -1)


def _conv_padding(padding: Padding, ndim: int = 2):
    """Flax-style padding ('SAME', 'VALID', n, (n, m), ((lo, hi), ...)) to `lax` form."""
    if isinstance(padding, str):
        return padding.upper()
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    pads = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
    if len(pads) != ndim:
        raise ValueError(f"padding needs {ndim} entries, got {padding!r}")
    return pads


class SNDense(nn.Module):
    """`spectral_norm(torch.nn.Linear(in, features, bias=use_bias))`.

    Params: `kernel` [in, features] (torch weight transposed), `bias` [features].
    Spectral: `u` [features], `v` [in].

    Attributes:
      features: output size.
      use_bias: whether to add a bias.
      kernel_init: initialiser of the (unnormalised) kernel.
      bias_init: initialiser of the bias.
      n_power_iterations: power-iteration steps per update.
      eps: normalisation eps (PyTorch's default 1e-12).
      dtype: compute dtype (parameters and the normalisation stay float32).
    """

    features: int
    use_bias: bool = True
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    bias_init: Initializer = nn.initializers.zeros
    n_power_iterations: int = 1
    eps: float = 1e-12
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, update: bool) -> jax.Array:
        """Applies the layer to [..., in]; `update` runs and stores power iterations."""
        shape = (x.shape[-1], self.features)
        return _apply_normalized(self, x, shape, dense_matrix, jnp.matmul, update)


class SNConv(nn.Module):
    """`spectral_norm(torch.nn.Conv2d(in, features, kernel_size, strides, padding))`, NHWC.

    Params: `kernel` [kh, kw, in, features] (`torch_weight.permute(2, 3, 1, 0)`), `bias`.
    Spectral: `u` [features], `v` [in * kh * kw] in PyTorch's (in, kh, kw) order.

    Attributes:
      features: output channels.
      kernel_size: (kh, kw).
      strides: (sh, sw).
      padding: 'SAME', 'VALID', an int (PyTorch's `padding=n`), a pair of ints (per spatial
        axis) or pairs (lo, hi) per axis.
      use_bias: whether to add a bias.
      kernel_init: initialiser of the (unnormalised) kernel.
      bias_init: initialiser of the bias.
      n_power_iterations: power-iteration steps per update.
      eps: normalisation eps.
      dtype: compute dtype (parameters and the normalisation stay float32).
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: Padding = "SAME"
    use_bias: bool = True
    kernel_init: Initializer = nn.initializers.xavier_uniform()
    bias_init: Initializer = nn.initializers.zeros
    n_power_iterations: int = 1
    eps: float = 1e-12
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, update: bool) -> jax.Array:
        """Applies the convolution to [B, H, W, in]; `update` runs and stores power iterations."""
        shape = (*self.kernel_size, x.shape[-1], self.features)

        def conv(inputs, kernel):
            return lax.conv_general_dilated(
                inputs,
                kernel,
                tuple(self.strides),
                _conv_padding(self.padding),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )

        return _apply_normalized(self, x, shape, conv_matrix, conv, update)


class SNEmbed(nn.Module):
    """`spectral_norm(torch.nn.Embedding(num_embeddings, features))`.

    Params: `embedding` [num_embeddings, features] (torch weight as is).
    Spectral: `u` [num_embeddings], `v` [features].

    Attributes:
      num_embeddings: number of rows (classes).
      features: row size.
      embedding_init: initialiser (PyTorch's Embedding: N(0, 1)).
      n_power_iterations: power-iteration steps per update.
      eps: normalisation eps.
      dtype: dtype of the returned rows.
    """

    num_embeddings: int
    features: int
    embedding_init: Initializer = nn.initializers.normal(1.0)
    n_power_iterations: int = 1
    eps: float = 1e-12
    dtype: Dtype = jnp.float32

    def setup(self):
        self.embedding = self.param(
            "embedding", self.embedding_init, (self.num_embeddings, self.features), jnp.float32
        )
        self._u, self._v = _spectral_variables(self, self.embedding, self.eps)

    def normalized_embedding(self, update: bool) -> jax.Array:
        """The whole normalised table [num_embeddings, features] (e.g. for a projection head)."""
        table = self.embedding
        table = _divide_by_sigma(
            self, table, table, self._u, self._v, update, self.n_power_iterations, self.eps
        )
        return table.astype(self.dtype)

    def __call__(self, ids: jax.Array, update: bool) -> jax.Array:
        """Rows of the normalised table for integer `ids` [...] -> [..., features]."""
        return jnp.take(self.normalized_embedding(update), ids, axis=0)
