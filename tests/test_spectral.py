"""Spectral normalisation equals `torch.nn.utils.parametrizations.spectral_norm`, step by step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import spectral
from tests.model_helpers import close, rand

torch = pytest.importorskip("torch", reason="torch is an optional test dependency (parity)")
tb = pytest.importorskip("bench.torch_blocks")

STEPS = 4
LR = 0.5  # large enough that the weights (and so u, v) change visibly between calls


def _t(a):
    return torch.from_numpy(np.asarray(a).copy())


# name -> (torch layer, our module, input shape, torch input from ours, our output to torch's
# layout, param name, torch weight -> our layout)
def _case(name):
    if name == "linear":
        return (
            tb.sn_linear(6, 5),
            spectral.SNDense(5),
            rand((3, 6), 10),
            lambda x: x,
            lambda y: y,
            "kernel",
            lambda w: w.T,
        )
    if name in ("conv_k3", "conv_k4_s2"):
        k, s, p = (3, 1, 1) if name == "conv_k3" else (4, 2, 1)
        return (
            tb.sn_conv2d(3, 4, k, stride=s, padding=p),
            spectral.SNConv(4, (k, k), strides=(s, s), padding=p),
            rand((2, 8, 6, 3), 11),
            lambda x: x.transpose(0, 3, 1, 2),
            lambda y: y.transpose(0, 3, 1, 2),
            "kernel",
            lambda w: w.transpose(2, 3, 1, 0),
        )
    assert name == "embedding"
    return (
        tb.sn_embedding(7, 5),
        spectral.SNEmbed(7, 5),
        np.array([0, 3, 3, 6, 1], np.int32),
        lambda x: x.astype(np.int64),
        lambda y: y,
        "embedding",
        lambda w: w,
    )


CASES = ["linear", "conv_k3", "conv_k4_s2", "embedding"]


def _torch_matrix(params):
    """PyTorch's weight.flatten(1) of a layer, from our params."""
    if "embedding" in params:
        return np.asarray(params["embedding"])
    kernel = params["kernel"]
    if kernel.ndim == 4:
        return np.asarray(spectral.conv_matrix(kernel))
    return np.asarray(spectral.dense_matrix(kernel))


def _torch_case(name, seed, train):
    """`_case(name)` built after `torch.manual_seed(seed)`, and its torch layer's variables.

    The torch layer is put in train or eval mode; its variables are the weight copy both
    sides start from.
    """
    torch.manual_seed(seed)
    case = _case(name)
    case[0].train(train)
    return case, jax.tree.map(jnp.asarray, tb.to_flax(case[0]))


def _init(module, x):
    return module.init(jax.random.key(0), jnp.asarray(x), update=False)


@pytest.mark.parametrize("name", CASES)
def test_training_calls_match_torch(name):
    """Several training calls with SGD between them: outputs, sigma, u, v, W/sigma, gradients."""
    case, variables = _torch_case(name, seed=0, train=True)
    tlayer, module, x, to_torch_in, to_torch_out, pname, to_ours = case
    # Our own init must give the same tree structure and shapes as the torch copy.
    assert jax.tree.map(jnp.shape, _init(module, x)) == jax.tree.map(jnp.shape, variables)
    is_int = x.dtype.kind == "i"

    def loss(params, xin, state, cot):
        y, new = module.apply(
            {"params": params, **state}, xin, update=True, mutable=["spectral", "intermediates"]
        )
        return jnp.vdot(y, cot), (y, new)

    grad_fn = jax.grad(loss, argnums=(0,) if is_int else (0, 1), has_aux=True)
    for step in range(STEPS):
        xt = _t(to_torch_in(x))
        if not is_int:
            xt.requires_grad_(True)
        yt = tlayer(xt)
        cot = rand(yt.shape, 100 + step)
        (yt * _t(cot)).sum().backward()

        state = {"spectral": variables["spectral"]}
        # Our layout of the cotangent: the inverse of to_torch_out (NCHW -> NHWC for conv).
        cot_ours = cot.transpose(0, 2, 3, 1) if cot.ndim == 4 else cot
        grads, (y, new) = grad_fn(variables["params"], jnp.asarray(x), state, jnp.asarray(cot_ours))

        original = tlayer.parametrizations.weight.original
        sn = tlayer.parametrizations.weight[0]
        close(to_torch_out(np.asarray(y)), yt.detach().numpy())
        close(new["spectral"]["u"], sn._u.numpy())
        close(new["spectral"]["v"], sn._v.numpy())
        sigma = new["intermediates"]["sigma"][0]
        close(sigma, tb.spectral_sigma(tlayer).numpy())
        tlayer.eval()  # reading .weight in train mode would run another power iteration
        w_sn = tlayer.weight.detach().numpy()
        tlayer.train()
        close(variables["params"][pname] / sigma, to_ours(w_sn))
        close(grads[0][pname], to_ours(original.grad.numpy()))
        if not is_int:
            close(to_torch_out(np.asarray(grads[1])), xt.grad.numpy())
        if "bias" in variables["params"]:
            close(grads[0]["bias"], tlayer.bias.grad.numpy())

        # One SGD step on both sides, so the next call iterates on a changed weight.
        with torch.no_grad():
            for p in tlayer.parameters():
                p -= LR * p.grad
                p.grad = None
        params = jax.tree.map(lambda p, g: p - LR * g, variables["params"], grads[0])
        variables = {"params": params, "spectral": new["spectral"]}
    # After the steps both sides still agree on the parameters themselves.
    close(variables["params"][pname], to_ours(original.detach().numpy()))


@pytest.mark.parametrize("name", CASES)
def test_eval_calls_match_torch_and_do_not_update(name):
    case, variables = _torch_case(name, seed=1, train=False)
    tlayer, module, x, to_torch_in, to_torch_out, _, _ = case
    u_before = tlayer.parametrizations.weight[0]._u.clone()
    for _ in range(2):
        yt = tlayer(_t(to_torch_in(x))).detach().numpy()
        y, new = module.apply(variables, jnp.asarray(x), update=False, mutable=["spectral"])
        close(to_torch_out(np.asarray(y)), yt)
        for key in ("u", "v"):
            np.testing.assert_array_equal(new["spectral"][key], variables["spectral"][key])
    assert torch.equal(tlayer.parametrizations.weight[0]._u, u_before)
    # update=False needs no mutable collection at all.
    y2 = module.apply(variables, jnp.asarray(x), update=False)
    np.testing.assert_array_equal(y2, y)


def test_update_with_immutable_spectral_is_an_error():
    module = spectral.SNDense(3)
    x = jnp.ones((2, 4))
    variables = _init(module, x)
    with pytest.raises(Exception, match="immutable"):
        module.apply(variables, x, update=True)


@pytest.mark.parametrize("name", CASES)
def test_init_vectors_are_torch_style(name):
    """Unit u, v; v = normalize(W^T u) (the last power step); init runs no extra step."""
    _, module, x, *_ = _case(name)
    variables = _init(module, x)
    again = module.init(jax.random.key(0), jnp.asarray(x), update=True)  # no update at init
    for key in ("u", "v"):
        np.testing.assert_array_equal(again["spectral"][key], variables["spectral"][key])
    u, v = (np.asarray(variables["spectral"][k], np.float64) for k in ("u", "v"))
    w_mat = np.asarray(_torch_matrix(variables["params"]), np.float64)
    assert w_mat.shape == (u.size, v.size)
    np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-6)
    np.testing.assert_allclose(v, w_mat.T @ u / np.linalg.norm(w_mat.T @ u), rtol=1e-4, atol=1e-6)


def test_conv_v_is_in_torch_flatten_order():
    """A kernel with one nonzero tap: W_mat's nonzero column is torch's (in, kh, kw) index."""
    kernel = np.zeros((3, 2, 4, 5), np.float32)  # [kh, kw, in, out]
    kernel[2, 1, 3, 4] = 1.0
    w_mat = np.asarray(spectral.conv_matrix(jnp.asarray(kernel)))
    torch_w = kernel.transpose(3, 2, 0, 1)  # [out, in, kh, kw]
    np.testing.assert_array_equal(w_mat, torch_w.reshape(5, -1))
    assert w_mat[4, 3 * 6 + 2 * 2 + 1] == 1.0


@pytest.mark.parametrize(
    "module, x",
    [
        (spectral.SNDense(9, n_power_iterations=20), rand((2, 12), 3)),
        (spectral.SNConv(6, (3, 3), n_power_iterations=20), rand((1, 5, 5, 4), 4)),
        (spectral.SNEmbed(10, 7, n_power_iterations=20), np.arange(3, dtype=np.int32)),
    ],
)
def test_sigma_converges_to_largest_singular_value(module, x):
    variables = _init(module, x)
    for _ in range(5):
        _, new = module.apply(
            variables, jnp.asarray(x), update=True, mutable=["spectral", "intermediates"]
        )
        variables = {"params": variables["params"], "spectral": new["spectral"]}
    sigma = float(new["intermediates"]["sigma"][0])
    w_mat = _torch_matrix(variables["params"])
    top = np.linalg.svd(w_mat.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(sigma, top[0], rtol=1e-4)
    # The normalised weight's spectral norm is 1.
    np.testing.assert_allclose(np.linalg.norm(w_mat / sigma, 2), 1.0, rtol=1e-4)


def test_l2_normalize_matches_torch():
    for x in (rand((7,), 5), np.zeros(4, np.float32), np.full(3, 1e-14, np.float32)):
        expected = torch.nn.functional.normalize(_t(x), dim=0, eps=1e-12).numpy()
        np.testing.assert_allclose(spectral.l2_normalize(jnp.asarray(x)), expected, rtol=1e-6)


def test_padding_forms():
    x = jnp.asarray(rand((1, 6, 6, 2), 6))
    base = spectral.SNConv(3, (3, 3), padding="SAME")
    variables = _init(base, x)
    y = base.apply(variables, x, update=False)
    for pad in (1, (1, 1), ((1, 1), (1, 1)), "same"):
        got = spectral.SNConv(3, (3, 3), padding=pad).apply(variables, x, update=False)
        np.testing.assert_array_equal(got, y)
    assert spectral.SNConv(3, (3, 3), padding="VALID").apply(variables, x, False).shape[1] == 4
