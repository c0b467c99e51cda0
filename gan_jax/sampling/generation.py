"""Load a trained generator from a workdir and turn latents into images, batch by batch.

    handle = load_generator("runs/digits")              # latest step, EMA weights if kept
    for batch in generate(handle, 10_000, seed=0):       # uint8 [<=batch_size, H, W, C]
        ...                                               # only one batch is ever on device

Latents are reproducible per image: image `i` of seed `s` uses the key
`fold_in(PRNGKey(s), i)`, so the same seed gives the same pixels whatever `num` or
`batch_size` is, and the first 16 images of a 64-image grid are the 16 of a 16-image grid.
The seed of an interpolation key point (`latents_for_seeds`) is image 0 of that seed's grid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import config_lib, models
from gan_jax.errors import SamplingError
from gan_jax.objectives.latents import latents
from gan_jax.training import checkpoint as ckpt_lib
from gan_jax.training import state as state_lib

BEST_DIR = "checkpoints_best"
DEFAULT_BATCH_SIZE = 256


@dataclasses.dataclass(frozen=True)
class Generator:
    """A loaded generator, ready to sample.

    Attributes:
      config: the run's config, read from `workdir/config.json`.
      module: the Flax generator module built from the config.
      variables: {'params', 'batch_stats'} on the default device.
      step: the training step of the checkpoint.
      z_dim: latent size.
      num_classes: classes of a class-conditional model, 0 when unconditional.
      use_ema: whether `variables['params']` are the EMA weights.
      workdir: where it was loaded from ('' when built in memory).
      psi: StyleGAN2's truncation in w (1 = none; 0 = the average w), else unused.
      noise_mode: StyleGAN2's noise inputs: 'const' (deterministic), 'random' (drawn from
        the seed, per batch), 'none'.
    """

    config: ml_collections.ConfigDict
    module: Any
    variables: Any
    step: int
    z_dim: int
    num_classes: int = 0
    use_ema: bool = False
    workdir: str = ""
    psi: float = 1.0
    noise_mode: str = "const"

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def is_style_based(self) -> bool:
        """A StyleGAN2 generator: mapping to w, truncation in w, noise inputs, style mixing."""
        return self.config.model.get("name", "") == "stylegan2"

    def style_kwargs(self, key) -> dict:
        """Keyword arguments of a StyleGAN2 generator call (none for the other models)."""
        if not self.is_style_based:
            return {}
        rngs = {"noise": key} if self.noise_mode == "random" else None
        return {"psi": self.psi, "noise_mode": self.noise_mode, "rngs": rngs}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return state_lib.image_shape(self.config)

    @functools.cached_property
    def _apply(self):
        # One compiled function per handle; every batch is padded to one shape, so it
        # compiles once. Converting to uint8 on device quarters the bytes sent to the host.
        def apply(variables, z, labels, key):
            labels = labels if self.conditional else None
            x = self.module.apply(variables, z, labels, train=False, **self.style_kwargs(key))
            return jnp.clip(jnp.round((x + 1.0) * 127.5), 0, 255).astype(jnp.uint8)

        return jax.jit(apply)


def _num_classes(config) -> int:
    return models.num_classes(config)


def from_state(config, state: state_lib.GANState, *, use_ema: bool = True) -> Generator:
    """Wraps an in-memory GANState (e.g. what `train_and_evaluate` returns) as a Generator.

    Args:
      config: the run's config.
      state: the trained state.
      use_ema: use the EMA weights when the run kept them.

    Returns:
      A Generator handle.
    """
    generator, _ = models.build(config)
    has_ema = bool(state.ema_params)
    variables = state_lib.sampling_variables_fn(config, use_ema=use_ema)(state)
    variables = jax.device_get(variables)
    return Generator(
        config=config,
        module=generator,
        variables=jax.device_put(variables),
        step=int(jax.device_get(state.step)),
        z_dim=int(config.model.z_dim),
        num_classes=_num_classes(config),
        use_ema=use_ema and has_ema,
    )


class _ReadOnlyNotices(logging.Filter):
    """Drops orbax's warnings that a read-only manager will not save: expected here."""

    def filter(self, record):
        text = record.getMessage()
        return not ("read_only=True" in text or "directory is read only" in text)


@contextlib.contextmanager
def _quiet_read_only():
    logger, notices = logging.getLogger("absl"), _ReadOnlyNotices()
    logger.addFilter(notices)
    try:
        yield
    finally:
        logger.removeFilter(notices)


def _parse_step(step) -> int | str | None:
    if step is None or step == "" or step == "latest":
        return None
    if step == "best":
        return "best"
    try:
        value = int(step)
    except (TypeError, ValueError):
        raise SamplingError(
            f"--step must be a step number, 'latest' or 'best', got {step!r}"
        ) from None
    if value < 0:
        raise SamplingError(f"--step must be >= 0, got {value}")
    return value


def load_generator(
    workdir: str,
    step: int | str | None = None,
    *,
    use_ema: bool = True,
    standing_stats: int | None = None,
) -> Generator:
    """Loads the generator of a training run with the config saved beside it.

    Args:
      workdir: the run's folder (holds config.json and checkpoints/).
      step: None or 'latest' for the latest checkpoint, an int for that step, 'best' for
        the best-FID checkpoint in `workdir/checkpoints_best`.
      use_ema: use the EMA weights when the run kept them (config.ema_decay > 0).
      standing_stats: batches of standing statistics for the sampled weights (0: the
        running ones), instead of the run's `config.standing_stats`; None keeps the run's.

    Returns:
      A Generator handle.

    Raises:
      ConfigError: no config.json, or one no model can be built from.
      CheckpointError: no checkpoint, no such step, or one that does not fit the config.
      SamplingError: a malformed `step`.
    """
    step = _parse_step(step)
    if not os.path.isdir(workdir):
        raise SamplingError(f"workdir '{workdir}' does not exist")
    config = config_lib.load(workdir)
    if standing_stats is not None:
        if standing_stats < 0:
            raise SamplingError(f"standing_stats must be >= 0, got {standing_stats}")
        with config.unlocked():
            config.standing_stats = int(standing_stats)
    if config.model.get("name", "") in models.MODELS and not models.has_latent(config):
        kind = config.data.get("task", "") or "CycleGAN"
        raise SamplingError(
            f"'{workdir}' is an image-to-image run ({kind}): it "
            "translates images rather than sampling them; use translate.py --workdir=... "
            "--input=IMAGE_OR_FOLDER --out=FOLDER"
        )
    try:
        generator, _ = models.build(config)
        abstract = jax.eval_shape(
            lambda key: state_lib.create_state(config, key), jax.random.PRNGKey(0)
        )
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise config_lib.ConfigError(
            f"config.json in '{workdir}' does not describe a model this version can build: {e}"
        ) from None
    # Restore onto one device: sampling needs no mesh, and this works whatever the
    # training run's device count was.
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract
    )

    with _quiet_read_only():
        state = _restore(workdir, step, abstract)
    has_ema = bool(state.ema_params)
    return Generator(
        config=config,
        module=generator,
        variables=state_lib.sampling_variables_fn(config, use_ema=use_ema)(state),
        step=int(jax.device_get(state.step)),
        z_dim=int(config.model.z_dim),
        num_classes=_num_classes(config),
        use_ema=use_ema and has_ema,
        workdir=workdir,
    )


def restore_state(workdir: str, step, abstract):
    """The GANState of a run's checkpoint `step` (None/'latest', a number, 'best'), restored
    into the shapes of `abstract` without orbax's read-only notices."""
    with _quiet_read_only():
        return _restore(workdir, _parse_step(step), abstract)


def _restore(workdir: str, step, abstract):
    """Restores the GANState of `step` (None: latest, 'best': checkpoints_best) into `abstract`."""
    if step == "best":
        best_dir = os.path.join(os.path.abspath(workdir), BEST_DIR)
        if not os.path.isdir(best_dir):
            raise ckpt_lib.CheckpointError(
                f"no best checkpoint in '{best_dir}': it is kept by evaluation during training "
                "(FID); use --step=N or the latest checkpoint instead"
            )
        checkpointer = ckpt_lib.Checkpointer(workdir, read_only=True, subdir=BEST_DIR)
        restore_step = None
    else:
        if not os.path.isdir(ckpt_lib.checkpoint_dir(workdir)):
            raise ckpt_lib.CheckpointError(
                f"no checkpoint in '{ckpt_lib.checkpoint_dir(workdir)}': train first "
                f"(python train.py --config=... --workdir={workdir})"
            )
        checkpointer = ckpt_lib.Checkpointer(workdir, read_only=True)
        restore_step = step
    try:
        state = checkpointer.restore(abstract, restore_step)
    except ckpt_lib.CheckpointError as e:
        # Orbax's advice to pad or truncate arrays is not for users: drop it.
        raise ckpt_lib.CheckpointError(str(e).split(" Truncating/padding")[0]) from None
    finally:
        checkpointer.close()
    return state


def latents_for_seeds(z_dim: int, seeds, *, truncation: float | None = None) -> np.ndarray:
    """One latent per seed: image 0 of that seed's grid. Returns float32 [len(seeds), z_dim]."""
    return np.concatenate([latents(z_dim, 1, seed=s, truncation=truncation) for s in seeds])


def _check_labels(handle: Generator, labels, num: int) -> np.ndarray | None:
    if labels is None:
        if not handle.conditional:
            return None
        labels = np.arange(num) % handle.num_classes  # every class in turn
    if not handle.conditional:
        raise SamplingError(
            "this model is unconditional (config.model has no num_classes): drop --label"
        )
    labels = np.broadcast_to(np.asarray(labels, np.int32), (num,))
    bad = labels[(labels < 0) | (labels >= handle.num_classes)]
    if bad.size:
        raise SamplingError(f"label {int(bad[0])} is not in [0, {handle.num_classes})")
    return labels


def render(
    handle: Generator,
    z,
    *,
    labels=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pad_to: int | None = None,
    noise_seed: int = 0,
) -> Iterator[np.ndarray]:
    """Runs the generator over latents `z` [N, z_dim], one batch at a time.

    Args:
      handle: from `load_generator` or `from_state`.
      z: float32 [N, z_dim] latents (host array).
      labels: class labels for a conditional model (int or [N]); None cycles the classes.
      batch_size: images per device call; bounds device memory.
      pad_to: pad every call to this many images (default min(batch_size, N)), so that
        several calls share one compilation.
      noise_seed: StyleGAN2 with noise_mode 'random': batch i's noise comes from
        fold_in(PRNGKey(noise_seed), i).

    Yields:
      uint8 [b, H, W, C] numpy batches, b <= batch_size, N images in all, in order.
    """
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != handle.z_dim:
        raise SamplingError(f"latents must be [N, {handle.z_dim}], got {z.shape}")
    if batch_size < 1:
        raise SamplingError(f"batch_size must be >= 1, got {batch_size}")
    n = z.shape[0]
    labels = _check_labels(handle, labels, n)
    size = pad_to or min(batch_size, n)
    for lo in range(0, n, size):
        zb = z[lo : lo + size]
        b = zb.shape[0]
        if b < size:  # pad the last batch: one shape, one compilation
            zb = np.concatenate([zb, np.zeros((size - b, handle.z_dim), np.float32)])
        lb = None
        if labels is not None:
            lb = np.zeros((size,), np.int32)
            lb[:b] = labels[lo : lo + b]
        key = jax.random.fold_in(jax.random.PRNGKey(noise_seed), lo // size)
        out = handle._apply(handle.variables, zb, lb, key)
        yield np.asarray(jax.device_get(out))[:b]


def generate(
    handle: Generator,
    num: int,
    *,
    seed: int = 0,
    truncation: float | None = None,
    labels=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[np.ndarray]:
    """Generates `num` images in batches; latents are drawn per batch, never all at once.

    Args:
      handle: from `load_generator` or `from_state`.
      num: images to make (>= 1).
      seed: same seed, same pixels.
      truncation: see `latents`; None for the plain normal.
      labels: class label(s) for a conditional model; an error for an unconditional one.
      batch_size: images per device call.

    Yields:
      uint8 [b, H, W, C] numpy batches in order, `num` images in all.
    """
    if not isinstance(num, (int, np.integer)) or num < 1:
        raise SamplingError(f"the number of images must be >= 1, got {num}")
    if batch_size < 1:
        raise SamplingError(f"batch_size must be >= 1, got {batch_size}")
    all_labels = _check_labels(handle, labels, num)
    for lo in range(0, num, batch_size):
        b = min(batch_size, num - lo)
        z = latents(handle.z_dim, b, seed=seed, truncation=truncation, start=lo)
        lb = None if all_labels is None else all_labels[lo : lo + b]
        yield from render(
            handle,
            z,
            labels=lb,
            batch_size=batch_size,
            pad_to=min(batch_size, num),
            noise_seed=seed + lo,
        )


def generate_array(handle: Generator, num: int, **kwargs) -> np.ndarray:
    """`generate` gathered into one host array uint8 [num, H, W, C] (for grids, notebooks)."""
    return np.concatenate(list(generate(handle, num, **kwargs)))
