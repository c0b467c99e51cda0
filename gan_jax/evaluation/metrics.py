"""GAN metrics on Inception features: FID, KID, precision/recall, Inception Score.

All in NumPy/SciPy float64 on the host: the features are small next to the network, and
float64 is what the reference implementations use for the Frechet distance.

* FID: Frechet distance between Gaussians fitted to the two feature sets, computed the way
  pytorch-fid computes it (``scipy.linalg.sqrtm`` of ``sigma1 @ sigma2``, a small diagonal
  offset if that is not finite, the real part when the imaginary part is negligible), or,
  when both feature sets are at hand and small next to the feature dimension, exactly from
  the features (method 'svd', see `fid_from_features`): the usual case of an evaluation of a
  few hundred or thousand images, where it takes milliseconds instead of seconds.
* KID: unbiased MMD^2 with the polynomial kernel ``(x.y / d + 1) ** 3``, averaged over random
  subsets (100 subsets of 1000 by default, smaller when a set is smaller), like
  torch-fidelity and clean-fid.
* Precision/recall: Kynkaanniemi et al. 2019, k-NN balls with k = 3.
* Inception Score: needs the classifier logits; ``default_1.pt`` has none, so it is None there.

Reference statistics are saved as ``.npz`` with the protocol that produced them (network,
preprocessing, sample count, dataset, split, resolution): scores only compare under one protocol.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
import scipy.linalg

# How each preprocessing resizes and normalises, for protocols (see inception.py).
RESIZE_DESCRIPTIONS = {
    "pytorch-fid": "bilinear to 299x299 (torch F.interpolate, align_corners=False), then 2x-1",
    "tf": "bilinear to 299x299 (TF1 resize_bilinear, no half-pixel centres), then (x-128)/128",
}

IS_UNAVAILABLE = (
    "Inception Score needs the classifier logits; these weights (e.g. default_1.pt) have only "
    "pool3 features. Use pytorch-fid's pt_inception-2015-12-05 weights to get it."
)


def compute_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, unbiased, like ``np.cov(rowvar=False)``).

    Args:
      features: [N, D] with N >= 2.

    Returns:
      (mu [D], sigma [D, D]).
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need [N >= 2, D] features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    eps: float = 1e-6,
    method: str = "sqrtm",
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``.

    Args:
      mu1, sigma1, mu2, sigma2: the two Gaussians.
      eps: diagonal offset used only when the plain square root is not finite.
      method: 'sqrtm' (pytorch-fid's computation, the default) or 'eigh' (the same trace from
        symmetric eigendecompositions: ~8x faster at d=2048, agrees to ~1e-6 relative).

    Returns:
      The distance as a Python float.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two Gaussians have different dimensions")
    diff = mu1 - mu2
    if method == "eigh":
        # tr sqrt(s1 s2) = tr sqrt(s1^(1/2) s2 s1^(1/2)), a symmetric PSD matrix: two symmetric
        # eigendecompositions instead of a general matrix square root (~8x faster at d=2048).
        w, v = np.linalg.eigh(sigma1)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = root1 @ sigma2 @ root1
        eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)
        tr_covmean = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    elif method == "sqrtm":
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # Near-singular product: shift both covariances a little, as pytorch-fid does.
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if np.iscomplexobj(covmean):
            largest = np.max(np.abs(np.diagonal(covmean).imag))
            if largest > 1e-3:
                raise ValueError(f"sqrtm has a large imaginary component ({largest})")
            covmean = covmean.real
        tr_covmean = np.trace(covmean)
    else:
        raise ValueError(f"method must be 'sqrtm' or 'eigh', got {method!r}")
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


FID_METHODS = ("auto", "svd", "sqrtm", "eigh")


def fid_method_for(method: str, n1: int | None, n2: int | None, dim: int, otherwise: str) -> str:
    """The method 'auto' stands for: 'svd' when both feature sets are at hand (sizes n1, n2;
    None for a set known only by its statistics) and the product n1 * n2 is at most dim^2
    (the SVD's input then costs no more than one dim x dim product), else `otherwise`.
    Other methods are returned as they are."""
    if method not in FID_METHODS:
        raise ValueError(f"fid method must be one of {FID_METHODS}, got {method!r}")
    if method != "auto":
        return method
    small = n1 is not None and n2 is not None and n1 * n2 <= dim * dim
    return "svd" if small else otherwise


def _fid_svd(features1: np.ndarray, features2: np.ndarray) -> float:
    # With centred features A [n1, d] and B [n2, d], sigma1 = A'A / (n1 - 1) and
    # sigma2 = B'B / (n2 - 1). The nonzero eigenvalues of sigma1 sigma2 are those of
    # (A B')(A B')' / ((n1 - 1)(n2 - 1)), so tr sqrt(sigma1 sigma2) is the sum of the singular
    # values of A B' / sqrt((n1 - 1)(n2 - 1)): an exact identity on an [n1, n2] matrix.
    a = np.asarray(features1, np.float64)
    b = np.asarray(features2, np.float64)
    for f in (a, b):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"need [N >= 2, D] features, got shape {f.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError("the two Gaussians have different dimensions")
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    a, b = a - mu1, b - mu2
    n1, n2 = a.shape[0] - 1, b.shape[0] - 1
    singular = np.linalg.svd((a @ b.T) / np.sqrt(n1 * n2), compute_uv=False)
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() / n1 + (b * b).sum() / n2 - 2.0 * singular.sum())


def fid_from_features(
    features1: np.ndarray, features2: np.ndarray, *, method: str = "auto", **kwargs
) -> float:
    """FID between two feature sets [N1, D] and [N2, D].

    `method`: 'svd' computes the trace term exactly from the features (see `_fid_svd`), in
    milliseconds where N1 * N2 <= D^2 (d = 2048: 8 against 8 images, 0.001 s; eigh 3 s,
    sqrtm 27 s on a 2-core CPU; equal to 2e-7 relative); 'sqrtm' and 'eigh' fit the two
    Gaussians and go to `frechet_distance` (kwargs too); 'auto' is 'svd' where that is cheap
    (`fid_method_for`), else 'sqrtm'.
    """
    n1, n2, dim = len(features1), len(features2), np.shape(features1)[-1]
    method = fid_method_for(method, n1, n2, dim, otherwise="sqrtm")
    if method == "svd":
        return _fid_svd(features1, features2)
    return frechet_distance(
        *compute_statistics(features1), *compute_statistics(features2), method=method, **kwargs
    )


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased polynomial-kernel MMD^2 averaged over random subsets.

    Kernel ``k(x, y) = (x.y / d + 1) ** 3``. Each subset draws ``min(subset_size, n1, n2)``
    rows from each set without replacement.

    Args:
      features1, features2: [N1, D] and [N2, D].
      num_subsets: number of subsets.
      subset_size: rows per subset.
      seed: for the subset draws.

    Returns:
      (mean, standard deviation) over subsets.
    """
    x_all = np.asarray(features1, np.float64)
    y_all = np.asarray(features2, np.float64)
    dim = x_all.shape[1]
    m = min(subset_size, x_all.shape[0], y_all.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = x_all[rng.choice(x_all.shape[0], m, replace=False)]
        y = y_all[rng.choice(y_all.shape[0], m, replace=False)]
        k_xx = (x @ x.T / dim + 1.0) ** 3
        k_yy = (y @ y.T / dim + 1.0) ** 3
        k_xy = (x @ y.T / dim + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[i] = within - 2.0 * k_xy.sum() / (m * m)
    return float(values.mean()), float(values.std())


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _knn_radii(features: np.ndarray, k: int, row_batch: int) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row."""
    radii = np.empty(features.shape[0])
    for start in range(0, features.shape[0], row_batch):
        d = _squared_distances(features[start : start + row_batch], features)
        # Index k, not k-1: the row itself is its own nearest neighbour at distance 0.
        radii[start : start + row_batch] = np.partition(d, k, axis=1)[:, k]
    return radii


def _coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray, row_batch: int):
    """Fraction of queries inside at least one support ball."""
    inside = 0
    for start in range(0, queries.shape[0], row_batch):
        d = _squared_distances(queries[start : start + row_batch], support)
        inside += int((d <= radii[None, :]).any(axis=1).sum())
    return inside / queries.shape[0]


def precision_recall(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    *,
    k: int = 3,
    row_batch: int = 1024,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    The real (fake) manifold is the union of balls around each real (fake) sample reaching its
    k-th nearest neighbour. Precision: the fraction of fakes inside the real manifold; recall:
    the fraction of reals inside the fake manifold.

    Args:
      real_features: [N1, D].
      fake_features: [N2, D].
      k: neighbourhood size (3 in the paper).
      row_batch: rows of the distance matrix computed at a time (bounds memory).

    Returns:
      (precision, recall), each in [0, 1].
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    real_radii = _knn_radii(real, k, row_batch)
    fake_radii = _knn_radii(fake, k, row_batch)
    precision = _coverage(fake, real, real_radii, row_batch)
    recall = _coverage(real, fake, fake_radii, row_batch)
    return precision, recall


def inception_score(logits: np.ndarray | None, *, splits: int = 10) -> tuple[float, float] | None:
    """Inception Score exp(E KL(p(y|x) || p(y))) over `splits` chunks.

    Args:
      logits: [N, classes] classifier logits, or None when the weights have no classifier.
      splits: number of chunks (10 as in the original).

    Returns:
      (mean, std) over chunks, or None when `logits` is None (see `IS_UNAVAILABLE`).
    """
    if logits is None:
        return None
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    scores = []
    for chunk in np.array_split(log_p, splits):
        log_marginal = np.log(np.exp(chunk).mean(axis=0, keepdims=True))
        kl = (np.exp(chunk) * (chunk - log_marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------------------------
# Protocol and reference statistics.


def make_protocol(
    *,
    weights: str,
    preprocessing: str,
    num_samples: int,
    dataset: str = "",
    split: str = "",
    resolution: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The facts a score depends on, to save with statistics and print with scores.

    Args:
      weights: network weights name (`WeightsInfo.name`).
      preprocessing: 'pytorch-fid' or 'tf' (resize + normalisation, see inception.py).
      num_samples: images the statistics were computed from.
      dataset, split, resolution: where the images came from.
      **extra: anything else worth recording (JSON-serialisable).

    Returns:
      A JSON-serialisable dict.
    """
    return {
        "weights": weights,
        "preprocessing": preprocessing,
        "resize": RESIZE_DESCRIPTIONS.get(preprocessing, preprocessing),
        "num_samples": int(num_samples),
        "dataset": dataset,
        "split": split,
        "resolution": resolution,
        **extra,
    }


def check_protocols_compatible(reference: dict[str, Any], current: dict[str, Any]) -> None:
    """Raises ValueError when two protocols used different networks or preprocessing."""
    for key in ("weights", "preprocessing"):
        if reference.get(key) != current.get(key):
            raise ValueError(
                f"reference statistics used {key}={reference.get(key)!r}, this run uses "
                f"{current.get(key)!r}: the scores would not be comparable"
            )


@dataclasses.dataclass
class ReferenceStats:
    """Saved statistics of a reference image set.

    Attributes:
      mu: [D] feature mean.
      sigma: [D, D] feature covariance.
      protocol: how they were computed (see `make_protocol`).
      features: the features themselves when saved (needed for KID and precision/recall).
    """

    mu: np.ndarray
    sigma: np.ndarray
    protocol: dict[str, Any]
    features: np.ndarray | None = None


def save_reference_stats(
    path: str | os.PathLike,
    features: np.ndarray,
    protocol: dict[str, Any],
    *,
    keep_features: bool = True,
) -> ReferenceStats:
    """Computes mu/sigma of `features` and saves them with the protocol as ``.npz``.

    Args:
      path: target file (``.npz`` appended by NumPy if missing).
      features: [N, D] reference features.
      protocol: from `make_protocol`.
      keep_features: also store the features (float32) for KID and precision/recall.

    Returns:
      The saved statistics.
    """
    mu, sigma = compute_statistics(features)
    arrays = {"mu": mu, "sigma": sigma, "protocol": np.array(json.dumps(protocol, sort_keys=True))}
    if keep_features:
        arrays["features"] = np.asarray(features, np.float32)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, **arrays)
    return ReferenceStats(mu, sigma, dict(protocol), arrays.get("features"))


def load_reference_stats(path: str | os.PathLike) -> ReferenceStats:
    """Loads statistics saved by `save_reference_stats` (no pickle involved).

    Also accepts pytorch-fid / clean-fid style files with only ``mu`` and ``sigma``; their
    protocol is then empty.
    """
    with np.load(path, allow_pickle=False) as data:
        protocol = json.loads(str(data["protocol"])) if "protocol" in data else {}
        features = data.get("features")
        return ReferenceStats(data["mu"], data["sigma"], protocol, features)


def compute_metrics(
    real_features: np.ndarray | None,
    fake_features: np.ndarray,
    *,
    fake_logits: np.ndarray | None = None,
    reference: ReferenceStats | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    seed: int = 0,
    fid_method: str = "auto",
) -> dict[str, Any]:
    """FID, KID, precision/recall and Inception Score of fakes against reals.

    Args:
      real_features: [N1, D], or None to use `reference` (whose features, when saved, give KID
        and precision/recall; otherwise only FID is computed).
      fake_features: [N2, D].
      fake_logits: classifier logits of the fakes, or None (then 'is' is None with a note).
      reference: saved reference statistics used when real_features is None.
      kid_subsets, kid_subset_size: KID subsets.
      pr_k: k for precision/recall.
      seed: KID subset draws.
      fid_method: 'sqrtm' or 'eigh' (see `frechet_distance`), 'svd' (both feature sets
        needed: `fid_from_features`) or 'auto' ('svd' where it is cheap, else 'sqrtm').

    Returns:
      Dict with 'fid', 'kid', 'kid_std', 'precision', 'recall', 'is', 'is_std' (None where not
      computable), 'fid_method' (the method used) and 'notes' (why something is None).
    """
    notes = []
    if real_features is not None:
        mu_r, sigma_r = compute_statistics(real_features)
        real = real_features
    elif reference is not None:
        mu_r, sigma_r, real = reference.mu, reference.sigma, reference.features
        if real is None:
            notes.append("reference statistics saved without features: no KID, precision, recall")
    else:
        raise ValueError("give real_features or reference")
    n_real = None if real is None else len(real)
    method = fid_method_for(fid_method, n_real, len(fake_features), len(mu_r), "sqrtm")
    if method == "svd":
        if real is None:
            raise ValueError("fid method 'svd' needs the real features, not only statistics")
        fid = fid_from_features(real, fake_features, method="svd")
    else:
        fid = frechet_distance(mu_r, sigma_r, *compute_statistics(fake_features), method=method)
    out: dict[str, Any] = {
        "fid": fid,
        "fid_method": method,
        "kid": None,
        "kid_std": None,
        "precision": None,
        "recall": None,
        "is": None,
        "is_std": None,
    }
    if real is not None:
        out["kid"], out["kid_std"] = kernel_inception_distance(
            real, fake_features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
        if min(len(real), len(fake_features)) > pr_k:
            out["precision"], out["recall"] = precision_recall(real, fake_features, k=pr_k)
        else:
            notes.append(f"precision/recall with k={pr_k} need more than {pr_k} samples per set")
    score = inception_score(fake_logits)
    if score is None:
        notes.append(IS_UNAVAILABLE)
    else:
        out["is"], out["is_std"] = score
    out["notes"] = notes
    return out
