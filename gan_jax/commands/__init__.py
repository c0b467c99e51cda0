"""The command lines: `gan-jax-train`, `gan-jax-sample`, `gan-jax-evaluate`, `gan-jax-project`
and `gan-jax-studio` once gan_jax is installed, `python train.py` (etc.) in a checkout, and
`python -m gan_jax.commands.train` (etc.) anywhere: each calls its module's `run()`.

`run()` first calls `start()`, before anything imports JAX or TensorFlow (the modules here
import neither at import time: their flags only need absl and ml_collections).
"""

import sys

from absl import flags

from gan_jax import platform as platform_lib


def start(module_name: str, doc: str | None, *, huge_pages: bool = True) -> None:
    """What a command does before it parses its flags, in this order.

    TensorFlow's start-up notices off; the restart with malloc huge pages (`huge_pages`;
    Linux, once; it re-runs the same command line, so every way of starting a command
    restarts the same way); XLA's CPU flags before JAX creates its backend; JAX's persistent
    compilation cache. Then `--help` shows the command's docstring and flags, whichever file
    Python ran (a checkout's train.py, an installed `gan-jax-train` script, `python -m`).
    """
    platform_lib.quiet_tensorflow()
    if huge_pages:
        platform_lib.use_huge_pages()
    platform_lib.configure_xla()
    platform_lib.enable_compilation_cache()
    _adopt_help(module_name, doc)


def _adopt_help(module_name: str, doc: str | None) -> None:
    """absl's `--help` prints `__main__`'s docstring and the flags of the module it ran
    (`sys.argv[0]`): give it the command module's."""
    if module_name == "__main__":  # python -m gan_jax.commands.X: absl has it already
        return
    main = sys.modules.get("__main__")
    if main is not None and doc:
        main.__doc__ = doc
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
