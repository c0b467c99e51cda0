r"""Projects an image into a trained StyleGAN2 run: finds the w that draws it most closely.

  python project.py --workdir=runs/sg2_anime --image=face.png --steps=300 --out=runs/proj/face

Installed (`pip install .`), `gan-jax-project` is the same command as `python project.py`.

Writes to --out: target.png (the image as the model sees it), projected.png, w.npy
([num_ws, w_dim], for `sample.py --w=FILE`), noise.npz (the fitted noise map of every layer,
read by `sample.py --w` from beside w.npy), projection.gif and projection.mp4 (target beside
the image along the optimisation) and result.json (PSNR, final distance, settings). The
distance is pixel MSE plus FID-Inception feature distance (LPIPS weights cannot be fetched
offline); --feature_weight=0 uses pixels only (faster on a CPU). --nonoise keeps the model's
constant noise maps and fits w alone.
"""

import os

from absl import app, flags, logging

from gan_jax import cli, commands

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A StyleGAN2 training run.")
flags.DEFINE_string("image", None, "The image to project (any size; centre-cropped and resized).")
flags.DEFINE_string("out", None, "Output folder (default WORKDIR/projected/<image name>).")
flags.DEFINE_string("step", "latest", "Checkpoint: 'latest', a step number, or 'best'.")
flags.DEFINE_bool("no_ema", False, "Use the raw generator weights instead of their EMA.")
flags.DEFINE_integer("steps", 300, "Optimisation steps.")
flags.DEFINE_float("feature_weight", 1.0, "Weight of the Inception feature distance (0: off).")
flags.DEFINE_float("pixel_weight", 1.0, "Weight of the pixel MSE.")
flags.DEFINE_integer("seed", 0, "Seed of the exploration noise.")
flags.DEFINE_bool("noise", True, "Also fit every layer's noise map (as StyleGAN2's projector).")
flags.DEFINE_float("fps", 24.0, "Frames per second of the video.")

_fail = cli.fail


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir or not FLAGS.image:
        _fail("--workdir and --image are required")
    if not os.path.isdir(FLAGS.workdir):
        _fail(f"workdir '{FLAGS.workdir}' does not exist")
    if not os.path.isfile(FLAGS.image):
        _fail(f"image '{FLAGS.image}' does not exist")
    if FLAGS.steps < 1:
        _fail(f"--steps must be >= 1, got {FLAGS.steps}")
    if FLAGS.feature_weight < 0 or FLAGS.pixel_weight < 0:
        _fail("--feature_weight and --pixel_weight must be >= 0")
    out = FLAGS.out or os.path.join(
        FLAGS.workdir, "projected", os.path.splitext(os.path.basename(FLAGS.image))[0]
    )
    import numpy as np  # noqa: PLC0415

    from gan_jax import errors, files, sampling  # noqa: PLC0415
    from gan_jax.logs import quiet_checkpoint_reads, quiet_library_logs  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    quiet_library_logs()
    quiet_checkpoint_reads()
    try:
        handle = sampling.load_generator(FLAGS.workdir, FLAGS.step, use_ema=not FLAGS.no_ema)
        if not handle.is_style_based:
            _fail(
                f"projection needs a StyleGAN2 run; '{FLAGS.workdir}' is {handle.config.model.name}"
            )
        target = sampling.load_target(FLAGS.image, handle)
        logging.info(
            "Projecting %s into step %d of %s (%d steps)",
            FLAGS.image,
            handle.step,
            FLAGS.workdir,
            FLAGS.steps,
        )
        result = sampling.project(
            handle,
            target,
            steps=FLAGS.steps,
            feature_weight=FLAGS.feature_weight,
            pixel_weight=FLAGS.pixel_weight,
            seed=FLAGS.seed,
            noise=FLAGS.noise,
            progress=lambda i, loss: logging.info(
                "step %d/%d: distance %.4f", i, FLAGS.steps, loss
            ),
        )
        os.makedirs(out, exist_ok=True)
        target_u8 = sampling.to_uint8(target)
        sampling.save_png(target_u8, os.path.join(out, "target.png"))
        sampling.save_png(result.frames[-1], os.path.join(out, "projected.png"))
        with files.atomic_path(os.path.join(out, "w.npy")) as tmp, open(tmp, "wb") as f:
            np.save(f, result.ws.astype(np.float32))
        noise_path = os.path.join(out, sampling.NOISE_FILE)
        if result.noise_maps is not None:
            with files.atomic_path(noise_path) as tmp, open(tmp, "wb") as f:
                np.savez(f, *result.noise_maps)
        elif os.path.exists(noise_path):  # an earlier projection's maps would be read with w.npy
            os.remove(noise_path)
        side = np.concatenate(
            [np.broadcast_to(target_u8, result.frames.shape), result.frames], axis=2
        )
        scale = sampling.auto_scale(side.shape[1])
        big = sampling.upscale(side, scale)
        sampling.save_gif(big, os.path.join(out, "projection.gif"), fps=FLAGS.fps)
        sampling.save_mp4(big, os.path.join(out, "projection.mp4"), fps=FLAGS.fps)
        files.write_json(
            os.path.join(out, "result.json"),
            {
                "workdir": os.path.abspath(FLAGS.workdir),
                "step": handle.step,
                "ema": handle.use_ema,
                "image": os.path.abspath(FLAGS.image),
                "steps": FLAGS.steps,
                "feature_weight": FLAGS.feature_weight,
                "pixel_weight": FLAGS.pixel_weight,
                "noise_maps_fitted": FLAGS.noise,
                "psnr_db": result.psnr,
                "final_distance": float(result.losses[-1]),
                "features": "FID Inception pool3 (LPIPS weights are not available offline)",
            },
        )
        logging.info("PSNR %.2f dB; wrote %s", result.psnr, out)
    except errors.USER_ERRORS as e:
        _fail(str(e), errors.exit_code(e))
    except OSError as e:
        _fail(f"cannot write '{e.filename or out}': {e.strerror or e}", 4)


def run():
    """`gan-jax-project`, `python project.py`, `python -m gan_jax.commands.project`."""
    commands.start(__name__, __doc__)
    app.run(main)


if __name__ == "__main__":
    run()
