r"""Applies a trained image-to-image run (configs/pix2pix.py) to an image or a folder.

  python translate.py --workdir=runs/sr4 --input=small.png --out=out/          # x4 upscale
  python translate.py --workdir=runs/inpaint --input=photo.png --mask=hole.png --out=out/
  python translate.py --workdir=runs/colorize --input=sketches/ --out=out/     # a folder
  python translate.py --workdir=runs/sr4 --input=faces/ --out=out/ --degrade   # demo: 1/4 first

Installed (`pip install .`), `gan-jax-translate` is the same command.

Each input image gives --out/<name>.png (the model's output); with --degrade also
<name>_input.png (what the model read, e.g. the downscaled image or the masked one). Super-
resolution works on any size in bounded memory (overlapping tiles of --tile input pixels;
the result equals the untiled one). A file that cannot be used (undecodable, greyscale for an
RGB model, a mask of another size, smaller than the model's input) gets one line saying why,
the others are still translated, and nothing half-written is left; the exit code is then 1.
"""

import os

from absl import app, flags, logging

from gan_jax import cli, commands

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "An image-to-image training run.")
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("out", None, "Output folder (created).")
flags.DEFINE_string(
    "mask", None, "Inpainting: the hole mask (white = hole), same size as the image."
)
flags.DEFINE_bool("degrade", False, "Apply the task's degradation to the input first (a demo).")
flags.DEFINE_string("step", "latest", "Checkpoint: 'latest' or a step number.")
flags.DEFINE_bool("no_ema", False, "Use the raw generator weights instead of their EMA.")
flags.DEFINE_integer("tile", 128, "Super-resolution: input pixels per tile side.")
flags.DEFINE_integer("seed", 0, "Seed of --degrade's mask or noise.")

_fail = cli.fail


def _inputs(path: str) -> list[str]:
    from gan_jax.input import sources  # noqa: PLC0415

    if os.path.isdir(path):
        found = sources.list_image_files(path)
        if not found:
            _fail(f"--input: no image files in folder '{path}'")
        return found
    return [path]


def _read(path: str):
    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from gan_jax.input import sources  # noqa: PLC0415

    with Image.open(path) as img:
        img.load()
        grey = img.mode in ("1", "L", "LA", "I", "I;16", "F")
        img = sources.to_channels(img, 1 if grey else 3)
        return np.asarray(img, np.uint8)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir or not FLAGS.input or not FLAGS.out:
        _fail("--workdir, --input and --out are required")
    if not os.path.isdir(FLAGS.workdir):
        _fail(f"workdir '{FLAGS.workdir}' does not exist")
    if not os.path.exists(FLAGS.input):
        _fail(f"--input: '{FLAGS.input}' does not exist")
    if FLAGS.mask and not os.path.isfile(FLAGS.mask):
        _fail(f"--mask: '{FLAGS.mask}' does not exist")
    if FLAGS.tile < 8:
        _fail(f"--tile must be >= 8, got {FLAGS.tile}")
    paths = _inputs(FLAGS.input)
    if FLAGS.mask and len(paths) > 1:
        _fail("--mask goes with a single --input image, not a folder")
    try:
        os.makedirs(FLAGS.out, exist_ok=True)
    except OSError as e:
        _fail(f"--out: cannot create '{FLAGS.out}': {e.strerror or e}")

    from gan_jax import errors, images  # noqa: PLC0415
    from gan_jax.logs import quiet_checkpoint_reads, quiet_library_logs  # noqa: PLC0415
    from gan_jax.sampling import translate  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    quiet_library_logs()
    quiet_checkpoint_reads()
    try:
        model = translate.load(FLAGS.workdir, FLAGS.step, use_ema=not FLAGS.no_ema)
    except errors.USER_ERRORS as e:
        _fail(str(e), errors.exit_code(e))
    logging.info(
        "Loaded step %d of %s (task %s, %s weights)",
        model.step,
        FLAGS.workdir,
        model.task,
        "EMA" if model.use_ema else "raw",
    )
    mask = None
    if FLAGS.mask:
        try:
            mask = _read(FLAGS.mask)
        except Exception as e:  # noqa: BLE001 - any decode failure is the user's file
            _fail(f"--mask: cannot read '{FLAGS.mask}': {e}")
    failed = 0
    for i, path in enumerate(paths):
        stem = (
            os.path.splitext(os.path.relpath(path, FLAGS.input))[0]
            if len(paths) > 1
            else (os.path.splitext(os.path.basename(path))[0])
        )
        try:
            image = _read(path)
        except Exception as e:  # noqa: BLE001
            logging.error("%s: cannot decode (%s: %s); skipped", path, type(e).__name__, e)
            failed += 1
            continue
        try:
            prepared = model.model_input(
                image, mask=mask, degrade=FLAGS.degrade, seed=FLAGS.seed, name=path
            )
            source, x, _ = prepared
            out = model.translate_input(prepared, tile=FLAGS.tile)
        except errors.SamplingError as e:
            logging.error("%s; skipped", e)
            failed += 1
            continue
        target = os.path.join(FLAGS.out, stem + ".png")
        try:
            images.save_png(out, target)
            if FLAGS.degrade:
                from gan_jax.objectives.pix2pix import display  # noqa: PLC0415

                shown = display(source[None], model.task, model.channels)[0]
                images.save_png(
                    images.to_uint8(shown), os.path.join(FLAGS.out, stem + "_input.png")
                )
        except OSError as e:
            _fail(f"cannot write '{target}': {e.strerror or e}", 4)
        logging.info(
            "[%d/%d] %s (%dx%d) -> %s (%dx%d)",
            i + 1,
            len(paths),
            path,
            x.shape[1],
            x.shape[0],
            target,
            out.shape[1],
            out.shape[0],
        )
    if failed:
        _fail(f"{failed} of {len(paths)} image(s) could not be translated (see above)", 1)


def run():
    """`gan-jax-translate`, `python translate.py`, `python -m gan_jax.commands.translate`."""
    commands.start(__name__, __doc__)
    app.run(main)


if __name__ == "__main__":
    run()
