"""`GANObjective`: runs G and D, draws latents and labels, augments D's inputs, adds the
loss and the regularisers. Pure functions of explicit variables: nothing is stored on the
object but the static choices read from the config.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_jax import losses, models
from gan_jax.augment import adaptive
from gan_jax.augment import config as augment_config
from gan_jax.objectives import regularisers as reg_lib


def _split_variables(variables):
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}
    return params, rest


class GANObjective:
    """The objective of an (optionally class-conditional) GAN with one G and one D.

    Attributes:
      generator, discriminator: the Flax modules.
      loss: the `losses.GANLoss`.
      regularisers: the `Regulariser`s of D and G.
      num_classes: 0 for an unconditional model.
      z_dim: latent size.
      policy: DiffAugment transforms applied to every D input ('' = none).
      adaptive: whether the augmentation probability adapts (ADA's heuristic).
    """

    def __init__(self, config):
        self.config = config
        self.generator, self.discriminator = models.build(config)
        self.loss = losses.get(config.loss.name)
        self.num_classes = models.num_classes(config)
        self.z_dim = int(config.model.get("z_dim", 0) or 0)
        gp = float(config.loss.get("gp_weight", 10.0)) if self.loss.gradient_penalty else 0.0
        self.regularisers = reg_lib.from_config(config, gradient_penalty_weight=gp)
        aug = augment_config.settings(config)
        self.augmentation = aug
        self.policy = ",".join(aug.policy)
        self.adaptive = aug.adaptive
        self.fixed_p = aug.p
        self.ada_target = aug.target
        self.ada_every = aug.adjust_every
        self.ada_speed = aug.speed_images

    # -- variables and training-time state ----------------------------------------------

    def init(self, key, image_shape):
        """(G variables, D variables) for a batch of one."""
        g_key, d_key = jax.random.split(key)
        z = jnp.zeros((1, self.z_dim), jnp.float32)
        x = jnp.zeros((1, *image_shape), jnp.float32)
        y = jnp.zeros((1,), jnp.int32) if self.num_classes else None
        g_vars = self.generator.init(g_key, z, y, train=False)
        d_vars = self.discriminator.init(d_key, x, y, train=False)
        return dict(g_vars), dict(d_vars)

    def init_extra(self):
        """Training-time state beside the networks: ADA's probability and its statistics."""
        return {"ada": adaptive.init_state(self.fixed_p)} if self.adaptive else {}

    def augment_p(self, extra):
        return extra["ada"]["p"] if self.adaptive else self.fixed_p

    # -- latents ------------------------------------------------------------------------

    def sample_latents(self, key, batch: int):
        """z ~ N(0, I) [batch, z_dim] and uniform class labels (None when unconditional).

        z comes from `key` itself, so an unconditional run draws the same latents as the
        step did before labels existed.
        """
        z = jax.random.normal(key, (batch, self.z_dim), jnp.float32)
        if not self.num_classes:
            return z, None
        labels = jax.random.randint(jax.random.fold_in(key, 1), (batch,), 0, self.num_classes)
        return z, labels.astype(jnp.int32)

    # The batch's keys (`gan_jax.input`); image-to-image objectives add 'source'.
    batch_keys = ("image", "label")

    def step_inputs(self, key, real_batch, batch_size: int):
        """(G's input, the labels D sees with the fakes, those it sees with the reals).

        A GAN draws latents and labels (`sample_latents`) and D sees the real batch's labels.
        """
        z, fake_y = self.sample_latents(key, batch_size)
        return z, fake_y, real_batch["label"]

    def labels_or_none(self, labels):
        return labels if self.num_classes else None

    # -- the networks -------------------------------------------------------------------

    def run_G(self, variables, z, labels, *, train: bool, key=None):
        """Images from G; returns (images, updated non-parameter collections).

        `key` feeds G's own randomness while training (StyleGAN2's noise and style mixing);
        these families have none and ignore it.
        """
        params, rest = _split_variables(variables)
        labels = self.labels_or_none(labels)
        if not train or not rest:
            out = self.generator.apply(variables, z, labels, train=train)
            return out, rest
        out, new = self.generator.apply(variables, z, labels, train=True, mutable=list(rest))
        return out, {**rest, **new}

    def run_D(self, variables, images, labels, *, key=None, p=0.0, train: bool):
        """D's logits on (augmented) images; returns (logits, updated collections).

        Every D input goes through here, so reals, fakes and regulariser inputs are all
        augmented the same way (with independent random parameters per sample).
        """
        if self.policy and key is not None:
            images = self.augmentation.apply(images, key, p)
        params, rest = _split_variables(variables)
        labels = self.labels_or_none(labels)
        if not train or not rest:
            out = self.discriminator.apply(variables, images, labels, train=train)
            return out, rest
        out, new = self.discriminator.apply(
            variables, images, labels, train=True, mutable=list(rest)
        )
        return out, {**rest, **new}

    def standing_statistics(self, variables, key, *, num_batches: int = 16, batch_size: int = 64):
        """G's variables with batch statistics recomputed for its current parameters.

        BigGAN's "standing statistics": the running averages in 'batch_stats' were collected
        along training by the raw generator, so they do not belong to an EMA of its weights
        (nor, early on, to the generator of the last steps). This runs G in training mode on
        `num_batches` batches of fresh latents and returns the average of their batch means
        and (unbiased) variances instead. Works for any batch-norm layer whose running update
        is `new = k * old + (1 - k) * batch`, whatever its momentum convention: `k` is read
        from one call started at zeros and one at ones.

        Args:
          variables: G's variables ({'params', 'batch_stats', ...}).
          key: PRNG key of the latents.
          num_batches: batches averaged.
          batch_size: latents per batch.

        Returns:
          `variables` with 'batch_stats' replaced (unchanged when G has none).
        """
        params, rest = _split_variables(variables)
        if "batch_stats" not in rest:
            return variables
        zeros = jax.tree.map(jnp.zeros_like, rest["batch_stats"])
        ones = jax.tree.map(jnp.ones_like, rest["batch_stats"])

        def updated(start, k):
            z, y = self.sample_latents(k, batch_size)
            v = {**rest, "params": params, "batch_stats": start}
            _, new = self.generator.apply(
                v, z, self.labels_or_none(y), train=True, mutable=list(rest)
            )
            return new["batch_stats"]

        k0 = jax.random.fold_in(key, num_batches)
        keep = jax.tree.map(jnp.subtract, updated(ones, k0), updated(zeros, k0))

        def body(i, acc):
            fresh = updated(zeros, jax.random.fold_in(key, i))
            return jax.tree.map(lambda a, r, m: a + r / (1.0 - m), acc, fresh, keep)

        total = jax.lax.fori_loop(0, num_batches, body, zeros)
        stats = jax.tree.map(lambda t: t / num_batches, total)
        return {**variables, "batch_stats": stats}

    # -- losses -------------------------------------------------------------------------

    def _weighted(self, reg, ctx, step):
        """(value, weighted value) of one regulariser, lazily every `interval` steps."""
        if reg.interval == 1:
            value = reg.value(ctx)
            return value, reg.weight * value
        on = (step % reg.interval) == 0
        value = jax.lax.cond(on, lambda: reg.value(ctx), lambda: jnp.zeros((), jnp.float32))
        return value, reg.weight * reg.interval * value

    def d_loss(self, d_params, d_rest, real, real_y, fake, fake_y, *, key, step, extra):
        """D's loss on a real and a (detached) fake batch, in two calls as the seed does.

        Returns:
          (loss, (updated collections, real logits, fake logits, {regulariser: value},
          `extra` as D's update leaves it: unchanged here, CycleGAN's fake histories move))
        """
        k_real, k_fake, k_reg = jax.random.split(key, 3)
        p = self.augment_p(extra)
        variables = {**d_rest, "params": d_params}
        real_logits, rest = self.run_D(variables, real, real_y, key=k_real, p=p, train=True)
        variables = {**rest, "params": d_params}
        fake_logits, rest = self.run_D(variables, fake, fake_y, key=k_fake, p=p, train=True)
        loss = self.loss.d_loss(real_logits, fake_logits)
        values = {}
        d_regs = [r for r in self.regularisers if r.net == "D"]
        for i, reg in enumerate(d_regs):
            # Penalty calls see D as it is now; their statistics updates are not kept (they
            # are not part of the data D models).
            reg_vars = {**rest, "params": d_params}
            k_i = jax.random.fold_in(k_reg, i)
            k_aug, k_own = jax.random.split(k_i)

            def run_d(x, labels, reg_vars=reg_vars, k_aug=k_aug):
                return self.run_D(reg_vars, x, labels, key=k_aug, p=p, train=True)[0]

            ctx = reg_lib.Context(
                params=d_params,
                run_d=run_d,
                real=real,
                fake=fake,
                real_labels=real_y,
                fake_labels=fake_y,
                key=k_own,
            )
            value, weighted = self._weighted(reg, ctx, step)
            values[reg.name] = value
            loss = loss + weighted
        return loss, (rest, real_logits, fake_logits, values, extra)

    def g_loss_of_fake(self, fake, fake_y, d_variables, *, key, extra, real=None):
        """G's loss through D; returns (loss, (D's updated collections, {term: value})).

        `real` is the step's last real batch: image-to-image objectives compare the fakes
        with it; a GAN's loss does not read it.
        """
        del real
        p = self.augment_p(extra)
        logits, rest = self.run_D(d_variables, fake, fake_y, key=key, p=p, train=True)
        return self.loss.g_loss(logits), (rest, {})

    def g_regularisation(self, g_params, g_rest, *, key, step, extra, batch_size):
        """The weighted sum of G's regularisers, and (their values, the updated `extra`).

        Here every G regulariser reads only the parameters; a family whose regulariser runs
        G (StyleGAN2's path length) overrides this and keeps its statistics in `extra`.
        """
        del g_rest, batch_size
        values, total = {}, jnp.zeros((), jnp.float32)
        for i, reg in enumerate(r for r in self.regularisers if r.net == "G"):
            ctx = reg_lib.Context(params=g_params, key=jax.random.fold_in(key, i))
            value, weighted = self._weighted(reg, ctx, step)
            values[reg.name] = value
            total = total + weighted
        return total, (values, extra)

    @property
    def has_g_regularisers(self) -> bool:
        return any(r.net == "G" for r in self.regularisers)

    # -- training-time state ------------------------------------------------------------

    def update_extra(self, extra, real_logits_list, *, step, images_per_step):
        """ADA: accumulates sign(D(real)) and moves p toward the target every few steps."""
        if not self.adaptive:
            return extra
        ada = extra["ada"]
        for logits in real_logits_list:
            ada = adaptive.accumulate(ada, logits)

        def adjust(a):
            return adaptive.adjust(
                a,
                target=self.ada_target,
                images_per_adjust=images_per_step * self.ada_every,
                speed_images=self.ada_speed,
            )

        ada = jax.lax.cond((step + 1) % self.ada_every == 0, adjust, lambda a: a, ada)
        return {**extra, "ada": ada}
