"""PyTorch peer of the seed's DCGAN step at 32 or 64 px, optionally under bfloat16 autocast.

NOT the seed's file. The seed's own script (`shared/reference/torch_dcgan.py`) is 64 px and
float32 only; `bench/run.py` runs it unchanged for the float32 64 px comparison. This peer
repeats its layer pattern (ConvTranspose2d/Conv2d(4, 2, 1), BatchNorm, ReLU/LeakyReLU 0.2,
BCE, Adam 2e-4 / (0.5, 0.999), the same D-then-G order with `fake.detach()`) for:

  * 32 px: one fewer up/down layer (4 -> 8 -> 16 -> 32; widths 256, 128, 64);
  * `--autocast`: the networks' forward passes under `torch.autocast('cpu', torch.bfloat16)`
    (losses in float32, parameters and Adam state in float32), PyTorch's own mixed precision.

  python bench/torch_peer.py --size 32 --batch 64 --steps 10 --threads 2 [--autocast]

Prints one JSON line like the seed's script, plus every step time (`step_s`).
"""

import argparse
import contextlib
import json
import statistics
import time

import torch
from torch import nn, optim
from torch_resnet_peer import peak_rss_mib  # this script's folder is on sys.path


def generator(size: int, z_dim: int = 100, width: int = 64, channels: int = 3) -> nn.Sequential:
    n = {32: 3, 64: 4}[size]
    feats = width * 2 ** (n - 1)
    mods = [nn.ConvTranspose2d(z_dim, feats, 4, 1, 0, bias=False), nn.BatchNorm2d(feats)]
    mods.append(nn.ReLU(True))
    for _ in range(n - 1):
        mods += [nn.ConvTranspose2d(feats, feats // 2, 4, 2, 1, bias=False)]
        mods += [nn.BatchNorm2d(feats // 2), nn.ReLU(True)]
        feats //= 2
    mods += [nn.ConvTranspose2d(feats, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*mods)


def discriminator(size: int, width: int = 64, channels: int = 3) -> nn.Sequential:
    n = {32: 3, 64: 4}[size]
    mods = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    feats = width
    for _ in range(n - 1):
        mods += [nn.Conv2d(feats, feats * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(feats * 2)]
        mods += [nn.LeakyReLU(0.2, inplace=True)]
        feats *= 2
    mods += [nn.Conv2d(feats, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*mods)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32, choices=(32, 64))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="0 = torch default")
    ap.add_argument("--autocast", action="store_true", help="bfloat16 autocast on the CPU")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g_net, d_net = generator(args.size, width=args.width), discriminator(args.size, args.width)
    g_opt = optim.Adam(g_net.parameters(), lr=0.0002, betas=(0.5, 0.999))
    d_opt = optim.Adam(d_net.parameters(), lr=0.0002, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    real = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1

    def amp():
        if args.autocast:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        d_opt.zero_grad()
        with amp():
            real_out = d_net(real)
        real_out = real_out.float()
        real_loss = bce(real_out, torch.ones_like(real_out))
        noise = torch.randn(args.batch, 100, 1, 1)
        with amp():
            fake = g_net(noise)
            fake_out = d_net(fake.detach())
        fake_out = fake_out.float()
        d_loss = (real_loss + bce(fake_out, torch.zeros_like(fake_out))) / 2
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad()
        with amp():
            fake_out = d_net(fake)
        fake_out = fake_out.float()
        g_loss = bce(fake_out, torch.ones_like(fake_out))
        g_loss.backward()
        g_opt.step()
        return d_loss.item(), g_loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    out = {
        "impl": "torch_peer",
        "size": args.size,
        "autocast_bf16": args.autocast,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "steps": args.steps,
        "step_s_median": round(med, 4),
        "step_s_min": round(min(times), 4),
        "img_per_s": round(args.batch / med, 2),
        "step_s": [round(t, 4) for t in times],
        "peak_rss_mib": peak_rss_mib(),  # its own VmHWM, not the parent's (see the import)
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
