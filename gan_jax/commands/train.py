r"""Trains a GAN: flags in, `gan_jax.training.train_and_evaluate` does the work.

  python train.py --config=configs/dcgan.py --workdir=/tmp/dcgan
  python train.py --config=configs/dcgan.py:celeba --workdir=runs/celeba --config.batch_size=128

Installed (`pip install .`), from any folder, with a packaged config's name:

  gan-jax-train --config=dcgan:celeba --workdir=runs/celeba

Running the same command on the same workdir resumes from its latest checkpoint.

Several processes (hosts) train one model when each runs the same command with its own
--process_id (or under srun / mpirun / on every TPU VM worker, detected by itself):

  python train.py --config=configs/dcgan.py --workdir=/shared/run \
      --coordinator_address=10.0.0.1:8476 --num_processes=2 --process_id=0
"""

import os
import sys

from absl import app, flags, logging

from gan_jax import cli, commands

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and samples.", required=True)
cli.define_config_flag("config", lock_config=True)
flags.DEFINE_enum(
    "distributed",
    "auto",
    ["auto", "on", "off"],
    "Join a multi-process run: 'auto' when the flags below, GAN_JAX_* / JAX_* variables or a "
    "multi-process SLURM/MPI/TPU-pod job say so; 'on' requires it; 'off' never.",
)
flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0, the same for every process."
)
flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).")
flags.DEFINE_enum(
    "progress",
    "auto",
    ["auto", "on", "off"],
    "A live progress line (step, img/s, s/step, ETA, losses) under the log lines: 'auto' "
    "when stderr is a terminal; 'off' leaves only the periodic log lines (logs, clusters).",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    try:
        config = FLAGS.config
        config.keys()  # the config file is loaded lazily: fail here, not mid-run
    except OSError as e:  # config_flags loads the file lazily and wraps its failure
        print(f"error: --config: {str(e).strip().splitlines()[-1].strip()}", file=sys.stderr)
        sys.exit(2)
    # Imported here so that --help and flag errors answer before JAX and TF load.
    from gan_jax import distributed  # noqa: PLC0415

    try:  # before anything touches JAX's devices
        multi_process = distributed.initialize(
            FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id, FLAGS.distributed
        )
    except distributed.DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    import jax  # noqa: PLC0415

    from gan_jax import errors  # noqa: PLC0415
    from gan_jax.training import train_and_evaluate  # noqa: PLC0415

    try:
        train_and_evaluate(config, FLAGS.workdir, progress=FLAGS.progress)
    except errors.USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(errors.exit_code(e))
    except jax.errors.JaxRuntimeError as e:
        if not multi_process:
            raise
        print(
            f"error: process {jax.process_index()} of {jax.process_count()}: a computation "
            f"failed: {str(e).strip().splitlines()[0][:300]}\nIn a multi-process run this "
            "usually means another process died or lost its network. Restart all processes "
            "with the same command: training resumes from the last checkpoint.",
            file=sys.stderr,
            flush=True,
        )
        # Skip the exit-time shutdown barrier: it would wait for the process that is gone.
        os._exit(1)


def run():
    """`gan-jax-train`, `python train.py`, `python -m gan_jax.commands.train`."""
    commands.start(__name__, __doc__)
    flags.mark_flags_as_required(["config"])
    app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
    run()
