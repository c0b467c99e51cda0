"""The image-to-image objective (pix2pix, Isola et al. 2017; SRGAN-style super-resolution).

G reads the batch's source image (the degraded input: a small image, a masked image with its
mask, a luma, an edge map) instead of a latent; D is a PatchGAN that reads the target or
G's output together with the source at the target's size (for super-resolution, the source
upsampled bicubically), so it judges whether the output goes with its input. G minimises

  adv_weight * adversarial loss (`config.loss.name`, averaged over patches)
  + l1_weight * mean |G(source) - target|
  + feature_weight * mean (F(G(source)) - F(target))^2       (`loss.feature`, 0 = off)

F is a perceptual feature: the FID Inception network's first five convolutions at the image's
own size (`evaluation.inception.InceptionStem`), in place of SRGAN/ESRGAN's VGG features,
whose weights cannot be fetched offline.

pix2pix's recipe is the non-saturating loss with l1_weight = 100 (`loss.l1`). With
`loss.adv = 0` the objective is plain L1 regression (the PSNR-oriented model SR papers train
first); D still trains beside it, so `init_from` can start the adversarial fine-tuning from
it with a D that already knows the data. pix2pix's dropout is G's only randomness; its rng is
the step's G key.

The step, the optimisers, the EMA, the NaN gate, checkpoints and resume are the engine's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import models
from gan_jax.input import tasks
from gan_jax.models import pix2pix as pix2pix_lib
from gan_jax.objectives.gan import GANObjective, _split_variables

MAX_GRID_ROWS = 8


def display(source: np.ndarray, task: tasks.Task, channels: int) -> np.ndarray:
    """Model inputs [B, h, w, c'] as images [B, H, W, channels] beside the outputs: a small SR
    input enlarged by pixel repetition, a one-channel input repeated, the mask dropped."""
    x = np.asarray(source, np.float32)
    if task.kind == "sr":
        x = x.repeat(task.factor, axis=1).repeat(task.factor, axis=2)
    if task.kind == "inpaint":
        x = x[..., :-1]
    if x.shape[-1] != channels:
        x = np.repeat(x[..., :1], channels, axis=-1)
    return x


class Pix2PixObjective(GANObjective):
    """`GANObjective` with G reading a source image and an L1 term to the target."""

    batch_keys = ("image", "label", "source")

    def __init__(self, config):
        super().__init__(config)
        self.task = pix2pix_lib.task_of(config)
        self.l1_weight = float(config.loss.get("l1", 100.0))
        self.adv_weight = float(config.loss.get("adv", 1.0))
        self.feature_weight = float(config.loss.get("feature", 0.0) or 0.0)
        # images -> feature maps, set by the training layer when feature_weight > 0 (the
        # FID Inception network's stem: `training.objective_for`).
        self.features = None
        self.image_size = int(config.data.image_size)
        self.channels = int(config.data.channels)

    # -- variables ----------------------------------------------------------------------

    def init(self, key, image_shape):
        g_key, d_key, drop_key = jax.random.split(key, 3)
        source = jnp.zeros((1, *self.task.input_shape(image_shape)), jnp.float32)
        x = jnp.zeros((1, *image_shape), jnp.float32)
        g_vars = self.generator.init({"params": g_key, "dropout": drop_key}, source, train=False)
        d_vars = self.discriminator.init(d_key, x, self.condition(source), train=False)
        return dict(g_vars), dict(d_vars)

    # -- inputs -------------------------------------------------------------------------

    def condition(self, source):
        """The source at the target's size, as D reads it beside an image."""
        if self.task.kind != "sr":
            return source
        b, h, w, c = source.shape
        size = (b, h * self.task.factor, w * self.task.factor, c)
        return jax.image.resize(source, size, "bicubic", antialias=False)

    def step_inputs(self, key, real_batch, batch_size: int):
        del key, batch_size  # no latents: G's randomness (dropout) gets the G key
        source = real_batch["source"]
        cond = self.condition(source)
        return source, cond, cond

    def labels_or_none(self, labels):
        return labels  # D's condition image, never dropped

    # -- the networks -------------------------------------------------------------------

    def run_G(self, variables, z, labels, *, train: bool, key=None):
        """G(source); `z` is the source batch and `labels` its condition (unused by G)."""
        del labels
        params, rest = _split_variables(variables)
        rngs = {"dropout": key} if train and key is not None else None
        if not train or not rest:
            return self.generator.apply(variables, z, train=train, rngs=rngs), rest
        out, new = self.generator.apply(variables, z, train=True, rngs=rngs, mutable=list(rest))
        return out, {**rest, **new}

    def translate(self, variables, source):
        """Outputs for a batch of sources in evaluation mode (no dropout, running statistics)."""
        return self.run_G(variables, source, None, train=False)[0]

    # -- G's loss -----------------------------------------------------------------------

    def g_loss_of_fake(self, fake, fake_y, d_variables, *, key, extra, real=None):
        p = self.augment_p(extra)
        values = {}
        loss = jnp.zeros((), jnp.float32)
        if self.loss.relativistic:
            # D's view of the reals (ESRGAN's G step runs D on them too, in training mode).
            k_real, key = jax.random.split(key)
            real_logits, rest = self.run_D(d_variables, real, fake_y, key=k_real, p=p, train=True)
            d_variables = {**d_variables, **rest}
            logits, rest = self.run_D(d_variables, fake, fake_y, key=key, p=p, train=True)
            adv = self.loss.g_loss(logits, jax.lax.stop_gradient(real_logits))
        else:
            logits, rest = self.run_D(d_variables, fake, fake_y, key=key, p=p, train=True)
            adv = self.loss.g_loss(logits)
        values["g_adv"] = adv
        if self.adv_weight:
            loss = loss + self.adv_weight * adv
        l1 = jnp.mean(jnp.abs(fake - real))
        values["l1"] = l1
        if self.l1_weight:
            loss = loss + self.l1_weight * l1
        if self.feature_weight:
            if self.features is None:
                raise ValueError("loss.feature > 0 needs the feature network (objective_for)")
            diff = self.features(fake) - jax.lax.stop_gradient(self.features(real))
            values["feature"] = jnp.mean(jnp.square(diff))
            loss = loss + self.feature_weight * values["feature"]
        return loss, (rest, values)

    # -- grids --------------------------------------------------------------------------

    def preview(self, config, dataset) -> dict[str, np.ndarray]:
        """The validation examples the sample grids show: {'input', 'target', ...}."""
        return dataset.examples("validation", min(MAX_GRID_ROWS, int(config.num_sample_images)))

    def grid_images(self, outputs, preview) -> np.ndarray:
        """Rows of (input, output, target) for `images.make_grid(..., cols=3)`."""
        shown = display(preview["input"], self.task, self.channels)
        rows = np.stack([shown, np.asarray(outputs), preview["target"]], axis=1)
        return np.clip(rows.reshape(-1, *rows.shape[2:]), -1.0, 1.0)


def is_translation(config) -> bool:
    return not models.has_latent(config)
