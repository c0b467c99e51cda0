r"""Makes images and animations from a trained run: flags in, `gan_jax.sampling` does the work.

The run's config is read from WORKDIR/config.json; nothing about the model is repeated here.
Installed (`pip install .`), `gan-jax-sample` is the same command as `python sample.py`.

  python sample.py --workdir=/tmp/dcgan_digits                        # 64-image grid PNG
  python sample.py --workdir=/tmp/dcgan_digits --num=16 --cols=4 --seed=7 --truncation=1.5
  python sample.py --workdir=/tmp/dcgan_digits --mode=images --num=10000 --out=/tmp/fakes
  python sample.py --workdir=/tmp/dcgan_digits --mode=interpolate --seeds=1,2,3 --frames=90
  python sample.py --workdir=/tmp/dcgan_digits --mode=walk --num=16 --frames=120 --format=gif
  python sample.py --workdir=runs/sg2_anime --truncation=0.7 --noise_mode=random
  python sample.py --workdir=runs/sg2_anime --mode=style_mix --rows=1,2 --cols=5,6,7 --layers=0-3
  python sample.py --workdir=/tmp/dcgan_digits --mode=timelapse --max_frames=100 --format=gif
  python sample.py --workdir=/tmp/dcgan_digits --mode=curves --smoothing=0.6

Modes:
  grid         one PNG of --num images, --cols per row (default: square).
  images       --num PNGs (000000.png, ...) in the folder --out, written batch by batch.
  interpolate  a path through the latents of --seeds (or --keys random points of --seed), from
               the first to the last key, --frames frames, as --format (gif, mp4, strip).
  walk         the same through --keys random points, closing the loop: it repeats seamlessly.
  With --num > 1, interpolate and walk animate --num paths side by side in a grid.
  style_mix    StyleGAN2: a grid whose cell (r, c) takes the styles of --layers from seed
               --rows[r] and the rest from seed --cols[c]; the top row and left column show
               the seeds' own images.
  timelapse    the run's fixed-noise grids (WORKDIR/samples/step_N.png, one every sample_every
               steps) in step order, "step N" above each, as --format (gif, mp4, strip);
               --every=N keeps grids at least N steps apart, --max_frames spreads at most that
               many evenly (first and last always in), --hold seconds on the last frame; --fps
               is 10 unless given. Grids of another size (a resumed run) are fitted into the
               last one's size. Default: WORKDIR/generated/timelapse.gif, .mp4, _strip.png.
  curves       the run's TensorBoard scalars as one PNG: losses, D(x) and D(G(z)), FID/KID,
               ADA's p, ... (a subplot for each that was logged), --smoothing=W as TensorBoard's.
               Default: WORKDIR/generated/curves.png.
  timelapse and curves read the run's files only: no checkpoint is loaded.

A PNG saved by the studio (studio.py) carries its recipe: --from_png=FILE redraws it exactly,
from the run and checkpoint it names (or --workdir), to --out (default WORKDIR/generated/).

StyleGAN2 runs: --truncation=psi pulls w toward the average w (1 = none, 0.5-0.7 typical);
--noise_mode picks the per-pixel noise (const: the same every call; random: from the seed);
--w=FILE (project.py's w.npy) draws a projected image (grid) or walks in w from it to each
of --seeds (interpolate).

Default outputs go to WORKDIR/generated/ and are named after the mode, step and seed. Image i of
--seed=S is always the same latent, so the same seed gives the same pixels (for the same
--batch_size), and --seeds=S starts at image 0 of --seed=S's grid.
"""

import dataclasses
import functools
import os

from absl import app, flags, logging

from gan_jax import cli, commands

MODES = ("grid", "images", "interpolate", "walk", "style_mix", "timelapse", "curves")
OFFLINE_MODES = ("timelapse", "curves")  # from the run's files: no model is loaded
TIMELAPSE_FPS = 10.0
NOISE_MODES = ("const", "random", "none")
FORMATS = ("gif", "mp4", "strip")

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run folder (config.json, checkpoints/).")
flags.DEFINE_string("step", "latest", "Checkpoint: 'latest', a step number, or 'best'.")
flags.DEFINE_bool("no_ema", False, "Use the raw generator weights instead of their EMA.")
flags.DEFINE_integer(
    "standing_stats",
    -1,
    "Batches of standing statistics for the sampled weights (0: the running ones; -1: as the "
    "run's config.standing_stats says).",
)
flags.DEFINE_enum("mode", "grid", MODES, "What to make.")
flags.DEFINE_integer("num", None, "Images (grid, images) or parallel paths (interpolate, walk).")
flags.DEFINE_string(
    "cols",
    None,
    "Grid columns (default: square); frames in the filmstrip; style_mix: the column seeds.",
)
flags.DEFINE_list("rows", [], "style_mix: the seeds whose styles at --layers are mixed in.")
flags.DEFINE_string("layers", "0-3", "style_mix: w layers taken from the rows ('0-3', '4,5').")
flags.DEFINE_enum("noise_mode", None, NOISE_MODES, "StyleGAN2's noise inputs (default const).")
flags.DEFINE_string(
    "w",
    None,
    "StyleGAN2: a w.npy from project.py; grid: its image; interpolate: a path in w from it "
    "to each of --seeds.",
)
flags.DEFINE_integer("seed", 0, "Latent seed: the same seed gives the same pixels.")
flags.DEFINE_list("seeds", [], "interpolate: key points, one per seed (image 0 of its grid).")
flags.DEFINE_integer("keys", None, "Random key points when --seeds is not given (2; walk 4).")
flags.DEFINE_float(
    "truncation",
    None,
    "Truncation trick: redraw latent entries with |z| > t; StyleGAN2: psi, w toward its mean.",
)
flags.DEFINE_enum("interp", "slerp", ("slerp", "lerp"), "Interpolation: spherical or linear.")
flags.DEFINE_integer("frames", 60, "Frames of an interpolation or walk.")
flags.DEFINE_float("fps", 24.0, "Frames per second of GIF and MP4 (timelapse: 10 if not given).")
flags.DEFINE_list("format", list(FORMATS), "Animation outputs: gif, mp4, strip (any of them).")
flags.DEFINE_integer("scale", None, "Nearest upscaling; default 1 (stills), >= 256 px (videos).")
flags.DEFINE_string(
    "label",
    None,
    "Class-conditional models: a class id K, or 'all' (grid: one row per class, --cols "
    "images each with the same latents down a column). Default: the classes in turn.",
)
flags.DEFINE_integer("batch_size", 256, "Images per device call (bounds device memory).")
flags.DEFINE_string(
    "out", None, "grid, curves: .png file; images: folder; animations, timelapse: path stem."
)
flags.DEFINE_bool("overwrite", True, "Replace existing outputs.")
flags.DEFINE_string(
    "from_png",
    None,
    "Redraw a PNG saved by the studio from the recipe in its metadata (same run, step, "
    "weights, seed blend, truncation, edits); --workdir overrides the run it names.",
)
flags.DEFINE_integer("every", 0, "timelapse: at least this many steps between frames (0: all).")
flags.DEFINE_integer(
    "max_frames", 100, "timelapse: at most this many frames, evenly spread (0: no limit)."
)
flags.DEFINE_float("hold", 2.0, "timelapse: seconds the last frame stays in GIF and MP4.")
flags.DEFINE_float("smoothing", 0.0, "curves: TensorBoard-style smoothing weight in [0, 1).")


_fail = cli.fail


def _check_flags():
    """Cheap checks first: no model is loaded for a request that cannot work."""
    if not FLAGS.workdir:
        _fail("--workdir is required (the training run to sample from)")
    if FLAGS.num is not None and FLAGS.num < 1:
        _fail(f"--num must be >= 1, got {FLAGS.num}")
    if FLAGS.standing_stats < -1:
        _fail(f"--standing_stats must be >= 0 (or -1: the run's), got {FLAGS.standing_stats}")
    if FLAGS.mode == "style_mix":
        for name in ("rows", "cols"):
            try:
                seeds = [int(v) for v in _flag_list(name)]
            except ValueError:
                _fail(f"--{name} takes seeds separated by commas, got {getattr(FLAGS, name)!r}")
            if not seeds:
                _fail(f"--mode=style_mix needs --{name}=SEED,SEED,...")
    elif FLAGS.rows:
        _fail("--rows is for --mode=style_mix")
    elif FLAGS.cols is not None:
        try:
            cols = int(FLAGS.cols)
        except ValueError:
            _fail(f"--cols takes a number of columns, got {FLAGS.cols!r}")
        if cols < 1:
            _fail(f"--cols must be >= 1, got {cols}")
    if FLAGS.batch_size < 1:
        _fail(f"--batch_size must be >= 1, got {FLAGS.batch_size}")
    if FLAGS.scale is not None and FLAGS.scale < 1:
        _fail(f"--scale must be >= 1, got {FLAGS.scale}")
    if FLAGS.mode in ("interpolate", "walk"):
        if FLAGS.frames < 2:
            _fail(f"--frames must be >= 2, got {FLAGS.frames}")
        if not FLAGS.fps > 0:
            _fail(f"--fps must be > 0, got {FLAGS.fps}")
        bad = [f for f in FLAGS.format if f not in FORMATS]
        if bad or not FLAGS.format:
            _fail(f"--format takes any of {','.join(FORMATS)}, got {','.join(FLAGS.format)!r}")
        if FLAGS.keys is not None and FLAGS.keys < 2:
            _fail(f"--keys must be >= 2, got {FLAGS.keys}")
        try:
            seeds = [int(s) for s in FLAGS.seeds]
        except ValueError:
            _fail(f"--seeds must be integers separated by commas, got {','.join(FLAGS.seeds)!r}")
        if seeds and len(seeds) < 2 and not FLAGS.w:
            _fail("--seeds needs at least 2 seeds to interpolate between")
        if seeds and FLAGS.num not in (None, 1):
            _fail("--seeds makes one path; leave out --num (or use --keys for several)")
    elif FLAGS.seeds:
        _fail("--seeds is for --mode=interpolate or --mode=walk")
    _check_offline_flags()


# What only the modes that load a model use: given with timelapse or curves, a mistake.
_MODEL_FLAGS = (
    "step",
    "no_ema",
    "standing_stats",
    "num",
    "seed",
    "keys",
    "truncation",
    "noise_mode",
    "label",
    "w",
    "frames",
    "interp",
    "batch_size",
    "layers",
)


def _check_offline_flags():
    """The flags of --mode=timelapse and --mode=curves, and the ones they do not take."""
    mode = FLAGS.mode
    for name in ("every", "max_frames", "hold"):
        if FLAGS[name].present and mode != "timelapse":
            _fail(f"--{name} is for --mode=timelapse")
    if FLAGS["smoothing"].present and mode != "curves":
        _fail("--smoothing is for --mode=curves")
    if mode not in OFFLINE_MODES:
        return
    unused = [n for n in _MODEL_FLAGS if FLAGS[n].present]
    if unused:
        hint = " (--max_frames caps the frames)" if "frames" in unused else ""
        _fail(
            f"--{unused[0]} is not used by --mode={mode}: it reads the run's files, "
            f"not its model{hint}"
        )
    if mode == "curves":
        for name in ("format", "fps", "cols", "scale"):
            if FLAGS[name].present:
                _fail(f"--{name} is not used by --mode=curves: it writes one PNG (--out)")
        if not 0 <= FLAGS.smoothing < 1:
            _fail(f"--smoothing must be in [0, 1), got {FLAGS.smoothing}")
        return
    if not FLAGS.fps > 0:
        _fail(f"--fps must be > 0, got {FLAGS.fps}")
    bad = [f for f in FLAGS.format if f not in FORMATS]
    if bad or not FLAGS.format:
        _fail(f"--format takes any of {','.join(FORMATS)}, got {','.join(FLAGS.format)!r}")
    if FLAGS.every < 0:
        _fail(f"--every must be >= 0 (steps between frames), got {FLAGS.every}")
    if FLAGS.max_frames != 0 and FLAGS.max_frames < 2:
        _fail(f"--max_frames must be >= 2 (the first and last grid) or 0, got {FLAGS.max_frames}")
    if not FLAGS.hold >= 0:
        _fail(f"--hold must be >= 0 seconds, got {FLAGS.hold}")


def _flag_list(name: str) -> list[str]:
    value = getattr(FLAGS, name)
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v.strip()]


def _cols() -> int | None:
    return None if FLAGS.cols is None else int(FLAGS.cols)


def _writable_target(path: str, *, is_dir: bool):
    """Fails unless `path` can be created: its nearest existing ancestor is a writable folder."""
    path = os.path.abspath(path)
    if os.path.isdir(path) and not is_dir:
        _fail(f"--out '{path}' is a folder; give a file name")
    if os.path.exists(path) and is_dir and not os.path.isdir(path):
        _fail(f"--out '{path}' is a file; give a folder for --mode=images")
    if os.path.exists(path) and not FLAGS.overwrite:
        _fail(f"'{path}' exists (--nooverwrite)")
    probe = path if (is_dir and os.path.isdir(path)) else os.path.dirname(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        _fail(f"cannot write '{path}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        _fail(f"cannot write '{path}': no write permission in '{probe}'")


def _weights_tag(use_ema: bool) -> str:
    """Names the sampled weights in file names: the default (EMA when kept) names nothing."""
    tag = "" if use_ema else "_raw"
    return tag + (f"_standing{FLAGS.standing_stats}" if FLAGS.standing_stats > 0 else "")


def _outputs(step: int | None, use_ema: bool):
    """The output path (grid: file, images: folder, animations: a dict format -> file)."""
    tag = f"step{step}_seed{FLAGS.seed}" + _weights_tag(use_ema)
    default_dir = os.path.join(FLAGS.workdir, "generated")
    if FLAGS.mode == "curves":
        path = FLAGS.out or os.path.join(default_dir, "curves.png")
        if not path.lower().endswith(".png"):
            path += ".png"
        _writable_target(path, is_dir=False)
        return path
    if FLAGS.mode == "timelapse":
        tag = ""
    if FLAGS.mode in ("grid", "style_mix"):
        if FLAGS.mode == "style_mix":
            tag = f"step{step}_layers{FLAGS.layers}" + _weights_tag(use_ema)
        path = FLAGS.out or os.path.join(default_dir, f"{FLAGS.mode}_{tag}.png")
        if not path.lower().endswith(".png"):
            path += ".png"
        _writable_target(path, is_dir=False)
        return path
    if FLAGS.mode == "images":
        path = FLAGS.out or os.path.join(default_dir, f"images_{tag}")
        _writable_target(path, is_dir=True)
        return path
    if FLAGS.seeds:
        tag = f"step{step}_seeds{'-'.join(FLAGS.seeds)}" + _weights_tag(use_ema)
    stem = FLAGS.out or os.path.join(default_dir, f"{FLAGS.mode}_{tag}".rstrip("_"))
    root, ext = os.path.splitext(stem)
    if ext.lower() in (".gif", ".mp4", ".png"):
        stem = root
    paths = {
        "gif": stem + ".gif",
        "mp4": stem + ".mp4",
        "strip": stem + "_strip.png",
    }
    paths = {f: paths[f] for f in dict.fromkeys(FLAGS.format)}
    for p in paths.values():
        _writable_target(p, is_dir=False)
    return paths


def _run(handle, sampling):
    import numpy as np  # noqa: PLC0415

    label = FLAGS.label
    if label is not None and not handle.conditional:
        _fail(f"--label: the model in '{FLAGS.workdir}' is unconditional; drop --label")
    per_class = label == "all"
    if label is not None and not per_class:
        try:
            label = int(label)
        except ValueError:
            _fail(f"--label takes a class id or 'all', got {label!r}")
        if not 0 <= label < handle.num_classes:
            _fail(f"--label must be in [0, {handle.num_classes}) or 'all', got {label}")
    if per_class and FLAGS.mode != "grid":
        _fail("--label=all makes a grid with a row per class: use it with --mode=grid")
    target = _outputs(handle.step, handle.use_ema)
    video = FLAGS.mode in ("interpolate", "walk")
    num = FLAGS.num or (1 if video else 64)
    truncation = FLAGS.truncation
    if handle.is_style_based:  # truncation in w, and the noise inputs
        psi = 1.0 if truncation is None else truncation  # 0 is the average w, not "unset"
        handle = dataclasses.replace(handle, psi=psi, noise_mode=FLAGS.noise_mode or "const")
        truncation = None
    elif FLAGS.noise_mode or FLAGS.mode == "style_mix":
        what = "--noise_mode" if FLAGS.noise_mode else "--mode=style_mix"
        _fail(f"{what} is for StyleGAN2 runs; '{FLAGS.workdir}' is {handle.config.model.name}")
    elif truncation is not None and not truncation > 0:
        _fail(f"--truncation must be > 0, got {truncation}")
    if FLAGS.w:
        _run_w(handle, sampling, target, label)
        return
    if FLAGS.mode == "style_mix":
        rows = [int(v) for v in _flag_list("rows")]
        cols = [int(v) for v in _flag_list("cols")]
        grid = sampling.style_mix_grid(handle, rows, cols, layers=FLAGS.layers, label=label)
        sampling.save_png(sampling.upscale(grid[None], FLAGS.scale or 1)[0], target)
        logging.info(
            "Wrote a style-mixing grid of %d x %d seeds (layers %s from the rows) to %s",
            len(rows),
            len(cols),
            FLAGS.layers,
            target,
        )
        return
    kwargs = {"truncation": truncation, "labels": label, "batch_size": FLAGS.batch_size}

    if per_class:
        # One row per class; column j uses latent j of the seed in every row.
        cols = _cols() or 8
        z = sampling.latents(handle.z_dim, cols, seed=FLAGS.seed, truncation=truncation)
        z = np.tile(z, (handle.num_classes, 1))
        labels = np.repeat(np.arange(handle.num_classes, dtype=np.int32), cols)
        batches = sampling.render(handle, z, labels=labels, batch_size=FLAGS.batch_size)
        images = np.concatenate(list(batches))
        grid = sampling.make_grid(sampling.upscale(images, FLAGS.scale or 1), cols=cols)
        sampling.save_png(grid, target)
        logging.info(
            "Wrote a grid of %d classes x %d images to %s", handle.num_classes, cols, target
        )
        return
    if FLAGS.mode == "grid":
        images = sampling.generate_array(handle, num, seed=FLAGS.seed, **kwargs)
        grid = sampling.make_grid(sampling.upscale(images, FLAGS.scale or 1), cols=_cols())
        sampling.save_png(grid, target)
        logging.info(
            "Wrote a %d-image grid (%dx%d px) to %s", num, grid.shape[1], grid.shape[0], target
        )
        return
    if FLAGS.mode == "images":
        batches = sampling.generate(handle, num, seed=FLAGS.seed, **kwargs)
        if FLAGS.scale and FLAGS.scale > 1:
            batches = (sampling.upscale(b, FLAGS.scale) for b in batches)
        paths = sampling.save_images(batches, target)
        logging.info("Wrote %d PNGs to %s", len(paths), target)
        return

    if FLAGS.seeds:
        seeds = [int(s) for s in FLAGS.seeds]
        keys = sampling.latents_for_seeds(handle.z_dim, seeds, truncation=truncation)
    else:
        k = FLAGS.keys or (4 if FLAGS.mode == "walk" else 2)
        z = sampling.latents(handle.z_dim, k * num, seed=FLAGS.seed, truncation=truncation)
        keys = z.reshape(k, num, handle.z_dim)
    path = sampling.path(keys, FLAGS.frames, method=FLAGS.interp, loop=FLAGS.mode == "walk")
    frames = sampling.render_frames(
        handle,
        path,
        cols=_cols() if num > 1 else None,
        labels=label,
        batch_size=FLAGS.batch_size,
    )
    if "strip" in target:
        count = _cols() or min(FLAGS.frames, 10)
        strip_scale = FLAGS.scale or sampling.auto_scale(max(frames.shape[1:3]), 128)
        sampling.save_strip(sampling.upscale(frames, strip_scale), target["strip"], count=count)
    scale = FLAGS.scale or sampling.auto_scale(max(frames.shape[1:3]))
    big = sampling.upscale(frames, scale) if ("gif" in target or "mp4" in target) else None
    if "gif" in target:
        sampling.save_gif(big, target["gif"], fps=FLAGS.fps)
    if "mp4" in target:
        sampling.save_mp4(big, target["mp4"], fps=FLAGS.fps)
    shape = np.asarray(big if big is not None else frames).shape
    logging.info(
        "Wrote %d frames (%dx%d px) to %s",
        FLAGS.frames,
        shape[2],
        shape[1],
        ", ".join(target.values()),
    )


def _run_w(handle, sampling, target, label):
    """--w=FILE: the projected image (grid) or a path in w to --seeds (interpolate)."""
    import numpy as np  # noqa: PLC0415

    if not handle.is_style_based:
        _fail(f"--w is for StyleGAN2 runs; '{FLAGS.workdir}' is {handle.config.model.name}")
    try:
        w = np.load(FLAGS.w)
    except (OSError, ValueError) as e:
        _fail(f"--w: '{FLAGS.w}' is not a .npy array of ws (project.py writes w.npy): {e}")
    expected = (handle.module.num_ws, int(handle.config.model.w_dim))
    if w.shape != expected:
        _fail(f"--w: '{FLAGS.w}' holds {w.shape}; this model's ws are {expected}")
    # project.py's fitted noise maps, when they lie beside the w: the projected image exactly.
    noise_path = os.path.join(os.path.dirname(os.path.abspath(FLAGS.w)), sampling.NOISE_FILE)
    maps = None
    if os.path.isfile(noise_path):
        maps = sampling.load_noise_maps(noise_path)
        logging.info("Noise maps from %s (the projection's)", noise_path)
    render = functools.partial(sampling.render_ws, handle, noise_maps=maps)
    if FLAGS.mode == "grid":
        image = render(w[None])
        sampling.save_png(sampling.upscale(image, FLAGS.scale or 1)[0], target)
        logging.info("Wrote the image of %s to %s", FLAGS.w, target)
        return
    if FLAGS.mode != "interpolate" or not FLAGS.seeds:
        _fail("--w works with --mode=grid, or --mode=interpolate with --seeds")
    ends = sampling.seed_ws(handle, [int(s) for s in FLAGS.seeds], labels=label)
    keys = np.concatenate([w[None], ends])  # [K, num_ws, w_dim]
    t = np.linspace(0.0, 1.0, FLAGS.frames)
    seg = np.minimum((t * (len(keys) - 1)).astype(int), len(keys) - 2)
    frac = (t * (len(keys) - 1) - seg)[:, None, None]
    path = keys[seg] * (1 - frac) + keys[seg + 1] * frac  # lerp in w, as StyleGAN2 does
    frames = render(path)
    if "strip" in target:
        count = _cols() or min(FLAGS.frames, 10)
        strip_scale = FLAGS.scale or sampling.auto_scale(max(frames.shape[1:3]), 128)
        sampling.save_strip(sampling.upscale(frames, strip_scale), target["strip"], count=count)
    big = sampling.upscale(frames, FLAGS.scale or sampling.auto_scale(max(frames.shape[1:3])))
    if "gif" in target:
        sampling.save_gif(big, target["gif"], fps=FLAGS.fps)
    if "mp4" in target:
        sampling.save_mp4(big, target["mp4"], fps=FLAGS.fps)
    logging.info("Wrote %d frames from %s to %s", FLAGS.frames, FLAGS.w, ", ".join(target.values()))


def _run_offline():
    """--mode=timelapse and --mode=curves: from the run's files, no checkpoint loaded."""
    from gan_jax import errors  # noqa: PLC0415
    from gan_jax.logs import quiet_library_logs  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    quiet_library_logs()
    target = _outputs(None, True)
    try:
        if FLAGS.mode == "curves":
            _run_curves(target)
        else:
            _run_timelapse(target)
    except errors.USER_ERRORS as e:
        _fail(str(e), errors.exit_code(e))
    except OSError as e:
        where = f" '{e.filename}'" if e.filename else ""
        _fail(f"cannot write{where}: {e.strerror or e}", 4)


def _run_timelapse(target):
    from gan_jax.sampling import timelapse, video  # noqa: PLC0415

    fps = FLAGS.fps if FLAGS["fps"].present else TIMELAPSE_FPS
    grid_files = timelapse.grid_files(FLAGS.workdir)
    picked = timelapse.select(
        [step for step, _ in grid_files], every=FLAGS.every, max_frames=FLAGS.max_frames or None
    )
    grids, steps = timelapse.load_grids([grid_files[i] for i in picked])
    side = max(grids.shape[1:3])
    if "strip" in target:
        count = _cols() or min(len(grids), 10)
        scale = FLAGS.scale or video.auto_scale(side, 128)
        frames = timelapse.label_frames(video.upscale(grids, scale), steps)
        video.save_strip(frames, target["strip"], count=count)
    if "gif" in target or "mp4" in target:
        scale = FLAGS.scale or video.auto_scale(side)
        frames = timelapse.label_frames(video.upscale(grids, scale), steps)
        shape = frames.shape
        frames = timelapse.hold_last(frames, FLAGS.hold, fps)
        if "gif" in target:
            video.save_gif(frames, target["gif"], fps=fps)
        if "mp4" in target:
            video.save_mp4(frames, target["mp4"], fps=fps)
    else:
        shape = frames.shape
    logging.info(
        "Wrote a timelapse of %d of %d sample grids (steps %d to %d, %dx%d px) to %s",
        len(steps),
        len(grid_files),
        steps[0],
        steps[-1],
        shape[2],
        shape[1],
        ", ".join(target.values()),
    )


def _run_curves(target):
    from gan_jax.sampling import curves  # noqa: PLC0415

    drawn = curves.plot_curves(FLAGS.workdir, target, smoothing=FLAGS.smoothing)
    logging.info("Wrote the training curves (%s) to %s", ", ".join(drawn), target)


def _run_from_png():
    """--from_png: the recipe in a studio PNG, redrawn with the run and step it names."""
    if FLAGS.mode != "grid":
        _fail("--from_png redraws one image: leave out --mode")
    if not os.path.isfile(FLAGS.from_png):
        _fail(f"--from_png: '{FLAGS.from_png}' does not exist")
    from gan_jax import errors, sampling  # noqa: PLC0415
    from gan_jax.logs import quiet_checkpoint_reads, quiet_library_logs  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    quiet_library_logs()
    quiet_checkpoint_reads()
    try:
        meta, recipe = sampling.read_recipe_png(FLAGS.from_png)
        workdir = FLAGS.workdir or meta.get("workdir") or ""
        if not os.path.isdir(workdir):
            _fail(
                f"the run '{workdir}' named in '{FLAGS.from_png}' is not here: "
                "give its folder with --workdir"
            )
        name = os.path.splitext(os.path.basename(FLAGS.from_png))[0]
        out = FLAGS.out or os.path.join(workdir, "generated", f"{name}_redrawn.png")
        if not out.lower().endswith(".png"):
            out += ".png"
        _writable_target(out, is_dir=False)
        # PNGs from before the key was written were drawn with the run's own setting (None).
        handle = sampling.load_generator(
            workdir,
            int(meta["step"]),
            use_ema=bool(meta["ema"]),
            standing_stats=meta.get("standing_stats"),
        )
        if bool(meta["ema"]) != handle.use_ema:
            _fail(f"the PNG was drawn with EMA weights; '{workdir}' has none")
        image = sampling.render_recipes(handle, [recipe])[0]
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        scale = FLAGS.scale or int(meta.get("scale", 1))
        sampling.save_recipe_png(image, out, handle, recipe, scale=scale)
        logging.info("Redrew %s (step %d of %s) to %s", FLAGS.from_png, handle.step, workdir, out)
    except errors.USER_ERRORS as e:
        _fail(str(e), errors.exit_code(e))
    except (KeyError, TypeError, ValueError) as e:
        _fail(f"--from_png: '{FLAGS.from_png}' has a malformed recipe: {e}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.from_png:
        _run_from_png()
        return
    _check_flags()
    if not os.path.isdir(FLAGS.workdir):
        _fail(f"workdir '{FLAGS.workdir}' does not exist")
    if FLAGS.mode in OFFLINE_MODES:
        _run_offline()
        return
    if FLAGS.out:
        _outputs(None, True)  # an unwritable --out fails now, not after loading the model
    # Imported here so that --help and flag errors answer before JAX and TF load.
    from gan_jax import (
        errors,  # noqa: PLC0415
        sampling,  # noqa: PLC0415
    )
    from gan_jax.logs import quiet_checkpoint_reads, quiet_library_logs  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    quiet_library_logs()
    quiet_checkpoint_reads()
    step = FLAGS.step
    try:
        handle = sampling.load_generator(
            FLAGS.workdir,
            step,
            use_ema=not FLAGS.no_ema,
            standing_stats=None if FLAGS.standing_stats < 0 else FLAGS.standing_stats,
        )
        from gan_jax.evaluation import scoring  # noqa: PLC0415
        from gan_jax.training.step import ema_initial_share  # noqa: PLC0415

        kind = scoring.describe_weights(
            handle.use_ema,
            int(handle.config.get("standing_stats", 0) or 0),
            batch_norm="batch_stats" in handle.variables,
        )
        logging.info("Loaded step %d of %s (%s)", handle.step, FLAGS.workdir, kind)
        share = ema_initial_share(handle.config, handle.step)
        if handle.use_ema and share > 0.1:
            logging.warning(
                "the EMA weights at step %d still hold %.0f%% of the initial weights "
                "(ema_decay %g): images may look like noise; try --no_ema or train longer",
                handle.step,
                100 * share,
                handle.config.ema_decay,
            )
        _run(handle, sampling)
    except errors.USER_ERRORS as e:
        _fail(str(e), errors.exit_code(e))
    except OSError as e:  # a disk that fills or a folder that vanishes while writing
        where = f" '{e.filename}'" if e.filename else ""
        _fail(f"cannot write{where}: {e.strerror or e}", 4)


def run():
    """`gan-jax-sample`, `python sample.py`, `python -m gan_jax.commands.sample`."""
    commands.start(__name__, __doc__)
    app.run(main)


if __name__ == "__main__":
    run()
