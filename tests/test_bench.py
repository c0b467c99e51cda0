"""bench/run.py in its tiny mode: it runs end to end and writes the documented JSON fields; the
SNGAN / BigGAN PyTorch peer computes what our step computes."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_tiny_writes_results(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--tiny", "--no-torch"]
    cmd += ["--sections", "step,sampling", "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    keys = ("machine", "versions", "xla_flags", "glibc_tunables", "settings", "train_step")
    for key in (*keys, "peak_rss_mib"):
        assert key in res
    assert res["machine"]["cores"] >= 1
    assert res["torch_skipped"] == "--no-torch"
    (step,) = res["train_step"]
    assert (step["size"], step["batch"], step["width"], step["dtype"]) == (32, 8, 8, "float32")
    assert step["img_per_s"] > 0 and step["compile_s"] > 0 and step["peak_rss_mib"] > 0
    assert isinstance(step["page_faults_per_step"], int)  # measured, not left out
    assert isinstance(step["system_s_per_step"], float)
    assert res["sampling"]["img_per_s"] > 0
    assert "| train step |" in proc.stdout


# ----------------------------------------------------------------------------------------------
# SNGAN / BigGAN sections: the PyTorch peer's step computes what ours does, and the section runs.

BENCH = os.path.join(ROOT, "bench")


def _peer():
    pytest.importorskip("torch")
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    import torch_resnet_peer  # noqa: PLC0415

    return torch_resnet_peer


def _tiny_zoo_config(name: str) -> dict:
    """The section's shipped config shrunk as `bench/run.py --tiny` does, as the peer's dict."""
    from gan_jax.configs import biggan, sngan  # noqa: PLC0415

    c = {"sngan": sngan, "biggan": biggan}[name].get_config(
        {"sngan": "cifar10_cond", "biggan": "cifar10"}[name]
    )
    c.model.g_width = c.model.d_width = 8
    c.batch_size, c.d_steps = 4, 2
    return json.loads(c.to_json())


@pytest.mark.parametrize("name", ["hinge", "nonsaturating"])
def test_peer_losses_equal_ours(name):
    import jax.numpy as jnp  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from gan_jax import losses  # noqa: PLC0415

    d_loss, g_loss = _peer().losses(name)
    real, fake = np.random.default_rng(0).normal(0, 2, (2, 16)).astype(np.float32)
    ours = losses.get(name)
    got = d_loss(torch.from_numpy(real), torch.from_numpy(fake)).item()
    np.testing.assert_allclose(got, float(ours.d_loss(jnp.array(real), jnp.array(fake))), 1e-6)
    got = g_loss(torch.from_numpy(fake)).item()
    np.testing.assert_allclose(got, float(ours.g_loss(jnp.array(fake))), 1e-6)


def test_peer_ortho_is_biggan_pytorch_form_of_our_penalty():
    """BigGAN-PyTorch's gradient term is the gradient of strength / 2 x our penalty."""
    import jax  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from gan_jax.objectives import regularisers  # noqa: PLC0415

    peer = _peer()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Conv2d(3, 4, 3))
    shared = torch.nn.Embedding(3, 5)  # blacklisted, as BigGAN's shared embedding
    net.add_module("shared", shared)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    strength = 0.3
    peer.ortho_(net, strength, list(shared.parameters()))
    lin, conv = net[0].weight.detach().numpy(), net[1].weight.detach().numpy()
    params = {  # our layouts: Dense [in, out], Conv [kh, kw, in, out]
        "lin": {"kernel": lin.T, "bias": np.zeros(6, np.float32)},
        "conv": {"kernel": conv.transpose(2, 3, 1, 0)},
        "shared": {"embedding": shared.weight.detach().numpy()},
    }
    grads = jax.grad(lambda p: strength / 2 * regularisers.orthogonal_matrix_penalty(p))(params)
    np.testing.assert_allclose(net[0].weight.grad.numpy(), grads["lin"]["kernel"].T, 1e-5, 1e-7)
    np.testing.assert_allclose(
        net[1].weight.grad.numpy(), grads["conv"]["kernel"].transpose(3, 2, 0, 1), 1e-5, 1e-7
    )
    assert not net[0].bias.grad.any() and not shared.weight.grad.any()


def test_peer_ema_decay_equals_ours():
    import jax.numpy as jnp  # noqa: PLC0415

    from gan_jax.configs import biggan  # noqa: PLC0415
    from gan_jax.training import step as step_lib  # noqa: PLC0415

    c = biggan.get_config("cifar10")
    c.ema_start = 5
    as_dict = json.loads(c.to_json())
    for step in (0, 4, 5, 6, 50, 10**6):
        ours = float(step_lib.ema_decay_at(c, jnp.array(step, jnp.int32)))
        np.testing.assert_allclose(_peer().ema_decay_at(as_dict, step), ours, rtol=1e-6)


def test_peer_step_updates_as_configured():
    """Tiny BigGAN and SNGAN steps: EMA = G before ema_start, linear decay, D unfrozen after."""
    peer = _peer()
    big = peer.Step(_tiny_zoo_config("biggan"))
    assert big.ortho == 1e-4 and big.ema and big.g_sched is None
    for _ in range(2):
        d_loss, g_loss = big()
        assert np.isfinite(d_loss) and np.isfinite(g_loss)
    for e, p in zip(big.ema, big.g_params, strict=True):  # decay 0 until step 1000
        np.testing.assert_array_equal(e.numpy(), p.detach().numpy())
    assert all(p.requires_grad for p in big.d_params)

    sn = peer.Step(_tiny_zoo_config("sngan"))
    assert not sn.ema and sn.ortho == 0
    sn()
    total = sn.config["num_steps"]
    lr0 = sn.config["optim"]["g_lr"]
    np.testing.assert_allclose(sn.g_opt.param_groups[0]["lr"], lr0 * (1 - 1 / total))
    np.testing.assert_allclose(sn.d_opt.param_groups[0]["lr"], lr0 * (1 - 2 / (total * 2)))


def test_bench_zoo_section_tiny(tmp_path):
    """`--tiny --sections sngan`: ours and (if installed) the PyTorch peer, two rounds."""
    out = tmp_path / "zoo.json"
    cmd = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--tiny", "--sections", "sngan"]
    cmd += ["--zoo-rounds", "2", "--out", str(out)]
    try:
        import torch  # noqa: F401, PLC0415
    except ImportError:
        cmd.append("--no-torch")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert "train_step" not in res and "biggan_step" not in res
    r = res["sngan_step"]
    assert (r["model"], r["config"], r["size"]) == ("sngan", "configs/sngan.py:cifar10_cond", 32)
    assert (r["batch"], r["d_steps"], r["num_classes"], r["real_img_per_step"]) == (8, 2, 10, 16)
    assert len(r["rounds"]) == 2 and r["compile_s"] > 0
    np.testing.assert_allclose(r["real_img_per_s"], 16 / r["step_s_median"], rtol=1e-2)
    np.testing.assert_allclose(r["g_steps_per_s"], 1 / r["step_s_median"], rtol=1e-2)
    if "torch" in r:
        t = r["torch"]
        # The peer's port is the same model: the same parameter counts as ours.
        assert (t["g_params"], t["d_params"]) == (r["g_params"], r["d_params"])
        assert t["step_s_median"] > 0 and 0 < t["peak_rss_mib"] < r["peak_rss_mib"]
        np.testing.assert_allclose(r["ratio"], t["step_s_median"] / r["step_s_median"], 1e-2)
        assert all("ratio" in row for row in r["rounds"])
    assert "| SNGAN-32 (`configs/sngan.py:cifar10_cond`), batch 8, d_steps 2" in proc.stdout


def test_bench_sections_argument(monkeypatch):
    monkeypatch.setenv("GAN_JAX_NO_XLA_FLAGS", "1")  # importing it must not set XLA_FLAGS here
    run = _run_module()
    args = run.parse_args(["--sections", "sngan,biggan", "--quick"])
    assert args.section_list == ["sngan", "biggan"]
    assert (args.zoo_steps, args.zoo_rounds, args.zoo_warmup) == (1, 1, 1)
    full = run.parse_args([])
    assert {"step", "sngan", "biggan"} <= set(full.section_list)
    assert (full.zoo_steps, full.zoo_rounds, full.batch) == (1, 2, 64)
    with pytest.raises(SystemExit):
        run.parse_args(["--sections", "stylegan"])


def _run_module():
    """bench/run.py imported as a module (its huge-pages restart runs only as __main__)."""
    spec = importlib.util.spec_from_file_location("bench_run", os.path.join(BENCH, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# bench/split_folder.py: the README's held-out splits are reproducible and disjoint.


def _split_module():
    spec = importlib.util.spec_from_file_location(
        "split_folder", os.path.join(BENCH, "split_folder.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_folder_is_seeded_disjoint_and_reads_zips(tmp_path, capsys):
    import zipfile  # noqa: PLC0415

    split = _split_module()
    src = tmp_path / "faces"
    (src / "sub").mkdir(parents=True)
    for i in range(12):
        folder = src / "sub" if i % 3 == 0 else src
        (folder / f"{i:02d}.png").write_bytes(bytes([i]) * (i + 1))
    (src / "notes.txt").write_text("not an image")
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, f"faces/{p.relative_to(src)}")

    outs = {}
    for kind in ("folder", "zip"):
        path = src if kind == "folder" else tmp_path / "faces.zip"
        out = tmp_path / kind
        args = [f"--src={path}", "--heldout=4", "--seed=3", f"--train_out={out}/train"]
        args += [f"--heldout_out={out}/held", "--few=5", f"--few_out={out}/few"]
        assert split.main(args) == 0
        outs[kind] = {d: sorted(os.listdir(out / d)) for d in ("train", "held", "few")}
        assert "8 training images" in capsys.readouterr().out
    assert outs["folder"] == outs["zip"]  # the split depends on the names, not the container
    train, held, few = outs["zip"]["train"], outs["zip"]["held"], outs["zip"]["few"]
    assert len(held) == 4 and not set(train) & set(held)
    assert sorted(train + held) == [f"{i:02d}.png" for i in range(12)]
    by_path = [os.path.basename(n) for n in split.list_images(str(src))]
    assert few == sorted([n for n in by_path if n not in held][:5])  # the first N by path
    assert (tmp_path / "zip" / "held" / held[0]).read_bytes() == bytes([int(held[0][:2])]) * (
        int(held[0][:2]) + 1
    )  # copied byte for byte
    other = split.split(split.list_images(str(src)), 4, seed=4)[1]
    assert sorted(os.path.basename(n) for n in other) != held  # the seed matters

    assert split.main([f"--src={tmp_path / 'nope'}", "--heldout=1", "--train_out=a",
                       "--heldout_out=b"]) == 2  # fmt: skip
    assert split.main([f"--src={src}", "--heldout=12", "--train_out=a", "--heldout_out=b"]) == 2
    err = capsys.readouterr().err
    assert "neither a folder nor a .zip" in err and "--heldout=12 must be between 1 and 11" in err
