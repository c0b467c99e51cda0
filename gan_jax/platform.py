"""XLA flags the project sets for CPU runs, before JAX starts its backend.

XLA reads `XLA_FLAGS` once, when the first backend is created (the first `jax.devices()`,
array or jitted call), so `configure_xla()` must run before that: first thing in `train.py`,
`sample.py` and `bench/run.py`, before anything else touches JAX.

`CPU_FLAGS` keeps XLA:CPU's YNNPACK library to dots and leaves convolutions to XLA's own
(Eigen) kernels. jax 0.10.2 also sends convolutions to YNNPACK by default; on this project's
2-core AMD EPYC machines that is up to 5x slower for shapes the fast layers use (a 2x2
convolution 64x16x16x512 -> 64: 77 vs 16 ms) and made the whole DCGAN-64 train step 5-9%
slower (641 vs 605 and 676 vs 617 ms/step: `bench/run.py`'s train step, in alternating
processes). On an Intel AMX machine YNNPACK was measured faster for single kernels
(shared/docs/FACTS.md): re-measure there before copying this choice.

Flags only affect the CPU backend; a flag the user already put in `XLA_FLAGS` wins over ours,
and `GAN_JAX_NO_XLA_FLAGS=1` turns the project's flags off.
"""

from __future__ import annotations

import os
import sys
import warnings

# name -> value; each is added as --name=value unless XLA_FLAGS already names it.
CPU_FLAGS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
}


def _flag_name(flag: str) -> str:
    return flag.lstrip("-").split("=", 1)[0]


def _backend_started() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - private module moved: assume it is not started
        return False
    return bool(xla_bridge.backends_are_initialized())


def configure_xla(flags: dict[str, str] | None = None) -> str:
    """Adds the project's XLA CPU flags to `XLA_FLAGS`; the user's own flags win.

    Call it before JAX creates its backend (safe to call twice: it adds nothing twice).

    Args:
      flags: name -> value to add; defaults to `CPU_FLAGS`.

    Returns:
      The resulting `XLA_FLAGS` value (also written to `os.environ`).

    If JAX's backend is already running (e.g. a test calling an entry point in-process),
    the flags could no longer take effect: it warns and leaves `XLA_FLAGS` unchanged.
    """
    current = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("GAN_JAX_NO_XLA_FLAGS", "") not in ("", "0"):
        return current
    present = {_flag_name(f) for f in current.split()}
    wanted = CPU_FLAGS if flags is None else flags
    extra = [f"--{name}={value}" for name, value in wanted.items() if name not in present]
    if not extra:
        return current
    if _backend_started():
        warnings.warn(
            "gan_jax.platform.configure_xla() ran after JAX created its backend; "
            f"flags {extra} are not applied. Call it first thing in the entry point.",
            stacklevel=2,
        )
        return current
    value = " ".join([current, *extra]).strip()
    os.environ["XLA_FLAGS"] = value
    return value


def enable_compilation_cache() -> str | None:
    """Turns on JAX's persistent compilation cache, so a resumed run skips most compiling.

    A restart after preemption, a second `sample.py` or the next notebook session reuses the
    executables of the last one (on 2 CPU cores the tiny test step went from ~14 s to ~3 s).
    The cache lives in `$GAN_JAX_CACHE/xla` (default `~/.cache/gan_jax/xla`); a user's own
    `JAX_COMPILATION_CACHE_DIR` wins, and `GAN_JAX_NO_COMPILATION_CACHE=1` turns it off.

    Returns:
      The cache folder in use, or None when off.
    """
    if os.environ.get("GAN_JAX_NO_COMPILATION_CACHE", "") not in ("", "0"):
        return None
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]  # JAX reads it itself
    import jax  # noqa: PLC0415 (importing jax does not start a backend)

    root = os.path.expanduser(os.environ.get("GAN_JAX_CACHE", "~/.cache/gan_jax"))
    path = os.path.join(root, "xla")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache rather than fail
    jax.config.update("jax_compilation_cache_dir", path)
    return path
