"""pix2pix's U-Net and PatchGAN, CycleGAN's ResNet generator (gan_jax/models/pix2pix.py).

Shapes and ranges; the PatchGAN's receptive field measured from input gradients; the U-Net's
skip connections; batch norm coupling samples where instance norm does not; parameter counts
and outputs (and input gradients) against minimal PyTorch ports written here from the
architecture of pix2pix's `networks.py` (nested U-Net blocks, a Sequential PatchGAN, CycleGAN's
ResNet), not copied from it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import close, count, nchw, nhwc, randomize_running_stats

from gan_jax.models import pix2pix

KEY = jax.random.key(0)


def _images(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


def _init(module, *args):
    """The module's variables, jit-compiled (eager Flax init compiles every op apart)."""
    return jax.jit(module.init)({"params": KEY, "dropout": KEY}, *args)


def _apply(module, **kw):
    """`module.apply(variables, *inputs, **kw)`, jit-compiled."""
    return jax.jit(lambda variables, *xs: module.apply(variables, *xs, **kw))


# ----------------------------------------------------------------------------------------------
# Shapes, ranges, geometry


def test_unet_shapes_range_and_depth():
    """32 px, 3 -> 1 channels (64 px, 1 -> 3: `test_unet_equals_torch_port`)."""
    size, cin, cout = 32, 3, 1
    g = pix2pix.UNetGenerator(cout, width=4)
    x = _images((2, size, size, cin), 0)
    variables = _init(g, x)
    assert [pix2pix.unet_depth(s) for s in (32, 64, 128, 256)] == [5, 6, 7, 8]
    depth = pix2pix.unet_depth(size)
    assert sorted(k for k in variables["params"] if k.startswith("down")) == sorted(
        [f"down{i}" for i in range(depth)] + [f"down_norm{i}" for i in range(1, depth - 1)]
    )
    # The innermost level reads the 1x1 bottleneck; every other decoder level reads the
    # concatenation [skip, up] (twice its width).
    p = variables["params"]
    assert p[f"down{depth - 1}"]["kernel"].shape[:2] == (4, 4)
    assert p[f"up{depth - 1}"]["kernel"].shape[2] == p[f"down{depth - 1}"]["kernel"].shape[3]
    for i in range(depth - 1):
        assert p[f"up{i}"]["kernel"].shape[2] == 2 * p[f"down{i}"]["kernel"].shape[3]
    assert p["up0"]["kernel"].shape[3] == cout
    out = _apply(g, train=False)(variables, x)
    assert out.shape == (2, size, size, cout) and out.dtype == jnp.float32
    assert float(jnp.abs(out).max()) <= 1.0 and float(jnp.abs(out).std()) > 0


@pytest.mark.parametrize("size,cin,cout", [(32, 3, 3), (64, 1, 1)])
def test_resnet_generator_shapes_and_range(size, cin, cout):
    g = pix2pix.ResnetGenerator(cout, width=4, n_blocks=2)
    x = _images((2, size, size, cin), 1)
    variables = _init(g, x)
    assert [k for k in variables["params"] if k.startswith("block")] == ["block0", "block1"]
    out = _apply(g)(variables, x)
    assert out.shape == (2, size, size, cout) and out.dtype == jnp.float32
    assert float(jnp.abs(out).max()) <= 1.0
    assert pix2pix.resnet_blocks_for(256) == 9 and pix2pix.resnet_blocks_for(128) == 6
    default = jax.eval_shape(pix2pix.ResnetGenerator(3, 4).init, KEY, x)
    assert sum(k.startswith("block") for k in default["params"]) == 6


def test_patch_geometry_and_table():
    assert [pix2pix.receptive_field(n) for n in (1, 2, 3, 4)] == [16, 34, 70, 142]
    # image_size -> n_layers keeping ~70/256 of the image (the module doc's table).
    table = {32: 1, 64: 1, 128: 2, 256: 3, 512: 4}
    assert {s: pix2pix.n_layers_for(s) for s in table} == table
    assert pix2pix.patch_grid(256, 3) == 30  # pix2pix's 30x30 logits
    assert pix2pix.patch_window(0, 3) == (-23, 47)


@pytest.mark.parametrize("n_layers,size", [(1, 32), (2, 64), (3, 64)])
def test_patch_discriminator_grid(n_layers, size):
    d = pix2pix.PatchDiscriminator(width=4, n_layers=n_layers)
    x, cond = _images((2, size, size, 1), 2), _images((2, size, size, 3), 3)
    variables = _init(d, x, cond)
    # pix2pix: the first layer reads concat([condition, image]) channels.
    assert variables["params"]["conv0"]["kernel"].shape == (4, 4, 4, 4)
    logits = _apply(d)(variables, x, cond)
    grid = size // 2**n_layers - 2
    assert logits.shape == (2, grid, grid) == (2,) + (pix2pix.patch_grid(size, n_layers),) * 2
    assert logits.dtype == jnp.float32
    # CycleGAN: the image alone.
    alone = jax.eval_shape(d.init, KEY, x)
    assert alone["params"]["conv0"]["kernel"].shape == (4, 4, 1, 4)


# ----------------------------------------------------------------------------------------------
# Receptive field, measured


def _support(grad):
    """The non-zero pixels of a gradient [1, H, W, C]: (mask [H, W], row span, column span)."""
    mask = np.abs(np.asarray(grad)[0]).sum(-1) > 0
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return mask, (rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1)


@pytest.mark.parametrize("n_layers,norm", [(1, "none"), (2, "none"), (3, "none"), (3, "batch")])
def test_patch_receptive_field_measured(n_layers, norm):
    """d logit[c, c] / d input is non-zero exactly on a receptive_field(n) square.

    Batch norm in eval mode is a per-channel affine map, so it couples no pixels.
    """
    d = pix2pix.PatchDiscriminator(width=4, n_layers=n_layers, norm=norm)
    size = 128
    x = _images((1, size, size, 2), 4)
    variables = _init(d, x)
    c = pix2pix.patch_grid(size, n_layers) // 2
    grad = jax.jit(jax.grad(lambda x: d.apply(variables, x)[0, c, c]))(x)
    mask, rows, cols = _support(grad)
    side = rows[1] - rows[0]
    assert side == cols[1] - cols[0] == pix2pix.receptive_field(n_layers)
    assert mask[rows[0] : rows[1], cols[0] : cols[1]].all()  # a full square, no holes
    assert mask.sum() == side * side  # nothing outside it
    assert rows == cols == pix2pix.patch_window(c, n_layers)
    if n_layers == 3:
        assert side == 70


# ----------------------------------------------------------------------------------------------
# U-Net skips


def _center_grad(g, c):
    """variables, x -> d sum(out[0, c, c, :]) / dx, one compilation for every variables."""
    return jax.jit(jax.grad(lambda v, x: g.apply(v, x)[0, c, c].sum(), argnums=1))


def test_unet_skip_connections():
    """The full U-Net's centre pixel sees the whole image (the 1x1 bottleneck); with everything
    below level L cut (the decoder's weights reading level L+1 zeroed), it still depends on the
    input through the skips of levels <= L, and only on a local window. Without skips the cut
    network would be constant."""
    size = 64
    g = pix2pix.UNetGenerator(2, width=4, norm="batch")
    x = _images((1, size, size, 3), 5)
    variables = _init(g, x)
    c = size // 2
    center_grad = _center_grad(g, c)
    mask, _, _ = _support(center_grad(variables, x))
    assert mask.all()  # the bottleneck path reaches every pixel
    params = variables["params"]
    # Level 0 alone: out[2m] reads d0[m - 1], d0[m] (transposed 4x4, stride 2), d0[j] reads
    # x[2j - 1 .. 2j + 2]: a 6-pixel window per axis; through level 1 as well, 14.
    for level, side in [(0, 6), (1, 14)]:
        up = params[f"up{level}"]
        skip_channels = params[f"down{level}"]["kernel"].shape[3]
        cut = {**up, "kernel": up["kernel"].at[:, :, skip_channels:].set(0.0)}
        cut_vars = {**variables, "params": {**params, f"up{level}": cut}}
        mask, rows, cols = _support(center_grad(cut_vars, x))
        assert mask[c, c], "no direct path from the input pixel to the same output pixel"
        assert rows[1] - rows[0] == cols[1] - cols[0] == side
        assert rows[0] <= c < rows[1] and cols[0] <= c < cols[1]


# ----------------------------------------------------------------------------------------------
# Norms and dropout


@pytest.mark.parametrize(
    "make,conditional",
    [
        (lambda norm: pix2pix.UNetGenerator(3, width=4, norm=norm, dropout=0.0), False),
        (lambda norm: pix2pix.PatchDiscriminator(width=4, n_layers=2, norm=norm), True),
        (lambda norm: pix2pix.ResnetGenerator(3, width=4, n_blocks=1, norm=norm), False),
    ],
    ids=["unet", "patchgan", "resnet"],
)
def test_batch_norm_couples_samples_instance_norm_does_not(make, conditional):
    x = _images((2, 32, 32, 3), 6)
    other = x.at[1].set(_images((32, 32, 3), 7))
    extra = (x,) if conditional else ()
    outs = {}
    for norm in ("batch", "instance"):
        m = make(norm)
        variables = _init(m, x, *extra)
        if norm == "instance":
            assert "batch_stats" not in variables
            assert not any("norm" in k for k in variables["params"])  # affine=False

        run = _apply(m, train=True, mutable=["batch_stats"])
        outs[norm] = (run(variables, x, *extra)[0], run(variables, other, *extra)[0])
    a, b = outs["batch"]
    assert float(jnp.abs(a[0] - b[0]).max()) > 1e-4  # sample 0 moved with sample 1
    a, b = outs["instance"]
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert float(jnp.abs(a[1] - b[1]).max()) > 1e-4


def test_unet_dropout_modes():
    g = pix2pix.UNetGenerator(3, width=4, norm="instance")
    x = _images((1, 32, 32, 3), 8)
    variables = _init(g, x)
    assert pix2pix.default_dropout_layers(8) == 3  # unet_256
    assert pix2pix.default_dropout_layers(7) == 2  # unet_128
    assert [pix2pix.default_dropout_layers(d) for d in (6, 5, 2)] == [1, 1, 0]

    def run(train, seed, module=g):
        f = jax.jit(lambda v, x, key: module.apply(v, x, train=train, rngs={"dropout": key}))
        return f(variables, x, jax.random.key(seed))

    np.testing.assert_array_equal(run(False, 1), run(False, 2))  # eval: deterministic
    assert float(jnp.abs(run(True, 1) - run(True, 2)).max()) > 1e-4
    noisy = pix2pix.UNetGenerator(3, width=4, norm="instance", dropout_at_test=True)
    assert float(jnp.abs(run(False, 1, noisy) - run(False, 2, noisy)).max()) > 1e-4
    with pytest.raises(Exception, match="dropout"):
        jax.eval_shape(noisy.apply, variables, x)  # needs the 'dropout' rng
    off = pix2pix.UNetGenerator(3, width=4, norm="instance", dropout_layers=0)
    np.testing.assert_array_equal(run(True, 1, off), run(True, 2, off))


def test_errors():
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        pix2pix.UNetGenerator(3, norm="layer")
    with pytest.raises(ValueError, match="unknown norm"):
        pix2pix.PatchDiscriminator(norm="group")
    with pytest.raises(ValueError, match="unknown norm"):
        pix2pix.ResnetGenerator(3, norm="batchnorm")
    with pytest.raises(ValueError, match="n_layers"):
        pix2pix.PatchDiscriminator(n_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        pix2pix.UNetGenerator(3, dropout=1.0)
    with pytest.raises(ValueError, match="conv_impl"):
        pix2pix.UNetGenerator(3, conv_impl="cudnn")
    with pytest.raises(ValueError, match="power of two"):
        pix2pix.UNetGenerator(3, width=4).init(KEY, jnp.zeros((1, 48, 48, 3)))
    with pytest.raises(ValueError, match="2\\*\\*depth = 64"):
        pix2pix.UNetGenerator(3, width=4, depth=6).init(KEY, jnp.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="too small for n_layers=3"):
        pix2pix.PatchDiscriminator(width=4, n_layers=3).init(KEY, jnp.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*n_layers"):
        pix2pix.PatchDiscriminator(width=4, n_layers=2).init(KEY, jnp.zeros((1, 34, 34, 3)))
    with pytest.raises(ValueError, match="condition"):
        pix2pix.PatchDiscriminator(width=4).init(
            KEY, jnp.zeros((1, 32, 32, 3)), jnp.zeros((1, 16, 16, 3))
        )
    with pytest.raises(ValueError, match="multiples of 4"):
        pix2pix.ResnetGenerator(3, width=4).init(KEY, jnp.zeros((1, 30, 30, 3)))


# ----------------------------------------------------------------------------------------------
# The transposed convolution of CycleGAN's decoder


def test_conv_transpose_3x3_s2_impls_agree_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)  # torch [in, out, kH, kW]
    ref = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(nchw(x)), torch.from_numpy(w), stride=2, padding=1, output_padding=1
    )
    kernel = jnp.asarray(w.transpose(2, 3, 0, 1))
    g = rng.standard_normal((2, 10, 12, 4)).astype(np.float32)
    grads = {}
    for impl in ("lax", "fast"):
        out = pix2pix.conv_transpose_3x3_s2(jnp.asarray(x), kernel, impl)
        close(out, nhwc(ref))

        def loss(x, k, impl=impl):
            return (pix2pix.conv_transpose_3x3_s2(x, k, impl) * g).sum()

        grads[impl] = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), kernel)
    for a, b in zip(grads["fast"], grads["lax"], strict=True):
        close(a, b)


# ----------------------------------------------------------------------------------------------
# PyTorch ports: parameter counts and outputs


def _torch_norm(tnn, kind, c):
    return {"batch": tnn.BatchNorm2d, "instance": tnn.InstanceNorm2d}[kind](c)


def torch_unet(tnn, torch, in_ch, out_ch, width, depth, norm, dropout=0.0):
    """pix2pix's U-Net as nested blocks: each returns cat([x, up(inner(down(x)))]).

    Biases only with instance norm (pix2pix's use_bias), except the last layer's.
    """
    bias = norm == "instance"

    class Block(tnn.Module):
        def __init__(self, outer, inner, sub=None, cin=None, outermost=False, drop=False):
            super().__init__()
            self.outermost, self.sub = outermost, sub
            innermost = sub is None
            self.down = tnn.Conv2d(cin or outer, inner, 4, 2, 1, bias=bias)
            self.down_act = None if outermost else tnn.LeakyReLU(0.2)
            self.down_norm = None if outermost or innermost else _torch_norm(tnn, norm, inner)
            up_in = inner if innermost else 2 * inner
            self.up = tnn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias or outermost)
            self.up_norm = None if outermost else _torch_norm(tnn, norm, outer)
            self.drop = tnn.Dropout(dropout) if drop else None

        def forward(self, x):
            h = x if self.down_act is None else self.down_act(x)
            h = self.down(h)
            if self.down_norm is not None:
                h = self.down_norm(h)
            if self.sub is not None:
                h = self.sub(h)
            h = self.up(torch.relu(h))
            if self.outermost:
                return torch.tanh(h)
            h = self.up_norm(h)
            if self.drop is not None:
                h = self.drop(h)
            return torch.cat([x, h], 1)

    w = width
    block = Block(8 * w, 8 * w)
    for _ in range(depth - 5):
        block = Block(8 * w, 8 * w, block, drop=True)
    block = Block(4 * w, 8 * w, block)
    block = Block(2 * w, 4 * w, block)
    block = Block(w, 2 * w, block)
    return Block(out_ch, w, block, cin=in_ch, outermost=True)


def torch_patchgan(tnn, in_ch, width, n_layers, norm):
    """pix2pix's NLayerDiscriminator as one Sequential."""
    bias = norm == "instance"
    seq = [tnn.Conv2d(in_ch, width, 4, 2, 1), tnn.LeakyReLU(0.2)]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        stride = 2 if n < n_layers else 1
        seq += [tnn.Conv2d(width * prev, width * mult, 4, stride, 1, bias=bias)]
        seq += [_torch_norm(tnn, norm, width * mult), tnn.LeakyReLU(0.2)]
    seq += [tnn.Conv2d(width * mult, 1, 4, 1, 1)]
    return tnn.Sequential(*seq)


def torch_resnet(tnn, in_ch, out_ch, width, n_blocks, norm):
    """CycleGAN's ResNet generator: c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-out."""
    bias = norm == "instance"

    class Block(tnn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = tnn.Sequential(
                tnn.ReflectionPad2d(1),
                tnn.Conv2d(c, c, 3, bias=bias),
                _torch_norm(tnn, norm, c),
                tnn.ReLU(),
                tnn.ReflectionPad2d(1),
                tnn.Conv2d(c, c, 3, bias=bias),
                _torch_norm(tnn, norm, c),
            )

        def forward(self, x):
            return x + self.body(x)

    seq = [tnn.ReflectionPad2d(3), tnn.Conv2d(in_ch, width, 7, bias=bias)]
    seq += [_torch_norm(tnn, norm, width), tnn.ReLU()]
    for i in range(2):
        c = width * 2**i
        seq += [tnn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), _torch_norm(tnn, norm, 2 * c), tnn.ReLU()]
    seq += [Block(4 * width) for _ in range(n_blocks)]
    for i in range(2):
        c = width * 2 ** (2 - i)
        up = tnn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias)
        seq += [up, _torch_norm(tnn, norm, c // 2), tnn.ReLU()]
    seq += [tnn.ReflectionPad2d(3), tnn.Conv2d(width, out_ch, 7), tnn.Tanh()]
    return tnn.Sequential(*seq)


def _torch_count(build):
    torch = pytest.importorskip("torch")
    with torch.device("meta"):  # shapes only, nothing allocated
        return sum(p.numel() for p in build(torch.nn, torch).parameters())


def _jax_count(module, *inputs):
    shapes = jax.eval_shape(module.init, {"params": KEY, "dropout": KEY}, *inputs)
    return count(shapes["params"])


def test_parameter_counts_match_pytorch():
    img = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
    cases = [
        # pix2pix unet_256 (batch norm, 3 -> 3, ngf 64): the published "54.414 M".
        (
            54_413_955,
            lambda tnn, t: torch_unet(tnn, t, 3, 3, 64, 8, "batch", 0.5),
            pix2pix.UNetGenerator(3, 64, norm="batch"),
            (img,),
        ),
        (
            None,
            lambda tnn, t: torch_unet(tnn, t, 3, 3, 64, 8, "instance", 0.5),
            pix2pix.UNetGenerator(3, 64, norm="instance"),
            (img,),
        ),
        # pix2pix's basic D (n_layers 3, batch norm, 6 input channels): the published "2.769 M".
        (
            2_768_705,
            lambda tnn, t: torch_patchgan(tnn, 6, 64, 3, "batch"),
            pix2pix.PatchDiscriminator(64, 3, norm="batch"),
            (img, img),
        ),
        # CycleGAN's D (instance norm, 3 input channels).
        (
            2_764_737,
            lambda tnn, t: torch_patchgan(tnn, 3, 64, 3, "instance"),
            pix2pix.PatchDiscriminator(64, 3, norm="instance"),
            (img,),
        ),
        # CycleGAN resnet_9blocks (instance norm, 3 -> 3, ngf 64): the published "11.378 M".
        (
            11_378_179,
            lambda tnn, t: torch_resnet(tnn, 3, 3, 64, 9, "instance"),
            pix2pix.ResnetGenerator(3, 64, 9, norm="instance"),
            (img,),
        ),
    ]
    for expected, build, module, inputs in cases:
        ours, theirs = _jax_count(module, *inputs), _torch_count(build)
        assert ours == theirs, (type(module).__name__, module.norm, ours, theirs)
        if expected is not None:
            assert ours == expected


# Weights: torch -> Flax. Conv2d [out, in, kH, kW] -> (kH, kW, in, out); ConvTranspose2d
# [in, out, kH, kW] -> (kH, kW, in, out).


def _conv_vars(conv, transposed=False):
    w = conv.weight.detach().numpy()
    out = {"kernel": w.transpose(2, 3, 0, 1) if transposed else w.transpose(2, 3, 1, 0)}
    if conv.bias is not None:
        out["bias"] = conv.bias.detach().numpy()
    return out


def _norm_vars(norm, name, variables):
    if norm is not None and hasattr(norm, "running_mean") and norm.running_mean is not None:
        variables["params"][name] = {
            "scale": norm.weight.detach().numpy(),
            "bias": norm.bias.detach().numpy(),
        }
        variables["batch_stats"][name] = {
            "mean": norm.running_mean.numpy(),
            "var": norm.running_var.numpy(),
        }


def _unet_to_flax(net):
    variables = {"params": {}, "batch_stats": {}}
    block, level = net, 0
    while block is not None:
        variables["params"][f"down{level}"] = _conv_vars(block.down)
        variables["params"][f"up{level}"] = _conv_vars(block.up, transposed=True)
        _norm_vars(block.down_norm, f"down_norm{level}", variables)
        _norm_vars(block.up_norm, f"up_norm{level}", variables)
        block, level = block.sub, level + 1
    return variables


def _sequential_to_flax(seq, names):
    """Convs and norms of a Sequential in order, named by `names(kind, index)`."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    variables = {"params": {}, "batch_stats": {}}
    counts = {"conv": 0, "norm": 0}
    for m in seq:
        if isinstance(m, (tnn.Conv2d, tnn.ConvTranspose2d)):
            name = names("conv", counts["conv"], m)
            variables["params"][name] = _conv_vars(m, isinstance(m, tnn.ConvTranspose2d))
            counts["conv"] += 1
        elif isinstance(m, (tnn.BatchNorm2d, tnn.InstanceNorm2d)):
            _norm_vars(m, names("norm", counts["conv"] - 1, m), variables)
        elif hasattr(m, "body"):  # a residual block
            j = sum(k.startswith("block") for k in variables["params"])
            sub = _sequential_to_flax(m.body, lambda kind, i, _: f"{kind}{i + 1}")
            for coll in variables:
                if sub[coll]:
                    variables[coll][f"block{j}"] = sub[coll]
    return variables


def _resnet_names(kind, i, m):
    # conv order: conv_in, down0, down1, up0, up1, conv_out (blocks are handled apart).
    order = ["in", "down0", "down1", "up0", "up1", "out"]
    tag = order[i]
    if kind == "conv":
        return f"conv_{tag}" if tag in ("in", "out") else tag
    return "norm_in" if tag == "in" else f"{tag[:-1]}_norm{tag[-1]}"


def _prepare(torch, net, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in net.named_buffers():
            randomize_running_stats(torch, name, buf, gen)
        for p in net.parameters():  # pix2pix's init scale, but not its exact values
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return net


def _check_module(torch, net, module, variables, inputs, train_modes=(False, True)):
    """Outputs and input gradients of `module` equal the torch port's, in eval mode (running
    statistics) and then train mode (batch statistics; torch updates its running ones after).

    The gradient is that of the sum of the outputs; a discriminator's two inputs are
    (image, condition) here and `concat([condition, image])` for the port.
    """
    variables = {k: v for k, v in variables.items() if v}
    for train in train_modes:
        net.train(train)
        tin = [torch.from_numpy(nchw(x)).requires_grad_(True) for x in inputs]
        ref = net(torch.cat(tin[::-1], 1) if len(tin) == 2 else tin[0])
        ref.sum().backward()

        def f(*xs, train=train):
            out, _ = module.apply(variables, *xs, train=train, mutable=["batch_stats"])
            return out.sum(), out

        argnums = tuple(range(len(inputs)))
        (_, out), grads = jax.jit(jax.value_and_grad(f, argnums, has_aux=True))(*inputs)
        ref = ref.detach().numpy()
        close(out, ref[:, 0] if out.ndim == 3 else nhwc(ref), 1e-4)
        for g, t in zip(grads, tin, strict=True):
            close(g, nhwc(t.grad), 1e-4)
    return out


@pytest.mark.parametrize("norm,impl", [("batch", "fast"), ("instance", "lax")])
def test_unet_equals_torch_port(norm, impl):
    """64 px, 1 -> 3 channels, depth 6 (one 8 x width middle level), dropout off."""
    torch = pytest.importorskip("torch")
    net = _prepare(torch, torch_unet(torch.nn, torch, 1, 3, 4, 6, norm), 10)
    g = pix2pix.UNetGenerator(3, width=4, norm=norm, dropout=0.0, conv_impl=impl)
    x = np.array(_images((2, 64, 64, 1), 11))
    out = _check_module(torch, net, g, _unet_to_flax(net), [x])
    assert out.shape == (2, 64, 64, 3)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_patchgan_equals_torch_port(norm):
    torch = pytest.importorskip("torch")
    net = _prepare(torch, torch_patchgan(torch.nn, 4, 4, 2, norm), 12)
    d = pix2pix.PatchDiscriminator(width=4, n_layers=2, norm=norm)
    variables = _sequential_to_flax(net, lambda kind, i, _: f"{kind}{i}")
    image, cond = np.array(_images((2, 32, 32, 1), 13)), np.array(_images((2, 32, 32, 3), 14))
    out = _check_module(torch, net, d, variables, [image, cond])
    assert out.shape == (2, 6, 6)


@pytest.mark.parametrize("norm,impl", [("instance", "fast"), ("batch", "lax")])
def test_resnet_generator_equals_torch_port(norm, impl):
    torch = pytest.importorskip("torch")
    net = _prepare(torch, torch_resnet(torch.nn, 3, 1, 4, 2, norm), 15)
    g = pix2pix.ResnetGenerator(1, width=4, n_blocks=2, norm=norm, conv_impl=impl)
    variables = _sequential_to_flax(net, _resnet_names)
    x = np.array(_images((2, 32, 32, 3), 16))
    _check_module(torch, net, g, variables, [x])


def test_bfloat16_compute():
    """bfloat16 compute: params stay float32, outputs are float32 (PatchGAN run, Gs traced)."""
    x = _images((1, 32, 32, 3), 17)
    for g in (pix2pix.UNetGenerator(3, 4), pix2pix.ResnetGenerator(3, 4, 1)):
        g = g.clone(dtype=jnp.bfloat16)
        variables = jax.eval_shape(g.init, KEY, x)
        assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))
        out = jax.eval_shape(g.apply, variables, x)
        assert out.dtype == jnp.float32 and out.shape == (1, 32, 32, 3)
    d = pix2pix.PatchDiscriminator(4, 2, dtype=jnp.bfloat16)
    variables = _init(d, x)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))
    logits = _apply(d)(variables, x)
    ref = _apply(d.clone(dtype=jnp.float32))(variables, x)
    assert logits.dtype == jnp.float32
    close(logits, ref, 3e-2)
