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

A class-conditional run can also be scored per class (`evaluate_conditional`: label accuracy,
CAS, intra-class FID/KID, see `conditional`); those results go under
``result['conditional'][name]``, each with its own protocol::

    generate = lambda num, seed, labels: sampling.generate_array(handle, num, seed=seed,
                                                                 labels=labels)
    result['conditional'] = evaluate_conditional(generate, handle.config, ['cas'],
                                                 num_classes=handle.num_classes, per_class=1000)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gan_jax import events, files
from gan_jax.errors import SamplingError
from gan_jax.evaluation import classifier as classifier_lib
from gan_jax.evaluation import conditional as conditional_lib
from gan_jax.evaluation import inception
from gan_jax.evaluation import metrics as metrics_lib
from gan_jax.evaluation import reference as reference_lib

EVAL_DIR = "eval"
FID_SCALARS = ("fid", "kid", "kid_std", "precision", "recall", "is", "is_std")
# Read from result['conditional'][*]; 'real_accuracy' (the real-data classifier on the real
# test split) is the same number under label accuracy and CAS.
CONDITIONAL_SCALARS = ("label_accuracy", "cas", "real_accuracy", "intra_fid", "intra_kid")
SCALARS = FID_SCALARS + CONDITIONAL_SCALARS
# Per-class metrics of a conditional run, in the order they are computed (cheapest first).
CONDITIONAL_METRICS = ("label_acc", "cas", "intra_fid")
# Labelled splits (`gan_jax.input.load_labelled_arrays`): the real classifier and the real
# images of intra-class FID come from TRAIN_SPLIT, the images classifiers are tested on from
# TEST_SPLIT.
TRAIN_SPLIT = "train"
TEST_SPLIT = "test"
# The real-data classifier does not depend on the latent seed, so that its cache serves every
# evaluation of a dataset.
REAL_CLASSIFIER_SEED = 0
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
    fid_method: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """FID (with `fid_method`), KID, precision/recall and IS of fakes against reals.

    Args:
      real_features: [N1, 2048], or None to use `reference`.
      fake_features: [N2, 2048].
      reference: saved reference statistics (used when real_features is None).
      fake_logits: classifier logits for the Inception Score, or None.
      fid_method: 'sqrtm' (pytorch-fid's computation), 'eigh' (same trace, faster), 'svd'
        (exact from both feature sets, for sets smaller than the feature dimension) or 'auto'
        ('svd' where it is cheap, else 'sqrtm'). The result's 'fid_method' is the one used.
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
        if fid_method not in ("sqrtm", "auto") or "imaginary" not in str(e):
            raise
    # Fewer samples than feature dimensions make sqrtm's product singular; the symmetric form
    # stays well defined there.
    out = metrics_lib.compute_metrics(real_features, fake_features, fid_method="eigh", **kwargs)
    out["notes"].append("sqrtm failed (too few samples for 2048 features): FID computed by eigh")
    return out


def _fake_protocol(fake: dict[str, Any], seed: int) -> dict[str, Any]:
    """What made the generated images: workdir, step, checkpoint, EMA, latent seed."""
    return {
        "workdir": os.path.abspath(fake["workdir"]) if fake.get("workdir") else "",
        "step": int(fake.get("step", 0)),
        "checkpoint": "latest" if fake.get("checkpoint") is None else fake["checkpoint"],
        "ema": bool(fake.get("ema", False)),
        "standing_stats": int(fake.get("standing_stats", 0)),
        "batch_norm": bool(fake.get("batch_norm", True)),  # False: no statistics to name
        "latent_seed": int(seed),
        "quantized": "uint8, like saved images",
    }


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
    fid_method: str = "auto",
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
      reference: precomputed reference statistics (skips the cache lookup), e.g. a
        held-out folder's (`reference.folder_stats`).
      fid_method: see `score`.
      fake: what made the fakes, for the protocol: workdir, step, checkpoint (how it was
        chosen: 'best', 'latest', a step), ema (bool), standing_stats (batches, 0: the
        running statistics). 'step' is also the result's step.

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
        _network_protocol(extractor, result["fid_method"]),
        num_fake=int(fake_features.shape[0]),
        num_real=int(reference.protocol.get("num_samples", 0)),
        fake=_fake_protocol(fake, seed),
        reference={
            k: reference.protocol.get(k)
            for k in ("dataset", "split", "resolution", "channels", "crop", "num_samples", "folder")
            if k in reference.protocol
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
    fid_method: str = "auto",
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
        _network_protocol(extractor, result["fid_method"]),
        num_fake=int(fake_features.shape[0]),
        num_real=int(real_features.shape[0]),
        fake={"folder": os.path.abspath(fake)},
        reference={"folder": os.path.abspath(real), "resolution": "as stored"},
    )
    return result


def evaluate_conditional(
    generate,
    config,
    metrics,
    *,
    num_classes: int,
    per_class: int,
    extractor=None,
    classifier_steps: int = classifier_lib.DEFAULT_STEPS,
    classifier_batch_size: int = classifier_lib.DEFAULT_BATCH_SIZE,
    seed: int = 0,
    batch_size: int = 50,
    stats_dir: str | os.PathLike | None = None,
    fid_method: str = "auto",
    fake: dict[str, Any] | None = None,
    write_cache: bool = True,
) -> dict[str, dict[str, Any]]:
    """Per-class scores of a class-conditional generator against its run's labelled data.

    * 'label_acc': a classifier of the real training split (`classifier.real_classifier`,
      cached beside the FID statistics) labels `per_class` samples of each class; its own
      accuracy on the real test split is reported as 'real_accuracy'.
    * 'cas': a classifier trained on `per_class` samples of each class, tested on the real test
      split, with the real-data classifier's accuracy there as 'real_accuracy' (the ceiling).
    * 'intra_fid': FID/KID between each class's samples and as many real training images of
      that class (at most), in the features of `extractor`; means over the classes.

    The data is read with `gan_jax.input.load_labelled_arrays` (split names `TRAIN_SPLIT` and
    `TEST_SPLIT`), and only the splits the metrics need.

    Args:
      generate: ``generate(num, seed, labels int32 [num]) -> uint8 [num, H, W, C]``; the same
        seed gives the same images (the caller builds it, e.g. from `gan_jax.sampling`).
      config: the run's config (names the data).
      metrics: names from `CONDITIONAL_METRICS`.
      num_classes: the model's classes (>= 2).
      per_class: generated samples per class.
      extractor: an `inception.InceptionFeatures` (or a callable images -> features), needed
        by 'intra_fid' only.
      classifier_steps, classifier_batch_size: training of both classifiers (the real-data one
        and CAS's), so that CAS and its ceiling are trained alike.
      seed: latent seed (each class draws from `conditional.class_seed(seed, class)`) and the
        training seed of CAS's classifier.
      batch_size: images per extractor call.
      stats_dir: cache of the real-data classifier (default ``~/.cache/gan_jax/fid_stats``).
      fid_method: see `score`.
      fake: what made the fakes (workdir, step, checkpoint, ema), added to every protocol.
      write_cache: save a newly trained real-data classifier.

    Returns:
      {name: result} in `CONDITIONAL_METRICS` order; each result is that `conditional`
      function's dict, its 'protocol' extended with 'data' (the real images used) and 'fake'.

    Raises:
      SamplingError: an unknown metric, an unconditional model, bad per_class, or
        'intra_fid' without an extractor.
      DataError: data without labels, or a missing split.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in CONDITIONAL_METRICS]
    if unknown:
        raise SamplingError(
            f"unknown conditional metric '{unknown[0]}': choose from "
            f"{', '.join(CONDITIONAL_METRICS)}"
        )
    if "intra_fid" in metrics and extractor is None:
        raise SamplingError("intra-class FID needs a feature extractor (Inception)")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise SamplingError(
            f"{', '.join(metrics)} need a class-conditional model (num_classes >= 2), got "
            f"num_classes={num_classes}"
        )
    from gan_jax import input as input_lib  # noqa: PLC0415 (TensorFlow only when needed)

    dataset, _ = reference_lib.dataset_identity(config)
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in splits:
            splits[name] = input_lib.load_labelled_arrays(config, name)
        return splits[name]

    def data(name: str, labels: np.ndarray, used: int | None = None) -> dict[str, Any]:
        return {
            "dataset": dataset,
            "split": name,
            "num_images": int(len(labels)) if used is None else int(used),
        }

    classifier = None
    if {"label_acc", "cas"} & set(metrics):
        classifier = classifier_lib.real_classifier(
            config,
            num_classes=int(num_classes),
            split=TRAIN_SPLIT,
            steps=classifier_steps,
            batch_size=classifier_batch_size,
            seed=REAL_CLASSIFIER_SEED,
            stats_dir=stats_dir,
            write_cache=write_cache,
        )
    out: dict[str, dict[str, Any]] = {}
    for name in CONDITIONAL_METRICS:
        if name not in metrics:
            continue
        if name == "label_acc":
            test_x, test_y = split(TEST_SPLIT)
            result = conditional_lib.label_accuracy(
                generate,
                classifier,
                num_classes=num_classes,
                per_class=per_class,
                seed=seed,
                real_images=test_x,
                real_labels=test_y,
            )
            result["protocol"]["data"] = data(TEST_SPLIT, test_y)
        elif name == "cas":
            test_x, test_y = split(TEST_SPLIT)
            result = conditional_lib.classification_accuracy_score(
                generate,
                test_x,
                test_y,
                num_classes=num_classes,
                per_class=per_class,
                train_steps=classifier_steps,
                batch_size=classifier_batch_size,
                seed=seed,
                real_classifier=classifier,
            )
            result["protocol"]["data"] = data(TEST_SPLIT, test_y)
        else:
            train_x, train_y = split(TRAIN_SPLIT)
            # As many real images per class as generated ones (at most), as FID's num_real.
            result = conditional_lib.intra_class_fid(
                generate,
                train_x,
                train_y,
                num_classes=num_classes,
                per_class=per_class,
                extractor=extractor,
                seed=seed,
                max_real_per_class=per_class,
                fid_method=fid_method,
                batch_size=batch_size,
            )
            counts = np.bincount(train_y, minlength=num_classes)
            result["protocol"]["data"] = data(
                TRAIN_SPLIT, train_y, used=np.minimum(counts, per_class).sum()
            )
        result["protocol"]["fake"] = _fake_protocol(dict(fake or {}), seed)
        out[name] = result
    return out


def _fmt(value, spec=".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def format_result(result: dict[str, Any]) -> str:
    """The scores, then the protocol they hold under, as a few readable lines.

    FID and the rest first (when computed), then each conditional metric with its own protocol.
    """
    blocks = [_format_fid(result)] if "fid" in result else []
    blocks += [_format_conditional(r) for r in result.get("conditional", {}).values()]
    return "\n".join(blocks)


def describe_weights(ema: bool, standing_stats: int = 0, batch_norm: bool = True) -> str:
    """'EMA weights' or 'raw weights', then which batch-norm statistics, for logs and
    protocols (sample.py and evaluate.py say it the same way); nothing about statistics for
    a generator without batch norm (StyleGAN2)."""
    text = "EMA weights" if ema else "raw weights"
    if batch_norm:
        text += (
            f", standing statistics of {standing_stats} batches"
            if standing_stats
            else ", running statistics"
        )
    return text


def _format_fakes(fake: dict[str, Any]) -> str:
    weights = describe_weights(
        fake["ema"], fake.get("standing_stats", 0), fake.get("batch_norm", True)
    )
    return (
        f"from step {fake['step']} ({fake['checkpoint']}, {weights}, "
        f"latent seed {fake['latent_seed']})"
    )


def _format_conditional(result: dict[str, Any]) -> str:
    lines = [conditional_lib.format_conditional(result)]
    p = result.get("protocol", {})
    if p.get("fake"):
        lines.append(
            f"  fakes: {p.get('num_fake', p['num_classes'] * p['per_class'])} "
            + _format_fakes(p["fake"])
        )
    data = p.get("data")
    if data:
        source = f"{data['num_images']} from {data['dataset']} [{data['split']}]"
        if "intra_fid" in result:
            lines.append(f"  reals: {source}, at most {p['max_real_per_class']} per class")
        else:
            lines.append(f"  real test images: {source}")
    features = p.get("features")
    if "intra_fid" in result and features and "weights" in features:
        lines.append(
            f"  weights: {features['weights']}; resize: {features['resize']}; "
            f"FID via {p['fid_method']}"
        )
    return "\n".join(lines)


def _format_reals(ref: dict[str, Any]) -> str:
    """Where the reference images came from: a dataset split, or a folder (at the run's size)."""
    if "dataset" in ref:
        return f"from {ref['dataset']} [{ref['split']}] at {ref['resolution']} px"
    if "resolution" in ref:
        return f"from {ref['folder']}, decoded at {ref['resolution']} px as the run's images"
    return f"from {ref['folder']}"


def _format_fid(result: dict[str, Any]) -> str:
    p = result["protocol"]
    ref = p["reference"]
    lines = [
        f"FID {_fmt(result['fid'])}   KID {_fmt(result['kid'], '.5f')} "
        f"(+- {_fmt(result['kid_std'], '.5f')})   precision {_fmt(result['precision'], '.3f')}"
        f"   recall {_fmt(result['recall'], '.3f')}   IS {_fmt(result['is'], '.3f')}",
        f"  weights: {p['weights']} ({p['weights_file']})",
        f"  resize: {p['resize']} [preprocessing={p['preprocessing']}]",
        f"  fakes: {p['num_fake']} "
        + (_format_fakes(p["fake"]) if "step" in p["fake"] else f"from {p['fake']['folder']}"),
        f"  reals: {p['num_real']} {_format_reals(ref)}",
        f"  FID via {p['fid_method']}; KID {p['kid']['subsets']} subsets of "
        f"<= {p['kid']['subset_size']}; precision/recall k={p['precision_recall_k']}",
    ]
    lines += [f"  note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def write_result(workdir: str, result: dict[str, Any], *, tensorboard: bool = True) -> str:
    """Writes `workdir/eval/step_N.json` and the scalars to TensorBoard (`workdir/eval`).

    Args:
      workdir: the run's folder.
      result: from `evaluate_generator`, and/or {'step': N, 'conditional':
        `evaluate_conditional`'s dict} (needs 'step').
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
        writer = events.EventWriter(folder)
        writer.write_scalars(step, scalars(result))
        writer.close()
    return path


def scalars(result: dict[str, Any]) -> dict[str, float]:
    """The numeric scores of a result, for a metric writer.

    `FID_SCALARS` from the result itself, `CONDITIONAL_SCALARS` from its 'conditional' entries
    (the first entry that has one: 'real_accuracy' is the same classifier on the same images
    under label accuracy and CAS).
    """
    out = {k: float(result[k]) for k in FID_SCALARS if result.get(k) is not None}
    for entry in result.get("conditional", {}).values():
        for k in CONDITIONAL_SCALARS:
            if entry.get(k) is not None:
                out.setdefault(k, float(entry[k]))
    return out
