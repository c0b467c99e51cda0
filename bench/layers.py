"""Per-layer timings of every exact formulation of DCGAN's two convolutions, by product.

  python bench/layers.py                 # DCGAN-64 shapes, batch 64
  python bench/layers.py --size 32       # DCGAN-32 shapes
  python bench/layers.py --quick         # fewer repeats
  python bench/layers.py --bn            # batch norm only: ours, autodiff, PyTorch

A layer's training needs three products: the forward pass, the input gradient (dx) and the
weight gradient (dw). For each generator layer (`ConvTranspose2d(4, 2, 1)`) and discriminator
layer (`Conv2d(4, 2, 1)`) of the seed's DCGAN, this times each product of each formulation
(`lax` and the benchmark-only variants of `bench/layer_variants.py`) on its own (jitted, median
of `--repeats` calls), then the whole forward+backward of 'fast' (the per-product choice of
`gan_jax.models.layers`, joined by custom_vjp), of 'lax', and of PyTorch's layer (when torch is
installed), side by side. It is how `layers._fast_plan` was chosen; run it on a new CPU to see
whether the choice still holds there.

Batch norm (each layer's map, forward + backward): `layers.batch_norm_train` (closed-form
backward, reductions as matmuls), the textbook definition differentiated by JAX, and
PyTorch's `BatchNorm2d`. It runs with the project's XLA CPU flags (`gan_jax.platform`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import platform  # noqa: E402

if __name__ == "__main__":
    platform.use_huge_pages()  # restarts once with huge pages for malloc (Linux)
XLA_FLAGS = platform.configure_xla()  # before JAX starts its backend

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from bench import layer_variants  # noqa: E402
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
    fn = layer_variants.conv_transpose_4x4_s2 if kind == "G" else layer_variants.conv_4x4_s2
    impls = layer_variants.CONV_TRANSPOSE_IMPLS if kind == "G" else layer_variants.CONV_IMPLS
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


def _bn_by_autodiff(x, scale, bias, eps):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axes)
    var = jnp.square(x - mean).mean(axes)
    return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias, mean, var


def bench_batch_norm(batch, h, c, repeats):
    """Batch norm forward + backward (dx, dscale, dbias) on [batch, h, h, c]: ms per impl."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, h, h, c), np.float32))
    cot = jnp.asarray(rng.standard_normal((batch, h, h, c), np.float32))
    scale, bias = jnp.ones((c,)), jnp.zeros((c,))
    row = {}
    for name, fn in (("ours", layers.batch_norm_train), ("autodiff", _bn_by_autodiff)):
        both = jax.jit(
            lambda x, s, b, c, fn=fn: jax.vjp(lambda x, s, b: fn(x, s, b, 1e-5)[0], x, s, b)[1](c)
        )
        row[name] = _median_ms(
            lambda f=both: jax.block_until_ready(f(x, scale, bias, cot)), repeats
        )
    try:
        import torch  # noqa: PLC0415 (optional peer)
    except ImportError:
        row["torch"] = None
        return row
    torch.set_num_threads(os.cpu_count() or 1)
    bn_t = torch.nn.BatchNorm2d(c).train()
    xt = torch.randn(batch, c, h, h, requires_grad=True)
    cot_t = torch.randn(batch, c, h, h)

    def step():
        xt.grad = bn_t.weight.grad = bn_t.bias.grad = None
        bn_t(xt).backward(cot_t)

    row["torch"] = _median_ms(step, repeats)
    return row


def _fmt(ms):
    return "-" if ms is None else f"{ms:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=64, choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--bn", action="store_true", help="batch norm only")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    print(f"{os.cpu_count()} CPU cores, jax {jax.__version__}, batch {args.batch}; ms, medians")
    print(f"XLA_FLAGS `{XLA_FLAGS}`")
    if args.bn:
        # Every map a batch norm sees: each generator layer's output but the image.
        maps = sorted({(2 * h, cout) for h, _, cout in SHAPES[args.size]["G"][:-1]})
        maps.insert(0, (SHAPES[args.size]["G"][0][0], SHAPES[args.size]["G"][0][1]))
        print("\nbatch norm fwd+bwd   ours  autodiff  PyTorch")
        for h, c in maps:
            row = bench_batch_norm(args.batch, h, c, repeats)
            print(
                f"  {h:>3d}x{h:<3d} x{c:<4d} {_fmt(row['ours']):>7s} {_fmt(row['autodiff']):>9s}"
                f" {_fmt(row['torch']):>8s}"
            )
        return
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
