"""Each GAN loss on logits where the value is known by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

REAL = jnp.array([2.0, -1.0, 0.0, 3.0])
FAKE = jnp.array([-2.0, 0.5, 1.0, -0.5])


def _sig(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def test_nonsaturating_is_the_seeds_bce():
    # The seed: (BCE(sigmoid(real), 1) + BCE(sigmoid(fake), 0)) / 2 and BCE(sigmoid(fake), 1).
    d = losses.get("nonsaturating").d_loss(REAL, FAKE)
    want_d = (-np.log(_sig(REAL)).mean() - np.log(1 - _sig(FAKE)).mean()) / 2
    g = losses.get("nonsaturating").g_loss(FAKE)
    np.testing.assert_allclose(d, want_d, rtol=1e-6)
    np.testing.assert_allclose(g, -np.log(_sig(FAKE)).mean(), rtol=1e-6)


def test_bce_at_zero_logits_is_log2():
    zero = jnp.zeros(8)
    np.testing.assert_allclose(losses.get("nonsaturating").d_loss(zero, zero), math.log(2), 1e-6)
    np.testing.assert_allclose(losses.get("nonsaturating").g_loss(zero), math.log(2), 1e-6)
    np.testing.assert_allclose(losses.get("minimax").g_loss(zero), -math.log(2), 1e-6)


def test_bce_is_stable_for_large_logits():
    big = jnp.array([80.0, -80.0])
    value = losses.get("nonsaturating").g_loss(big)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, 40.0, rtol=1e-6)  # (0 + 80) / 2


def test_minimax_generator_loss():
    want = np.log(1 - _sig(FAKE)).mean()
    np.testing.assert_allclose(losses.get("minimax").g_loss(FAKE), want, rtol=1e-6)


def test_hinge():
    loss = losses.get("hinge")
    # relu(1 - [2,-1,0,3]) = [0,2,1,0] -> 0.75; relu(1 + [-2,.5,1,-.5]) = [0,1.5,2,.5] -> 1.0
    np.testing.assert_allclose(loss.d_loss(REAL, FAKE), 1.75, rtol=1e-6)
    np.testing.assert_allclose(loss.g_loss(FAKE), 0.25, rtol=1e-6)
    assert not loss.gradient_penalty


def test_wasserstein_gp():
    loss = losses.get("wasserstein_gp")
    np.testing.assert_allclose(loss.d_loss(REAL, FAKE), -0.25 - 1.0, rtol=1e-6)
    np.testing.assert_allclose(loss.g_loss(FAKE), 0.25, rtol=1e-6)
    assert loss.gradient_penalty


def test_least_squares():
    loss = losses.get("least_squares")
    want_d = 0.5 * np.mean((np.asarray(REAL) - 1) ** 2) + 0.5 * np.mean(np.asarray(FAKE) ** 2)
    np.testing.assert_allclose(loss.d_loss(REAL, FAKE), want_d, rtol=1e-6)
    np.testing.assert_allclose(loss.g_loss(jnp.ones(3)), 0.0, atol=1e-7)


def test_unknown_loss_names_the_choices():
    with pytest.raises(KeyError, match="hinge"):
        losses.get("nope")


def test_relativistic_average_by_hand():
    loss = losses.get("relativistic_average")
    r, f = np.asarray(REAL, np.float64), np.asarray(FAKE, np.float64)
    # mean(REAL) = 1, mean(FAKE) = -0.25: each logit is judged against the other side's mean.
    want_d = (-np.log(_sig(r + 0.25)).mean() - np.log(1 - _sig(f - 1.0)).mean()) / 2
    want_g = (-np.log(1 - _sig(r + 0.25)).mean() - np.log(_sig(f - 1.0)).mean()) / 2
    np.testing.assert_allclose(loss.d_loss(REAL, FAKE), want_d, rtol=1e-6)
    np.testing.assert_allclose(loss.g_loss(FAKE, REAL), want_g, rtol=1e-6)
    # Shifting every logit by a constant changes nothing: only differences count.
    np.testing.assert_allclose(loss.d_loss(REAL + 5, FAKE + 5), want_d, rtol=1e-6)
    assert loss.relativistic and not losses.get("nonsaturating").relativistic
