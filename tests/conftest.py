"""Shared fixtures: tiny configs that compile and train in seconds on 2 CPU cores."""

import os
import sys
import tempfile

import pytest

# Compile time dominates tiny-config tests on 2 cores. Lighter XLA optimisation and one
# compilation cache per test session (fresh each run, shared with subprocesses) cut it 3-5x
# without changing what is computed: both sides of every equivalence use the same settings.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="gan_jax_xla_cache_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA:CPU's fusion emitters (jaxlib 0.10's default) compile these tiny programs 1.2-3.5x slower
# than its older elemental ones (tiny train step, compile only: DCGAN 2.6-3.3 -> 0.8-0.9 s,
# StyleGAN2 median 32.5 -> 26.6 s). Same meaning as above: every process of the suite, the
# subprocesses included (see `xla_flags`), compiles the same way.
TEST_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false"
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
sys.path.insert(0, ROOT)


def tiny_config(preset: str | None = None, **overrides):
    """The default (digits) config shrunk to a few seconds of CPU: 16 px... 32 px, width 8."""
    from gan_jax.configs import dcgan  # noqa: PLC0415

    c = dcgan.get_config(preset)
    c.batch_size = 8
    c.num_epochs = 0
    c.num_steps = 4
    c.model.g_width = 8
    c.model.d_width = 8
    c.model.z_dim = 16
    c.data.image_size = 32
    c.log_every = 2
    c.sample_every = 4
    c.checkpoint_every = 2
    c.num_sample_images = 4
    c.data.shuffle_buffer = 64
    c.standing_stats = 0  # running statistics: one compile less per grid (test_engine covers N)
    return _override(c, overrides)


def _override(c, overrides: dict):
    """Sets each dotted key of `overrides` in config `c`; returns `c`."""
    for key, value in overrides.items():
        node = c
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return c


# tiny_config() as train.py flags, for the tests that run train.py in a subprocess.
TINY_FLAGS = [
    "--config=configs/dcgan.py",
    "--config.num_epochs=0",
    "--config.batch_size=8",
    "--config.model.g_width=8",
    "--config.model.d_width=8",
    "--config.model.z_dim=16",
    "--config.data.image_size=32",
    "--config.sample_every=4",
    "--config.checkpoint_every=2",
    "--config.num_sample_images=4",
    "--config.data.shuffle_buffer=64",
    "--config.standing_stats=0",
]


# Tiny versions of each model of the zoo, on the digits with their labels (offline), with the
# parts each brings switched on: conditional models, several D steps, the linear schedule, the
# orthogonal regulariser, the EMA start and adaptive DiffAugment.
ZOO = {
    "dcgan": {},
    "sngan": {
        "model.name": "sngan",
        "model.num_classes": 10,
        "loss.name": "hinge",
        "d_steps": 2,
        "optim.schedule": "linear",
        "optim.g_b1": 0.0,
        "optim.d_b1": 0.0,
    },
    "biggan": {
        "model.name": "biggan",
        "model.num_classes": 10,
        "model.shared_dim": 8,
        "model.attn_res": 16,
        "loss.name": "hinge",
        "reg.ortho": 1e-4,
        "ema_start": 2,
        "augment.policy": "color,translation,cutout",
        "augment.adaptive": True,
        "augment.adjust_every": 1,
        "augment.speed_images": 1000,
    },
    "stylegan2": {
        "model.name": "stylegan2",
        "model.num_classes": 10,
        "model.w_dim": 16,
        "model.channel_base": 128,  # 4 px: 16 ... 32 px: 4 channels
        "model.channel_max": 16,
        "model.map_layers": 2,
        "model.mbstd_group": 4,
        "model.style_mixing": 0.9,
        "optim.g_b1": 0.0,
        "optim.d_b1": 0.0,
        "optim.g_b2": 0.99,
        "optim.d_b2": 0.99,
        "reg.r1": 0.1,
        "reg.r1_every": 2,
        "reg.pl": 2.0,
        "reg.pl_every": 2,
        "augment.mode": "ada",
        "augment.adjust_every": 1,
        "augment.speed_images": 1000,
        "ema_rampup": 0.072,
    },
}


def zoo_config(name: str, **overrides):
    """`tiny_config` for model `name` of `ZOO` (overrides as in tiny_config, dotted keys ok)."""
    return tiny_config(**{**ZOO[name], **overrides})


def make_studio_runs(root: str) -> dict[str, str]:
    """The runs the studio tests serve: {'dcgan': trained 300 steps, 'style': at init,
    'inpaint': an image-to-image run (digits inpainting) trained 2 steps}."""
    import jax  # noqa: PLC0415

    from gan_jax import config_lib  # noqa: PLC0415
    from gan_jax.training import checkpoint as ckpt_lib  # noqa: PLC0415
    from gan_jax.training import state as state_lib  # noqa: PLC0415
    from gan_jax.training import train_and_evaluate  # noqa: PLC0415

    dcgan = os.path.join(root, "dcgan")
    # 300 steps (seconds): enough for the first layer to learn directions SeFa can find.
    config = tiny_config(
        ema_decay=0.9, num_steps=300, checkpoint_every=150, sample_every=75, log_every=75
    )
    train_and_evaluate(config, dcgan)
    style = os.path.join(root, "style")
    config = zoo_config("stylegan2")
    os.makedirs(style)  # saved at initialisation: no training step to compile
    config_lib.save(config, style)
    # Jitted: StyleGAN2's init op by op costs a minute on 2 cores, one compile ~20 s.
    state = jax.jit(lambda k: state_lib.create_state(config, k))(jax.random.PRNGKey(0))
    checkpointer = ckpt_lib.Checkpointer(style)
    checkpointer.save(0, state, force=True)
    checkpointer.wait()
    checkpointer.close()
    inpaint = os.path.join(root, "inpaint")
    train_and_evaluate(p2p_config(num_steps=2, checkpoint_every=2, sample_every=2), inpaint)
    return {"dcgan": dcgan, "style": style, "inpaint": inpaint}


# The longest files first (minutes on 2 cores): pyproject runs the suite on two workers, one
# file per worker at a time (`-n 2 --dist loadfile`), and a long file started last would
# leave one core idle at the end.
_LONGEST_FIRST = (
    "test_zoo.py",
    "test_reliability.py",
    "test_evaluate.py",
    "test_cyclegan.py",
    "test_stylegan2.py",
    "test_pix2pix.py",
    "test_evaluation.py",
    "test_studio.py",
)


def pytest_collection_modifyitems(config, items):
    del config
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept within


@pytest.fixture(scope="session")
def studio_runs(tmp_path_factory):
    """`make_studio_runs` once per session: the studio's API and browser tests share them."""
    import jax  # noqa: PLC0415

    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        return make_studio_runs(str(tmp_path_factory.mktemp("studio_runs")))
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)


def _optimisations(disabled: bool):
    import jax  # noqa: PLC0415

    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", disabled)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="module")
def fast_compile():
    """Lighter XLA optimisation for one module (compilation dominates tiny shapes)."""
    yield from _optimisations(True)


@pytest.fixture(scope="module")
def full_optimisation():
    """Full XLA optimisation for a module whose tests compute more than they compile (the
    Inception network, classifiers trained for hundreds of steps): the two such modules took
    75 s together instead of 94-102 (alternated runs), while the tiny models' modules compile
    up to 6x slower with it (test_pix2pix_models: 176 s instead of 29, one run each)."""
    yield from _optimisations(False)


class StopAfterThirdStep:
    """Stands in for the training loop's signal handler (`loop._StopSignal`): a SIGTERM
    arrives during step 3, so the run saves and stops there like a preempted job."""

    def __init__(self, multi_process=False):
        del multi_process
        self.checks = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def received(self):
        self.checks += 1  # the loop asks once per step
        return "SIGTERM" if self.checks >= 3 else None


def straight_and_preempted(config, tmp_path, monkeypatch):
    """Runs `config` straight through, and again preempted during step 3 then resumed.

    Returns:
      (the straight run's final state, the resumed run's final state, the resumed workdir).
    """
    from gan_jax.training import loop, train_and_evaluate  # noqa: PLC0415

    straight = train_and_evaluate(config, str(tmp_path / "straight"))
    workdir = str(tmp_path / "resumed")
    with monkeypatch.context() as patch:
        patch.setattr(loop, "_StopSignal", StopAfterThirdStep)
        assert int(train_and_evaluate(config, workdir).step) == 3
    return straight, train_and_evaluate(config, workdir), workdir


def assert_clean_failure(out, *words):
    """A command line failed with one `error:` line containing `words` and no traceback."""
    assert out.returncode != 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def config():
    return tiny_config()


def xla_flags(devices: int | None = None) -> str:
    """`XLA_FLAGS` for a subprocess of the suite: its compile flags, and `devices` host CPU
    devices when given (in place of whatever device count this process has)."""
    flags = TEST_XLA_FLAGS
    return f"{flags} --xla_force_host_platform_device_count={devices}" if devices else flags


def shared_path(*parts) -> str:
    return os.path.join(SHARED, *parts)


def p2p_config(preset: str | None = None, **overrides):
    """configs/pix2pix.py shrunk like `tiny_config`: digits at 32 px, widths 8, batch 8,
    4 steps (inpainting by default; `**{'data.task': 'sr4', 'model.generator': 'srresnet'}`
    for super-resolution)."""
    from gan_jax.configs import pix2pix  # noqa: PLC0415

    c = pix2pix.get_config(preset)
    c.batch_size = 8
    c.num_epochs = 0
    c.num_steps = 4
    c.model.g_width = 8
    c.model.d_width = 8
    c.model.sr_blocks = 2
    c.data.image_size = 32
    c.log_every = 2
    c.sample_every = 4
    c.checkpoint_every = 2
    c.num_sample_images = 4
    return _override(c, overrides)


def cg_config(preset: str | None = None, **overrides):
    """configs/cyclegan.py shrunk: digits (A) and their negatives (B) at 32 px, widths 8,
    two residual blocks, batch 8, a history of 4 fakes, 4 steps."""
    from gan_jax.configs import cyclegan  # noqa: PLC0415

    c = cyclegan.get_config(preset)
    c.batch_size = 8
    c.num_steps = 4
    c.model.g_width = 8
    c.model.d_width = 8
    c.model.g_blocks = 2
    c.model.pool_size = 4
    c.log_every = 2
    c.sample_every = 4
    c.checkpoint_every = 2
    c.num_sample_images = 4
    return _override(c, overrides)


def leaves(tree) -> list:
    """A pytree's leaves as host NumPy arrays, in tree order (for exact or close comparisons)."""
    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def run_steps(c, batch, devices, steps: int):
    """`steps` train steps of config `c` on a mesh of `devices`, each fed `batch`, from the
    state a run of `c` starts from (key 0). It takes the training loop's own programs for
    (c, mesh): after a test has trained `c` in this process, they are neither traced nor
    compiled again.

    Returns:
      (state, metrics of the last step), on the host.
    """
    import jax  # noqa: PLC0415

    from gan_jax.training import loop  # noqa: PLC0415
    from gan_jax.training import step as step_lib  # noqa: PLC0415

    programs = loop.programs(c, step_lib.make_mesh(devices))
    state = programs.init(jax.random.PRNGKey(0))
    step = programs.train_step(int(c.num_steps))
    for _ in range(steps):
        state, metrics = step(state, batch)
    return jax.device_get(state), jax.device_get(metrics)


# argv: output file, number of steps. The setup code is inserted at SETUP.
_EIGHT_DEVICES = """
import sys, numpy as np, jax
sys.path.insert(0, 'tests')
from conftest import run_steps
SETUP
assert len(jax.devices()) == 8, jax.devices()  # else the 8-device run would be a 1-device one
s, m = run_steps(c, batch, jax.devices(), int(sys.argv[2]))
np.savez(sys.argv[1], *[np.asarray(v) for v in jax.tree.leaves(s)])
np.savez(sys.argv[1] + '.metrics.npz', **{k: np.asarray(v) for k, v in m.items()})
"""


def device_pair(setup: str, tmp_path, steps: int = 1):
    """The same training steps on a mesh of 1 device, here, and of 8, in a subprocess with 8
    host CPU devices. `setup` is Python (with `jax` and `np` imported) that defines the
    config `c` and the step's `batch`; every step is fed that batch.

    The 1-device side runs in this process because a compile cannot be shared across device
    counts (the device count is part of XLA's cache key): here it reuses the programs of a
    test that trained `c` before it, where the subprocess would compile them again.

    Returns:
      (leaves on 1 device, its metrics, leaves on 8 devices, their metrics): leaves in tree
      order, metrics as {name: value} of the last step.
    """
    import subprocess  # noqa: PLC0415

    import jax  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    out = str(tmp_path / "state8.npz")
    env = dict(os.environ, XLA_FLAGS=xla_flags(8))
    cmd = [sys.executable, "-c", _EIGHT_DEVICES.replace("SETUP", setup), out, str(steps)]
    eight = subprocess.Popen(cmd, cwd=ROOT, env=env)  # runs beside the 1-device side
    try:
        scope = {"jax": jax, "np": np}
        exec(setup, scope)  # noqa: S102
        state, metrics = run_steps(scope["c"], scope["batch"], jax.devices()[:1], steps)
        one = [np.asarray(v) for v in jax.tree.leaves(state)]
        m1 = {k: np.asarray(v) for k, v in metrics.items()}
        assert eight.wait(timeout=900) == 0, "the 8-device run failed (its stderr is above)"
    finally:
        eight.kill()
    with np.load(out) as f:
        leaves = [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]
    with np.load(out + ".metrics.npz") as f:
        m8 = dict(f)
    return one, m1, leaves, m8


def assert_devices_agree(one, m1, eight, m8, lr: float | None = None):
    """One step on 1 and on 8 devices: equal metrics (losses, gradient norms, penalties);
    states equal to float tolerance but for the rare entries where Adam turns rounding noise
    in a near-zero gradient into a full step (its first update is lr * sign(g): biases just
    before batch norm, whose true gradient is 0, and the like). Those must be under 2%, and
    with `lr` given no entry may differ by more than 2 lr; a sharding mistake (statistics per
    device, an unsynchronised update) moves almost every entry."""
    import numpy as np  # noqa: PLC0415

    assert m1.keys() == m8.keys()
    for k in m1:
        np.testing.assert_allclose(m1[k], m8[k], rtol=1e-4, atol=1e-6, err_msg=k)
    assert len(one) == len(eight)
    total = differ = 0
    for a, b in zip(one, eight, strict=True):
        if a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b)
            continue
        close = np.isclose(a, b, rtol=1e-4, atol=1e-5)
        total, differ = total + a.size, differ + int((~close).sum())
        if lr is not None:
            bound = 2 * lr + 1e-4 * float(np.abs(a).max(initial=0))
            assert float(np.abs(a - b).max(initial=0)) <= bound
    assert differ / total < 0.02, f"{differ} of {total} entries differ"
