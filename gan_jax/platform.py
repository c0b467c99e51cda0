"""The project's CPU settings: XLA flags before JAX starts its backend, malloc huge pages.

XLA reads `XLA_FLAGS` once, when the first backend is created (the first `jax.devices()`,
array or jitted call), so `configure_xla()` must run before that: first thing in every command
(`gan_jax.commands.start`) and in `bench/run.py`, before anything else touches JAX.

`CPU_FLAGS` keeps XLA:CPU's YNNPACK library to dots and leaves convolutions to XLA's own
(Eigen) kernels. jax 0.10.2 also sends convolutions to YNNPACK by default; on this project's
2-core AMD EPYC machines that is up to 5x slower for shapes the fast layers use (a 2x2
convolution 64x16x16x512 -> 64: 77 vs 16 ms) and made the whole DCGAN-64 train step 5-9%
slower (641 vs 605 and 676 vs 617 ms/step: `bench/run.py`'s train step, in alternating
processes). On an Intel AMX machine YNNPACK was measured faster for single kernels
(shared/docs/FACTS.md): re-measure there before copying this choice.

Flags only affect the CPU backend; a flag the user already put in `XLA_FLAGS` wins over ours,
and `GAN_JAX_NO_XLA_FLAGS=1` turns the project's flags off.

`use_huge_pages()` restarts an entry point once so that glibc's malloc backs XLA's buffers
with transparent huge pages (100x fewer page faults, the DCGAN-64 step 14% faster); see there.

`quiet_tensorflow()` keeps TensorFlow's start-up notices (printed twice by TF 2.21) off the
console of entry points where TF is only the input pipeline.
"""

from __future__ import annotations

import os
import sys
import warnings

# name -> value; each is added as --name=value unless XLA_FLAGS already names it.
CPU_FLAGS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
}


# TensorFlow's own environment variables, set (unless the user set them) before it is imported.
TF_QUIET_ENV: dict[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # no INFO/WARNING lines from TF's C++ side
    "TF_ENABLE_ONEDNN_OPTS": "0",  # no oneDNN banner (see quiet_tensorflow)
}


def quiet_tensorflow() -> None:
    """Keeps TensorFlow's start-up notices off the console; call it before TF is imported.

    `import tensorflow` (2.21) prints "oneDNN custom operations are on..." twice, with a
    "WARNING: All log messages before absl::InitializeLog()..." line before each: two of its
    shared libraries (the framework and `_pywrap_profiler_plugin.so`) each carry a copy of
    `tensorflow/core/util/port.cc`, whose check logs the banner when first called. The banner
    goes out before TF reads `TF_CPP_MIN_LOG_LEVEL`, so only `TF_ENABLE_ONEDNN_OPTS=0` stops
    it (no restart is involved: it prints twice in one process).

    That switch only changes which kernels TensorFlow runs, and TF here runs nothing but the
    input pipeline (decode, grayscale, antialiased resize, casts): its batches were checked
    byte-identical with oneDNN on and off (MNIST, CIFAR-10 and CelebA mock TFDS data, in
    memory and streamed, plus RGB->gray and resize cases). The models run in JAX, untouched.
    A user's own value of either variable wins.
    """
    for name, value in TF_QUIET_ENV.items():
        os.environ.setdefault(name, value)


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


HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
_THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"


def _thp_mode() -> str | None:
    """The kernel's transparent-huge-page mode ('always', 'madvise', 'never'), None if unknown."""
    try:
        with open(_THP_ENABLED) as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def _glibc_at_least(major: int, minor: int) -> bool:
    import platform  # noqa: PLC0415 (the stdlib module, shadowed by this file's name)

    libc, version = platform.libc_ver()
    try:
        return libc == "glibc" and tuple(map(int, version.split(".")[:2])) >= (major, minor)
    except ValueError:
        return False


def huge_pages_wanted() -> bool:
    """Whether `use_huge_pages()` would restart this process (see there for the conditions)."""
    if os.environ.get("GAN_JAX_NO_HUGEPAGES", "") not in ("", "0"):
        return False
    if "glibc.malloc.hugetlb" in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the user's own setting, or this process already restarted
    if not sys.platform.startswith("linux") or not sys.executable or _thp_mode() != "madvise":
        return False  # 'always' has huge pages already; 'never' cannot have them
    return _glibc_at_least(2, 35)  # the release that added the tunable


def use_huge_pages() -> None:
    """Restarts this process once with glibc's malloc asking for transparent huge pages.

    XLA:CPU takes each step's buffers from malloc, which maps large ones fresh from the
    kernel and returns them when freed, so every step faults in every page of its temporary
    memory again, 4 KiB at a time. With the tunable `glibc.malloc.hugetlb=1`, malloc asks for
    2 MiB pages: the DCGAN-64 train step took 674 instead of 69,842 page faults, 0.038 instead
    of 0.114 s of kernel time, and ran at 135.6 instead of 119.2 img/s (`bench/run.py
    --sections step --sizes 64 --no-torch`, with and without `GAN_JAX_NO_HUGEPAGES=1`).
    glibc reads tunables only at start-up, hence the restart
    (`os.execv`: same process id, arguments, open files). Call it first thing in an entry
    point (`gan_jax.commands.start`, a script's `__main__`), never from library code.

    Only on Linux with glibc >= 2.35 and the kernel's THP mode 'madvise' (the usual default;
    'always' needs nothing). `GAN_JAX_NO_HUGEPAGES=1` turns it off, and a `GLIBC_TUNABLES`
    that already sets `glibc.malloc.hugetlb` is left alone. The user's own `GLIBC_TUNABLES`
    is kept in `GAN_JAX_USER_GLIBC_TUNABLES` (the benchmark gives it back to PyTorch).
    """
    if not huge_pages_wanted():
        return
    if "jax" in sys.modules:
        warnings.warn(
            "gan_jax.platform.use_huge_pages() ran after JAX was imported; not restarting. "
            "Call it first thing in the entry point.",
            stacklevel=2,
        )
        return
    user = os.environ.get("GLIBC_TUNABLES", "")
    os.environ["GAN_JAX_USER_GLIBC_TUNABLES"] = user
    os.environ["GLIBC_TUNABLES"] = ":".join(t for t in (user, HUGEPAGE_TUNABLE) if t)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def user_environ() -> dict[str, str]:
    """This process's environment as the user set it, before `use_huge_pages()`."""
    env = dict(os.environ)
    if "GAN_JAX_USER_GLIBC_TUNABLES" in env:
        user = env.pop("GAN_JAX_USER_GLIBC_TUNABLES")
        if user:
            env["GLIBC_TUNABLES"] = user
        else:
            env.pop("GLIBC_TUNABLES", None)
    return env


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
