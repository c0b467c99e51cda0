r"""gan_jax's benchmark: our jitted DCGAN train step beside the seed's PyTorch step, and more.

  python bench/run.py                 # full run, JSON + markdown tables (see bench/README.md)
  python bench/run.py --quick         # fewer steps, rounds and images
  python bench/run.py --bf16          # also bfloat16 compute beside PyTorch's bf16 autocast
  python bench/run.py --sections step,pipeline,sampling,fid   # all but SNGAN/BigGAN (< 3 min)
  python bench/run.py --sections sngan,biggan                 # only SNGAN-32 and BigGAN-32

What it measures, in one process tree and one run:

  * train step, DCGAN at 64 px (the seed: batch 64, widths 64, 3 channels) and 32 px: the real
    `gan_jax.training.step.jit_train_step` with `configs/dcgan.py:celeba` (the seed's recipe).
    The PyTorch peer runs in a subprocess with --threads = CPU cores: at 64 px float32 the seed's
    own script (`shared/reference/torch_dcgan.py`), otherwise `bench/torch_peer.py` (same
    layer pattern, labelled `torch_peer`). Ours and PyTorch alternate in `--rounds` rounds so
    that both see the same machine load; each round is `--warmup` untimed steps then `--steps`
    timed ones; figures are medians, and `ratio` is our images/s over PyTorch's (>1: faster).
    `compile_s` is our first call (trace + compile + one step).
  * train step, SNGAN-32 and BigGAN-32 (sections `sngan`, `biggan`; JSON `sngan_step`,
    `biggan_step`): the same `jit_train_step` with the shipped CIFAR-10 configs,
    `configs/sngan.py:cifar10_cond` (ResNet, widths 256 / 128, hinge, 5 D steps, Adam
    (0, 0.9) with linear decay) and `configs/biggan.py:cifar10` (widths 96, self-attention at
    16 px, hinge, 5 D steps, Adam (0.5, 0.999), EMA of G, orthogonal regulariser 1e-4), both
    conditional on 10 classes, batch 64, on random images and labels. The PyTorch peer is
    `bench/torch_resnet_peer.py`: the same step (see its docstring) on the ports
    `bench/torch_sngan.py` / `bench/torch_biggan.py` (PyTorch's `spectral_norm`), given our
    config as JSON; `g_params` / `d_params` of both sides show they build the same networks.
    A step is one G update and its `d_steps` D updates: `g_steps_per_s` = 1 / step time and
    `real_img_per_s` = batch x d_steps / step time. These steps take tens of seconds on 2
    cores, so both sides stay in one process for all rounds: each runs `--zoo-warmup` (1)
    untimed steps once (ours: its compiling call is the first), then `--zoo-rounds` (2;
    `--quick` 1) alternating rounds of `--zoo-steps` (1) timed steps; medians over all timed
    steps, `ratio` = PyTorch's step time / ours (>1: ours faster), also per round. float32.
  * peak resident memory: ours (`getrusage(RUSAGE_SELF)`, read right after the train steps)
    and PyTorch's (`RUSAGE_CHILDREN`, the largest child; for SNGAN/BigGAN the peer's own
    VmHWM, as Linux counts a forked child's parent's peak in RUSAGE_CHILDREN); our minor page
    faults and kernel (system) CPU seconds per timed step, medians over rounds (what malloc
    huge pages change).
  * input pipeline images/s (`gan_jax.input.create_dataset`) for a JPEG folder (anime faces
    from `shared/data`, unzipped to a temp dir), an .npz (MNIST from `shared/data`) and TFDS
    twice: `tfds.testing.mock_data` celeb_a (examples made in Python at read time, so it
    measures mock_data as much as us) and a real TFRecord dataset of those JPEGs upscaled to
    CelebA's 178x218 (`tfds_records`, written to the temp dir), both streamed through tf.data;
    each against the train step's consumption at the same size (`x_step` = pipeline images/s
    / step images/s).
  * sampling images/s (generator forward, eval mode) and Inception (FID) feature images/s when
    `gan_jax.evaluation` and its weights are available.

Ours runs as `train.py` does: with the project's XLA flags and, on Linux, restarted once with
malloc huge pages (`gan_jax.platform`); PyTorch runs in the user's environment, as the seed's
script would (`--torch-hugepages` gives it the huge pages too). Both are recorded in the JSON.

Absolute times on a shared 2-core machine are noisy; compare the side-by-side ratio.
Results go to bench/results/<name or timestamp>.json (see `--out`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from gan_jax import platform as platform_lib  # noqa: E402

platform_lib.quiet_tensorflow()  # before anything imports TensorFlow

if __name__ == "__main__":
    platform_lib.use_huge_pages()  # restarts once with huge pages for malloc (Linux)
XLA_FLAGS = platform_lib.configure_xla()  # before JAX starts its backend

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from configs import biggan as biggan_configs  # noqa: E402
from configs import dcgan as dcgan_configs  # noqa: E402
from configs import sngan as sngan_configs  # noqa: E402
from gan_jax.models import dcgan  # noqa: E402
from gan_jax.training import state as state_lib  # noqa: E402
from gan_jax.training import step as step_lib  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared")
SEED_TORCH = os.path.join(SHARED, "reference", "torch_dcgan.py")
TORCH_PEER = os.path.join(ROOT, "bench", "torch_peer.py")
TORCH_RESNET_PEER = os.path.join(ROOT, "bench", "torch_resnet_peer.py")
DATA = os.path.join(SHARED, "data")
SECTIONS = ("step", "sngan", "biggan", "pipeline", "sampling", "fid")
# The ResNet GANs' sections: the config module and preset each benchmarks, as shipped.
ZOO = {
    "sngan": (sngan_configs, "configs/sngan.py:cifar10_cond", "cifar10_cond"),
    "biggan": (biggan_configs, "configs/biggan.py:cifar10", "cifar10"),
}
ZOO_LABELS = {"sngan": "SNGAN", "biggan": "BigGAN"}


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "tensorflow", "torch"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001 - absent or broken: just not reported
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _rss_mib(who=resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux: KiB


def step_config(size: int, batch: int, width: int, dtype: str):
    """The seed's recipe (configs/dcgan.py:celeba) at `size` px."""
    c = dcgan_configs.get_config("celeba")
    c.data.image_size = size
    c.data.channels = 3
    c.batch_size = batch
    c.model.g_width = width
    c.model.d_width = width
    c.model.dtype = dtype
    return c


class OurStep:
    """The real jitted train step on random real images; times steps one by one.

    Args:
      config: the training config.
      total_steps: the run's G steps, as `train.py` passes them (the linear learning-rate
        decay ends there; 0 for the constant schedule).
    """

    def __init__(self, config, total_steps: int = 0):
        self.config = config
        mesh = step_lib.make_mesh()
        replicated = NamedSharding(mesh, P())
        init = jax.jit(
            lambda k: state_lib.create_state(config, k, total_steps=total_steps),
            out_shardings=replicated,
        )
        self.state = init(jax.random.PRNGKey(0))
        size, b = config.data.image_size, config.batch_size
        shape = (config.d_steps, b, size, size, config.data.channels)
        x = jax.random.uniform(jax.random.PRNGKey(1), shape, jnp.float32, -1, 1)
        # One real batch per D update, with class labels (all 0 when unconditional).
        classes = max(int(config.model.get("num_classes", 0) or 0), 1)
        labels = jax.random.randint(jax.random.PRNGKey(2), shape[:2], 0, classes, jnp.int32)
        batch = {"image": x, "label": labels}
        self.batch = jax.device_put(batch, step_lib.batch_shardings(mesh))
        self.fn = step_lib.jit_train_step(config, mesh, total_steps=total_steps)
        self.faults, self.system_s = [], []
        t = time.perf_counter()
        self._one()
        self.compile_s = time.perf_counter() - t

    def _one(self):
        self.state, metrics = self.fn(self.state, self.batch)
        jax.block_until_ready(self.state)  # the same sync as PyTorch's loss.item()
        return metrics

    def run(self, warmup: int, steps: int) -> list[float]:
        for _ in range(warmup):
            self._one()
        times = []
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(steps):
            t = time.perf_counter()
            self._one()
            times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_SELF)
        if steps:
            # Page faults and kernel time per timed step: what malloc huge pages change.
            self.faults.append((after.ru_minflt - before.ru_minflt) / steps)
            self.system_s.append((after.ru_stime - before.ru_stime) / steps)
        return times


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_environ(hugepages: bool) -> dict[str, str]:
    """The PyTorch peer's environment: the user's own (as the seed's script is run), or ours.

    Ours differs in one variable: `GLIBC_TUNABLES` asks malloc for huge pages (see
    `gan_jax.platform.use_huge_pages`); `--torch-hugepages` gives PyTorch the same.
    """
    return dict(os.environ) if hugepages else platform_lib.user_environ()


def run_torch(
    size: int, batch: int, width: int, *, bf16: bool, steps: int, warmup: int, hugepages: bool
):
    """Runs the PyTorch peer in a subprocess; returns its JSON dict (with `script`)."""
    seed = size == 64 and width == 64 and not bf16 and os.path.exists(SEED_TORCH)
    script = SEED_TORCH if seed else TORCH_PEER
    cmd = [sys.executable, script, "--batch", str(batch), "--steps", str(steps)]
    cmd += ["--warmup", str(warmup), "--threads", str(_cores())]
    if not seed:
        cmd += ["--size", str(size), "--width", str(width)] + (["--autocast"] if bf16 else [])
    env = torch_environ(hugepages)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"torch peer failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    out = json.loads(lines[-1])
    out["script"] = os.path.relpath(script, os.path.dirname(ROOT))
    return out


def bench_step(size, args, dtype, use_torch) -> dict:
    """Ours and PyTorch alternating for `args.rounds` rounds at one size and dtype."""
    config = step_config(size, args.batch, args.width, dtype)
    ours = OurStep(config)
    ours_times, rounds = [], []
    torch_meds, torch_info = [], None
    for _ in range(args.rounds):
        t_ours = ours.run(args.warmup, args.steps)
        ours_times += t_ours
        row = {"ours_step_s": round(statistics.median(t_ours), 4)}
        if use_torch:
            torch_info = run_torch(
                size,
                args.batch,
                args.width,
                bf16=dtype == "bfloat16",
                steps=args.steps,
                warmup=args.warmup,
                hugepages=args.torch_hugepages,
            )
            torch_meds.append(torch_info["step_s_median"])
            row["torch_step_s"] = torch_info["step_s_median"]
            row["ratio"] = round(torch_info["step_s_median"] / row["ours_step_s"], 3)
        rounds.append(row)
    med = statistics.median(ours_times)
    result = {
        "size": size,
        "batch": args.batch,
        "width": args.width,
        "dtype": dtype,
        "conv_impl": dcgan.resolve_conv_impl(config.model.conv_impl),
        "compile_s": round(ours.compile_s, 2),
        "step_s_median": round(med, 4),
        "step_s_min": round(min(ours_times), 4),
        "img_per_s": round(args.batch / med, 2),
        "rounds": rounds,
        "peak_rss_mib": _rss_mib(),
        "page_faults_per_step": round(statistics.median(ours.faults)),
        "system_s_per_step": round(statistics.median(ours.system_s), 4),
    }
    if use_torch:
        tmed = statistics.median(torch_meds)
        result["torch"] = {
            "script": torch_info["script"],
            "autocast_bf16": dtype == "bfloat16",
            "threads": torch_info["threads"],
            "step_s_median": round(tmed, 4),
            "img_per_s": round(args.batch / tmed, 2),
            # The peer's own VmHWM: RUSAGE_CHILDREN would report our peak (Linux keeps the
            # pre-exec high-water mark of a forked child).
            "peak_rss_mib": torch_info.get("peak_rss_mib"),
        }
        result["ratio"] = round(tmed / med, 3)
    del ours
    return result


def zoo_config(name: str, args):
    """The shipped CIFAR-10 config of SNGAN or BigGAN (`ZOO`), shrunk under --tiny.

    Args:
      name: 'sngan' or 'biggan'.
      args: the parsed arguments (`tiny`, `zoo_batch`).

    Returns:
      The ConfigDict both sides run: ours as it is, PyTorch's peer from its JSON.
    """
    module, _, preset = ZOO[name]
    c = module.get_config(preset)
    if args.tiny:
        # A smoke test of the machinery, not of the models' speed.
        c.model.g_width = c.model.d_width = 8
        c.batch_size, c.d_steps = 8, 2
    if args.zoo_batch:
        c.batch_size = args.zoo_batch
    return c


class TorchZooPeer:
    """`bench/torch_resnet_peer.py --serve` on `config`: one process for all rounds.

    It builds the models and warms up on start (`ready`), then times `steps` steps per
    `round()` while our step waits, as ours waits while it runs.
    """

    def __init__(self, name: str, config, *, steps: int, warmup: int, hugepages: bool):
        cmd = [sys.executable, TORCH_RESNET_PEER, "--model", name, "--serve"]
        cmd += ["--steps", str(steps), "--warmup", str(warmup), "--threads", str(_cores())]
        self.shown = " ".join(cmd)  # without the config's JSON
        cmd += ["--config-json", config.to_json()]
        # A file, not a pipe: an unread pipe could fill up and block the peer.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=torch_environ(hugepages),
        )
        self._read("ready")

    def _read(self, event: str) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                out = json.loads(line)
                if out.get("event") == event:
                    return out
        self.proc.wait()
        self.stderr.seek(0)
        raise RuntimeError(f"torch peer failed: {self.shown}\n{self.stderr.read()[-2000:]}")

    def _send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def round(self) -> list[float]:
        """Step times of one round."""
        self._send("run")
        return self._read("round")["step_s"]

    def finish(self) -> dict:
        """Ends the peer; returns its summary (threads, parameter counts, peak RSS, ...)."""
        self._send("quit")
        out = self._read("done")
        self.close()
        out["script"] = os.path.relpath(TORCH_RESNET_PEER, os.path.dirname(ROOT))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def _count(tree) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def bench_zoo(name: str, args, use_torch: bool) -> dict:
    """SNGAN or BigGAN: our jitted step and PyTorch's peer alternating for `args.zoo_rounds`.

    A step is one G update and its `d_steps` D updates; it consumes `batch * d_steps` real
    images (`real_img_per_s`). Each side first runs `zoo_warmup` untimed steps (ours: its
    compiling first call is the first of them), then the rounds alternate `zoo_steps` timed
    steps of ours and of PyTorch's, each side in one process throughout (a fresh PyTorch
    process per round, as DCGAN's, would spend these heavy steps warming up again).
    """
    config = zoo_config(name, args)
    ours = OurStep(config, total_steps=config.num_steps)
    per_step = config.batch_size * config.d_steps
    ours.run(max(args.zoo_warmup - 1, 0), 0)  # the compiling call was one untimed step
    peer = None
    if use_torch:
        peer = TorchZooPeer(
            name,
            config,
            steps=args.zoo_steps,
            warmup=args.zoo_warmup,
            hugepages=args.torch_hugepages,
        )
    ours_times, rounds, torch_times, torch_info = [], [], [], None
    try:
        for _ in range(args.zoo_rounds):
            t_ours = ours.run(0, args.zoo_steps)
            ours_times += t_ours
            row = {"ours_step_s": round(statistics.median(t_ours), 4)}
            if peer is not None:
                t_torch = peer.round()
                torch_times += t_torch
                row["torch_step_s"] = round(statistics.median(t_torch), 4)
                row["ratio"] = round(row["torch_step_s"] / row["ours_step_s"], 3)
            rounds.append(row)
        if peer is not None:
            torch_info = peer.finish()
    finally:
        if peer is not None:
            peer.close()
    # Medians over every timed step of every round, on both sides.
    med = statistics.median(ours_times)
    m = config.model
    result = {
        "model": name,
        "config": ZOO[name][1],
        "size": config.data.image_size,
        "batch": config.batch_size,
        "d_steps": config.d_steps,
        "g_width": m.g_width,
        "d_width": m.d_width,
        "num_classes": m.num_classes,
        "loss": config.loss.name,
        "ema_decay": config.ema_decay,
        "ortho": config.reg.ortho,
        "dtype": m.dtype,
        "real_img_per_step": per_step,
        "steps": args.zoo_steps,
        "warmup": args.zoo_warmup,
        "g_params": _count(ours.state.g.params),
        "d_params": _count(ours.state.d.params),
        "compile_s": round(ours.compile_s, 2),
        "step_s_median": round(med, 4),
        "step_s_min": round(min(ours_times), 4),
        "g_steps_per_s": round(1.0 / med, 4),
        "real_img_per_s": round(per_step / med, 2),
        "rounds": rounds,
        "peak_rss_mib": _rss_mib(),
        "page_faults_per_step": round(statistics.median(ours.faults)),
        "system_s_per_step": round(statistics.median(ours.system_s), 4),
    }
    if torch_info is not None:
        tmed = statistics.median(torch_times)
        result["torch"] = {
            "script": torch_info["script"],
            "threads": torch_info["threads"],
            "g_params": torch_info["g_params"],
            "d_params": torch_info["d_params"],
            "step_s_median": round(tmed, 4),
            "step_s_min": round(min(torch_times), 4),
            "g_steps_per_s": round(1.0 / tmed, 4),
            "real_img_per_s": round(per_step / tmed, 2),
            # The peer's own VmHWM: RUSAGE_CHILDREN would report our peak (see the peer).
            "peak_rss_mib": torch_info["peak_rss_mib"],
        }
        result["ratio"] = round(tmed / med, 3)
    del ours
    return result


def _pipeline_rate(config, batches: int, step_rates: dict) -> dict:
    from gan_jax import input as input_lib

    t = time.perf_counter()
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    it = iter(ds)
    next(it)
    setup = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t
    rate = batches * config.batch_size / dt
    size = config.data.image_size
    out = {
        "size": size,
        "channels": config.data.channels,
        "examples": ds.num_examples,
        "setup_s": round(setup, 2),
        "img_per_s": round(rate, 1),
    }
    step_rate = step_rates.get(size) or (max(step_rates.values()) if step_rates else None)
    if step_rate:
        out["x_step"] = round(rate / step_rate, 1)
    return out


_RECORDS_BUILDER = None


def _celeba_sized_records(jpegs: list[str], data_dir: str) -> str:
    """Writes `jpegs`, upscaled to CelebA's 178x218, as a real TFDS dataset (TFRecord shards).

    `tfds.testing.mock_data` makes every example in Python at read time (~450 img/s here), so
    it bounds what it can measure; this dataset is read the way real CelebA is. Returns the
    dataset name for `tfds.builder(name, data_dir=data_dir)`.
    """
    global _RECORDS_BUILDER
    import tensorflow_datasets as tfds  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    if _RECORDS_BUILDER is None:

        class GanJaxBenchFaces(tfds.core.GeneratorBasedBuilder):
            """Anime faces at CelebA's aligned size, for the TFDS pipeline benchmark only."""

            VERSION = tfds.core.Version("1.0.0")
            files: list[str] = []

            def _info(self):
                image = tfds.features.Image(shape=(218, 178, 3), encoding_format="jpeg")
                return tfds.core.DatasetInfo(
                    builder=self, features=tfds.features.FeaturesDict({"image": image})
                )

            def _split_generators(self, dl_manager):
                del dl_manager
                return {"train": self._generate_examples()}

            def _generate_examples(self):
                for i, path in enumerate(self.files):
                    with Image.open(path) as img:
                        big = img.convert("RGB").resize((178, 218), Image.BICUBIC)
                    yield i, {"image": np.asarray(big)}

        _RECORDS_BUILDER = GanJaxBenchFaces
    _RECORDS_BUILDER.files = jpegs
    _RECORDS_BUILDER(data_dir=data_dir).download_and_prepare()
    return _RECORDS_BUILDER.name


def bench_pipelines(args, step_rates: dict, tmp: str) -> dict:
    """Images/s of the folder, npz and TFDS pipelines (each skipped with a reason if absent)."""
    base = step_config(64, args.batch, args.width, "float32")
    results = {}

    zpath = os.path.join(DATA, "anime_faces_64.zip")
    if not os.path.exists(zpath):
        results["folder"] = {"skipped": f"{zpath} not found"}
    else:
        folder = os.path.join(tmp, "faces")
        with zipfile.ZipFile(zpath) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".jpg")][: args.folder_images]
            for n in names:
                z.extract(n, folder)
        c = step_config(64, args.batch, args.width, "float32")
        c.data.source, c.data.path, c.data.crop = "folder", folder, "center"
        results["folder"] = _pipeline_rate(c, args.pipeline_batches, step_rates)
        results["folder"]["what"] = f"anime_faces_64 JPEGs ({len(names)} files), 64 px"

    npz = os.path.join(DATA, "mnist_uint8.npz")
    if not os.path.exists(npz):
        results["npz"] = {"skipped": f"{npz} not found"}
    else:
        c = step_config(32, args.batch, args.width, "float32")
        c.data.source, c.data.path, c.data.npz_key = "npz", npz, "x_train"
        c.data.channels, c.data.crop = 1, "none"
        results["npz"] = _pipeline_rate(c, args.pipeline_batches, step_rates)
        results["npz"]["what"] = "mnist_uint8.npz x_train, resized to 32 px"

    try:
        import tensorflow_datasets as tfds
    except ImportError:
        results["tfds"] = {"skipped": "tensorflow-datasets not installed"}
    else:
        c = step_config(64, args.batch, args.width, "float32")
        c.data.source, c.data.name, c.data.crop = "tfds", "celeb_a", "center"
        c.data.shuffle_buffer = 256
        c.data.tfds_in_memory_bytes = 0  # stream through tf.data, as real CelebA does
        with tfds.testing.mock_data(num_examples=max(2 * args.batch, args.tfds_images)):
            results["tfds"] = _pipeline_rate(c, args.pipeline_batches, step_rates)
        results["tfds"]["what"] = (
            "celeb_a (tfds.testing.mock_data, made in Python per example), streamed, "
            "center crop 64 px"
        )
        if "folder" in results and "skipped" not in results["folder"]:
            jpegs = sorted(
                os.path.join(root, f)
                for root, _, files in os.walk(os.path.join(tmp, "faces"))
                for f in files
            )[: args.tfds_images]
            c = step_config(64, args.batch, args.width, "float32")
            c.data.source, c.data.crop = "tfds", "center"
            c.data.data_dir = os.path.join(tmp, "tfds")
            c.data.name = _celeba_sized_records(jpegs, c.data.data_dir)
            c.data.shuffle_buffer = 256
            c.data.tfds_in_memory_bytes = 0
            results["tfds_records"] = _pipeline_rate(c, args.pipeline_batches, step_rates)
            results["tfds_records"]["what"] = (
                f"TFDS TFRecords of {len(jpegs)} JPEGs at CelebA's 178x218 (anime faces "
                "upscaled), streamed and decoded each epoch, center crop 64 px"
            )
    del base
    return results


def bench_sampling(args) -> dict:
    """Generator forward in eval mode (what sample.py does), DCGAN-64, float32."""
    config = step_config(64, args.batch, args.width, "float32")
    generator, _ = dcgan.build(config)
    variables = generator.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    fn = jax.jit(lambda v, z: generator.apply(v, z, train=False))
    z = jax.random.normal(jax.random.PRNGKey(1), (args.sample_batch, 100))
    t = time.perf_counter()
    jax.block_until_ready(fn(variables, z))
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(args.sample_batches):
        t = time.perf_counter()
        jax.block_until_ready(fn(variables, z))
        times.append(time.perf_counter() - t)
    return {
        "size": 64,
        "batch": args.sample_batch,
        "compile_s": round(compile_s, 2),
        "img_per_s": round(args.sample_batch / statistics.median(times), 1),
    }


def bench_fid(args) -> dict:
    """Inception (FID) features per second, when gan_jax.evaluation and weights exist."""
    try:
        from gan_jax.evaluation import inception
    except Exception as e:  # noqa: BLE001 - not built yet or broken: skip with the reason
        return {"skipped": f"gan_jax.evaluation.inception not importable ({type(e).__name__}: {e})"}
    try:
        extractor = inception.InceptionFeatures(download=False)
    except Exception as e:  # noqa: BLE001 - no weights offline
        return {"skipped": f"no Inception weights ({type(e).__name__}: {str(e)[:200]})"}
    b = args.fid_batch
    imgs = np.random.default_rng(0).integers(0, 256, (b, 64, 64, 3), dtype=np.uint8)
    t = time.perf_counter()
    extractor.features(imgs, batch_size=b)
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(args.fid_batches):
        t = time.perf_counter()
        extractor.features(imgs, batch_size=b)
        times.append(time.perf_counter() - t)
    return {
        "input": "64 px uint8, resized to 299",
        "batch": b,
        "weights": extractor.weights_info.name,
        "compile_s": round(compile_s, 2),
        "img_per_s": round(b / statistics.median(times), 1),
    }


def markdown(res: dict) -> str:
    """The results as a markdown table (what the README shows)."""
    m = res["machine"]
    v = res["versions"]
    lines = [
        f"{m['cores']} CPU cores ({m['cpu']}); jax {v['jax']}, flax {v['flax']}, "
        f"torch {v['torch']}; XLA_FLAGS `{res['xla_flags'] or '(none)'}`",
        f"GLIBC_TUNABLES: ours `{res['glibc_tunables']['ours'] or '(none)'}`, "
        f"PyTorch `{res['glibc_tunables']['torch'] or '(none)'}`",
    ]
    if "train_step" in res:
        lines += [
            "",
            "| train step | ours img/s | PyTorch img/s | ratio | ours compile s "
            "| ours peak RSS MiB | ours page faults / step | ours system s / step |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    for r in res.get("train_step", []):
        t = r.get("torch", {})
        peer = t.get("script", "").rsplit("/", 1)[-1] or "-"
        label = f"DCGAN-{r['size']}, batch {r['batch']}, {r['dtype']} (vs {peer}"
        label += ", bf16 autocast)" if t.get("autocast_bf16") else ")"
        rounds = " / ".join(str(x.get("ratio", "-")) for x in r["rounds"])
        lines.append(
            f"| {label} | {r['img_per_s']} | {t.get('img_per_s', '-')} | "
            f"**{r.get('ratio', '-')}** (rounds {rounds}) | {r['compile_s']} | "
            f"{r['peak_rss_mib']} | {r['page_faults_per_step']:,} | {r['system_s_per_step']} |"
        )
    zoo = [res[f"{name}_step"] for name in ZOO if f"{name}_step" in res]
    if zoo:
        lines += [
            "",
            "| train step (1 G + d_steps D updates) | ours G steps/s | ours real img/s "
            "| PyTorch G steps/s | PyTorch real img/s | ratio | ours compile s "
            "| peak RSS MiB ours / PyTorch |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in zoo:
            t = r.get("torch", {})
            peer = t.get("script", "").rsplit("/", 1)[-1] or "-"
            label = (
                f"{ZOO_LABELS[r['model']]}-{r['size']} (`{r['config']}`), "
                f"batch {r['batch']}, d_steps {r['d_steps']}, widths {r['g_width']}/"
                f"{r['d_width']}, {r['num_classes']} classes (vs {peer})"
            )
            rounds = " / ".join(str(x.get("ratio", "-")) for x in r["rounds"])
            lines.append(
                f"| {label} | {r['g_steps_per_s']} | {r['real_img_per_s']} | "
                f"{t.get('g_steps_per_s', '-')} | {t.get('real_img_per_s', '-')} | "
                f"**{r.get('ratio', '-')}** (rounds {rounds}) | {r['compile_s']} | "
                f"{r['peak_rss_mib']} / {t.get('peak_rss_mib', '-')} |"
            )
        z = zoo[0]
        lines.append(
            f"\nSNGAN/BigGAN: each side warms up once ({z['warmup']} untimed steps, ours' "
            "first is its compiling call), then "
            f"{len(z['rounds'])} alternating rounds of {z['steps']} timed steps per side (fewer "
            "than DCGAN's: these steps are far heavier); medians over all timed steps; a step "
            "is 1 G update + d_steps D updates, real img/s = batch x d_steps per step; ratio = "
            "PyTorch's step time / ours (>1: ours faster)."
        )
    pipe = res.get("pipeline", {})
    if pipe:
        lines += [
            "",
            "| input pipeline | img/s | x step's consumption | setup s |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, p in pipe.items():
            if "skipped" in p:
                lines.append(f"| {name} | skipped: {p['skipped']} | | |")
            else:
                lines.append(
                    f"| {name}: {p['what']} | {p['img_per_s']} | {p.get('x_step', '-')} | "
                    f"{p['setup_s']} |"
                )
    other = []
    s = res.get("sampling")
    if s:
        other.append(f"| sampling, DCGAN-64 G eval, batch {s['batch']} | {s['img_per_s']} |")
    f = res.get("fid_features")
    if f:
        other.append(
            f"| FID features skipped: {f['skipped']} | |"
            if "skipped" in f
            else f"| FID (Inception pool3) features, {f['input']}, batch {f['batch']} | "
            f"{f['img_per_s']} |"
        )
    if other:
        lines += ["", "| other | img/s |", "| --- | ---: |", *other]
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps, rounds and images")
    ap.add_argument("--tiny", action="store_true", help="a smoke test: 32 px, batch 8, width 8")
    ap.add_argument("--sizes", default="64,32", help="DCGAN image sizes (32, 64)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=64, help="g_width = d_width (the seed's 64)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per round (default 8)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per round (2)")
    ap.add_argument("--rounds", type=int, default=None, help="ours/PyTorch alternations (2)")
    ap.add_argument("--bf16", action="store_true", help="also bfloat16 vs torch bf16 autocast")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    ap.add_argument(
        "--torch-hugepages",
        action="store_true",
        help="give PyTorch our malloc huge pages too (default: the user's environment)",
    )
    ap.add_argument(
        "--zoo-steps", type=int, default=None, help="SNGAN/BigGAN timed steps per round (1)"
    )
    ap.add_argument(
        "--zoo-warmup",
        type=int,
        default=None,
        help="SNGAN/BigGAN untimed steps per side, once (1; ours: the compiling call)",
    )
    ap.add_argument(
        "--zoo-rounds", type=int, default=None, help="SNGAN/BigGAN rounds (2; --quick 1)"
    )
    ap.add_argument(
        "--zoo-batch", type=int, default=None, help="SNGAN/BigGAN batch (default: config's 64)"
    )
    ap.add_argument("--sections", default=",".join(SECTIONS), help=",".join(SECTIONS))
    ap.add_argument("--name", default=None, help="results file name (default: timestamp)")
    ap.add_argument("--out", default=None, help="results JSON path (overrides --name)")
    args = ap.parse_args(argv)
    quick, tiny = args.quick or args.tiny, args.tiny
    if tiny:
        args.sizes, args.batch, args.width = "32", 8, 8
    args.steps = args.steps or (2 if tiny else 3 if quick else 8)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.rounds = args.rounds or (1 if quick else 2)
    # SNGAN / BigGAN steps take tens of seconds on 2 cores: far fewer of them.
    args.zoo_steps = args.zoo_steps or 1
    args.zoo_warmup = args.zoo_warmup if args.zoo_warmup is not None else 1
    args.zoo_rounds = args.zoo_rounds or (1 if quick else 2)
    args.pipeline_batches = 3 if tiny else 10 if quick else 40
    args.folder_images = 256 if tiny else 2000 if quick else 10_000
    args.tfds_images = 64 if tiny else 256 if quick else 1024
    args.sample_batch = 8 if tiny else 64 if quick else 256
    args.sample_batches = 2 if quick else 5
    args.fid_batch = 8 if tiny else 16 if quick else 32
    args.fid_batches = 1 if quick else 3
    args.size_list = [int(s) for s in args.sizes.split(",") if s]
    args.section_list = [s for s in args.sections.split(",") if s]
    bad = set(args.section_list) - set(SECTIONS)
    if bad:
        ap.error(f"unknown sections {sorted(bad)}; choose from {SECTIONS}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    use_torch = not args.no_torch and torch_available()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    res = {
        "name": args.name or stamp,
        "timestamp": stamp,
        "command": " ".join(
            ["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": {
            "cores": _cores(),
            "cpu": _cpu_model(),
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
        },
        "versions": _versions() if use_torch else {**_versions(), "torch": None},
        "xla_flags": XLA_FLAGS,
        "glibc_tunables": {
            "ours": os.environ.get("GLIBC_TUNABLES"),
            "torch": torch_environ(args.torch_hugepages).get("GLIBC_TUNABLES"),
        },
        "settings": {
            k: getattr(args, k)
            for k in (
                *("batch", "width", "steps", "warmup", "rounds", "sizes", "sections"),
                *("zoo_steps", "zoo_warmup", "zoo_rounds", "zoo_batch"),
            )
        },
    }
    if not use_torch:
        res["torch_skipped"] = "--no-torch" if args.no_torch else "torch not installed"
    if "step" in args.section_list:
        res["train_step"] = []
        dtypes = ["float32"] + (["bfloat16"] if args.bf16 else [])
        for size in args.size_list:
            for dtype in dtypes:
                print(f"[bench] train step {size} px {dtype} ...", file=sys.stderr, flush=True)
                res["train_step"].append(bench_step(size, args, dtype, use_torch))
    for name in ZOO:
        if name in args.section_list:
            print(f"[bench] train step {ZOO[name][1]} ...", file=sys.stderr, flush=True)
            res[f"{name}_step"] = bench_zoo(name, args, use_torch)
    step_rates = {
        r["size"]: r["img_per_s"] for r in res.get("train_step", []) if r["dtype"] == "float32"
    }
    peers = [r.get("torch", {}).get("peak_rss_mib") for r in res.get("train_step", [])]
    zoo = [res[f"{n}_step"] for n in ZOO if f"{n}_step" in res]
    peers += [r.get("torch", {}).get("peak_rss_mib") for r in zoo]
    peers = [p for p in peers if p is not None]
    res["peak_rss_mib"] = {"ours": _rss_mib(), "torch": max(peers) if peers else None}
    if "pipeline" in args.section_list:
        print("[bench] input pipelines ...", file=sys.stderr, flush=True)
        tmp = tempfile.mkdtemp(prefix="gan_jax_bench_")
        try:
            res["pipeline"] = bench_pipelines(args, step_rates, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if "sampling" in args.section_list:
        print("[bench] sampling ...", file=sys.stderr, flush=True)
        res["sampling"] = bench_sampling(args)
    if "fid" in args.section_list:
        print("[bench] FID features ...", file=sys.stderr, flush=True)
        res["fid_features"] = bench_fid(args)
    out = args.out or os.path.join(ROOT, "bench", "results", f"{res['name']}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(markdown(res))
    print(f"\nwrote {out}")
    return res


if __name__ == "__main__":
    main()
