"""DiffAugment ops and ADA's adaptive probability: ranges, gradients, gating, p updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment as aug
from gan_jax.augment import adaptive

FULL = "color,translation,cutout"


def _images(shape, seed=0):
    return jax.random.uniform(jax.random.key(seed), shape, minval=-1.0, maxval=1.0)


def _changed(x, y):
    """[B] bools: which samples differ anywhere."""
    return np.asarray(jnp.any(x != y, axis=(1, 2, 3)))


# --- policies ---------------------------------------------------------------------------


def test_parse_policy():
    assert aug.POLICIES == ("color", "translation", "cutout")
    assert aug.parse_policy("") == ()
    assert aug.parse_policy("  ") == ()
    assert aug.parse_policy(FULL) == ("color", "translation", "cutout")
    assert aug.parse_policy("cutout, color") == ("cutout", "color")
    assert aug.policy_ops("color,cutout") == ("brightness", "saturation", "contrast", "cutout")
    with pytest.raises(ValueError, match="'colour'.*color, translation, cutout"):
        aug.parse_policy("colour,translation")
    with pytest.raises(ValueError, match="allowed"):
        aug.parse_policy("color,,cutout")
    with pytest.raises(ValueError, match="twice"):
        aug.parse_policy("color,color")
    with pytest.raises(ValueError, match="allowed"):
        aug.augment(_images((2, 8, 8, 1)), jax.random.key(0), policy="flip")


def test_bad_arguments():
    x = _images((2, 8, 8, 1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aug.augment(x, jax.random.key(0), policy=FULL, p=1.5)
    with pytest.raises(ValueError, match="NHWC"):
        aug.augment(x[0], jax.random.key(0), policy=FULL)


# --- identity, reproducibility ----------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_identity_at_p_zero_and_empty_policy(channels):
    x = _images((4, 16, 16, channels))
    key = jax.random.key(1)
    assert aug.augment(x, key, policy=FULL, p=0.0) is x
    assert aug.augment(x, key, policy="") is x
    # Traced p = 0: every gate is closed and skipped samples keep their exact bits.
    f = jax.jit(lambda x, k, p: aug.augment(x, k, policy=FULL, p=p))
    np.testing.assert_array_equal(np.asarray(f(x, key, jnp.float32(0.0))), np.asarray(x))


def test_saturation_is_identity_on_one_channel():
    x = _images((4, 8, 8, 1))
    np.testing.assert_array_equal(np.asarray(aug.saturation(x, jax.random.key(3))), np.asarray(x))


def test_same_key_same_output_different_keys_differ():
    x = _images((4, 16, 16, 3))
    a = aug.augment(x, jax.random.key(5), policy=FULL)
    b = aug.augment(x, jax.random.key(5), policy=FULL)
    c = aug.augment(x, jax.random.key(6), policy=FULL)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _changed(a, c).all()
    # Parameters are per sample: copies of one image come out different.
    same = jnp.repeat(x[:1], 4, axis=0)
    y = aug.augment(same, jax.random.key(5), policy=FULL)
    assert all(_changed(y[:1], y[i : i + 1])[0] for i in range(1, 4))


@pytest.mark.parametrize("size,channels", [(8, 1), (9, 3), (28, 1), (32, 3)])
def test_shapes_and_finite_range(size, channels):
    x = _images((8, size, size, channels))
    y = aug.augment(x, jax.random.key(2), policy=FULL)
    assert y.shape == x.shape and y.dtype == jnp.float32
    assert bool(jnp.isfinite(y).all())
    # Worst case: |x + b| <= 1.5, saturation <= x2 around a mean, contrast <= x1.5.
    assert float(jnp.abs(y).max()) < 1.5 * 3 * 1.5 * 2


def test_jit_with_traced_p_matches_eager():
    x = _images((4, 16, 16, 3))
    key = jax.random.key(9)
    f = jax.jit(lambda x, k, p: aug.augment(x, k, policy=FULL, p=p))
    # p = 1 traced opens every gate: the same ops with the same keys as static p = 1.
    np.testing.assert_allclose(
        np.asarray(f(x, key, jnp.float32(1.0))),
        np.asarray(aug.augment(x, key, policy=FULL, p=1.0)),
        atol=1e-6,
    )
    # The adaptive state's p can be passed straight in.
    state = adaptive.init_state(0.5)
    y = f(x, key, state["p"])
    assert y.shape == x.shape and bool(jnp.isfinite(y).all())


# --- colour statistics ------------------------------------------------------------------


def _check_uniform(values, low, high):
    """Samples look like U(low, high): inside the range, reaching both ends, mean and var."""
    values = np.asarray(values, np.float64)
    n, width = values.size, high - low
    assert values.min() >= low - 1e-6 and values.max() < high + 1e-6
    assert values.min() < low + 0.02 * width and values.max() > high - 0.02 * width
    se_mean = width / np.sqrt(12 * n)
    assert abs(values.mean() - (low + high) / 2) < 5 * se_mean
    assert abs(values.var() - width**2 / 12) < 0.15 * width**2 / 12


def test_color_on_constant_images_is_a_uniform_brightness_shift():
    # A grey constant image: saturation and contrast have nothing to scale, so 'color'
    # leaves each image constant, shifted by b ~ U(-0.5, 0.5).
    n, v = 2000, 0.25
    x = jnp.full((n, 8, 8, 3), v, jnp.float32)
    y = np.asarray(aug.augment(x, jax.random.key(0), policy="color"))
    per_image = y.reshape(n, -1)
    np.testing.assert_allclose(per_image - per_image[:, :1], 0.0, atol=1e-6)  # still constant
    _check_uniform(per_image[:, 0] - v, -0.5, 0.5)


def test_contrast_factor_range():
    # Halves at +a and -a: mean 0, so the output halves are +-a*c with c ~ U(0.5, 1.5).
    n, a = 2000, 0.4
    half = jnp.concatenate([jnp.full((4, 8, 1), a), jnp.full((4, 8, 1), -a)], axis=0)
    x = jnp.broadcast_to(half, (n, 8, 8, 1)).astype(jnp.float32)
    y = np.asarray(aug.contrast(x, jax.random.key(1)))
    c = y[:, 0, 0, 0] / a
    np.testing.assert_allclose(y[:, 7, 7, 0], -a * c, atol=1e-6)
    _check_uniform(c, 0.5, 1.5)


def test_saturation_factor_range():
    # Channels (a, -a, 0): channel mean 0, so the output is (a*s, -a*s, 0), s ~ U(0, 2).
    n, a = 2000, 0.5
    x = jnp.broadcast_to(jnp.array([a, -a, 0.0]), (n, 8, 8, 3)).astype(jnp.float32)
    y = np.asarray(aug.saturation(x, jax.random.key(2)))
    s = y[:, 0, 0, 0] / a
    np.testing.assert_allclose(y[..., 1], -y[..., 0], atol=1e-6)
    np.testing.assert_allclose(y[..., 2], 0.0, atol=1e-6)
    _check_uniform(s, 0.0, 2.0)


# --- translation ------------------------------------------------------------------------


@pytest.mark.parametrize("size,shift", [(8, 1), (28, 4), (32, 4)])
def test_translation_moves_a_bright_pixel_by_an_integer_within_bounds(size, shift):
    centre, n = size // 2, 512
    x = jnp.zeros((n, size, size, 3), jnp.float32).at[:, centre, centre, :].set(1.0)
    y = np.asarray(aug.augment(x, jax.random.key(3), policy="translation"))
    assert ((y == 0) | (y == 1)).all()  # whole-pixel moves, nothing interpolated
    lit = np.argwhere(y[..., 0] == 1.0)
    assert len(lit) == n  # one pixel per sample (it never leaves the frame here)
    np.testing.assert_array_equal(lit[:, 0], np.arange(n))
    np.testing.assert_array_equal(y[..., 1], y[..., 0])  # all channels move together
    dy, dx = lit[:, 1] - centre, lit[:, 2] - centre
    for d in (dy, dx):
        counts = np.bincount(d + shift, minlength=2 * shift + 1)
        assert len(counts) == 2 * shift + 1  # never beyond +-shift
        assert counts.min() > n / (2 * shift + 1) / 3  # every offset occurs, roughly evenly


def test_translation_is_a_zero_padded_shift_and_its_gradient_the_transpose():
    n, h, w = 6, 8, 8
    # Pixel values 1..64 identify their source position; padding brings in 0.
    index = jnp.arange(1, h * w + 1, dtype=jnp.float32).reshape(1, h, w, 1)
    x = jnp.broadcast_to(index, (n, h, w, 1))
    key = jax.random.key(4)
    y = np.asarray(aug.translation(x, key)).astype(int)[..., 0]
    weights = _images((n, h, w, 1), seed=7)
    grad = np.asarray(jax.grad(lambda x: (weights * aug.translation(x, key)).sum())(x))[..., 0]
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for b in range(n):
        src = np.argwhere(y[b] > 0)
        assert len(src) > 0
        i, j = src[0]
        si, sj = divmod(y[b, i, j] - 1, w)
        dy, dx = i - si, j - sj
        assert abs(dy) <= 1 and abs(dx) <= 1  # round(8 / 8) = 1
        # Every output pixel is its shifted source, or 0 where the source is outside.
        si_all, sj_all = ii - dy, jj - dx
        inside = (si_all >= 0) & (si_all < h) & (sj_all >= 0) & (sj_all < w)
        source = np.clip(si_all, 0, h - 1) * w + np.clip(sj_all, 0, w - 1) + 1
        expected = np.where(inside, source, 0)
        np.testing.assert_array_equal(y[b], expected)
        # d/dx sum(w * shift(x)) = shift^T(w): each source pixel gets its output's weight.
        want = np.zeros((h, w), np.float32)
        want[si_all[inside], sj_all[inside]] = np.asarray(weights)[b, ..., 0][inside]
        np.testing.assert_array_equal(grad[b], want)


# --- cutout -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 9, 32])
def test_cutout_zeroes_one_clipped_square_per_sample(size):
    n = 400
    side = int(size / 2 + 0.5)
    x = jnp.ones((n, size, size, 3), jnp.float32)
    y = np.asarray(aug.augment(x, jax.random.key(5), policy="cutout"))
    np.testing.assert_array_equal(y[..., 1], y[..., 0])  # same hole in every channel
    full = 0
    clipped = [0, 0]  # by a top/bottom border, by a left/right one
    covered = np.zeros((size, size), bool)
    for b in range(n):
        hole = y[b, ..., 0] == 0
        assert ((y[b] == 0) | (y[b] == 1)).all()
        rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
        # An axis-aligned rectangle: exactly the product of its row and column ranges.
        assert (np.diff(rows) == 1).all() and (np.diff(cols) == 1).all()
        assert hole.sum() == len(rows) * len(cols)
        for axis, span in enumerate((rows, cols)):
            # side long, or shorter only where clipped by a border (at most by half).
            touches = span[0] == 0 or span[-1] == size - 1
            assert len(span) == side or (touches and side - side // 2 <= len(span) < side)
            clipped[axis] += len(span) < side
        full += hole.sum() == side * side
        covered |= hole
    assert full > 0 and min(clipped) > 0
    assert covered.all()  # positions range over the whole image


def test_cutout_gradient_is_the_keep_mask():
    x = _images((4, 16, 16, 3))
    key = jax.random.key(6)
    grad = jax.grad(lambda x: aug.cutout(x, key).sum())(x)
    keep = aug.cutout(jnp.ones_like(x), key)
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(keep))
    assert 0 < float(keep.mean()) < 1


# --- gradients --------------------------------------------------------------------------


def test_gradient_of_brightness_is_one_and_color_preserves_sums():
    x = _images((4, 16, 16, 3))
    key = jax.random.key(7)
    weights = _images((4, 16, 16, 3), seed=8)
    g = jax.grad(lambda x: (weights * aug.brightness(x, key)).sum())(x)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(weights))
    # Saturation keeps each pixel's channel sum and contrast each image's sum, so the
    # gradient of a plain sum through all of 'color' is 1 everywhere.
    g = jax.grad(lambda x: aug.augment(x, key, policy="color").sum())(x)
    np.testing.assert_allclose(np.asarray(g), 1.0, atol=1e-5)


def test_gradient_through_full_policy_is_finite_and_nonzero():
    x = _images((4, 16, 16, 3))
    weights = _images((4, 16, 16, 3), seed=1)

    @jax.jit
    def grad(x, p):
        def loss(x):
            return (weights * aug.augment(x, jax.random.key(0), policy=FULL, p=p)).sum()

        return jax.grad(loss)(x)

    for p in (1.0, 0.5):
        g = grad(x, jnp.float32(p))
        assert bool(jnp.isfinite(g).all())
        assert float(jnp.abs(g).sum(axis=(1, 2, 3)).min()) > 0  # every sample gets a gradient


# --- gating by p ------------------------------------------------------------------------


def test_fraction_of_augmented_samples_is_p():
    n, p = 2000, 0.3
    f = jax.jit(lambda x, k, p: aug.augment(x, k, policy="cutout", p=p))
    tol = 4.5 * np.sqrt(p * (1 - p) / n)  # binomial standard error, ~1e-5 false alarms

    # Cutout always removes part of a constant 0.5 image: changed <=> applied.
    x = jnp.full((n, 8, 8, 1), 0.5, jnp.float32)
    frac = _changed(x, f(x, jax.random.key(0), jnp.float32(p))).mean()
    assert abs(frac - p) < tol

    # Each op of 'color' has its own gate: a sample is left alone by all three w.p. (1-p)^3.
    x = _images((n, 8, 8, 3))
    y = aug.augment(x, jax.random.key(1), policy="color", p=p)
    q = 1 - (1 - p) ** 3
    assert abs(_changed(x, y).mean() - q) < 4.5 * np.sqrt(q * (1 - q) / n)

    # Translation by (0, 0) (1 in 9 for 8 px) changes nothing even when applied.
    y = aug.augment(x, jax.random.key(2), policy="translation", p=p)
    q = p * (1 - 1 / 9)
    assert abs(_changed(x, y).mean() - q) < 4.5 * np.sqrt(q * (1 - q) / n)

    # Different gates per sample and per key: not all-or-nothing.
    y = aug.augment(x[:64], jax.random.key(3), policy="cutout", p=0.5)
    assert 0 < _changed(x[:64], y).sum() < 64


# --- adaptive p -------------------------------------------------------------------------


def test_init_and_accumulate():
    s = adaptive.init_state()
    assert set(s) == {"p", "sign_sum", "count"}
    assert all(v.dtype == jnp.float32 and v.shape == () for v in s.values())
    assert float(s["p"]) == 0.0
    assert float(adaptive.init_state(0.25)["p"]) == 0.25
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adaptive.init_state(-0.1)
    assert np.isnan(float(adaptive.rt(s)))

    s = adaptive.accumulate(s, jnp.array([2.0, -1.0, 0.5, 3.0]))
    s = adaptive.accumulate(s, jnp.array([-0.1, 0.0]))
    assert float(s["sign_sum"]) == 2.0 - 1.0  # signs: +1 -1 +1 +1, -1 0
    assert float(s["count"]) == 6.0
    assert float(adaptive.rt(s)) == pytest.approx(1 / 6)


def _with_rt(p, signs):
    s = adaptive.init_state(p)
    return adaptive.accumulate(s, jnp.asarray(signs, jnp.float32))


def test_adjust_moves_p_by_one_step_towards_target():
    ipa, speed = 256, 500_000
    step = ipa / speed
    # r_t = 1 > 0.6: p rises by exactly one step; accumulators reset.
    s = adaptive.adjust(_with_rt(0.5, [1, 1, 1, 1]), images_per_adjust=ipa, speed_images=speed)
    assert float(s["p"]) == pytest.approx(0.5 + step, abs=1e-7)
    assert float(s["sign_sum"]) == 0 and float(s["count"]) == 0
    # r_t = 0.5 < 0.6: p falls by one step.
    s = adaptive.adjust(_with_rt(0.5, [1, 1, 1, -1]), images_per_adjust=ipa, speed_images=speed)
    assert float(s["p"]) == pytest.approx(0.5 - step, abs=1e-7)
    # r_t = 0.6 exactly: sign(0) = 0, no move.
    s = adaptive.adjust(_with_rt(0.5, [1, 1, 1, 1, -1]), images_per_adjust=ipa)
    assert float(s["p"]) == 0.5
    # Another target.
    s = adaptive.adjust(_with_rt(0.5, [1, 1, 1, -1]), target=0.2, images_per_adjust=ipa)
    assert float(s["p"]) == pytest.approx(0.5 + ipa / 500_000, abs=1e-7)
    # Clipped at both ends.
    s = adaptive.adjust(_with_rt(0.999, [1, 1]), images_per_adjust=ipa, speed_images=1000)
    assert float(s["p"]) == 1.0
    s = adaptive.adjust(_with_rt(0.0, [-1, -1]), images_per_adjust=ipa)
    assert float(s["p"]) == 0.0
    # No data since the last adjustment: unchanged.
    s = adaptive.adjust(adaptive.init_state(0.3), images_per_adjust=ipa)
    assert float(s["p"]) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="images_per_adjust"):
        adaptive.adjust(s, images_per_adjust=0)


def test_adaptive_under_jit_goes_from_zero_to_one_in_speed_images():
    batch, every, speed = 8, 4, 3200
    ipa = batch * every  # 100 adjustments of 32 images cover `speed`

    @jax.jit
    def step(state, logits, do_adjust):
        state = adaptive.accumulate(state, logits)
        adjusted = adaptive.adjust(state, images_per_adjust=ipa, speed_images=speed)
        return jax.tree.map(lambda a, b: jnp.where(do_adjust, a, b), adjusted, state)

    overfit = jnp.ones((batch,))  # D says "real" to every real image: r_t = 1
    s = adaptive.init_state()
    for i in range(speed // batch):
        s = step(s, overfit, (i + 1) % every == 0)
    assert float(s["p"]) == pytest.approx(1.0, abs=1e-4)
    for i in range(every):
        s = step(s, overfit, (i + 1) % every == 0)
    assert float(s["p"]) == 1.0
    # Then D generalises (r_t = 0): p comes back down, one step per adjustment.
    for i in range(every):
        s = step(s, -overfit, (i + 1) % every == 0)
    assert float(s["p"]) == pytest.approx(1.0 - ipa / speed, abs=1e-6)
