"""CycleGAN's objective (Zhu et al. 2017): two translations learnt from unpaired domains.

G holds G_AB and G_BA, D holds D_A and D_B (`gan_jax.models.cyclegan`). With A and B real
batches, G minimises

  LSGAN(D_B(G_AB(a))) + LSGAN(D_A(G_BA(b)))                     adversarial, least squares
  + cycle * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)          cycle consistency (10)
  + cycle * identity * (|G_AB(b) - b| + |G_BA(a) - a|)           identity (0.5)

and each D the least-squares loss on its domain's reals and on fakes drawn from a history of
`model.pool_size` (50) earlier fakes (Shrivastava et al.'s buffer: once full, each new fake is
shown with probability 1/2, otherwise a random stored one is shown and replaced by it). The
buffers live in the state's `extra`, so a resume continues them exactly.

Where this differs from CycleGAN's loop: the engine updates D first and then G through the
updated D (CycleGAN updates G first, with D frozen); the batch is the engine's (CycleGAN
trains with batch 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.objectives.gan import GANObjective, _split_variables

MAX_GRID_ROWS = 8


def query_pool(pool, count, images, key):
    """Shows `images` to D through a history buffer; returns (shown, new pool, new count).

    pool [size, ...] holds `count` (<= size) stored fakes. Each image in turn: while the pool
    is not full it is stored and shown; once full, with probability 1/2 a random stored image
    is shown and the new one takes its place, otherwise the new one is shown and the pool
    kept. size 0: the images are shown as they are.
    """
    size = pool.shape[0]
    if size == 0:
        return images, pool, count

    def one(carry, item):
        pool, count = carry
        image, k = item
        k_coin, k_index = jax.random.split(k)
        full = count >= size
        swap = full & (jax.random.uniform(k_coin) > 0.5)
        index = jnp.where(full, jax.random.randint(k_index, (), 0, size), count)
        old = pool[index]
        shown = jnp.where(swap, old, image)
        store = ~full | swap
        pool = pool.at[index].set(jnp.where(store, image, old))
        return (pool, jnp.minimum(count + 1, size)), shown

    keys = jax.random.split(key, images.shape[0])
    (pool, count), shown = jax.lax.scan(one, (pool, count), (images, keys))
    return shown, pool, count


class CycleGANObjective(GANObjective):
    """Two generators, two discriminators, cycle and identity losses, fake histories."""

    batch_keys = ("image", "label", "source")
    task = None  # no degradation: A's images are G_AB's inputs as they are

    def __init__(self, config):
        super().__init__(config)
        self.cycle = float(config.loss.get("cycle", 10.0))
        self.identity = float(config.loss.get("identity", 0.5))
        self.pool_size = int(config.model.get("pool_size", 50))
        self.image_size = int(config.data.image_size)
        self.channels = int(config.data.channels)

    @property
    def image_shape(self):
        return (self.image_size, self.image_size, self.channels)

    def init(self, key, image_shape):
        g_key, d_key = jax.random.split(key)
        x = jnp.zeros((1, *image_shape), jnp.float32)
        return (
            dict(self.generator.init(g_key, x, x, train=False)),
            dict(self.discriminator.init(d_key, x, x, train=False)),
        )

    def init_extra(self):
        # Separate arrays: one buffer twice in a donated state is an error.
        def pool():
            return jnp.zeros((self.pool_size, *self.image_shape), jnp.float32)

        def zero():
            return jnp.zeros((), jnp.int32)

        return {
            **super().init_extra(),
            "pool_a": pool(),
            "pool_b": pool(),
            "pool_a_n": zero(),
            "pool_b_n": zero(),
        }

    # -- inputs and networks --------------------------------------------------------------

    def step_inputs(self, key, real_batch, batch_size: int):
        """G reads {'a', 'b'}; A's reals ride along as the 'labels' of D's and G's losses."""
        del key, batch_size
        a = real_batch["source"]
        return {"a": a, "b": real_batch["image"]}, a, a

    def labels_or_none(self, labels):
        return labels

    def run_G(self, variables, z, labels, *, train: bool, key=None):
        del labels, key  # no randomness in G
        params, rest = _split_variables(variables)
        kwargs = {"train": train, "identity": self.identity > 0}
        if not train or not rest:
            return self.generator.apply(variables, z["a"], z["b"], **kwargs), rest
        out, new = self.generator.apply(variables, z["a"], z["b"], mutable=list(rest), **kwargs)
        return out, {**rest, **new}

    def _run_D(self, variables, a, b, *, train: bool):
        params, rest = _split_variables(variables)
        if not train or not rest:
            return self.discriminator.apply(variables, a, b, train=train), rest
        out, new = self.discriminator.apply(variables, a, b, train=True, mutable=list(rest))
        return out, {**rest, **new}

    def translate(self, variables, source):
        """G_AB on a batch of A images."""
        method = type(self.generator).ab
        return self.generator.apply(variables, source, train=False, method=method)

    # -- losses -------------------------------------------------------------------------

    def d_loss(self, d_params, d_rest, real, real_y, fake, fake_y, *, key, step, extra):
        """D_A and D_B on their reals (`real_y` = A, `real` = B) and on pooled fakes."""
        del fake_y, step
        k_a, k_b = jax.random.split(jax.random.fold_in(key, 7))
        fake_a, pool_a, n_a = query_pool(extra["pool_a"], extra["pool_a_n"], fake["fake_a"], k_a)
        fake_b, pool_b, n_b = query_pool(extra["pool_b"], extra["pool_b_n"], fake["fake_b"], k_b)
        extra = {**extra, "pool_a": pool_a, "pool_b": pool_b, "pool_a_n": n_a, "pool_b_n": n_b}
        variables = {**d_rest, "params": d_params}
        (ra, rb), rest = self._run_D(variables, real_y, real, train=True)
        (fa, fb), rest = self._run_D({**rest, "params": d_params}, fake_a, fake_b, train=True)
        loss_a, loss_b = self.loss.d_loss(ra, fa), self.loss.d_loss(rb, fb)
        values = {"d_a": loss_a, "d_b": loss_b}
        return loss_a + loss_b, (rest, rb, fb, values, extra)

    def g_loss_of_fake(self, fake, fake_y, d_variables, *, key, extra, real=None):
        """Adversarial + cycle + identity terms; `fake_y` is A's reals, `real` B's."""
        del key, extra
        a, b = fake_y, real
        (la, lb), rest = self._run_D(d_variables, fake["fake_a"], fake["fake_b"], train=True)
        adv = self.loss.g_loss(lb) + self.loss.g_loss(la)
        cyc = jnp.mean(jnp.abs(fake["rec_a"] - a)) + jnp.mean(jnp.abs(fake["rec_b"] - b))
        values = {"g_adv": adv, "cycle": cyc}
        loss = adv + self.cycle * cyc
        if self.identity > 0:
            idt = jnp.mean(jnp.abs(fake["idt_b"] - b)) + jnp.mean(jnp.abs(fake["idt_a"] - a))
            values["identity"] = idt
            loss = loss + self.cycle * self.identity * idt
        return loss, (rest, values)

    # -- grids --------------------------------------------------------------------------

    def preview(self, config, dataset) -> dict[str, np.ndarray]:
        ex = dataset.examples("validation", min(MAX_GRID_ROWS, int(config.num_sample_images)))
        return {**ex, "cols": 3 if "target" in ex else 2}

    def grid_images(self, outputs, preview) -> np.ndarray:
        """Rows of (A image, G_AB of it[, its known translation])."""
        parts = [preview["input"], np.asarray(outputs)]
        if "target" in preview:
            parts.append(preview["target"])
        rows = np.stack(parts, axis=1)
        return np.clip(rows.reshape(-1, *rows.shape[2:]), -1.0, 1.0)
