r"""The real-vs-real floor of a FID protocol: a run's reference images against as many held-out
real images, scored exactly as `evaluate.py --workdir` scores generated ones.

A generator that drew perfect samples of the training distribution would score about this,
not 0 (finite samples, and here train vs test images). Both sides come from the same cache as
the runs' evaluations (`~/.cache/gan_jax/fid_stats`), so a run's reference is computed once:

  python bench/fid_floor.py --config=configs/dcgan.py:cifar10 --num=5000 \
      --config.data.source=folder --config.data.path=cifar10/train --heldout=cifar10/test

Prints FID, KID and precision/recall with the protocol, and writes them as JSON to --out.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gan_jax import platform as platform_lib  # noqa: E402

platform_lib.quiet_tensorflow()  # before anything imports TensorFlow

platform_lib.configure_xla()

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "The runs' training config (its data.* keys).")
flags.DEFINE_string("heldout", None, "Held-out real images: a folder of the same kind.")
flags.DEFINE_integer("num", 5000, "Images on each side.")
flags.DEFINE_integer("batch_size", 100, "Images per Inception call.")
flags.DEFINE_string("out", None, "JSON result file.")


def main(argv):
    del argv
    from gan_jax.evaluation import inception, reference, scoring  # noqa: PLC0415

    config = FLAGS.config
    heldout = config.copy_and_resolve_references()
    heldout.data.path = FLAGS.heldout
    extractor = inception.InceptionFeatures(None)
    ref = reference.reference_stats(
        config, extractor, num_samples=FLAGS.num, batch_size=FLAGS.batch_size
    )
    held = reference.reference_stats(
        heldout, extractor, num_samples=FLAGS.num, batch_size=FLAGS.batch_size
    )
    result = scoring.score(held.features, ref.features)
    result["protocol"] = {
        "reference": ref.protocol,
        "heldout": held.protocol,
        "note": "real vs real: the heldout images scored as if they were generated",
    }
    keys = ("fid", "kid", "kid_std", "precision", "recall")
    print(json.dumps({k: result.get(k) for k in keys}, default=float))
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(
                result,
                f,
                indent=2,
                default=lambda x: float(x) if hasattr(x, "__float__") else str(x),
            )


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "heldout"])
    app.run(main)
