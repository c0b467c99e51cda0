"""Scores with their protocol: a trained run (checkpoint -> samples) or two image folders.

What evaluate.py and the in-training FID hook call::

    extractor = InceptionFeatures(preprocessing='pytorch-fid')
    generate = lambda num, seed: sampling.generate(handle, num, seed=seed)  # the caller's
    result = evaluate_generator(generate, extractor, config=handle.config, num_samples=10_000,
                                fake={'workdir': ..., 'step': handle.step, ...})
    print(format_result(result))
    write_result(workdir, result)        # workdir/eval/step_N.json + TensorBoard

A result is a dict: 'fid', 'kid', 'kid_std', 'precision', 'recall', 'is', 'is_std', 'notes'
and 'protocol' (network weights, resize, sample counts, reference dataset, split and
resolution, the checkpoint and latent seed of the fakes). Scores only compare under one
protocol, so it travels with every number.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gan_jax import files
from gan_jax.evaluation import inception
from gan_jax.evaluation import metrics as metrics_lib
from gan_jax.evaluation import reference as reference_lib

EVAL_DIR = "eval"
SCALARS = ("fid", "kid", "kid_std", "precision", "recall", "is", "is_std")
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PR_K = 3


def _network_protocol(extractor, fid_method: str) -> dict[str, Any]:
    info = extractor.protocol()
    return {
        "weights": info["weights"],
        "weights_file": extractor.weights_info.path,
        "preprocessing": info["preprocessing"],
        "resize": info["resize"],
        "features": info["features"],
        "fid_method": fid_method,
        "kid": {"kernel": "(x.y/d+1)^3", "subsets": KID_SUBSETS, "subset_size": KID_SUBSET_SIZE},
        "precision_recall_k": PR_K,
    }


def score(
    real_features: np.ndarray | None,
    fake_features: np.ndarray,
    *,
    reference: metrics_lib.ReferenceStats | None = None,
    fake_logits: np.ndarray | None = None,
    fid_method: str = "sqrtm",
    seed: int = 0,
) -> dict[str, Any]:
    """FID (with `fid_method`), KID, precision/recall and IS of fakes against reals.

    Args:
      real_features: [N1, 2048], or None to use `reference`.
      fake_features: [N2, 2048].
      reference: saved reference statistics (used when real_features is None).
      fake_logits: classifier logits for the Inception Score, or None.
      fid_method: 'sqrtm' (pytorch-fid's computation) or 'eigh' (same trace, faster).
      seed: KID subset draws.

    Returns:
      See `metrics.compute_metrics`.
    """
    kwargs = dict(
        fake_logits=fake_logits,
        reference=reference,
        kid_subsets=KID_SUBSETS,
        kid_subset_size=KID_SUBSET_SIZE,
        pr_k=PR_K,
        seed=seed,
    )
    try:
        return metrics_lib.compute_metrics(
            real_features, fake_features, fid_method=fid_method, **kwargs
        )
    except ValueError as e:
        if fid_method != "sqrtm" or "imaginary" not in str(e):
            raise
    # Fewer samples than feature dimensions make sqrtm's product singular; the symmetric form
    # stays well defined there.
    out = metrics_lib.compute_metrics(real_features, fake_features, fid_method="eigh", **kwargs)
    out["notes"].append("sqrtm failed (too few samples for 2048 features): FID computed by eigh")
    return out


def evaluate_generator(
    generate,
    extractor,
    *,
    config,
    num_samples: int,
    num_real: int = 0,
    batch_size: int = 50,
    seed: int = 0,
    stats_dir: str | os.PathLike | None = None,
    reference: metrics_lib.ReferenceStats | None = None,
    fid_method: str = "sqrtm",
    fake: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Samples a generator and scores it against its training set's reference statistics.

    Args:
      generate: (num, seed) -> iterable of uint8 [b, H, W, C] batches, `num` images in all;
        the same seed gives the same images (evaluation never imports the sampler or the
        trainer: the caller hands it this function).
      extractor: an `inception.InceptionFeatures`.
      config: the run's config (names the reference dataset).
      num_samples: generated images.
      num_real: reference images (0: as many as `num_samples`; capped at the dataset size).
      batch_size: images per generator and network call.
      seed: latent seed of the fakes (image i of a seed is always the same latent).
      stats_dir: reference statistics cache (default ``~/.cache/gan_jax/fid_stats``).
      reference: precomputed reference statistics (skips the cache lookup).
      fid_method: see `score`.
      fake: what made the fakes, for the protocol: workdir, step, checkpoint (how it was
        chosen: 'best', 'latest', a step), ema (bool). 'step' is also the result's step.

    Returns:
      The result dict (scores and 'protocol').
    """
    fake = dict(fake or {})
    if reference is None:
        reference = reference_lib.reference_stats(
            config,
            extractor,
            num_samples=num_real or num_samples,
            batch_size=batch_size,
            stats_dir=stats_dir,
        )
    metrics_lib.check_protocols_compatible(reference.protocol, extractor.protocol())
    fakes = generate(num_samples, seed)
    progress = inception.Progress("generated", num_samples)
    fake_features, fake_logits = extractor.features(
        fakes, batch_size=batch_size, with_logits=True, progress=progress
    )
    progress.finish()
    result = score(
        None, fake_features, reference=reference, fake_logits=fake_logits, fid_method=fid_method
    )
    result["protocol"] = dict(
        _network_protocol(extractor, fid_method),
        num_fake=int(fake_features.shape[0]),
        num_real=int(reference.protocol.get("num_samples", 0)),
        fake={
            "workdir": os.path.abspath(fake["workdir"]) if fake.get("workdir") else "",
            "step": int(fake.get("step", 0)),
            "checkpoint": "latest" if fake.get("checkpoint") is None else fake["checkpoint"],
            "ema": bool(fake.get("ema", False)),
            "latent_seed": int(seed),
            "quantized": "uint8, like saved images",
        },
        reference={
            k: reference.protocol.get(k)
            for k in ("dataset", "split", "resolution", "channels", "crop", "num_samples")
        },
    )
    result["step"] = int(fake.get("step", 0))
    return result


def evaluate_folders(
    real: str | os.PathLike,
    fake: str | os.PathLike,
    extractor,
    *,
    batch_size: int = 50,
    fid_method: str = "sqrtm",
) -> dict[str, Any]:
    """Scores the images in folder `fake` against those in folder `real`.

    Args:
      real, fake: image folders (searched recursively; every image is used).
      extractor: an `inception.InceptionFeatures`.
      batch_size: images per network call.
      fid_method: see `score`.

    Returns:
      The result dict (scores and 'protocol').

    Raises:
      reference.FolderError: a folder that is missing, empty or undecodable.
    """
    reference_lib.list_folder(real)  # both checked before any compute
    reference_lib.list_folder(fake)
    real_features = reference_lib.folder_features(extractor, real, batch_size=batch_size)
    fake_features = reference_lib.folder_features(extractor, fake, batch_size=batch_size)
    result = score(real_features, fake_features, fid_method=fid_method)
    result["protocol"] = dict(
        _network_protocol(extractor, fid_method),
        num_fake=int(fake_features.shape[0]),
        num_real=int(real_features.shape[0]),
        fake={"folder": os.path.abspath(fake)},
        reference={"folder": os.path.abspath(real), "resolution": "as stored"},
    )
    return result


def _fmt(value, spec=".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def format_result(result: dict[str, Any]) -> str:
    """The scores, then the protocol they hold under, as a few readable lines."""
    p = result["protocol"]
    ref = p["reference"]
    lines = [
        f"FID {_fmt(result['fid'])}   KID {_fmt(result['kid'], '.5f')} "
        f"(+- {_fmt(result['kid_std'], '.5f')})   precision {_fmt(result['precision'], '.3f')}"
        f"   recall {_fmt(result['recall'], '.3f')}   IS {_fmt(result['is'], '.3f')}",
        f"  weights: {p['weights']} ({p['weights_file']})",
        f"  resize: {p['resize']} [preprocessing={p['preprocessing']}]",
        f"  fakes: {p['num_fake']}"
        + (
            f" from step {p['fake']['step']} ({p['fake']['checkpoint']}, "
            f"{'EMA' if p['fake']['ema'] else 'raw'} weights, latent seed "
            f"{p['fake']['latent_seed']})"
            if "step" in p["fake"]
            else f" from {p['fake']['folder']}"
        ),
        f"  reals: {p['num_real']}"
        + (
            f" from {ref['dataset']} [{ref['split']}] at {ref['resolution']} px"
            if "dataset" in ref
            else f" from {ref['folder']}"
        ),
        f"  FID via {p['fid_method']}; KID {p['kid']['subsets']} subsets of "
        f"<= {p['kid']['subset_size']}; precision/recall k={p['precision_recall_k']}",
    ]
    lines += [f"  note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def write_result(workdir: str, result: dict[str, Any], *, tensorboard: bool = True) -> str:
    """Writes `workdir/eval/step_N.json` and the scalars to TensorBoard (`workdir/eval`).

    Args:
      workdir: the run's folder.
      result: from `evaluate_generator` (needs 'step').
      tensorboard: also write the scalars as TensorBoard events.

    Returns:
      The JSON file's path.
    """
    folder = os.path.join(workdir, EVAL_DIR)
    os.makedirs(folder, exist_ok=True)
    step = int(result["step"])
    path = os.path.join(folder, f"step_{step}.json")
    files.write_json(path, result)
    if tensorboard:
        from clu import metric_writers  # noqa: PLC0415

        writer = metric_writers.SummaryWriter(folder)
        writer.write_scalars(step, scalars(result))
        writer.flush()
        writer.close()
    return path


def scalars(result: dict[str, Any]) -> dict[str, float]:
    """The numeric scores of a result, for a metric writer."""
    return {k: float(result[k]) for k in SCALARS if result.get(k) is not None}
