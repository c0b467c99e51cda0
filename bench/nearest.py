r"""Does a generator copy its training images? Each sample beside its nearest training images.

A few-shot run (100 or 1,000 images) can score well by drawing its training images back. This
draws --num samples of a run (EMA weights, as evaluate.py), finds each one's nearest images in
the training folder by pixel distance at the run's resolution, and compares those distances
with the same distance for real images the run never saw (--heldout): a generator that
invents new images sits about as far from its folder as new real images do; one that copies
sits much closer (ratio well under 1, and far more than 5% of its samples closer to the folder
than 95% of the held-out images are).

  python bench/nearest.py --workdir=runs/few100_ada --real=faces_100 --heldout=anime_heldout \
      --num=2000 --show=8 --out=nearest.png

Prints the medians and their ratio, writes them as JSON (--json), and draws --show samples
(top row) above their --k nearest training images (a column each). Distance: the root mean
square over pixels and channels of images scaled to [0, 1].
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def nearest(queries: np.ndarray, refs: np.ndarray, k: int, chunk: int = 256):
    """(distances [N, k], indices [N, k]) of each query's k nearest refs, nearest first.

    Both uint8 [N, H, W, C]; distances are RMS over pixels of images in [0, 1].
    """
    flat = refs.reshape(len(refs), -1)
    # float32 for the ranking product halves the memory of a large folder (1 GB for 21k
    # faces at 64 px instead of 2); the k candidates are then measured in float64.
    r = flat.astype(np.float32) / 255.0
    r_sq = (r * r).sum(1)
    dists, idx = [], []
    for start in range(0, len(queries), chunk):
        q8 = queries[start : start + chunk].reshape(-1, r.shape[1])
        q = q8.astype(np.float32) / 255.0
        # Ranked by the expanded form (one matrix product), then measured exactly, so that
        # an image and its copy are at distance 0, not at the expansion's rounding error.
        d2 = (q * q).sum(1)[:, None] - 2.0 * q @ r.T + r_sq[None]
        order = np.argsort(d2, axis=1, kind="stable")[:, :k]
        diff = q8[:, None].astype(np.float64) - flat[order].astype(np.float64)
        exact = np.sqrt((diff**2).mean(-1)) / 255.0
        resort = np.argsort(exact, axis=1, kind="stable")
        dists.append(np.take_along_axis(exact, resort, 1))
        idx.append(np.take_along_axis(order, resort, 1))
    return np.concatenate(dists), np.concatenate(idx)


def _load_folder(path: str, fit, limit: int | None = None) -> np.ndarray:
    from gan_jax.input import sources  # noqa: PLC0415

    if not os.path.isdir(path):
        raise FileNotFoundError(f"'{path}' is not a folder of images")
    files = sources.list_image_files(path)[:limit]
    size, channels, crop = fit
    images, failed = sources.decode_files(files, size=size, channels=channels, crop=crop)
    if not len(images):
        raise FileNotFoundError(f"no decodable images in '{path}' ({len(failed)} failed)")
    return images


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--real", required=True, help="the run's training folder")
    p.add_argument("--heldout", default=None, help="real images the run never saw")
    p.add_argument("--step", default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--num", type=int, default=1000, help="samples to measure")
    p.add_argument("--num_heldout", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=8, help="samples in the picture")
    p.add_argument("--k", type=int, default=3, help="neighbours per sample in the picture")
    p.add_argument("--out", default=None, help="the picture (PNG)")
    p.add_argument("--scale", type=int, default=1, help="pixel repeat of the picture")
    p.add_argument("--json", default=None, help="the figures as JSON")
    args = p.parse_args(argv)

    from absl import logging  # noqa: PLC0415

    from gan_jax import config_lib, images, sampling  # noqa: PLC0415
    from gan_jax.errors import CheckpointError, ConfigError  # noqa: PLC0415
    from gan_jax.evaluation import reference  # noqa: PLC0415
    from gan_jax.logs import quiet_checkpoint_reads, quiet_library_logs  # noqa: PLC0415

    logging.use_absl_handler()  # what absl's app.run does for sample.py, so that its filters
    quiet_library_logs()  # apply: no orbax notices about a checkpoint it only reads
    quiet_checkpoint_reads()

    try:
        if args.num < 1 or args.k < 1 or not 0 <= args.show <= args.num:
            raise ValueError("--num and --k must be >= 1 and --show between 0 and --num")
        fit = reference.run_fit(config_lib.load(args.workdir))
        if fit is None:
            raise ValueError(f"the run in '{args.workdir}' has no image size to compare at")
        train = _load_folder(args.real, fit)
        held = _load_folder(args.heldout, fit, args.num_heldout) if args.heldout else None
        step = int(args.step) if args.step and args.step.isdigit() else args.step
        handle = sampling.load_generator(args.workdir, step)
    except (FileNotFoundError, ValueError, CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fakes = sampling.generate_array(handle, args.num, seed=args.seed)
    k = min(args.k, len(train))
    d_fake, i_fake = nearest(fakes, train, k)
    result = {
        "workdir": args.workdir,
        "step": int(handle.step),
        "weights": "ema" if handle.use_ema else "raw",
        "resolution": fit[0],
        "train_images": len(train),
        "samples": args.num,
        "seed": args.seed,
        "distance": "rms over pixels of [0, 1] images",
        "samples_median": float(np.median(d_fake[:, 0])),
    }
    line = (
        f"step {result['step']}: {args.num} samples' median distance to the nearest of "
        f"{len(train)} training images {result['samples_median']:.4f}"
    )
    if held is not None:
        d_held, _ = nearest(held, train, 1)
        result["heldout_images"] = len(held)
        result["heldout_median"] = float(np.median(d_held[:, 0]))
        result["ratio"] = result["samples_median"] / result["heldout_median"]
        # A generator drawing new images like the held-out ones puts about 5% of its samples
        # closer to the folder than 95% of the held-out images are; a copier puts far more.
        result["closer_than_heldout_p5"] = float(np.mean(d_fake[:, 0] < np.percentile(d_held, 5)))
        line += (
            f"; {len(held)} held-out images' {result['heldout_median']:.4f}; ratio "
            f"{result['ratio']:.2f}; {100 * result['closer_than_heldout_p5']:.1f}% of the samples "
            f"are closer than 95% of the held-out images (about 5% for new images)"
        )
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.out and args.show:
        rows = [fakes[: args.show]] + [train[i_fake[: args.show, j]] for j in range(k)]
        grid = images.make_grid(np.concatenate(rows), cols=args.show)
        images.save_png(sampling.upscale(grid, args.scale), args.out)
        print(f"wrote {args.out}: samples (top) above their {k} nearest training images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
