"""The project's CPU settings: XLA flags before JAX starts (the user's own win, opt-out), and
the restart with malloc huge pages."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from gan_jax import platform

FLAG = "xla_cpu_experimental_ynn_fusion_type"
# Compiles (never runs) a 2x2 convolution of the fast layers' kind and says who would run it.
PROBE = """
from gan_jax import platform
flags = platform.configure_xla()
import jax, jax.numpy as jnp
from jax import lax
x, k = jnp.ones((64, 16, 16, 512)), jnp.ones((2, 2, 512, 64))
dn = ('NHWC', 'HWIO', 'NHWC')
f = jax.jit(lambda x, k: lax.conv_general_dilated(x, k, (1, 1), 'VALID', dimension_numbers=dn))
print(flags)
print('ynn conv' if 'ynn_fusion' in f.lower(x, k).compile().as_text() else 'eigen conv')
"""


def _probe(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "GAN_JAX_NO_XLA_FLAGS")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, "JAX_PLATFORMS": "cpu", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


def test_flags_are_added_and_keep_convolutions_off_ynnpack():
    flags, conv = _probe()
    assert f"--{FLAG}={platform.CPU_FLAGS[FLAG]}" in flags.split()
    assert conv == "eigen conv"  # the measured choice reaches XLA


def test_users_flags_win_and_opt_out_works():
    mine = f"--{FLAG}=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    flags, conv = _probe(XLA_FLAGS=mine)
    assert flags.split() == [mine]  # ours not added beside the user's value
    assert conv == "ynn conv"
    flags, conv = _probe(GAN_JAX_NO_XLA_FLAGS="1", XLA_FLAGS="--xla_cpu_enable_fast_math=false")
    assert flags == "--xla_cpu_enable_fast_math=false"
    assert conv == "ynn conv"  # XLA's own default, which the project's flag changes


# Prints what a restarted entry point sees, and the page faults of touching fresh buffers.
ENTRY = """
import ctypes, json, os, resource, sys
from gan_jax import platform
if __name__ == "__main__":
    platform.use_huge_pages()
libc = ctypes.CDLL(None)  # glibc's malloc, as XLA's buffers use (numpy advises huge pages itself)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    buf = libc.malloc(64 * 2**20)  # 64 MiB, touched, freed
    ctypes.memset(buf, 1, 64 * 2**20)
    libc.free(buf)
print(json.dumps({
    "pid": os.getpid(),
    "argv": sys.argv[1:],
    "tunables": os.environ.get("GLIBC_TUNABLES"),
    "users": platform.user_environ().get("GLIBC_TUNABLES"),
    "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
}))
"""
_HUGE_OK = platform._thp_mode() == "madvise" and platform._glibc_at_least(2, 35)


def _entry(tmp_path, **env):
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    drop = ("GLIBC_TUNABLES", "GAN_JAX_NO_HUGEPAGES", "GAN_JAX_USER_GLIBC_TUNABLES")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    proc = subprocess.Popen(
        [sys.executable, str(script), "a", "--b=c d"],
        cwd=ROOT,
        env={**base, "PYTHONPATH": ROOT, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    (line,) = out.splitlines()  # printed once: the first start re-executed before printing
    return proc.pid, json.loads(line)


@pytest.mark.skipif(not _HUGE_OK, reason="needs Linux, glibc >= 2.35 and THP mode 'madvise'")
def test_entry_point_restarts_once_with_huge_pages_and_faults_less(tmp_path):
    spawned, got = _entry(tmp_path, GLIBC_TUNABLES="glibc.malloc.arena_max=4")
    assert got["pid"] == spawned and got["argv"] == ["a", "--b=c d"]  # execv: same process
    assert got["tunables"] == f"glibc.malloc.arena_max=4:{platform.HUGEPAGE_TUNABLE}"
    assert got["users"] == "glibc.malloc.arena_max=4"  # what the benchmark gives PyTorch
    _, off = _entry(tmp_path, GAN_JAX_NO_HUGEPAGES="1")
    assert off["tunables"] is None
    # 4 x 64 MiB in 4 KiB pages is ~65,000 faults; in 2 MiB pages a few hundred.
    assert got["faults"] * 4 < off["faults"], (got["faults"], off["faults"])


def test_a_users_own_hugetlb_setting_is_left_alone(tmp_path):
    _, got = _entry(tmp_path, GLIBC_TUNABLES="glibc.malloc.hugetlb=0")
    assert got["tunables"] == got["users"] == "glibc.malloc.hugetlb=0"
