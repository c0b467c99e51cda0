r"""PyTorch peer of gan_jax's SNGAN / BigGAN train step, for `bench/run.py --sections sngan,biggan`.

The networks are the PyTorch ports `bench/torch_sngan.py` and `bench/torch_biggan.py` (PyTorch's
own `spectral_norm` parametrization and batch norm); the step repeats what
`gan_jax.training.step.train_step` does for the same config, with PyTorch's usual tools:

  * `d_steps` D updates, each on its own real batch (with its labels) and a fresh fake batch
    (fresh z ~ N(0, I) and uniform class labels); D is called on the reals and on the
    detached fakes separately, so batch norm and the power iteration see them apart;
  * one G update through the updated D on the last D update's fake batch (G's forward pass
    runs once per D update and the last one keeps its graph, as our step reuses it through
    `jax.vjp`); D's parameters are frozen during it (`requires_grad_(False)`, as
    BigGAN-PyTorch's `toggle_grad`), so only D's input gradient is computed, as ours;
  * the loss of the config (hinge: D `relu(1 - D(x)) + relu(1 + D(G(z)))`, G `-D(G(z))`);
  * Adam (or AdamW) with the config's learning rates and betas, and the linear decay to zero
    over `num_steps` G steps (`num_steps * d_steps` D updates) when `optim.schedule` is
    'linear' (SNGAN), as `LambdaLR`;
  * `reg.ortho` > 0 (BigGAN): BigGAN-PyTorch's `utils.ortho` after G's backward pass: for
    every G parameter with two or more axes but the shared class embedding, viewed as
    `W` [out, -1], `grad += strength * 2 (W W^T * (1 - I)) W` (raw, not normalised, weights);
  * `ema_decay` > 0 (BigGAN): an EMA of G's parameters after G's optimiser step, with the
    decay our step uses (`ema_rampup`, then G itself until `ema_start` as BigGAN-PyTorch),
    as one `torch._foreach_lerp_`.

Not repeated: our step's finiteness gate on the gradients (extra work on our side only).

  python bench/torch_resnet_peer.py --model sngan --steps 3 --warmup 1 --threads 2
  python bench/torch_resnet_peer.py --config-json '{...}' --serve ...   # as bench/run.py runs it

With `--serve` the process stays up for all of bench/run.py's rounds: it warms up once, then
times `--steps` steps each time it reads `run` on stdin (while our step runs, it waits).

Without `--config-json` the config is the model's CIFAR-10 preset (`configs/sngan.py:
cifar10_cond`, `configs/biggan.py:cifar10`), read from the config files (no JAX needed).
Prints one JSON line per event; the last ('done') holds the step times (a step = one G update
and its `d_steps` D updates), G steps/s, real images/s (`batch * d_steps` per step), the
parameter counts of both networks and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import optim

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import torch_biggan  # noqa: E402
import torch_sngan  # noqa: E402

PRESETS = {"sngan": "cifar10_cond", "biggan": "cifar10"}


def preset_config(model: str) -> dict:
    """The model's CIFAR-10 preset as a plain dict (configs/<model>.py; no JAX imported)."""
    sys.path.insert(0, os.path.dirname(BENCH))
    import importlib  # noqa: PLC0415

    module = importlib.import_module(f"configs.{model}")
    return json.loads(module.get_config(PRESETS[model]).to_json())


def build(config: dict):
    """(generator, discriminator) torch ports for `config` (a plain dict of the config)."""
    m, data = config["model"], config["data"]
    size, channels = data["image_size"], data["channels"]
    classes = int(m.get("num_classes") or 0)
    if m["name"] == "sngan":
        g = torch_sngan.Generator(
            size, channels, m["g_width"], m["z_dim"], classes, m.get("upsample", "nearest")
        )
        d = torch_sngan.Discriminator(size, channels, m["d_width"], classes)
    elif m["name"] == "biggan":
        g = torch_biggan.Generator(
            size,
            channels,
            m["g_width"],
            m["z_dim"],
            m["shared_dim"],
            classes,
            m["attn_res"],
            float(m.get("bn_eps", torch_biggan.BN_EPS)),
        )
        d = torch_biggan.Discriminator(size, channels, m["d_width"], classes, m["attn_res"])
    else:
        raise SystemExit(f"model.name must be sngan or biggan, got {m['name']!r}")
    return g, d


def losses(name: str):
    """(D loss of (real logits, fake logits), G loss of fake logits) for `loss.name`."""
    if name == "hinge":
        return (
            lambda r, f: F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean(),
            lambda f: -f.mean(),
        )
    if name == "nonsaturating":
        return (
            lambda r, f: (F.softplus(-r).mean() + F.softplus(f).mean()) / 2,  # the seed's
            lambda f: F.softplus(-f).mean(),
        )
    raise SystemExit(f"loss.name {name!r} is not in this peer (hinge, nonsaturating)")


def optimizer(config: dict, net: str, params, total_updates: int):
    """Adam / AdamW of `config.optim` for net 'g' or 'd', and its linear-decay scheduler."""
    o = config["optim"]
    kw = dict(lr=o[f"{net}_lr"], betas=(o[f"{net}_b1"], o[f"{net}_b2"]))
    if o.get("name", "adam") == "adamw":
        opt = optim.AdamW(params, weight_decay=o.get("weight_decay", 0.0), **kw)
    else:
        opt = optim.Adam(params, **kw)
    sched = None
    if o.get("schedule", "constant") == "linear":
        total = max(int(total_updates), 1)
        sched = optim.lr_scheduler.LambdaLR(opt, lambda t: max(0.0, 1.0 - t / total))
    return opt, sched


@torch.no_grad()
def ortho_(module, strength: float, blacklist) -> None:
    """BigGAN-PyTorch's modified orthogonal regularisation, added to the gradients in place."""
    skip = {id(p) for p in blacklist}
    for p in module.parameters():
        if p.ndim < 2 or id(p) in skip or p.grad is None:
            continue
        w = p.view(p.shape[0], -1)
        off = (w @ w.t()) * (1.0 - torch.eye(w.shape[0], device=w.device))
        p.grad.add_((off @ w).view(p.shape), alpha=2.0 * strength)


def ema_decay_at(config: dict, step: int) -> float:
    """`gan_jax.training.step.ema_decay_at` on the host."""
    window = float(config.get("ema_rampup", 1.0 / 9.0)) * (1.0 + step)
    decay = min(float(config["ema_decay"]), window / (1.0 + window))
    return 0.0 if step < int(config.get("ema_start", 0) or 0) else decay


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (VmHWM), MiB.

    Not `getrusage`: a child forked from a large parent (bench/run.py) reports the parent's
    peak there too (Linux keeps the pre-exec high-water mark in ru_maxrss); VmHWM belongs to
    the process's own address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def count_params(module) -> int:
    """Trainable parameters (raw weights of spectral-normed layers; no buffers)."""
    return sum(p.numel() for p in module.parameters())


class Step:
    """One train step of `config` on random real images; `__call__` runs one, returns losses."""

    def __init__(self, config: dict, seed: int = 0):
        torch.manual_seed(seed)
        self.config = config
        self.g, self.d = build(config)
        self.g.train()
        self.d.train()
        m, data = config["model"], config["data"]
        self.classes = int(m.get("num_classes") or 0)
        self.z_dim = m["z_dim"]
        self.batch, self.d_steps = config["batch_size"], config["d_steps"]
        size, ch = data["image_size"], data["channels"]
        shape = (self.d_steps, self.batch, ch, size, size)
        # Random images in [-1, 1] and labels: one real batch per D update, as our batch.
        self.reals = torch.rand(shape) * 2 - 1
        self.real_labels = torch.randint(0, max(self.classes, 1), shape[:2])
        self.d_loss_fn, self.g_loss_fn = losses(config["loss"]["name"])
        total = int(config.get("num_steps", 0) or 0)
        self.g_opt, self.g_sched = optimizer(config, "g", self.g.parameters(), total)
        self.d_opt, self.d_sched = optimizer(config, "d", self.d.parameters(), total * self.d_steps)
        self.d_params = list(self.d.parameters())
        reg = config.get("reg", {}) or {}
        self.ortho = float(reg.get("ortho", 0.0) or 0.0)
        self.ortho_every = int(reg.get("ortho_every", 1) or 1)
        shared = getattr(self.g, "shared", None)
        self.ortho_blacklist = list(shared.parameters()) if shared is not None else []
        self.g_params = list(self.g.parameters())
        self.ema = [p.detach().clone() for p in self.g_params] if config["ema_decay"] > 0 else []
        self.step = 0

    def _labels(self):
        if not self.classes:
            return None
        return torch.randint(0, self.classes, (self.batch,))

    def __call__(self):
        fake = fake_y = None
        for k in range(self.d_steps):
            z, fake_y = torch.randn(self.batch, self.z_dim), self._labels()
            # Only the last fake batch keeps G's graph: G's update below reuses it.
            with torch.set_grad_enabled(k == self.d_steps - 1):
                fake = self.g(z, fake_y)
            real_y = self.real_labels[k] if self.classes else None
            self.d_opt.zero_grad(set_to_none=True)
            real_out = self.d(self.reals[k], real_y)
            fake_out = self.d(fake.detach(), fake_y)
            d_loss = self.d_loss_fn(real_out, fake_out)
            d_loss.backward()
            self.d_opt.step()
            if self.d_sched is not None:
                self.d_sched.step()

        for p in self.d_params:
            p.requires_grad_(False)
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = self.g_loss_fn(self.d(fake, fake_y))
        g_loss.backward()
        for p in self.d_params:
            p.requires_grad_(True)
        if self.ortho > 0 and self.step % self.ortho_every == 0:
            # Lazy as ours: every `ortho_every` steps with the strength times the interval.
            ortho_(self.g, self.ortho * self.ortho_every, self.ortho_blacklist)
        self.g_opt.step()
        if self.g_sched is not None:
            self.g_sched.step()
        if self.ema:
            decay = ema_decay_at(self.config, self.step)
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, [p.detach() for p in self.g_params], 1.0 - decay)
        self.step += 1
        return d_loss.item(), g_loss.item()  # the host sync, as the seed's script


def timed(step: Step, steps: int) -> list[float]:
    """Wall seconds of `steps` steps, one by one (each ends with its host sync)."""
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", choices=tuple(PRESETS), default="sngan")
    ap.add_argument("--config-json", default=None, help="the config as JSON (default: preset)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (per round with --serve)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (once)")
    ap.add_argument("--threads", type=int, default=0, help="0 = torch default")
    ap.add_argument(
        "--serve",
        action="store_true",
        help="rounds on demand: after the warm-up print a 'ready' line, then for each line\n"
        "'run' on stdin time --steps steps and print them; 'quit' or EOF ends (bench/run.py)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = json.loads(args.config_json) if args.config_json else preset_config(args.model)
    step = Step(config)
    for _ in range(args.warmup):
        step()
    times = []
    if args.serve:
        emit({"event": "ready"})
        for line in sys.stdin:
            if line.strip() != "run":
                break
            t_round = timed(step, args.steps)
            times += t_round
            emit({"event": "round", "step_s": [round(t, 4) for t in t_round]})
    else:
        times = timed(step, args.steps)
    med = statistics.median(times) if times else float("nan")
    real_per_step = step.batch * step.d_steps
    emit(
        {
            "event": "done",
            "impl": "torch_resnet_peer",
            "model": config["model"]["name"],
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "batch": step.batch,
            "d_steps": step.d_steps,
            "steps": len(times),
            "warmup": args.warmup,
            "g_params": count_params(step.g),
            "d_params": count_params(step.d),
            "step_s_median": round(med, 4),
            "step_s_min": round(min(times, default=float("nan")), 4),
            "g_steps_per_s": round(1.0 / med, 4),
            "real_img_per_s": round(real_per_step / med, 2),
            "step_s": [round(t, 4) for t in times],
            "peak_rss_mib": peak_rss_mib(),
        }
    )


if __name__ == "__main__":
    main()
