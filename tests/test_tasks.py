"""Image-to-image tasks as data (gan_jax/input/tasks.py): degradations, masks, splits, seeds."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from gan_jax.input import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK_FILE = os.path.join(ROOT, "gan_jax", "input", "tasks.py")
ALL_SPECS = [
    "sr2",
    "sr4",
    "inpaint:box",
    "inpaint:stroke",
    "inpaint",
    "colorize",
    "edges:sobel",
    "edges:canny",
    "denoise:0.1",
]
EIGHT = np.ones((3, 3), bool)  # 8-connectivity


def smooth_image(h=32, w=32, c=3, seed=0):
    """A smooth random RGB image in [-1, 1] (low-pass noise), float32 [H, W, C]."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal((h, w, c)), (3, 3, 0), mode="wrap")
    x = x / np.abs(x).max()
    return x.astype(np.float32)


def to_uint8(x):
    return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


# --- task strings --------------------------------------------------------------------------


def test_parse_task_forms_and_round_trip():
    assert tasks.parse_task("sr4") == tasks.Task("sr", factor=4)
    assert tasks.parse_task(" SR2 ").factor == 2
    assert tasks.parse_task("edges:canny").detector == "canny"
    assert tasks.parse_task("edges").detector == "canny"
    assert tasks.parse_task("edges:sobel").detector == "sobel"
    assert tasks.parse_task("denoise:0.1").sigma == 0.1
    assert tasks.parse_task("denoise").sigma == tasks.DEFAULT_SIGMA
    assert tasks.parse_task("inpaint").masks == "mixed"
    assert tasks.parse_task("inpaint:box:0.1-0.3").hole == (0.1, 0.3)
    assert tasks.parse_task("inpaint:stroke:1e-05-0.5").hole == (1e-05, 0.5)
    assert tasks.parse_task("colorize").kind == "colorize"
    for spec in [*ALL_SPECS, "inpaint:stroke:1e-05-0.5", "denoise:2"]:
        task = tasks.parse_task(spec)
        assert tasks.parse_task(str(task)) == task
        assert tasks.parse_task(task) is task
    # Constructed Tasks normalise numbers, so they equal (and hash like) parsed ones.
    assert tasks.Task("denoise", sigma=1) == tasks.parse_task("denoise:1")
    assert hash(tasks.Task("inpaint", masks="box", hole=[0, 1])) == hash(
        tasks.parse_task("inpaint:box:0-1")
    )


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "sr",
        "sr1",
        "sr3x",
        "sr16",
        "sr4:bicubic",
        "superres",
        "inpaint:circle",
        "inpaint:box:0.3-0.1",
        "inpaint:box:0.1-1.5",
        "inpaint:box:a-b",
        "inpaint:box:0.1-0.2:x",
        "colorize:lab",
        "edges:hed",
        "edges:canny:0.1",
        "denoise:-0.1",
        "denoise:0",
        "denoise:abc",
        "denoise:3",
        "denoise:nan",
    ],
)
def test_bad_task_strings_name_the_allowed_forms(spec):
    with pytest.raises(ValueError, match="allowed forms: sr2, sr4"):
        tasks.parse_task(spec)


def test_bad_task_objects():
    with pytest.raises(ValueError, match="a task is a string"):
        tasks.parse_task(4)
    with pytest.raises(ValueError, match="unknown task kind"):
        tasks.Task("deblur")
    with pytest.raises(ValueError, match="needs a 'factor'"):
        tasks.Task("sr")
    with pytest.raises(ValueError, match="takes no 'sigma'"):
        tasks.Task("sr", factor=2, sigma=0.1)
    with pytest.raises(ValueError, match="hole area range"):
        tasks.Task("inpaint", masks="box", hole=(0.5, 0.5))


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_degrade_is_deterministic_with_documented_shapes(spec):
    task = tasks.parse_task(spec)
    image = smooth_image(32, 32, 3)
    a = tasks.degrade(task, image, seed=7)
    b = tasks.degrade(spec, image.copy(), seed=7)
    assert sorted(a) == sorted(b)
    assert {"input", "target"} <= set(a)
    assert ("mask" in a) == (task.kind == "inpaint")
    for k in a:
        assert a[k].dtype == np.float32
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(a["target"], image)
    assert a["input"].shape == task.input_shape(image.shape)
    assert np.isfinite(a["input"]).all()
    # Global NumPy state plays no part.
    np.random.seed(123)
    np.random.random(10)
    c = tasks.degrade(task, image, seed=7)
    np.testing.assert_array_equal(a["input"], c["input"])


@pytest.mark.parametrize("spec", ["inpaint:box", "inpaint:stroke", "inpaint", "denoise:0.1"])
def test_different_seeds_give_different_masks_and_noise(spec):
    image = smooth_image(32, 32, 3)
    inputs = [tasks.degrade(spec, image, seed=s)["input"] for s in range(6)]
    for i in range(len(inputs)):
        for j in range(i):
            assert not np.array_equal(inputs[i], inputs[j])


@pytest.mark.parametrize("spec", ["sr2", "colorize", "edges:sobel", "edges:canny"])
def test_deterministic_tasks_ignore_the_seed(spec):
    image = smooth_image(32, 32, 3)
    a = tasks.degrade(spec, image, seed=0)["input"]
    b = tasks.degrade(spec, image, seed=12345)["input"]
    np.testing.assert_array_equal(a, b)


def test_degrade_batch_matches_degrade_and_follows_the_seeds_not_the_order():
    images = np.stack([smooth_image(16, 16, 3, seed=i) for i in range(4)])
    seeds = [tasks.example_seed(3, f"img_{i}.png") for i in range(4)]
    batch = tasks.degrade_batch("inpaint", images, seeds)
    assert batch["input"].shape == (4, 16, 16, 4)
    assert batch["mask"].shape == (4, 16, 16, 1)
    for i in range(4):
        one = tasks.degrade("inpaint", images[i], seeds[i])
        for k in one:
            np.testing.assert_array_equal(batch[k][i], one[k])
    perm = [2, 0, 3, 1]
    shuffled = tasks.degrade_batch("inpaint", images[perm], [seeds[p] for p in perm])
    np.testing.assert_array_equal(shuffled["input"], batch["input"][perm])
    with pytest.raises(ValueError, match="one seed per image"):
        tasks.degrade_batch("inpaint", images, seeds[:3])
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        tasks.degrade_batch("inpaint", images[0], seeds[:1])


def test_bad_images_and_seeds_are_errors():
    image = smooth_image(16, 16, 3)
    with pytest.raises(ValueError, match="float image"):
        tasks.degrade("sr2", to_uint8(image), 0)
    with pytest.raises(ValueError, match=r"values in \[-1, 1\]"):
        tasks.degrade("sr2", image * 3, 0)
    with pytest.raises(ValueError, match=r"one image \[H, W, C\]"):
        tasks.degrade("sr2", image[..., 0], 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        tasks.degrade("denoise", image, -1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        tasks.degrade("sr2", image, 1.5)


# --- super-resolution ----------------------------------------------------------------------


def keys_cubic(x, a=-0.5):
    x = np.abs(x)
    return np.where(
        x < 1,
        (a + 2) * x**3 - (a + 3) * x**2 + 1,
        np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0),
    )


def reference_downscale_matrix(n, f):
    """Antialiased Keys-cubic (a=-0.5) reduction by f as a [n/f, n] matrix, written from the
    formula: kernel stretched by f, centred at (i + 0.5) f - 0.5, taps outside dropped and the
    weights renormalised."""
    m = np.zeros((n // f, n))
    for i in range(n // f):
        centre = (i + 0.5) * f
        lo = max(int(centre - 2 * f + 0.5), 0)
        hi = min(int(centre + 2 * f + 0.5), n)
        xs = np.arange(lo, hi)
        w = keys_cubic((xs - centre + 0.5) / f)
        m[i, lo:hi] = w / w.sum()
    return m


@pytest.mark.parametrize("factor", [2, 4])
def test_sr_input_is_the_antialiased_bicubic_reduction(factor):
    image = smooth_image(32, 48, 3, seed=1)
    image[8:20, 10:30] = 0.9  # a sharp block: the antialiasing and the overshoot matter
    out = tasks.degrade(f"sr{factor}", image, 0)
    assert out["input"].shape == (32 // factor, 48 // factor, 3)
    rows = reference_downscale_matrix(32, factor)
    cols = reference_downscale_matrix(48, factor)
    ref = np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float64), cols)
    np.testing.assert_allclose(out["input"], ref, atol=2e-5)
    # Antialiased: not point sampling nor a narrow (unstretched) kernel.
    assert np.abs(out["input"] - image[factor // 2 :: factor, factor // 2 :: factor]).max() > 0.05


def test_sr_of_a_constant_image_is_constant():
    image = np.full((16, 24, 3), 0.37, np.float32)
    small = tasks.degrade("sr4", image, 0)["input"]
    assert small.shape == (4, 6, 3)
    np.testing.assert_allclose(small, 0.37, atol=1e-6)


@pytest.mark.parametrize("factor", [2, 4])
def test_sr_of_a_gradient_matches_pil_bicubic_on_uint8(factor):
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    image = np.stack([xx * 2 - 1, yy * 2 - 1, (xx * yy) * 2 - 1], axis=-1).astype(np.float32)
    ours = to_uint8(tasks.degrade(f"sr{factor}", image, 0)["input"]).astype(int)
    pil = Image.fromarray(to_uint8(image), "RGB").resize(
        (64 // factor, 64 // factor), Image.Resampling.BICUBIC
    )
    diff = np.abs(ours - np.asarray(pil).astype(int))
    assert diff.max() <= 2, diff.max()


def test_sr_needs_divisible_sizes():
    with pytest.raises(ValueError, match="divisible by 4, got 30x32"):
        tasks.degrade("sr4", np.zeros((30, 32, 3), np.float32), 0)
    with pytest.raises(ValueError, match="divisible by 2"):
        tasks.parse_task("sr2").input_shape((32, 33, 1))
    with pytest.raises(ValueError, match="divisible by 4"):
        tasks.downscale(np.zeros((8, 10, 1), np.float32), 4)


def test_luma_of_pure_colours_uses_bt601_weights():
    # Pure red, green, blue, white, black in [-1, 1].
    colours = np.array(
        [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, 1], [-1, -1, -1]], np.float32
    ).reshape(1, 5, 3)
    out = tasks.degrade("colorize", colours, 0)
    assert out["input"].shape == (1, 5, 1)
    y01 = np.array([0.299, 0.587, 0.114, 1.0, 0.0])  # on the [0, 1] scale
    np.testing.assert_allclose(out["input"][0, :, 0], 2 * y01 - 1, atol=1e-6)
    np.testing.assert_array_equal(out["target"], colours)


def test_luma_matches_pil_l_conversion():
    image = smooth_image(16, 16, 3, seed=3)
    ours = to_uint8(tasks.degrade("colorize", image, 0)["input"][..., 0]).astype(int)
    pil = np.asarray(Image.fromarray(to_uint8(image), "RGB").convert("L")).astype(int)
    assert np.abs(ours - pil).max() <= 1


def test_colorize_needs_rgb():
    with pytest.raises(ValueError, match="colorize needs an RGB image"):
        tasks.degrade("colorize", np.zeros((8, 8, 1), np.float32), 0)
    with pytest.raises(ValueError, match="colorize needs an RGB image"):
        tasks.parse_task("colorize").input_shape((8, 8, 4))


# --- edges ---------------------------------------------------------------------------------


def test_sobel_on_a_constant_image_is_zero():
    np.testing.assert_array_equal(tasks.sobel_magnitude(np.full((12, 12), 0.3)), 0.0)
    out = tasks.degrade("edges:sobel", np.full((12, 12, 3), 0.3, np.float32), 0)["input"]
    np.testing.assert_array_equal(out, -1.0)  # no edge = black


def test_sobel_edges_of_a_step_are_white_on_black():
    image = -np.ones((16, 16, 1), np.float32)
    image[:, 8:] = 1.0  # a full black-to-white step between columns 7 and 8
    out = tasks.degrade("edges:sobel", image, 0)["input"][..., 0]
    np.testing.assert_allclose(out[:, 7:9], 1.0)  # a unit step: full strength
    np.testing.assert_array_equal(out[:, :6], -1.0)
    np.testing.assert_array_equal(out[:, 10:], -1.0)
    half = -np.ones((16, 16, 1), np.float32)
    half[:, 8:] = 0.0  # half the contrast: half the strength (not renormalised per image)
    out = tasks.degrade("edges:sobel", half, 0)["input"][..., 0]
    np.testing.assert_allclose(out[:, 7:9], 0.0, atol=1e-6)


def test_canny_finds_the_four_sides_of_a_square_and_nothing_inside():
    image = -np.ones((40, 40, 3), np.float32)
    image[10:30, 10:30] = 1.0  # a white square; its border runs between pixels 9|10 and 29|30
    out = tasks.degrade("edges:canny", image, 0)["input"][..., 0]
    assert set(np.unique(out)) == {-1.0, 1.0}  # binary, white edges on black
    edges = out > 0
    rows, cols = np.nonzero(edges)
    # Every edge pixel is within one pixel of the square's border ...
    near_row = np.isin(rows, [9, 10, 29, 30]) & (cols >= 9) & (cols <= 30)
    near_col = np.isin(cols, [9, 10, 29, 30]) & (rows >= 9) & (rows <= 30)
    assert (near_row | near_col).all()
    assert not edges[12:28, 12:28].any()  # nothing inside
    # ... and each of the 4 sides is found along its length (corners may round off).
    span = slice(12, 28)
    assert edges[9:11, span].any(axis=0).all()  # top
    assert edges[29:31, span].any(axis=0).all()  # bottom
    assert edges[span, 9:11].any(axis=1).all()  # left
    assert edges[span, 29:31].any(axis=1).all()  # right
    # Thin: one pixel per side position along the straight parts.
    assert (edges[8:12, span].sum(axis=0) == 1).all()


def test_canny_on_a_constant_image_finds_nothing():
    assert not tasks.canny(np.full((16, 16), 0.7)).any()
    out = tasks.degrade("edges:canny", np.zeros((16, 16, 1), np.float32), 0)["input"]
    np.testing.assert_array_equal(out, -1.0)


def test_canny_hysteresis_keeps_weak_edges_only_when_connected_to_strong_ones():
    # A vertical step whose contrast fades from 1 (strong) to 0.15 (weak: between the 0.1 and
    # 0.2 thresholds) down the image, and a separate step of contrast 0.15 throughout.
    g = np.zeros((48, 48))
    contrast = np.clip(np.linspace(1.0, -0.5, 48), 0.15, 1.0)  # 0.15 from row 27 on
    g[:, 24:] = contrast[:, None]  # the edge between columns 23 and 24
    g[:, :4] = 0.15  # weak and isolated, between columns 3 and 4
    blurred = ndimage.gaussian_filter(g, 1.0, mode="nearest")
    mag = np.hypot(ndimage.sobel(blurred, 0), ndimage.sobel(blurred, 1))
    assert 0.1 < mag[40, 23] / mag.max() < 0.2  # the weak part really is weak
    e = tasks.canny(g)
    assert e[:, 22:26].any(axis=1).all()  # the whole fading edge, its weak end included
    assert not e[:, 1:7].any()  # the isolated weak edge is dropped
    assert tasks.canny(g, high=0.1)[:, 2:5].any(axis=1).all()  # ... unless it counts as strong


def test_edges_need_one_or_three_channels():
    with pytest.raises(ValueError, match="1- or 3-channel"):
        tasks.degrade("edges", np.zeros((8, 8, 2), np.float32), 0)


def test_canny_agrees_with_scikit_image():
    feature = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    g = np.zeros((96, 96))
    g[(yy - 40) ** 2 + (xx - 50) ** 2 < 20**2] = 0.8
    g[60:90, 10:40] = 0.4
    g[10:30, 60:90] += 0.6
    g = ndimage.gaussian_filter(g, 0.7) + 0.02 * ndimage.gaussian_filter(
        rng.standard_normal((96, 96)), 2
    )
    ours = tasks.canny(g)
    blurred = ndimage.gaussian_filter(g, 1.0, mode="nearest")
    top = np.hypot(ndimage.sobel(blurred, 0), ndimage.sobel(blurred, 1)).max()
    ref = feature.canny(
        g, sigma=1.0, low_threshold=0.1 * top, high_threshold=0.2 * top, mode="nearest"
    )
    assert ours.sum() > 100 and ref.sum() > 100
    # Within one pixel (scikit-image interpolates the suppression direction; we quantise it).
    near_ref = ndimage.binary_dilation(ref, EIGHT)
    near_ours = ndimage.binary_dilation(ours, EIGHT)
    assert (ours & near_ref).sum() >= 0.9 * ours.sum()
    assert (ref & near_ours).sum() >= 0.9 * ref.sum()


# --- inpainting ----------------------------------------------------------------------------


def test_inpaint_input_is_the_image_with_a_grey_hole_and_the_mask_last():
    image = smooth_image(32, 32, 3, seed=4) * 0.5 + 0.5  # no zeros outside the hole
    for spec in ["inpaint:box", "inpaint:stroke"]:
        out = tasks.degrade(spec, image, seed=11)
        mask = out["mask"]
        assert mask.shape == (32, 32, 1)
        assert set(np.unique(mask)) == {0.0, 1.0}
        hole = mask[..., 0] == 1
        assert out["input"].shape == (32, 32, 4)
        np.testing.assert_array_equal(out["input"][..., 3], mask[..., 0])
        np.testing.assert_array_equal(out["input"][hole][:, :3], 0.0)
        np.testing.assert_array_equal(out["input"][~hole][:, :3], image[~hole])


def is_rectangle(mask):
    rows, cols = np.nonzero(mask)
    return mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()


@pytest.mark.parametrize("hole", [(0.01, 0.6), (0.1, 0.2), (0.3, 0.35), (0.5, 0.6)])
def test_box_masks_are_one_rectangle_with_area_in_range(hole):
    areas = []
    for seed in range(150):
        m = tasks.box_mask(48, 40, np.random.default_rng(seed), hole)
        assert m.dtype == np.float32 and m.shape == (48, 40)
        assert is_rectangle(m > 0)
        areas.append(m.mean())
        assert hole[0] <= m.mean() <= hole[1], (seed, m.mean())
    # The areas spread over the range rather than sticking to one value.
    assert np.ptp(areas) > 0.6 * (hole[1] - hole[0])


@pytest.mark.parametrize("hole", [(0.01, 0.6), (0.1, 0.2), (0.5, 0.6)])
def test_stroke_masks_are_non_empty_connected_ish_and_in_range(hole):
    rectangles = 0
    for seed in range(80):
        m = tasks.stroke_mask(64, 64, np.random.default_rng(seed), hole) > 0
        assert m.any()
        assert hole[0] <= m.mean() <= hole[1], (seed, m.mean())
        _, pieces = ndimage.label(m, EIGHT)
        assert pieces <= 8  # a few strokes, not scattered specks
        rectangles += is_rectangle(m)
    assert rectangles == 0


def test_one_brush_stroke_is_one_piece():
    for seed in range(100):
        stroke = tasks._stroke(64, 64, np.random.default_rng(seed))
        assert ndimage.label(stroke, EIGHT)[1] == 1
        # A brush, not a hairline: at 64 px its width is 3..10 px.
        assert ndimage.binary_erosion(stroke, EIGHT).any()


def test_mixed_masks_give_both_kinds():
    task = tasks.parse_task("inpaint:mixed")
    kinds = [is_rectangle(tasks.inpaint_mask(task, 32, 32, seed) > 0) for seed in range(40)]
    assert 8 <= sum(kinds) <= 32  # about half boxes, half strokes


def test_mask_buckets_on_known_masks():
    def mask_with(holes, shape=(100, 100)):
        m = np.zeros(shape[0] * shape[1], np.float32)
        m[:holes] = 1
        return m.reshape(shape)

    cases = {
        0: "0-10%",
        1: "0-10%",
        1000: "0-10%",  # exactly 10%: the bucket holds its upper bound
        1001: "10-20%",
        2000: "10-20%",
        2500: "20-30%",
        3999: "30-40%",
        4500: "40-50%",
        5001: "50-60%",
        6000: "50-60%",
        6001: "60-100%",
        10000: "60-100%",
    }
    for holes, bucket in cases.items():
        assert tasks.mask_bucket(mask_with(holes)) == bucket, holes
    # Any shape, e.g. the [H, W, 1] mask degrade returns; 0/1 floats.
    assert tasks.mask_bucket(mask_with(1500)[..., None]) == "10-20%"
    for lo in range(6):
        area = (lo + 0.5) / 10
        m = tasks.box_mask(40, 40, np.random.default_rng(lo), (area - 0.01, area + 0.01))
        assert tasks.mask_bucket(m) == tasks.BUCKETS[lo]


# --- splits and seeds ----------------------------------------------------------------------

KEYS = [f"photos/{i // 1000:02d}/img_{i:05d}.png" for i in range(20_000)]


def test_split_is_independent_of_the_order_of_the_keys():
    order = np.random.default_rng(0).permutation(len(KEYS))
    shuffled = [KEYS[i] for i in order]
    a = {k: tasks.split_of(k) for k in KEYS}
    b = {k: tasks.split_of(k) for k in shuffled}
    assert a == b
    assert {s: tasks.split_keys(shuffled, s) for s in tasks.SPLITS} == {
        s: [k for k in shuffled if a[k] == s] for s in tasks.SPLITS
    }


@pytest.mark.parametrize("fractions", [(0.9, 0.05, 0.05), (0.7, 0.2, 0.1)])
def test_split_fractions_and_disjointness(fractions):
    parts = {s: tasks.split_keys(KEYS, s, fractions) for s in tasks.SPLITS}
    for s, f in zip(tasks.SPLITS, fractions):
        assert abs(len(parts[s]) / len(KEYS) - f) < 0.01, (s, len(parts[s]))
    assert sum(len(p) for p in parts.values()) == len(KEYS)
    assert set(parts["train"]).isdisjoint(parts["validation"])
    assert set(parts["train"]).isdisjoint(parts["test"])
    assert set(parts["validation"]).isdisjoint(parts["test"])
    assert set().union(*map(set, parts.values())) == set(KEYS)


def test_split_keys_keeps_the_input_order():
    keys = KEYS[::-7]
    val = tasks.split_keys(keys, "validation")
    position = {k: i for i, k in enumerate(keys)}
    assert [position[k] for k in val] == sorted(position[k] for k in val)
    assert len(val) > 50


def test_split_is_the_sha256_of_the_key():
    fractions = (0.6, 0.3, 0.1)
    for key in KEYS[:3000] + ["", "ü/ß.png", "42"]:
        u = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) / 2**64
        expected = "train" if u < 0.6 else "validation" if u < 0.9 else "test"
        assert tasks.split_of(key, fractions) == expected, key
    assert tasks.split_of(42) == tasks.split_of("42")  # an index is its decimal string


def test_split_and_seed_are_the_same_in_another_process():
    """A fresh interpreter (another hash salt), loading tasks.py alone: same splits and seeds,
    and neither JAX nor TensorFlow imported."""
    sample = KEYS[:200]
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('t', {TASK_FILE!r})\n"
        "t = importlib.util.module_from_spec(spec); sys.modules['t'] = t\n"
        "spec.loader.exec_module(t)\n"
        "keys = json.loads(sys.stdin.read())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('jax', 'jaxlib', 'tensorflow', 'flax', 'torch'))\n"
        "print(json.dumps({'splits': [t.split_of(k) for k in keys],\n"
        "                  'seeds': [t.example_seed(5, k) for k in keys], 'heavy': heavy}))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(sample),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    assert result["splits"] == [tasks.split_of(k) for k in sample]
    assert result["seeds"] == [tasks.example_seed(5, k) for k in sample]


def test_bad_split_arguments():
    with pytest.raises(ValueError, match="summing to 1"):
        tasks.split_of("a", (0.5, 0.3, 0.3))
    with pytest.raises(ValueError, match="summing to 1"):
        tasks.split_of("a", (0.5, 0.5))
    with pytest.raises(ValueError, match="split must be one of"):
        tasks.split_keys(["a"], "val")
    with pytest.raises(ValueError, match="a key is a string"):
        tasks.split_of(b"bytes")


def test_relative_key(tmp_path):
    root = tmp_path / "data"
    path = root / "cats" / "a b.png"
    assert tasks.relative_key(str(path), str(root)) == "cats/a b.png"
    assert tasks.relative_key(str(path), str(root) + os.sep) == "cats/a b.png"
    with pytest.raises(ValueError, match="not inside"):
        tasks.relative_key(str(tmp_path / "other.png"), str(root))


def test_example_seed():
    s = tasks.example_seed(0, "a.png")
    assert s == tasks.example_seed(0, "a.png")
    assert isinstance(s, int) and 0 <= s < 2**63
    digest = hashlib.sha256(b"gan_jax.tasks:0:a.png").digest()
    assert s == int.from_bytes(digest[:8], "big") >> 1
    seeds = {tasks.example_seed(b, k, e) for b in (0, 1) for k in KEYS[:50] for e in (None, 0, 1)}
    assert len(seeds) == 2 * 50 * 3  # base seed, key and epoch each change it
    assert tasks.example_seed(0, 7) == tasks.example_seed(0, "7")
    with pytest.raises(ValueError, match="base_seed must be a non-negative integer"):
        tasks.example_seed(-1, "a")
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        tasks.example_seed(0, "a", epoch=1.0)


def test_a_validation_example_gets_the_same_mask_in_any_batch():
    task = tasks.parse_task("inpaint")
    image = smooth_image(16, 16, 3)
    key = next(k for k in KEYS if tasks.split_of(k) == "validation")
    first = tasks.degrade(task, image, tasks.example_seed(0, key))["mask"]
    # Degrade a batch of other examples in between: nothing carries over.
    others = [k for k in KEYS[:8] if k != key]
    tasks.degrade_batch(
        task, np.stack([image] * len(others)), [tasks.example_seed(0, k) for k in others]
    )
    again = tasks.degrade(task, image, tasks.example_seed(0, key))["mask"]
    np.testing.assert_array_equal(first, again)
    # Training examples may draw a new mask per epoch.
    per_epoch = [
        tasks.degrade(task, image, tasks.example_seed(0, key, epoch=e))["mask"] for e in range(3)
    ]
    assert not np.array_equal(per_epoch[0], per_epoch[1])


# --- noise ---------------------------------------------------------------------------------


def test_denoise_adds_gaussian_noise_of_the_given_sigma_clipped():
    image = np.zeros((64, 64, 3), np.float32)
    out = tasks.degrade("denoise:0.1", image, seed=3)
    noise = out["input"] - image
    assert abs(noise.std() - 0.1) < 0.005
    assert abs(noise.mean()) < 0.005
    bright = np.full((32, 32, 3), 0.95, np.float32)
    noisy = tasks.degrade("denoise:0.5", bright, seed=3)["input"]
    assert noisy.max() == 1.0 and noisy.min() >= -1.0
    assert (noisy == 1.0).mean() > 0.3  # clipped, not wrapped or rescaled


def test_input_shapes_for_the_pipeline():
    assert tasks.parse_task("sr4").input_shape((64, 32, 3)) == (16, 8, 3)
    assert tasks.parse_task("inpaint").input_shape((32, 32, 3)) == (32, 32, 4)
    assert tasks.parse_task("colorize").input_shape((32, 32, 3)) == (32, 32, 1)
    assert tasks.parse_task("edges").input_shape((32, 32, 1)) == (32, 32, 1)
    assert tasks.parse_task("denoise").input_shape((32, 32, 1)) == (32, 32, 1)


def test_mask_generators_check_their_range():
    rng = np.random.default_rng(0)
    for make in (tasks.box_mask, tasks.stroke_mask):
        assert make(16, 16, rng, [0, 1]).any()  # a list of ints is fine
        with pytest.raises(ValueError, match="hole area range"):
            make(16, 16, rng, (0.6, 0.2))
        with pytest.raises(ValueError, match="positive size"):
            make(0, 16, rng)
