"""StyleGAN2's objective: style mixing and noise in G's training calls, and the path-length
regulariser (its running mean kept in the state's `extra`).

Everything else is `GANObjective`'s: the loss (StyleGAN2's non-saturating logistic loss is
the package's 'nonsaturating'), lazy R1 (`reg.r1`, `reg.r1_every`), the augmentation of
every D input (ADA's pipeline with `augment.mode='ada'`) and ADA's p in `extra`.

Where this differs from StyleGAN2-ADA's training loop: its lazy regularisers run as extra
optimiser steps (with Adam's rate and betas adjusted for them); here they join the main
update of their network on the steps they run (weight x interval), as the engine does for
every model.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from gan_jax.objectives.gan import GANObjective, _split_variables

PL_DECAY = 0.01  # the running mean's rate
PL_BATCH_SHRINK = 2  # the path-length batch is the batch / 2


def path_lengths(images_of, ws: jax.Array, key: jax.Array) -> jax.Array:
    """Per-sample ||J_w^T y||: J_w the Jacobian of `images_of` at ws [B, L, D], y ~ N(0, I) /
    sqrt(H W) an image-shaped probe; the squared gradient is summed over D and averaged
    over the L copies of w, as StyleGAN2 does."""
    images, pullback = jax.vjp(images_of, ws)
    h, w = images.shape[1:3]
    y = jax.random.normal(key, images.shape, images.dtype) / math.sqrt(h * w)
    (grad_ws,) = pullback(y)
    return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grad_ws), axis=2), axis=1) + 1e-12)


class StyleGAN2Objective(GANObjective):
    """`GANObjective` plus G's randomness (noise, style mixing) and path-length regularity."""

    def __init__(self, config):
        super().__init__(config)
        self.style_mixing = float(config.model.get("style_mixing", 0.9))
        reg = config.get("reg", {})
        self.pl_weight = float(reg.get("pl", 0.0) or 0.0)
        self.pl_every = int(reg.get("pl_every", 4) or 4)

    def init_extra(self):
        extra = super().init_extra()
        if self.pl_weight > 0:
            extra = {**extra, "pl_mean": jnp.zeros((), jnp.float32)}
        return extra

    # -- G ------------------------------------------------------------------------------

    def mapping(self, variables, z, labels, *, train: bool, key=None, update_w_avg=True):
        """ws [B, num_ws, w_dim], mixed with a second latent's from a random layer on (a
        fraction `style_mixing` of) training batches; returns (ws, updated collections)."""
        params, rest = _split_variables(variables)
        labels = self.labels_or_none(labels)
        mutable = list(rest) if train and rest else False
        out = self.generator.apply(
            variables,
            z,
            labels,
            train=train,
            update_w_avg=update_w_avg,
            method=type(self.generator).mapping,
            mutable=mutable,
        )
        ws, new = out if mutable else (out, {})
        rest = {**rest, **new}
        if train and key is not None and self.style_mixing > 0:
            k_cut, k_on, k_z = jax.random.split(jax.random.fold_in(key, 1), 3)
            n = ws.shape[1]
            cutoff = jax.random.randint(k_cut, (), 1, n)
            cutoff = jnp.where(jax.random.uniform(k_on) < self.style_mixing, cutoff, n)
            z2 = jax.random.normal(k_z, z.shape, z.dtype)
            ws2 = self.generator.apply(
                {**rest, "params": params},
                z2,
                labels,
                train=False,
                method=type(self.generator).mapping,
            )
            layer = jnp.arange(n)[None, :, None]
            ws = jnp.where(layer < cutoff, ws, ws2)
        return ws, rest

    def synthesis(self, variables, ws, *, noise_mode: str, key=None):
        rngs = {"noise": key} if noise_mode == "random" else None
        return self.generator.apply(
            variables, ws, noise_mode, method=type(self.generator).synthesis, rngs=rngs
        )

    def run_G(self, variables, z, labels, *, train: bool, key=None):
        """Training calls (with a key): style mixing, random noise, w_avg updated. Other
        calls: the plain mapping and constant noise (deterministic sampling)."""
        if not train or key is None:
            return super().run_G(variables, z, labels, train=train)
        ws, rest = self.mapping(variables, z, labels, train=True, key=key)
        params, _ = _split_variables(variables)
        images = self.synthesis(
            {**rest, "params": params}, ws, noise_mode="random", key=jax.random.fold_in(key, 2)
        )
        return images, rest

    # -- path-length regularisation -----------------------------------------------------

    def path_length(self, g_params, g_rest, pl_mean, *, key, batch_size):
        """(penalty, new running mean): E[(||J_w^T y|| - a)^2], y ~ N(0, I) / sqrt(HW).

        J_w is the Jacobian of the images with respect to ws; its norm per sample is
        sqrt(mean over the ws of the squared gradient's sum), a its running mean.
        """
        n = max(1, batch_size // PL_BATCH_SHRINK)
        k_z, k_map, k_noise, k_y = jax.random.split(key, 4)
        z, labels = self.sample_latents(k_z, n)
        variables = {**g_rest, "params": g_params}
        ws, _ = self.mapping(variables, z, labels, train=True, key=k_map, update_w_avg=False)

        def images_of(w):
            return self.synthesis(variables, w, noise_mode="random", key=k_noise)

        lengths = path_lengths(images_of, ws, k_y)
        new_mean = pl_mean + PL_DECAY * (jnp.mean(jax.lax.stop_gradient(lengths)) - pl_mean)
        return jnp.mean(jnp.square(lengths - new_mean)), new_mean

    def g_regularisation(self, g_params, g_rest, *, key, step, extra, batch_size):
        total, (values, extra) = super().g_regularisation(
            g_params, g_rest, key=key, step=step, extra=extra, batch_size=batch_size
        )
        if self.pl_weight <= 0:
            return total, (values, extra)
        pl_key = jax.random.fold_in(key, 1000)
        old = extra["pl_mean"]

        def run():
            return self.path_length(g_params, g_rest, old, key=pl_key, batch_size=batch_size)

        if self.pl_every == 1:
            penalty, new_mean = run()
        else:
            on = (step % self.pl_every) == 0
            penalty, new_mean = jax.lax.cond(on, run, lambda: (jnp.zeros((), jnp.float32), old))
        values = {**values, "pl": penalty, "pl_mean": new_mean}
        total = total + self.pl_weight * self.pl_every * penalty
        return total, (values, {**extra, "pl_mean": jax.lax.stop_gradient(new_mean)})

    @property
    def has_g_regularisers(self) -> bool:
        return super().has_g_regularisers or self.pl_weight > 0
