"""gan_jax.evaluation.image_metrics: known values, scikit-image cross-checks, baselines."""

import math
import warnings

import numpy as np
import pytest

from gan_jax.evaluation import image_metrics as im

SKIMAGE_REASON = "scikit-image is a test-only dependency (the PSNR/SSIM cross-check)"
CV2_REASON = "OpenCV (opencv-python-headless) is only needed by the inpainting baselines"


def _random(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _structured(n=3, h=48, w=40, seed=0):
    """Smooth gradients, a disc, stripes and a checkerboard: structure SSIM responds to."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    images = []
    for i in range(n):
        r = 255 * xx / (w - 1)
        g = 127.5 + 100 * np.sin(yy / (3 + i)) * np.cos(xx / 5)
        b = np.where((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 4 + i) ** 2, 220.0, 30.0)
        b = b + 40 * (((xx // 4) + (yy // 4)) % 2)
        images.append(np.stack([r, g, b], -1))
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def _distort(images, seed=1):
    """Noise plus a blur: the kind of error a generator makes."""
    x = images.astype(np.float64)
    blurred = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2) + np.roll(x, (1, 1), (1, 2))) / 4
    noisy = blurred + np.random.default_rng(seed).normal(0, 8, x.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Known values


def test_psnr_identical_is_inf_and_constant_offset_is_exact():
    a = _random((2, 16, 16, 3))
    assert np.all(np.isinf(im.psnr(a, a).values)) and math.isinf(im.psnr(a, a).mean)
    base = np.full((2, 16, 16, 3), 100, np.uint8)
    for d in (1, 5, 37):
        scores = im.psnr(base, base + np.uint8(d))
        np.testing.assert_allclose(scores.values, 20 * math.log10(255 / d), rtol=0, atol=1e-12)
        # The same offset read from [-1, 1] floats (quantized to the same levels).
        pm1 = base / 127.5 - 1.0, (base + d) / 127.5 - 1.0
        scores = im.psnr(*pm1, input_range="[-1,1]")
        np.testing.assert_allclose(scores.values, 20 * math.log10(255 / d), atol=1e-9)


def test_ssim_identical_is_one():
    a = _structured()
    np.testing.assert_allclose(im.ssim(a, a).values, 1.0, atol=1e-12)
    np.testing.assert_allclose(im.ssim(a, a, y_channel=True, crop_border=4).mean, 1.0, atol=1e-12)


def test_crop_border_crops():
    a = _structured(n=2)
    b = a.copy()
    b[:, :3] = 255 - b[:, :3]  # differs only in the 3-pixel top band
    b[:, :, -2:] = 0  # and the 2-pixel right band
    assert np.all(np.isfinite(im.psnr(a, b).values))
    assert np.all(np.isinf(im.psnr(a, b, crop_border=3).values))
    assert np.all(im.ssim(a, b).values < 1)
    np.testing.assert_allclose(im.ssim(a, b, crop_border=3).values, 1.0, atol=1e-12)
    assert np.all(np.isinf(im.psnr(a, b, crop_border=3, y_channel=True).values))


def test_to_y_of_white_black_red_is_the_formula():
    colours = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8).reshape(1, 1, 3, 3)
    y = im.to_y(colours)
    assert y.shape == (1, 1, 3, 1) and y.dtype == np.float64
    np.testing.assert_allclose(y[0, 0, :, 0], [235.0, 16.0, 81.481], atol=1e-9)
    # Green and blue, and the [-1, 1] convention.
    gb = np.array([[-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]).reshape(1, 1, 2, 3)
    np.testing.assert_allclose(
        im.to_y(gb, input_range="[-1,1]")[0, 0, :, 0], [16 + 128.553, 16 + 24.966]
    )


def test_input_conventions():
    u = _random((2, 12, 12, 3))
    pm1 = u / 127.5 - 1.0
    np.testing.assert_allclose(im.to_255(pm1, "[-1,1]"), u, atol=1e-9)
    # A generator's output read as 0..255 is refused, not silently scored.
    with pytest.raises(ValueError, match=r"input_range='\[-1,1\]'"):
        im.psnr(pm1, pm1)
    with pytest.raises(ValueError, match="input_range must be one of"):
        im.psnr(u, u, input_range="0-1")
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        im.psnr(u[0], u[0])
    with pytest.raises(ValueError, match="at least 11x11"):
        im.ssim(u, u, crop_border=1)


# ---------------------------------------------------------------------------------------------
# Cross-check against scikit-image


@pytest.mark.parametrize("kind", ["random", "structured", "astronaut"])
def test_psnr_ssim_match_scikit_image(kind):
    skm = pytest.importorskip("skimage.metrics", reason=SKIMAGE_REASON)
    if kind == "random":
        a = _random((3, 37, 29, 3), seed=3)
        b = _distort(a)
    elif kind == "structured":
        a = _structured()
        b = _distort(a)
    else:
        data = pytest.importorskip("skimage.data", reason=SKIMAGE_REASON)
        a = data.astronaut()[None, ::4, ::4]  # 128x128 RGB, shipped with scikit-image
        b = _distort(a)
    ours_psnr, ours_ssim = im.psnr(a, b).values, im.ssim(a, b).values
    ref_psnr = [skm.peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)]
    # scikit-image filters the whole image (reflected at the border) and then averages only
    # where the window lies inside, dropping (11 - 1) / 2 pixels per side: BasicSR's 'valid'.
    ref_ssim = [
        skm.structural_similarity(
            x,
            y,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
            channel_axis=-1,
        )
        for x, y in zip(a, b)
    ]
    np.testing.assert_allclose(ours_psnr, ref_psnr, rtol=1e-10)
    np.testing.assert_allclose(ours_ssim, ref_ssim, rtol=1e-10)
    assert np.all(np.asarray(ref_ssim) < 0.999)  # a real comparison, not two identical images

    # On luma with the border cropped: scikit-image's rgb2ycbcr (the same BT.601 formula).
    color = pytest.importorskip("skimage.color", reason=SKIMAGE_REASON)
    crop = 4
    ya = color.rgb2ycbcr(a)[..., :1][:, crop:-crop, crop:-crop]
    yb = color.rgb2ycbcr(b)[..., :1][:, crop:-crop, crop:-crop]
    np.testing.assert_allclose(im.to_y(a)[:, crop:-crop, crop:-crop], ya, rtol=1e-12)
    ref_psnr_y = [skm.peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(ya, yb)]
    ref_ssim_y = [
        skm.structural_similarity(
            x[..., 0],
            y[..., 0],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        for x, y in zip(ya, yb)
    ]
    np.testing.assert_allclose(
        im.psnr(a, b, y_channel=True, crop_border=crop).values, ref_psnr_y, rtol=1e-10
    )
    np.testing.assert_allclose(
        im.ssim(a, b, y_channel=True, crop_border=crop).values, ref_ssim_y, rtol=1e-10
    )


def test_ssim_grey_and_batching_match_one_by_one(monkeypatch):
    a = _structured(n=5)
    b = _distort(a)
    whole = im.ssim(a, b).values
    monkeypatch.setattr(im, "_CHUNK_ELEMENTS", 1)  # one image per chunk
    np.testing.assert_allclose(im.ssim(a, b).values, whole, rtol=1e-12)
    single = [im.ssim(a[i : i + 1], b[i : i + 1]).mean for i in range(len(a))]
    np.testing.assert_allclose(whole, single, rtol=1e-12)
    # Grey images (one channel) are scored as they are, also with y_channel=True (BasicSR).
    grey_a, grey_b = a[..., :1], b[..., :1]
    np.testing.assert_allclose(
        im.ssim(grey_a, grey_b, y_channel=True).values, im.ssim(grey_a, grey_b).values
    )


# ---------------------------------------------------------------------------------------------
# Inpainting scores


def test_masked_metrics_ignore_error_outside_the_hole():
    target = _structured(n=2, h=20, w=20)
    mask = np.zeros((2, 20, 20), bool)
    mask[:, 5:10, 5:15] = True  # 50 of 400 pixels
    pred = target.copy()
    pred[~mask] = 0  # error only outside the hole
    scores = im.masked_l1_psnr(pred, target, mask)
    np.testing.assert_array_equal(scores.l1, 0.0)
    assert np.all(np.isinf(scores.psnr))
    np.testing.assert_allclose(scores.hole_fraction, 50 / 400)
    # An error of 10 levels on every hole value, and a [N, H, W, 1] uint8 mask of 0/255.
    pred = target.copy()
    hole = target[:, 5:10, 5:15]
    pred[:, 5:10, 5:15] = np.where(hole > 127, hole - 10, hole + 10)
    scores = im.masked_l1_psnr(pred, target, mask[..., None].astype(np.uint8) * 255)
    np.testing.assert_allclose(scores.l1, 10 / 255)
    np.testing.assert_allclose(scores.psnr, 20 * math.log10(255 / 10))
    np.testing.assert_allclose(scores.mean_psnr, 20 * math.log10(255 / 10))


def test_masked_metrics_without_a_hole_are_nan_without_warnings():
    a = _random((3, 8, 8, 3))
    mask = np.zeros((3, 8, 8), bool)
    mask[1, :2] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = im.masked_l1_psnr(a, 255 - a, mask)
    assert np.isnan(scores.l1[[0, 2]]).all() and np.isnan(scores.psnr[[0, 2]]).all()
    assert scores.mean_l1 == scores.l1[1] and np.isfinite(scores.mean_psnr)


def test_area_buckets_and_by_bucket():
    fractions = [0.0, 0.05, 0.1, 0.15, 0.35, 0.6, 0.95]
    labels = im.area_buckets(fractions)
    assert labels == ["0-10%", "0-10%", "0-10%", "10-20%", "30-40%", "50-60%", "60-100%"]
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan]
    grouped = im.by_bucket(values, labels)
    assert list(grouped) == ["0-10%", "10-20%", "30-40%", "50-60%", "60-100%"]
    assert grouped["0-10%"] == im.Bucket(2.0, 3)
    assert grouped["10-20%"] == im.Bucket(4.0, 1)
    assert grouped["60-100%"].count == 0 and math.isnan(grouped["60-100%"].mean)
    # Natural order of labels: 5 before 10.
    assert list(im.by_bucket([1, 2, 3], ["10-20%", "5-10%", "10-20%"])) == ["5-10%", "10-20%"]
    assert im.by_bucket([1, 2, 3], ["10-20%", "5-10%", "10-20%"])["10-20%"] == (2.0, 2)
    with pytest.raises(ValueError, match="bucket labels"):
        im.by_bucket([1, 2], ["a"])


# ---------------------------------------------------------------------------------------------
# Edges


def _edge_map():
    edges = np.zeros((2, 16, 16), bool)
    edges[0, 8, 2:14] = True  # a horizontal line
    edges[1, 3:13, 5] = True  # a vertical line
    edges[1, 10, 5:12] = True
    return edges


def test_edge_f1_identical_shifted_and_empty():
    true = _edge_map()
    scores = im.edge_f1(true, true)
    np.testing.assert_array_equal(scores.f1, 1.0)
    assert scores.mean == 1.0 and scores.pooled_f1 == 1.0
    shifted = np.roll(true, 1, axis=1)  # one pixel down
    np.testing.assert_array_equal(im.edge_f1(shifted, true, tolerance=1).f1, 1.0)
    assert np.all(im.edge_f1(shifted, true, tolerance=0).f1 < 1)
    diagonal = np.roll(true, (1, 1), axis=(1, 2))  # the square tolerance matches diagonals
    np.testing.assert_array_equal(im.edge_f1(diagonal[..., None], true, tolerance=1).f1, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = im.edge_f1(np.zeros_like(true), true)
        both_empty = im.edge_f1(np.zeros_like(true), np.zeros_like(true))
        nothing_true = im.edge_f1(true, np.zeros_like(true))
    np.testing.assert_array_equal(empty.f1, 0.0)
    np.testing.assert_array_equal(empty.precision, 0.0)
    assert empty.pooled_f1 == 0.0
    np.testing.assert_array_equal(both_empty.f1, 1.0)
    np.testing.assert_array_equal(nothing_true.f1, 0.0)


def test_edge_f1_counts_match_scipy_dilation():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(5)
    pred = rng.random((3, 20, 24)) < 0.08
    true = rng.random((3, 20, 24)) < 0.08
    for tol in (0, 1, 2):
        square = np.ones((1, 2 * tol + 1, 2 * tol + 1), bool)
        near_true = ndimage.binary_dilation(true, square)
        near_pred = ndimage.binary_dilation(pred, square)
        p = (pred & near_true).sum((1, 2)) / pred.sum((1, 2))
        r = (true & near_pred).sum((1, 2)) / true.sum((1, 2))
        scores = im.edge_f1(pred, true, tolerance=tol)
        np.testing.assert_allclose(scores.precision, p)
        np.testing.assert_allclose(scores.recall, r)
        np.testing.assert_allclose(scores.f1, 2 * p * r / (p + r))


def test_edges_of_finds_a_step_and_matches_scipy_sobel():
    ndimage = pytest.importorskip("scipy.ndimage")
    image = np.zeros((1, 12, 12, 3), np.uint8)
    image[:, :, 6:] = 200
    edges = im.edges_of(image)
    assert edges.shape == (1, 12, 12)
    np.testing.assert_array_equal(np.flatnonzero(edges[0].any(0)), [5, 6])  # two pixels wide
    assert edges[0, :, 5:7].all()
    assert not im.edges_of(np.full((1, 12, 12, 1), 77, np.uint8)).any()  # no border edges
    x = _structured(n=1)
    grey = x[0] @ np.array([0.299, 0.587, 0.114]) / 255
    magnitude = np.hypot(
        ndimage.sobel(grey, 1, mode="nearest"), ndimage.sobel(grey, 0, mode="nearest")
    )
    np.testing.assert_array_equal(im.edges_of(x, threshold=0.7)[0], magnitude > 0.7)


# ---------------------------------------------------------------------------------------------
# Baselines and the report


@pytest.mark.parametrize("kernel", im.UPSAMPLE_KERNELS)
def test_upsample_constant_stays_constant(kernel):
    small = np.full((2, 5, 7, 3), 123, np.uint8)
    big = im.upsample(small, 4, kernel)
    assert big.shape == (2, 20, 28, 3) and big.dtype == np.uint8
    np.testing.assert_array_equal(big, 123)
    pm1 = im.upsample(small / 127.5 - 1.0, 2, kernel, input_range="[-1,1]")
    assert pm1.shape == (2, 10, 14, 3) and pm1.dtype == np.float32
    np.testing.assert_allclose(pm1, 123 / 127.5 - 1.0, atol=1e-6)


def test_upsample_is_a_fair_baseline():
    """Bicubic of a smooth image's downsampled copy is close to it, and scores beside it."""
    big = _structured(n=2, h=48, w=48)[..., :2]  # the smooth channels (no hard disc edge)
    big = np.concatenate([big, big[..., :1]], -1)
    small = big[:, ::2, ::2]
    up = im.upsample(small, 2)
    assert im.psnr(up, big, crop_border=2).mean > 25
    line = im.report({"PSNR": 30.0}, {"bicubic": {"PSNR": im.psnr(up, big, crop_border=2).mean}})
    assert line.startswith("PSNR 30.00 dB (bicubic ") and line.endswith(")")
    with pytest.raises(ValueError, match="kernel"):
        im.upsample(small, 2, "nearest")


# OpenCV's Telea is not exact on a constant: its gradient term adds an error of a few levels
# (opencv/opencv#25404; 8-bit and float alike in OpenCV 5.0). Navier-Stokes is exact.
MAX_LEVELS = {"telea": 3, "ns": 1}


@pytest.mark.parametrize("method", im.INPAINT_METHODS)
def test_inpaint_opencv_restores_a_constant(method):
    pytest.importorskip("cv2", reason=CV2_REASON)
    image = np.full((3, 32, 32, 3), 90, np.uint8)
    image[..., 1] = 160
    image[2] = 50
    mask = np.zeros((3, 32, 32), bool)
    mask[0, 10:20, 8:24] = True
    mask[1, 4:9, 4:30] = True
    mask[2, 0:4, 0:5] = mask[2, 28:, 27:] = True  # holes at the corners
    damaged = image.copy()
    damaged[mask] = 0  # what is under the hole is ignored
    filled = im.inpaint_opencv(damaged, mask, method=method, radius=3)
    assert filled.shape == image.shape and filled.dtype == np.uint8
    error = np.abs(filled.astype(int) - image)
    assert error.max() <= MAX_LEVELS[method]
    assert error[mask].mean() <= 1.0  # within one level on average
    np.testing.assert_array_equal(filled[~mask], image[~mask])  # outside the hole untouched
    grey = im.inpaint_opencv(damaged[..., :1], mask[..., None], method=method)
    assert np.abs(grey.astype(int) - image[..., :1]).max() <= MAX_LEVELS[method]
    assert im.masked_l1_psnr(filled, image, mask).mean_l1 <= 1 / 255
    pm1 = im.inpaint_opencv(damaged / 127.5 - 1.0, mask, method=method, input_range="[-1,1]")
    np.testing.assert_allclose(pm1, filled / 127.5 - 1.0, atol=1e-6)


def test_report_formats_and_missing_opencv_message(monkeypatch):
    text = im.report(
        {"PSNR": 28.314, "SSIM": 0.81234, "hole L1": 0.0312, "FID": 12.3456},
        {"bicubic": {"PSNR": 26.9, "SSIM": 0.7}, "lanczos": {"PSNR": 27.05}},
    )
    assert text.splitlines() == [
        "PSNR 28.31 dB (bicubic 26.90, lanczos 27.05)",
        "SSIM 0.8123 (bicubic 0.7000)",
        "hole L1 0.0312",
        "FID 12.35",
    ]
    assert im.report({"PSNR": math.inf}) == "PSNR inf dB"
    import builtins

    real_import = builtins.__import__

    def no_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("No module named 'cv2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    with pytest.raises(ImportError, match="opencv-python-headless"):
        im.inpaint_opencv(np.zeros((1, 8, 8, 3), np.uint8), np.ones((1, 8, 8), bool))
