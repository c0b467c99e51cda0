"""ResNet-GAN blocks equal their PyTorch ports (bench/torch_blocks.py), in training and eval."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from gan_jax.models import blocks
from tests.model_helpers import assert_trees_close, close, nhwc, rand, torch_nchw

torch = pytest.importorskip("torch", reason="torch is an optional test dependency (parity)")
tb = pytest.importorskip("bench.torch_blocks")

C = 16
X_SHAPE = (4, 6, 4, C)  # NHWC, non-square
MUTABLE = ["batch_stats", "spectral"]


def _torch_grads(tmod):
    """Gradients of every parameter as a Flax-layout tree (via to_flax on a grad copy)."""
    saved = {n: p.detach().clone() for n, p in tmod.named_parameters()}
    with torch.no_grad():
        for _, p in tmod.named_parameters():
            p.copy_(p.grad)
    grads = tb.to_flax(tmod)["params"]
    with torch.no_grad():
        for n, p in tmod.named_parameters():
            p.copy_(saved[n])
    return grads


def _check_steps(tmod, fmod, cond_t, cond_f, steps=3, rtol=2e-5):
    """Training calls with SGD in between, then eval calls: outputs, grads and all state agree."""
    x = rand(X_SHAPE, 0)
    variables = jax.tree.map(jnp.asarray, tb.to_flax(tmod))
    init = fmod.init(jax.random.key(0), jnp.asarray(x), cond_f, train=True)
    assert jax.tree.map(jnp.shape, init) == jax.tree.map(jnp.shape, variables)

    def loss(params, xin, state, cot):
        y, new = fmod.apply(
            {"params": params, **state}, xin, cond_f, train=True, mutable=list(state)
        )
        return jnp.vdot(y, cot), (y, new)

    grad_fn = jax.grad(loss, argnums=(0, 1), has_aux=True)
    tmod.train()
    for step in range(steps):
        xt = torch_nchw(x).requires_grad_(True)
        args = (xt,) if cond_t is None else (xt, cond_t)
        yt = tmod(*args)
        cot = rand(X_SHAPE, 10 + step)
        (yt * torch_nchw(cot)).sum().backward()
        state = {k: v for k, v in variables.items() if k != "params"}
        (gp, gx), (y, new) = grad_fn(variables["params"], jnp.asarray(x), state, jnp.asarray(cot))
        close(y, nhwc(yt), rtol)
        close(gx, nhwc(xt.grad), rtol)
        assert_trees_close(gp, _torch_grads(tmod))
        with torch.no_grad():
            for p in tmod.parameters():
                p -= 0.1 * p.grad
                p.grad = None
        params = jax.tree.map(lambda p, g: p - 0.1 * g, variables["params"], gp)
        variables = {"params": params, **new}
        # Running statistics, spectral vectors and parameters all equal torch's after the call.
        assert_trees_close(variables, jax.tree.map(jnp.asarray, tb.to_flax(tmod)))

    tmod.eval()
    xe = rand(X_SHAPE, 99)
    with torch.no_grad():
        yt = tmod(torch_nchw(xe)) if cond_t is None else tmod(torch_nchw(xe), cond_t)
    y, new = fmod.apply(variables, jnp.asarray(xe), cond_f, train=False, mutable=MUTABLE)
    close(y, nhwc(yt), rtol)
    # train=False changes nothing.
    jax.tree.map(np.testing.assert_array_equal, new, {k: variables[k] for k in new})
    return variables


@pytest.mark.parametrize("mode", ["plain", "embed", "linear"])
def test_conditional_batch_norm_matches_torch(mode):
    torch.manual_seed(0)
    b = X_SHAPE[0]
    labels = np.array([0, 2, 2, 1], np.int32)[:b]
    if mode == "plain":
        tmod, fmod = tb.ConditionalBatchNorm2d(C), blocks.ConditionalBatchNorm()
        cond_t = cond_f = None
    elif mode == "embed":
        tmod = tb.ConditionalBatchNorm2d(C, num_classes=3)
        fmod = blocks.ConditionalBatchNorm(num_classes=3)
        cond_t, cond_f = torch.from_numpy(labels.astype(np.int64)), jnp.asarray(labels)
    else:
        tmod = tb.ConditionalBatchNorm2d(C, cond_dim=5)
        fmod = blocks.ConditionalBatchNorm(linear=True)
        c = rand((b, 5), 3)
        cond_t, cond_f = torch.from_numpy(c), jnp.asarray(c)
    if mode == "plain":
        # Non-trivial affine, so that a swapped scale / bias shows.
        with torch.no_grad():
            tmod.bn.weight.normal_()
            tmod.bn.bias.normal_()
    _check_steps(tmod, fmod, cond_t, cond_f)


class _AttnFlax(nn.Module):
    """blocks.SelfAttention with the (x, cond, train) signature of `_check_steps`."""

    @nn.compact
    def __call__(self, x, cond, train):
        del cond
        return blocks.SelfAttention(name="attn")(x, train)


class _AttnTorch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = tb.SelfAttention(C)

    def forward(self, x):
        return self.attn(x)


def test_self_attention_matches_torch():
    torch.manual_seed(1)
    tmod = _AttnTorch()
    with torch.no_grad():
        tmod.attn.gamma.fill_(0.7)  # gamma = 0 would hide the attention path
    _check_steps(tmod, _AttnFlax(), None, None)


def test_self_attention_starts_as_identity():
    x = jnp.asarray(rand((2, 4, 4, 8), 5))
    attn = blocks.SelfAttention()
    variables = attn.init(jax.random.key(0), x)
    assert variables["params"]["gamma"] == 0.0
    assert variables["params"]["theta"]["kernel"].shape == (1, 1, 8, 1)
    assert variables["params"]["g"]["kernel"].shape == (1, 1, 8, 4)
    assert variables["params"]["o"]["kernel"].shape == (1, 1, 4, 8)
    y, _ = attn.apply(variables, x, train=True, mutable=["spectral"])
    np.testing.assert_array_equal(y, x)
    with pytest.raises(ValueError, match="channels % 8"):
        attn.init(jax.random.key(0), jnp.ones((1, 4, 4, 12)))


@pytest.mark.parametrize("hw", [(4, 6), (5, 7)])
def test_resampling_matches_torch(hw):
    x = rand((2, *hw, 3), 7)
    close(blocks.upsample_nearest_2x(jnp.asarray(x)), nhwc(tb.upsample_nearest_2x(torch_nchw(x))))
    close(blocks.avg_pool_2x(jnp.asarray(x)), nhwc(tb.avg_pool_2x(torch_nchw(x))))
    close(
        blocks.max_pool_2x(jnp.asarray(x)),
        nhwc(torch.nn.functional.max_pool2d(torch_nchw(x), 2)),
    )


def test_conditional_batch_norm_shapes_and_errors():
    x = jnp.ones((2, 3, 3, 4))
    ids = jnp.array([0, 1])
    v = blocks.ConditionalBatchNorm(num_classes=2).init(jax.random.key(0), x, ids, train=False)
    assert v["params"]["gain"]["embedding"].shape == (2, 4)
    np.testing.assert_array_equal(v["params"]["gain"]["embedding"], 1.0)
    np.testing.assert_array_equal(v["params"]["bias"]["embedding"], 0.0)
    assert v["batch_stats"]["mean"].shape == (4,)
    v = blocks.ConditionalBatchNorm(linear=True).init(
        jax.random.key(0), x, jnp.ones((2, 6)), train=False
    )
    assert v["params"]["gain"]["kernel"].shape == (6, 4)
    assert "bias" not in v["params"]["gain"]  # no bias terms (BigGAN)
    assert v["spectral"]["bias"]["u"].shape == (4,)
    # A flat [B, C] input works too (BatchNorm1d-like).
    y = blocks.ConditionalBatchNorm().apply(
        blocks.ConditionalBatchNorm().init(jax.random.key(0), jnp.ones((3, 4)), train=False),
        jnp.arange(12.0).reshape(3, 4),
        train=True,
        mutable=["batch_stats"],
    )[0]
    close(y.mean(0), np.zeros(4))
    with pytest.raises(ValueError, match="needs `cond`"):
        blocks.ConditionalBatchNorm(num_classes=2).init(jax.random.key(0), x, train=False)
    with pytest.raises(ValueError, match="unconditional"):
        blocks.ConditionalBatchNorm().init(jax.random.key(0), x, ids, train=False)
    with pytest.raises(ValueError, match="not both"):
        blocks.ConditionalBatchNorm(num_classes=2, linear=True).init(
            jax.random.key(0), x, ids, train=False
        )


def test_to_flax_names_children_like_flax_setup_lists():
    """A ModuleList child `blocks` maps to Flax's `blocks_0`, ...; direct params kept."""

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([tb.sn_conv2d(8, 8, 3, padding=1) for _ in range(2)])
            self.bn = tb.ConditionalBatchNorm2d(8, num_classes=3)
            self.scale = torch.nn.Parameter(torch.ones(()))

    class FlaxNet(nn.Module):
        def setup(self):
            from gan_jax.models.spectral import SNConv  # noqa: PLC0415

            self.blocks = [SNConv(8, (3, 3), padding=1) for _ in range(2)]
            self.bn = blocks.ConditionalBatchNorm(num_classes=3)
            self.scale = self.param("scale", nn.initializers.ones, ())

        def __call__(self, x, y, train):
            for blk in self.blocks:
                x = blk(x, train)
            return self.scale * self.bn(x, y, train=train)

    x, y = jnp.ones((2, 4, 4, 8)), jnp.array([0, 1])
    ours = FlaxNet().init(jax.random.key(0), x, y, train=False)
    theirs = tb.to_flax(TorchNet())
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(np.shape, theirs)
