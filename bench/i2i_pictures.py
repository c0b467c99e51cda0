r"""Before/after strips of image-to-image runs on faces drawn by one of our own generators.

  python bench/i2i_pictures.py --faces=runs/dcgan_anime --out=docs/images/i2i_sr4.png \
      --run=runs/sr4_l1 --run=runs/sr4_gan

The originals are samples of a trained generator (`--faces`, e.g. the README's DCGAN anime
run), not dataset images, so the strips are all our models' output. Each row is one face:
the original, the model input its task makes from it (downscaled, holed, grey, edges), the
task's classical baseline (bicubic, OpenCV Telea, the grey input, the edge map) and then each
`--run`'s output. For a CycleGAN run the last column is the known stylisation of the face.
Cells are enlarged `--zoom` times (nearest) to be seen.
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_string("faces", None, "A trained generator run whose samples are the originals.")
flags.DEFINE_multi_string("run", [], "Image-to-image runs, all of one task (or one CycleGAN).")
flags.DEFINE_string("out", None, "Output PNG.")
flags.DEFINE_integer("count", 6, "Faces (rows).")
flags.DEFINE_integer("seed", 0, "Seed of the faces and of the masks.")
flags.DEFINE_integer("zoom", 2, "Nearest-neighbour enlargement of each cell.")


def main(argv):
    del argv
    import numpy as np  # noqa: PLC0415

    from gan_jax import images, sampling  # noqa: PLC0415
    from gan_jax.evaluation import image_metrics as im  # noqa: PLC0415
    from gan_jax.input import unpaired  # noqa: PLC0415
    from gan_jax.objectives.pix2pix import display  # noqa: PLC0415
    from gan_jax.sampling import translate  # noqa: PLC0415

    faces = sampling.generate_array(
        sampling.load_generator(FLAGS.faces), FLAGS.count, seed=FLAGS.seed
    )
    models = [translate.load(r) for r in FLAGS.run]
    task = models[0].task
    rows = []
    for i, face in enumerate(faces):
        first = models[0]
        source, _, hole = first.model_input(face, degrade=True, seed=FLAGS.seed + i)
        cells = [face]
        if task is None:  # CycleGAN: original, G_AB, the known stylisation
            cells += [m(face) for m in models]
            truth = unpaired.cel(face.astype(np.float32) / 127.5 - 1)
            cells.append(images.to_uint8(truth))
        else:
            shown = images.to_uint8(display(source[None], task, first.channels)[0])
            cells.append(shown)
            if task.kind == "sr":
                cells.append(im.upsample(images.to_uint8(source)[None], task.factor)[0])
            elif task.kind == "inpaint":
                cells.append(im.inpaint_opencv(shown[None], hole[None, ..., 0], "telea")[0])
            cells += [m(face, degrade=True, seed=FLAGS.seed + i) for m in models]
        rows.append(np.stack(cells))
    grid = np.concatenate(rows)
    z = FLAGS.zoom
    grid = grid.repeat(z, axis=1).repeat(z, axis=2)
    images.save_png(images.make_grid(grid, cols=len(rows[0])), FLAGS.out)
    print(f"wrote {FLAGS.out}: {len(rows)} rows x {len(rows[0])} columns (task {task})")


if __name__ == "__main__":
    flags.mark_flags_as_required(["faces", "out"])
    app.run(main)
