"""Per-layer timings of every exact formulation of DCGAN's two convolutions, by product.

  python bench/layers.py                 # DCGAN-64 shapes, batch 64
  python bench/layers.py --size 32       # DCGAN-32 shapes
  python bench/layers.py --quick         # fewer repeats

A layer's training needs three products: the forward pass, the input gradient (dx) and the
weight gradient (dw). For each generator layer (`ConvTranspose2d(4, 2, 1)`) and discriminator
layer (`Conv2d(4, 2, 1)`) of the seed's DCGAN, this times each product of each formulation in
`gan_jax.models.layers` on its own (jitted, median of `--repeats` calls), then the whole
forward+backward of 'fast' (the per-product choice joined by custom_vjp), of 'lax', and of
PyTorch's layer (when torch is installed), side by side. It is how `layers._fast_plan` was
chosen; run it on a new CPU to see whether the choice still holds there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax.models import layers  # noqa: E402

SHAPES = {  # (input map size, cin, cout) per layer
    64: {
        "G": [(4, 512, 256), (8, 256, 128), (16, 128, 64), (32, 64, 3)],
        "D": [(64, 3, 64), (32, 64, 128), (16, 128, 256), (8, 256, 512)],
    },
    32: {
        "G": [(4, 256, 128), (8, 128, 64), (16, 64, 3)],
        "D": [(32, 3, 64), (16, 64, 128), (8, 128, 256)],
    },
}
# The transposed convolution's own 'lax' weight gradient takes seconds on larger maps.
SLOW = {("G", "lax", "dw")}


def _median_ms(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _torch_ms(kind, batch, h, cin, cout, repeats):
    try:
        import torch  # noqa: PLC0415 (optional peer)
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.randn(batch, cin, h, h, requires_grad=True)
    if kind == "G":
        layer, out = torch.nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), 2 * h
    else:
        layer, out = torch.nn.Conv2d(cin, cout, 4, 2, 1, bias=False), h // 2
    cot = torch.randn(batch, cout, out, out)

    def step():
        x.grad = layer.weight.grad = None
        layer(x).backward(cot)

    return _median_ms(step, repeats)


def bench_layer(kind, batch, h, cin, cout, repeats):
    rng = np.random.default_rng(0)
    x = jax.numpy.asarray(rng.standard_normal((batch, h, h, cin), np.float32))
    k = jax.numpy.asarray(rng.standard_normal((4, 4, cin, cout), np.float32) * 0.02)
    out = 2 * h if kind == "G" else h // 2
    cot = jax.numpy.asarray(rng.standard_normal((batch, out, out, cout), np.float32))
    fn = layers.conv_transpose_4x4_s2 if kind == "G" else layers.conv_4x4_s2
    impls = layers.CONV_TRANSPOSE_IMPLS if kind == "G" else layers.CONV_IMPLS
    row = {}
    for impl in impls:
        if impl == "fast":
            continue
        fwd = jax.jit(lambda x, k, impl=impl: fn(x, k, impl))
        dx = jax.jit(lambda k, c, impl=impl: jax.vjp(lambda x: fn(x, k, impl), x)[1](c)[0])
        dw = jax.jit(lambda x, c, impl=impl: jax.vjp(lambda k: fn(x, k, impl), k)[1](c)[0])
        row[impl] = {
            "fwd": _median_ms(lambda f=fwd: f(x, k).block_until_ready(), repeats),
            "dx": _median_ms(lambda f=dx: f(k, cot).block_until_ready(), repeats),
            "dw": None
            if (kind, impl, "dw") in SLOW and h >= 8
            else _median_ms(lambda f=dw: f(x, cot).block_until_ready(), repeats),
        }
    whole = {}
    for impl in ("fast", "lax"):
        if (kind, impl, "dw") in SLOW and h >= 8:
            whole[impl] = None
            continue
        both = jax.jit(lambda x, k, c, impl=impl: jax.vjp(lambda x, k: fn(x, k, impl), x, k)[1](c))
        whole[impl] = _median_ms(lambda f=both: jax.block_until_ready(f(x, k, cot)), repeats)
    whole["torch"] = _torch_ms(kind, batch, h, cin, cout, repeats)
    return row, whole


def _fmt(ms):
    return "-" if ms is None else f"{ms:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=64, choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    print(f"{os.cpu_count()} CPU cores, jax {jax.__version__}, batch {args.batch}; ms, medians")
    for kind in ("G", "D"):
        for h, cin, cout in SHAPES[args.size][kind]:
            row, whole = bench_layer(kind, args.batch, h, cin, cout, repeats)
            name = f"{kind} {h}x{h} {cin}->{cout}"
            print(
                f"\n{name}  fwd+bwd: fast {_fmt(whole['fast'])}, lax {_fmt(whole['lax'])}, "
                f"PyTorch {_fmt(whole['torch'])}"
            )
            print("  impl                  fwd      dx      dw")
            for impl, t in row.items():
                print(f"  {impl:18s} {_fmt(t['fwd']):>7s} {_fmt(t['dx']):>7s} {_fmt(t['dw']):>7s}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
