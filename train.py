r"""Trains a GAN: flags in, `gan_jax.training.train_and_evaluate` does the work.

  python train.py --config=configs/dcgan.py --workdir=/tmp/dcgan
  python train.py --config=configs/dcgan.py:celeba --workdir=runs/celeba --config.batch_size=128

Running the same command on the same workdir resumes from its latest checkpoint.
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF is only the input pipeline here

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and samples.", required=True)
config_flags.DEFINE_config_file(
    "config", None, "Training config file, e.g. configs/dcgan.py[:preset].", lock_config=True
)


def _parse_flags(argv):
    """Parses flags; a bad flag or config override is one line on stderr, not a traceback."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        # config_flags folds the config file's own traceback into the message: keep the end.
        last = str(e).strip().splitlines()[-1].strip()
        message = last.split(": ", 1)[1] if last.startswith(("ValueError", "KeyError")) else last
    except (AttributeError, KeyError) as e:
        keys = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", str(e))
        detail = f"'{keys[0]}'" if keys else str(e)
        hint = re.search(r'Did you mean "([^"]+)"', str(e))
        detail += f" (did you mean '{hint.group(1)}'?)" if hint else ""
        message = f"unknown config key in an override: {detail}"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # Imported here so that --help and flag errors answer before JAX and TF load.
    from gan_jax.training import errors, train_and_evaluate  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    try:
        config = FLAGS.config
        config.keys()  # the config file is loaded lazily: fail here, not mid-run
    except OSError as e:  # config_flags loads the file lazily and wraps its failure
        print(f"error: --config: {str(e).strip().splitlines()[-1].strip()}", file=sys.stderr)
        sys.exit(2)
    try:
        train_and_evaluate(config, FLAGS.workdir)
    except errors.USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(errors.exit_code(e))


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main, flags_parser=_parse_flags)
