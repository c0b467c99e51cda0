r"""The studio: a local web page to explore trained models by looking, not typing.

  python studio.py --workdir=/tmp/dcgan_digits          # then open http://127.0.0.1:8600
  python studio.py --runs=runs/                         # every run folder inside runs/

Installed (`pip install .`), `gan-jax-studio` is the same command as `python studio.py`.

Pick seeds from a grid or drag on the seed plane, move truncation, walk between two seeds
(export GIF/MP4), edit with SeFa/GANSpace sliders, mix styles and project your own image
(StyleGAN2), look at the run's timelapse and curves, and save a PNG whose recipe
`python sample.py --from_png=FILE` redraws exactly.

It listens on 127.0.0.1 only. To reach it from another machine, prefer an SSH tunnel
(`ssh -L 8600:127.0.0.1:8600 HOST`); `--host=0.0.0.0` serves the network and then every
request must carry the random token in the URL it prints.
"""

import ipaddress
import secrets

from absl import app, flags, logging

from gan_jax import cli, commands

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A training run to serve (config.json, checkpoints/).")
flags.DEFINE_string("runs", None, "A folder of training runs: serve every run in it.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; not loopback => token required.")
flags.DEFINE_integer("port", 8600, "Port to listen on.")
flags.DEFINE_string("token", None, "Access token (default: random when --host is not loopback).")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not 0 < FLAGS.port < 65536:
        cli.fail(f"--port must be in 1-65535, got {FLAGS.port}")
    from gan_jax import errors  # noqa: PLC0415
    from gan_jax.logs import quiet_checkpoint_reads, quiet_library_logs  # noqa: PLC0415

    try:
        from gan_jax import studio  # noqa: PLC0415

        runs = studio.discover_runs(FLAGS.workdir, FLAGS.runs)
    except errors.USER_ERRORS as e:
        cli.fail(str(e))
    import uvicorn  # noqa: PLC0415

    logging.set_verbosity(logging.INFO)
    quiet_library_logs()
    quiet_checkpoint_reads()
    token = FLAGS.token
    if token is None and not _is_loopback(FLAGS.host):
        token = secrets.token_urlsafe(18)
    application = studio.create_app(runs, token=token)
    shown = "127.0.0.1" if FLAGS.host in ("0.0.0.0", "::") else FLAGS.host
    url = f"http://{shown}:{FLAGS.port}/" + (f"?token={token}" if token else "")
    logging.info("Serving %d run(s): %s", len(runs), ", ".join(runs))
    print(f"Studio: open {url}", flush=True)
    if token:
        print("Every request must carry this token; share the URL only with who may use it.")
    uvicorn.run(application, host=FLAGS.host, port=FLAGS.port, log_level="warning")


def run():
    """`gan-jax-studio`, `python studio.py`, `python -m gan_jax.commands.studio`."""
    commands.start(__name__, __doc__, huge_pages=False)
    app.run(main)


if __name__ == "__main__":
    run()
