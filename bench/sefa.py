r"""How much the studio's SeFa directions move the picture, against random directions.

  python bench/sefa.py --workdir=runs/sngan_digits [--workdir=runs/sg2_digits ...]

For each run: 8 seeds (image 0 of seeds 0-7); each latent moves by 3 standard deviations
along a direction (z models: 3 along a unit direction, z ~ N(0, I); StyleGAN2: 3 standard
deviations of sampled w along it, in every layer's w); the figure is the mean absolute change
of the generator's float output (range [-1, 1]). It compares the mean over the top 3 SeFa
directions with the mean over 16 random unit directions (the same seed for every run) and
prints one JSON line per run with the ratio.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from gan_jax import platform as platform_lib

platform_lib.quiet_tensorflow()
platform_lib.configure_xla()

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("workdir", [], "Training runs to measure.")
flags.DEFINE_float("distance", 3.0, "How far each latent moves, in standard deviations.")


def measure(workdir: str, distance: float) -> dict:
    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from gan_jax import sampling  # noqa: PLC0415
    from gan_jax.sampling import directions as directions_lib  # noqa: PLC0415

    g = sampling.load_generator(workdir)
    seeds = list(range(8))
    labels = np.zeros(len(seeds), np.int32) if g.conditional else None
    d = sampling.sefa(g)
    rng = np.random.default_rng(0)
    random = rng.normal(size=(16, d.vectors.shape[1]))
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    if g.is_style_based:
        cls = type(g.module)
        base = sampling.seed_ws(g, seeds, labels=labels)
        w = directions_lib._sample_w(g)
        random_scales = ((w - w.mean(0)) @ random.T).std(0)
        synth = jax.jit(lambda ws: g.module.apply(g.variables, ws, "const", method=cls.synthesis))
        run = lambda offset: np.asarray(synth(base + offset[None, None, :]))  # noqa: E731
    else:
        base = sampling.latents_for_seeds(g.z_dim, seeds)
        random_scales = np.ones(len(random))
        gen = jax.jit(lambda z: g.module.apply(g.variables, z, labels, train=False))
        run = lambda offset: np.asarray(gen(base + offset[None, :]))  # noqa: E731
    still = run(np.zeros(d.vectors.shape[1], np.float32)).astype(np.float64)

    def change(vector, scale):
        return float(np.abs(run((distance * scale * vector).astype(np.float32)) - still).mean())

    top = [change(v, s) for v, s in zip(d.vectors[:3], d.scales[:3], strict=True)]
    rand = [change(v, s) for v, s in zip(random, random_scales, strict=True)]
    return {
        "workdir": workdir,
        "model": g.config.model.name,
        "step": g.step,
        "space": d.space,
        "sefa_top3": float(np.mean(top)),
        "random16": float(np.mean(rand)),
        "ratio": float(np.mean(top) / np.mean(rand)),
    }


def main(argv):
    del argv
    if not FLAGS.workdir:
        raise app.UsageError("give --workdir=RUN (several allowed)")
    for workdir in FLAGS.workdir:
        print(json.dumps(measure(workdir, FLAGS.distance)), flush=True)


if __name__ == "__main__":
    app.run(main)
