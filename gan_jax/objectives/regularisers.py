"""Regularisers: penalties added to D's or G's loss, each with a weight and an interval.

Lazy regularisation (StyleGAN2): a regulariser with interval k is computed only on steps
where `step % k == 0`, with its weight multiplied by k, so that on average it pulls as hard as
when applied every step at a k-th of the cost.

Each regulariser is a function of a `Context` that the objective fills in for its network's
update; its value is the unweighted penalty (logged as a metric), the objective weighs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gan_jax import config_lib


@dataclasses.dataclass(frozen=True)
class Context:
    """What a regulariser may read during one network's update.

    Attributes:
      params: the parameters being updated (D's for D regularisers, G's for G's).
      run_d: (x, labels) -> logits, D at these parameters (augmentation and the current
        non-parameter state included; its updated state is discarded).
      real, fake: the images of this update ([B, H, W, C]; fake is detached for D).
      real_labels, fake_labels: their class labels ([B] int32, ignored if unconditional).
      key: a PRNG key for the regulariser's own randomness.
    """

    params: Any
    run_d: Callable[[jax.Array, Any], jax.Array] | None = None
    real: jax.Array | None = None
    fake: jax.Array | None = None
    real_labels: jax.Array | None = None
    fake_labels: jax.Array | None = None
    key: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class Regulariser:
    """A named penalty for one network.

    Attributes:
      name: metric name ('gp', 'r1', 'r2', 'ortho').
      net: 'D' or 'G', the network whose loss it joins.
      weight: multiplies the value (before the lazy scaling by `interval`).
      interval: computed every `interval` steps, weighted by `interval` then.
      value: Context -> scalar penalty.
    """

    name: str
    net: str
    weight: float
    interval: int
    value: Callable[[Context], jax.Array]


def _input_grad_sq_norm(run_d, x, labels):
    """Per-sample ||d sum(D(x)) / dx||^2: D's logits are per sample, so one backward pass."""
    grads = jax.grad(lambda y: run_d(y, labels).sum())(x)
    return jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=tuple(range(1, grads.ndim)))


def gradient_penalty(ctx: Context) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""
    eps = jax.random.uniform(ctx.key, (ctx.real.shape[0], 1, 1, 1))
    x_hat = eps * ctx.real + (1.0 - eps) * ctx.fake
    norms = jnp.sqrt(_input_grad_sq_norm(ctx.run_d, x_hat, ctx.real_labels) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(ctx: Context) -> jax.Array:
    """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real images."""
    return jnp.mean(_input_grad_sq_norm(ctx.run_d, ctx.real, ctx.real_labels))


def r2_penalty(ctx: Context) -> jax.Array:
    """R2: E[||grad D(x)||^2] on generated images."""
    return jnp.mean(_input_grad_sq_norm(ctx.run_d, ctx.fake, ctx.fake_labels))


def orthogonal_matrix_penalty(params, *, exclude: tuple[str, ...] = ("shared",)) -> jax.Array:
    """BigGAN's modified orthogonal regularisation, `sum_W ||W^T W * (1 - I)||_F^2`.

    Every parameter with two or more axes is a weight matrix `W` [fan_in, out]: a dense
    kernel as is, a conv kernel [kh, kw, in, out] reshaped to [kh * kw * in, out]. So `W^T W`
    holds the dot products between output filters, and only their off-diagonal entries
    (filters' mutual correlations, not their norms) are pushed to 0. One-axis parameters
    (biases, batch-norm affines) and scalars (attention gamma) are skipped, as in BigGAN,
    and so is any parameter under a module named in `exclude` (BigGAN: the shared embedding).
    BigGAN's cBN gain / bias maps are weight matrices and are included, as in BigGAN-PyTorch.
    The raw (not spectrally normalised) weights are used, as BigGAN-PyTorch does.

    Scale: BigGAN-PyTorch adds `strength * 2 (W W^T * (1 - I)) W` to the gradient, which is the
    gradient of `strength / 2 * orthogonal_matrix_penalty`; the paper writes the penalty as
    `beta * ||.||^2` with beta = 1e-4, which is `config.reg.ortho` here.

    Args:
      params: the generator's 'params' tree (not the whole variables dict).
      exclude: module names whose parameters are left out.

    Returns:
      float32 scalar.
    """
    total = jnp.zeros((), jnp.float32)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
        if jnp.ndim(leaf) < 2 or names & set(exclude):
            continue
        w = jnp.asarray(leaf, jnp.float32).reshape(-1, leaf.shape[-1])
        gram = w.T @ w
        off = gram * (1.0 - jnp.eye(gram.shape[0], dtype=jnp.float32))
        total = total + jnp.sum(off * off)
    return total


def orthogonal_penalty(ctx: Context) -> jax.Array:
    """BigGAN's orthogonal regulariser of G's parameters (`orthogonal_matrix_penalty`)."""
    return orthogonal_matrix_penalty(ctx.params)


VALUES = {
    "gp": gradient_penalty,
    "r1": r1_penalty,
    "r2": r2_penalty,
    "ortho": orthogonal_penalty,
}
NETS = {"gp": "D", "r1": "D", "r2": "D", "ortho": "G"}


def from_config(config, *, gradient_penalty_weight: float = 0.0) -> tuple[Regulariser, ...]:
    """The regularisers a config asks for.

    `config.reg.<name>` is the weight (0 = off) and `config.reg.<name>_every` the interval, for
    name in r1, r2, ortho. R1 and R2 take gamma as StyleGAN does: the penalty is gamma / 2 *
    E||grad||^2. WGAN-GP comes with the 'wasserstein_gp' loss (weight `loss.gp_weight`).
    """
    regs = []
    if gradient_penalty_weight > 0:
        regs.append(Regulariser("gp", "D", float(gradient_penalty_weight), 1, gradient_penalty))
    reg = config.get("reg", None)
    if reg is None:
        return tuple(regs)
    for name in ("r1", "r2", "ortho"):
        weight = float(reg.get(name, 0.0) or 0.0)
        if weight > 0:
            interval = int(reg.get(f"{name}_every", 1) or 1)
            scale = 0.5 if name in ("r1", "r2") else 1.0  # gamma / 2
            regs.append(Regulariser(name, NETS[name], scale * weight, interval, VALUES[name]))
    return tuple(regs)


def validate(config) -> None:
    """Checks config.reg.{r1, r2, ortho, pl} (weights >= 0) and their `_every` intervals."""
    if "reg" not in config:
        return
    for name in ("r1", "r2", "ortho", "pl"):
        if name in config.reg:
            config_lib.number_in(config, f"reg.{name}", 0.0, 1e6)
        if f"{name}_every" in config.reg:
            config_lib.positive_int(config, f"reg.{name}_every")
    # Path length runs G's mapping and synthesis: only StyleGAN2's objective has it.
    if float(config.reg.get("pl", 0.0) or 0.0) > 0:
        config_lib.require(
            config.model.get("name", "") == "stylegan2",
            "reg.pl",
            f"path-length regularisation is StyleGAN2's (model.name is "
            f"{config.model.get('name', '')!r}); set reg.pl=0",
        )
