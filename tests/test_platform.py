"""The project's XLA CPU flags: added before JAX starts, the user's own flags win, opt-out."""

import os
import subprocess
import sys

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
