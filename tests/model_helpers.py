"""Helpers shared by the model tests (SNGAN, BigGAN, blocks, spectral norm).

PyTorch ports and layouts: `torch_port`, `nchw` / `nhwc` / `torch_nchw`, `rand`; comparisons:
`close` (tolerance relative to the largest expected value) and `assert_trees_close`; the
generator / discriminator parity runs both models' tests make (`check_generator_parity`,
`check_discriminator_parity`) and `randomize_running_stats` for the ports' weights;
shapes and counts without computing (`init_shapes`, `count`); the label checks both models share
(`check_label_errors`). Torch is imported only by the helpers that need it, through
`pytest.importorskip`, so the tests that do not compare with PyTorch run without it.
"""

import functools
import importlib
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def torch_port(name: str):
    """The PyTorch port `bench/<name>.py` as a module (skips the test without torch).

    Args:
      name: 'torch_sngan' or 'torch_biggan'.

    Returns:
      The imported module.
    """
    pytest.importorskip("torch", reason="torch is an optional test dependency (parity)")
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    return importlib.import_module(name)


def count(tree) -> int:
    """Number of scalars in a tree of arrays (or shape structs)."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def init_shapes(module, x, labels):
    """Variables' shapes without computing anything."""
    return jax.eval_shape(
        lambda: module.init(jax.random.key(0), x, labels, train=False)  # noqa: PLW0108
    )


def rand(shape, seed: int) -> np.ndarray:
    """Standard normal float32 numbers from `seed`."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _numpy(x) -> np.ndarray:
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def nchw(x) -> np.ndarray:
    """NHWC -> NCHW (contiguous, so `torch.from_numpy` takes it)."""
    return np.ascontiguousarray(_numpy(x).transpose(0, 3, 1, 2))


def nhwc(x) -> np.ndarray:
    """NCHW (numpy or torch) -> NHWC numpy."""
    return _numpy(x).transpose(0, 2, 3, 1)


def torch_nchw(x):
    """NHWC numpy / JAX -> an NCHW torch tensor."""
    torch = pytest.importorskip("torch")
    return torch.from_numpy(nchw(x))


def close(actual, expected, rtol: float = 2e-5):
    """`assert_allclose` with `rtol` and an absolute tolerance of rtol * max|expected|."""
    expected = np.asarray(expected)
    scale = max(float(np.abs(expected).max()), 1e-6)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=rtol * scale)


def assert_trees_close(ours, theirs, check=close):
    """Same structure, and `check(our leaf, their leaf)` for every leaf, naming the path.

    Args:
      ours: a (nested dict) tree of arrays.
      theirs: the expected tree, indexed by our paths.
      check: the comparison of one leaf (default `close`).
    """
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for path, a in jax.tree_util.tree_leaves_with_path(ours):
        b = theirs
        for k in path:
            b = b[k.key]
        try:
            check(np.asarray(a), b)
        except AssertionError as e:
            raise AssertionError(f"{jax.tree_util.keystr(path)}: {e}") from None


def allclose(**tol):
    """`np.testing.assert_allclose` with fixed tolerances, as a `check`."""
    return functools.partial(np.testing.assert_allclose, **tol)


def randomize_running_stats(torch, name: str, buf, gen) -> bool:
    """Random batch-norm running statistics in place; False for any other buffer.

    Init values (mean 0, var 1) would hide a weight copy that forgot them.
    """
    if name.endswith("running_var"):
        buf.copy_(0.5 + torch.rand(buf.shape, generator=gen))
    elif name.endswith("running_mean"):
        buf.copy_(0.2 * torch.randn(buf.shape, generator=gen))
    else:
        return False
    return True


def random_labels(rng, classes: int, b: int):
    """(torch int64 labels, JAX int32 labels) of `b` random classes, or (None, None)."""
    if not classes:
        return None, None
    torch = pytest.importorskip("torch")
    y = rng.integers(0, classes, size=b)
    return torch.from_numpy(y).long(), jnp.asarray(y, jnp.int32)


def check_generator_parity(
    tg, g, variables, z_shape, classes, *, to_flax, collections, check_out, check_state, jit=False
):
    """A train-mode call, then an eval-mode call with the updated collections, on both sides.

    Inputs: normal noise, then labels (when conditional), from `np.random.default_rng(2)`.
    Train mode uses batch statistics and updates `collections` once; the outputs and the
    updated collections must agree with torch's. Eval mode must agree on the outputs.

    Args:
      tg: the torch generator (its weights are `variables`).
      g: the Flax generator.
      variables: the Flax variables copied from `tg`.
      z_shape: (B, z_dim).
      classes: 0 unconditional, else the number of classes.
      to_flax: the port's torch -> Flax conversion.
      collections: the collections a train call updates.
      check_out: compares our NHWC images with torch's (made NHWC).
      check_state: compares a collection (trees) with torch's after the call.
      jit: whether to jit our calls (one compilation instead of one per operation).

    Returns:
      The collections our train-mode call updated.
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    z = rng.normal(size=z_shape).astype(np.float32)
    ty, labels = random_labels(rng, classes, z_shape[0])
    apply = jax.jit(g.apply, static_argnames=("train", "mutable")) if jit else g.apply
    tg.train()
    with torch.no_grad():
        ref = tg(torch.from_numpy(z), ty).numpy()
    out, new = apply(variables, jnp.asarray(z), labels, train=True, mutable=tuple(collections))
    check_out(np.asarray(out), nhwc(ref))
    after = to_flax(tg)
    for name in collections:
        assert_trees_close(new[name], after[name], check_state)

    # Eval mode with the updated collections.
    tg.eval()
    with torch.no_grad():
        ref = tg(torch.from_numpy(z), ty).numpy()
    out = apply({**variables, **new}, jnp.asarray(z), labels, train=False, mutable=False)
    check_out(np.asarray(out), nhwc(ref))
    return new


def check_discriminator_parity(
    td, d, variables, x_shape, classes, *, to_flax, check_out, check_grad, check_state, jit=False
):
    """Logits and input gradients in train mode (one power iteration) and eval mode.

    Inputs: uniform images in [-1, 1], then labels (when conditional), from
    `np.random.default_rng(4)`. The gradient is that of `sum(w_i * logit_i)` with a distinct
    weight per sample. After the train-mode call the 'spectral' vectors must agree with
    torch's; the eval-mode call uses them without iterating.

    Args:
      td: the torch discriminator (its weights are `variables`).
      d: the Flax discriminator.
      variables: the Flax variables copied from `td`.
      x_shape: (B, S, S, C).
      classes: 0 unconditional, else the number of classes.
      to_flax: the port's torch -> Flax conversion.
      check_out: compares our logits with torch's.
      check_grad: compares our input gradient with torch's (made NHWC).
      check_state: compares the 'spectral' trees.
      jit: whether to jit our gradient function.

    Returns:
      (our 'spectral' collection after the train call, torch's variables after it).
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=x_shape).astype(np.float32)
    ty, labels = random_labels(rng, classes, x_shape[0])
    weights = np.arange(1, x.shape[0] + 1, dtype=np.float32)

    def run_torch():
        tx = torch.from_numpy(nchw(x)).requires_grad_(True)
        out = td(tx, ty)
        (out * torch.from_numpy(weights)).sum().backward()
        return out.detach().numpy(), nhwc(tx.grad)

    def loss(xx, variables, train):
        out = d.apply(variables, xx, labels, train=train, mutable=["spectral"] if train else False)
        logits, new = out if train else (out, {})
        return (logits * weights).sum(), (logits, new)

    grad_fn = jax.grad(loss, has_aux=True)
    if jit:
        grad_fn = jax.jit(grad_fn, static_argnums=2)

    # Train mode: one power iteration per layer, then the forward with the new vectors.
    td.train()
    ref, ref_grad = run_torch()
    grad, (out, new) = grad_fn(jnp.asarray(x), variables, True)
    check_out(np.asarray(out), ref)
    check_grad(np.asarray(grad), ref_grad)
    after = to_flax(td)
    assert_trees_close(new["spectral"], after["spectral"], check_state)

    # Eval mode with the updated vectors: no iteration, same outputs and gradients.
    td.eval()
    ref, ref_grad = run_torch()
    grad, (out, _) = grad_fn(jnp.asarray(x), {**variables, **new}, False)
    check_out(np.asarray(out), ref)
    check_grad(np.asarray(grad), ref_grad)
    return new, after


def check_label_errors(g, d, z, x):
    """A conditional pair rejects missing labels and labels of the wrong shape.

    Args:
      g: a class-conditional generator; d: a class-conditional discriminator.
      z: noise [B, z_dim]; x: images [B, S, S, C] of the discriminator's size.
    """
    key = jax.random.key(0)
    wrong = jnp.zeros((z.shape[0] + 1,), jnp.int32)
    with pytest.raises(ValueError, match="class-conditional .* pass labels"):
        g.init(key, z, None)
    with pytest.raises(ValueError, match="shape"):
        g.init(key, z, wrong)
    with pytest.raises(ValueError, match="class-conditional .* pass labels"):
        d.init(key, x, None)
    with pytest.raises(ValueError, match="shape"):
        d.init(key, x, wrong)
