"""GAN objectives, chosen by `config.loss.name`.

Each loss takes the discriminator's raw logits (the seed's final Sigmoid is folded in here,
where log-sigmoid is numerically stable) and returns scalar means. To add a loss, write a
`GANLoss` below and add one line to `LOSSES`.
"""

import dataclasses

import jax
import jax.numpy as jnp

from gan_jax import config_lib


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A pair of objectives; both are minimised.

    Attributes:
      d_loss: (real_logits, fake_logits) -> scalar, the discriminator's loss.
      g_loss: (fake_logits,) -> scalar, the generator's loss; a relativistic loss takes
        (fake_logits, real_logits), as G's loss then depends on D's view of the reals too.
      gradient_penalty: whether the step adds `gp_weight * E[(|grad D(x_hat)| - 1)^2]`.
      relativistic: whether `g_loss` needs the real logits.
    """

    d_loss: callable
    g_loss: callable
    gradient_penalty: bool = False
    relativistic: bool = False


def _bce_with_logits(logits, target):
    # BCE(sigmoid(l), t) = -t*log_sigmoid(l) - (1-t)*log_sigmoid(-l), stable for large |l|.
    return -(target * jax.nn.log_sigmoid(logits) + (1 - target) * jax.nn.log_sigmoid(-logits))


def _ns_d(real, fake):
    # The seed: (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2.
    return (_bce_with_logits(real, 1.0).mean() + _bce_with_logits(fake, 0.0).mean()) / 2


def _ns_g(fake):
    # The seed's generator loss, BCE(D(G(z)), 1) = -log D(G(z)) ("non-saturating").
    return _bce_with_logits(fake, 1.0).mean()


def _minimax_g(fake):
    # Goodfellow et al.'s original: minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0).
    return -_bce_with_logits(fake, 0.0).mean()


def _hinge_d(real, fake):
    return jax.nn.relu(1.0 - real).mean() + jax.nn.relu(1.0 + fake).mean()


def _wasserstein_d(real, fake):
    return fake.mean() - real.mean()


def _critic_g(fake):
    # Shared by hinge and Wasserstein: the generator raises the critic's score.
    return -fake.mean()


def _lsgan_d(real, fake):
    return 0.5 * jnp.square(real - 1.0).mean() + 0.5 * jnp.square(fake).mean()


def _lsgan_g(fake):
    return 0.5 * jnp.square(fake - 1.0).mean()


def _ra_d(real, fake):
    # Relativistic average (Jolicoeur-Martineau 2018, ESRGAN's D): how much more real a real
    # image looks than the average fake, and a fake than the average real.
    return (
        _bce_with_logits(real - fake.mean(), 1.0).mean()
        + _bce_with_logits(fake - real.mean(), 0.0).mean()
    ) / 2


def _ra_g(fake, real):
    # The same with the targets swapped: G also pulls the reals' relative score down.
    return (
        _bce_with_logits(real - fake.mean(), 0.0).mean()
        + _bce_with_logits(fake - real.mean(), 1.0).mean()
    ) / 2


# Objectives whose G loss gives the relativistic loss the real logits it needs.
RELATIVISTIC_MODELS = ("pix2pix",)

LOSSES = {
    "nonsaturating": GANLoss(_ns_d, _ns_g),
    "minimax": GANLoss(_ns_d, _minimax_g),
    "hinge": GANLoss(_hinge_d, _critic_g),
    "wasserstein_gp": GANLoss(_wasserstein_d, _critic_g, gradient_penalty=True),
    "least_squares": GANLoss(_lsgan_d, _lsgan_g),
    "relativistic_average": GANLoss(_ra_d, _ra_g, relativistic=True),
}


def get(name: str) -> GANLoss:
    """Returns the loss registered as `name`."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def validate(config) -> None:
    """Checks config.loss.{name, gp_weight} (the keys this stage owns)."""
    config_lib.choice(config, "loss.name", tuple(LOSSES))
    if LOSSES[config.loss.name].relativistic:
        config_lib.require(
            config.model.get("name") in RELATIVISTIC_MODELS,
            "loss.name",
            f"'{config.loss.name}' needs D's logits on the reals in G's loss, which only "
            f"{', '.join(RELATIVISTIC_MODELS)} computes; choose another loss for "
            f"'{config.model.get('name')}'",
        )
    if "gp_weight" in config.loss:
        config_lib.number_in(config, "loss.gp_weight", 0.0, 1e6)
