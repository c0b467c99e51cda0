"""Semantic directions found without labels: SeFa (every model) and GANSpace (StyleGAN2).

    g = sampling.load_generator("runs/sg2_anime")
    d = sampling.sefa(g, num=8, layers="0-3")        # directions in w for the coarse styles
    # move along d.vectors[0] by 2 standard deviations of w along it:
    recipe = sampling.Recipe(x=7, edits=((d.method, 0, 2.0),), edit_layers="0-3")

SeFa (Shen & Zhou, 2021) is closed form: the top eigenvectors of A^T A, where A is the weight
of the first layer that reads the latent (z, or for StyleGAN2 the style affines of the
chosen layers reading w): the unit latent moves that change that layer's output most.
GANSpace (Harkonen et al., 2020) is the PCA of sampled w. Both are deterministic for a
checkpoint, so an edit saved as (method, index, strength) reproduces exactly.

Strengths are in standard deviations of the latent along the direction (1 for z ~ N(0, I);
measured from sampled w for StyleGAN2), so one slider range suits every model.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import models
from gan_jax.errors import SamplingError
from gan_jax.objectives.latents import latents
from gan_jax.sampling import style
from gan_jax.sampling.generation import Generator

METHODS = ("sefa", "ganspace")
# Samples of w for GANSpace's PCA and for the slider unit; fixed so directions reproduce.
W_SAMPLES = 4096
W_SEED = 123_456


@dataclasses.dataclass(frozen=True)
class Directions:
    """Unit directions in the latent space, strongest first.

    Attributes:
      method: 'sefa' or 'ganspace'.
      space: 'z' (added to z) or 'w' (added to the ws of `layers`).
      vectors: float32 [k, dim], orthonormal rows.
      values: float32 [k]: SeFa's eigenvalues of A^T A, or GANSpace's variances.
      scales: float32 [k]: standard deviation of the latent along each direction.
      layers: the ws indices the edits apply to (StyleGAN2), else None.
    """

    method: str
    space: str
    vectors: np.ndarray
    values: np.ndarray
    scales: np.ndarray
    layers: tuple[int, ...] | None = None

    def offset(self, edits) -> np.ndarray:
        """The latent offset of edits [(index, strength in standard deviations), ...]."""
        out = np.zeros(self.vectors.shape[1], np.float32)
        for index, strength in edits:
            if not 0 <= index < len(self.vectors):
                raise SamplingError(
                    f"{self.method} direction {index} does not exist (0-{len(self.vectors) - 1})"
                )
            out += float(strength) * self.scales[index] * self.vectors[index]
        return out


def _layers(handle: Generator, layers) -> tuple[int, ...] | None:
    if not handle.is_style_based:
        if layers not in (None, "", "all"):
            raise SamplingError("layer ranges are for StyleGAN2 runs (edits in w)")
        return None
    if layers in (None, "", "all"):
        return tuple(range(handle.module.num_ws))
    return style.parse_layers(layers, handle.module.num_ws)


def _sample_w(handle: Generator, num: int = W_SAMPLES) -> np.ndarray:
    """w [num, w_dim] of fixed seeds, untruncated (the distribution the directions live in)."""
    z = latents(handle.z_dim, num, seed=W_SEED)
    labels = (np.arange(num) % handle.num_classes).astype(np.int32) if handle.conditional else None
    mapping, _ = style._compiled(handle.module, handle.conditional)
    ws = mapping(handle.variables, z, labels, jnp.float32(1.0))
    return np.asarray(ws[:, 0])


def _check_num(num: int, dim: int) -> int:
    if not isinstance(num, (int, np.integer)) or num < 1:
        raise SamplingError(f"the number of directions must be >= 1, got {num}")
    return min(int(num), dim)


def sefa(handle: Generator, *, num: int = 10, layers=None) -> Directions:
    """SeFa: the top `num` eigenvectors of A^T A (see the module docstring).

    Args:
      handle: a loaded generator.
      num: directions to return (at most the latent size).
      layers: StyleGAN2 only: ws indices ('0-3', '4,5', None or 'all' for every layer).

    Returns:
      Directions with `values` the eigenvalues, largest first.
    """
    picked = _layers(handle, layers)
    params = handle.variables["params"]
    try:
        weight = models.latent_weight(handle.config, params, picked)
    except ValueError as e:
        raise SamplingError(str(e)) from None
    weight = np.asarray(jax.device_get(weight), np.float64)
    values, vectors = np.linalg.eigh(weight.T @ weight)  # ascending
    num = _check_num(num, len(values))
    order = np.argsort(values)[::-1][:num]
    vectors = vectors[:, order].T
    # An eigenvector's sign is arbitrary: fix it so that a direction means one thing across
    # library versions (its largest entry positive).
    signs = np.sign(vectors[np.arange(num), np.abs(vectors).argmax(1)])
    vectors = (vectors * signs[:, None]).astype(np.float32)
    if handle.is_style_based:
        centred = _sample_w(handle)
        centred = centred - centred.mean(0)
        scales = (centred @ vectors.T).std(0)
    else:
        scales = np.ones(num)  # z ~ N(0, I): std 1 along any unit direction
    return Directions(
        "sefa",
        "w" if handle.is_style_based else "z",
        vectors,
        values[order].astype(np.float32),
        scales.astype(np.float32),
        picked if handle.is_style_based else None,
    )


def ganspace(handle: Generator, *, num: int = 10, layers=None) -> Directions:
    """GANSpace: principal components of sampled w (StyleGAN2 runs).

    For z-input models the PCA of z is isotropic and carries nothing; use `sefa` there.
    """
    if not handle.is_style_based:
        raise SamplingError(
            f"GANSpace needs a StyleGAN2 run (PCA of w); use SeFa for {handle.config.model.name!r}"
        )
    picked = _layers(handle, layers)
    w = _sample_w(handle).astype(np.float64)
    centred = w - w.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    num = _check_num(num, len(sv))
    variances = sv[:num] ** 2 / (len(w) - 1)
    vectors = vt[:num]
    signs = np.sign(vectors[np.arange(num), np.abs(vectors).argmax(1)])
    vectors = (vectors * signs[:, None]).astype(np.float32)
    return Directions(
        "ganspace",
        "w",
        vectors,
        variances.astype(np.float32),
        np.sqrt(variances).astype(np.float32),
        picked,
    )


def find(handle: Generator, method: str, *, num: int = 10, layers=None) -> Directions:
    """`sefa` or `ganspace` by name."""
    if method == "sefa":
        return sefa(handle, num=num, layers=layers)
    if method == "ganspace":
        return ganspace(handle, num=num, layers=layers)
    raise SamplingError(f"unknown direction method {method!r}; use one of {', '.join(METHODS)}")
