"""Apply a trained image-to-image run (`configs/pix2pix.py`, `configs/cyclegan.py`: G_AB) to
images of any size.

    from gan_jax import translate
    tr = translate.load("runs/sr4")                 # latest checkpoint, EMA weights if kept
    big = tr(small_uint8)                           # uint8 [4 H, 4 W, C]
    filled = translate.load("runs/inpaint")(photo, mask=hole)   # hole: bool/uint8 [H, W]

What each task reads (uint8 images [H, W, C] or [H, W]):

* ``sr``: the low-resolution image, any size; the output is `factor` times larger. Large
  images are cut into overlapping tiles (`tile` input pixels plus a `margin` on each side)
  and only each tile's centre is kept: the generator is fully convolutional with a receptive
  field of `margin` pixels at most, so the result equals the untiled one everywhere (to float
  rounding) while memory stays bounded by the tile.
* ``inpaint``: the image and a mask of the same size (non-zero = hole). The known pixels are
  kept as they are; the model fills the hole.
* ``colorize``: any image (its luma is what the model reads); ``edges``: an edge map (white
  lines on black, or set ``degrade=True`` to compute the edges of a photo); ``denoise``: the
  noisy image.

Same-size tasks (a U-Net or ResNet generator) pad the image by reflection up to a multiple of
the network's stride (64 px for the 64 px U-Net) and crop the output back. An image smaller
than the model's training size is refused: the U-Net's bottleneck would have no pixel left.

``degrade=True`` applies the task's own degradation first (downscale by the factor, draw a
seeded mask, take the luma or the edges, add noise): a demonstration on a clean picture, and
what `evaluate.py` does on the test split.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import config_lib, models, objectives
from gan_jax.errors import SamplingError
from gan_jax.input import tasks
from gan_jax.models import pix2pix as pix2pix_lib
from gan_jax.models import srresnet
from gan_jax.sampling import generation
from gan_jax.training import state as state_lib

DEFAULT_TILE = 128  # input pixels per SR tile side (the output tile is factor x larger)
MAX_SIDE = 4096  # same-size tasks run untiled: refuse what would not fit in memory


def _to_float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32) / 127.5 - 1.0


@dataclasses.dataclass(frozen=True)
class Translator:
    """A loaded image-to-image model. Call it on uint8 images (see the module doc).

    Attributes:
      config: the run's config.
      task: the `tasks.Task` it was trained for (None: CycleGAN, A -> B).
      objective: its `Pix2PixObjective` or `CycleGANObjective`.
      variables: G's variables (EMA parameters when kept).
      step: the checkpoint's step.
      workdir: where it was loaded from.
    """

    config: ml_collections.ConfigDict
    task: tasks.Task
    objective: Any
    variables: Any
    step: int
    workdir: str = ""
    use_ema: bool = False

    @property
    def channels(self) -> int:
        return int(self.config.data.channels)

    @property
    def image_size(self) -> int:
        return int(self.config.data.image_size)

    @property
    def input_size(self) -> int:
        """The smallest input side the model takes (its training input's side; CycleGAN's
        ResNet generator takes anything from 8 px)."""
        if self.task is None:
            return 8
        return self.task.input_shape((self.image_size, self.image_size, self.channels))[0]

    @property
    def margin(self) -> int:
        """SR tiles' overlap on each side, in input pixels: the generator's reach."""
        m = self.config.model
        return srresnet.receptive_radius(
            int(m.sr_blocks), self.task.factor, m.get("sr_block", "res")
        )

    @functools.cached_property
    def _apply(self):
        return jax.jit(lambda v, x: self.objective.translate(v, x))

    def translate_batch(self, sources: np.ndarray) -> np.ndarray:
        """G on a batch of model inputs [B, h, w, c'] of the training size -> float outputs."""
        return np.asarray(self._apply(self.variables, jnp.asarray(sources, jnp.float32)))

    def run(self, source: np.ndarray) -> np.ndarray:
        """G on one float32 model input [h, w, c'] -> float32 output [H, W, C] (unclipped)."""
        return np.asarray(self._apply(self.variables, jnp.asarray(source[None])))[0]

    # -- inputs -------------------------------------------------------------------------

    def _as_channels(self, image, name: str) -> np.ndarray:
        x = np.asarray(image)
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise SamplingError(
                f"{name}: expected a uint8 image [H, W, C], got {x.dtype} {x.shape}"
            )
        c = x.shape[-1]
        if c == self.channels:
            return x
        if self.channels == 3 and c == 1:
            if self.task is not None and self.task.kind == "colorize":
                return np.repeat(x, 3, axis=-1)  # grey is what colourisation reads anyway
            raise SamplingError(
                f"{name}: a greyscale image, but this model translates RGB images "
                f"(task {self.task}); convert it to RGB first"
            )
        if self.channels == 1 and c == 3:
            grey = tasks.luma(_to_float(x))
            return np.round((grey + 1.0) * 127.5).clip(0, 255).astype(np.uint8)[..., None]
        raise SamplingError(f"{name}: {c} channels; the model reads {self.channels}")

    def _check_size(self, x: np.ndarray, name: str) -> None:
        h, w = x.shape[:2]
        small = self.input_size
        if min(h, w) < small:
            raise SamplingError(
                f"{name}: {w}x{h} is smaller than the model's input ({small}x{small} px); "
                "use a larger image"
            )
        if max(h, w) > MAX_SIDE and (self.task is None or self.task.kind != "sr"):
            raise SamplingError(f"{name}: {w}x{h} is larger than {MAX_SIDE} px on a side")

    def model_input(self, image, *, mask=None, degrade: bool = False, seed: int = 0, name="image"):
        """(model input float32 [h, w, c'], the image as uint8, the hole mask or None)."""
        x = self._as_channels(image, name)
        task = self.task
        hole = None
        if task is None:  # CycleGAN: the image as it is
            self._check_size(x, name)
            return _to_float(x), x, None
        if degrade:
            if task.kind == "sr":  # crop to a multiple of the factor, then downscale
                f = task.factor
                x = x[: x.shape[0] // f * f, : x.shape[1] // f * f]
            if task.kind == "inpaint" and mask is not None:
                hole = self._mask(mask, x.shape[:2], name)
                source = np.concatenate([_to_float(x) * (1 - hole), hole], axis=-1)
            else:
                self._check_size(
                    x if task.kind != "sr" else x[:: task.factor, :: task.factor], name
                )
                ex = tasks.degrade(task, _to_float(x), seed)
                source = ex["input"]
                hole = ex.get("mask")
            return source.astype(np.float32), x, hole
        self._check_size(x, name)
        if task.kind == "inpaint":
            if mask is None:
                raise SamplingError(
                    f"{name}: an inpainting model needs a mask (white = hole), or degrade=True "
                    "(--degrade) to draw one"
                )
            hole = self._mask(mask, x.shape[:2], name)
            source = np.concatenate([_to_float(x) * (1 - hole), hole], axis=-1)
        elif task.kind == "colorize":
            source = tasks.luma(_to_float(x))[..., None]
        elif task.kind == "edges":
            source = (
                _to_float(x)[..., :1] if x.shape[-1] == 1 else tasks.luma(_to_float(x))[..., None]
            )
        else:
            source = _to_float(x)
        return source.astype(np.float32), x, hole

    @staticmethod
    def _mask(mask, shape, name) -> np.ndarray:
        m = np.asarray(mask)
        if m.ndim == 3:
            m = m.max(axis=-1)
        if m.shape != tuple(shape):
            raise SamplingError(
                f"{name}: the mask is {m.shape[1]}x{m.shape[0]} but the image is "
                f"{shape[1]}x{shape[0]}; they must be the same size"
            )
        return (m > (127 if m.dtype == np.uint8 else 0.5)).astype(np.float32)[..., None]

    # -- running ------------------------------------------------------------------------

    def translate_source(self, source: np.ndarray, *, tile: int = DEFAULT_TILE, margin=None):
        """Float output of a model input [h, w, c']: tiled for SR, padded for the rest."""
        if self.task is not None and self.task.kind == "sr":
            return self._tiled(source, tile, self.margin if margin is None else margin)
        return self._padded(source)

    def _padded(self, source: np.ndarray) -> np.ndarray:
        stride = 2 ** pix2pix_lib.unet_depth(self.image_size) if self._is_unet else 4
        h, w = source.shape[:2]
        ph, pw = -h % stride, -w % stride
        if ph or pw:
            source = np.pad(source, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        return self.run(source)[:h, :w]

    @property
    def _is_unet(self) -> bool:
        return self.config.model.get("generator", "") == "unet"

    def _tiled(self, source: np.ndarray, tile: int, margin: int) -> np.ndarray:
        """SR in overlapping windows of (tile + 2 margin) input pixels, keeping the centres.

        Windows keep one size (shifted inward at the image's edges), so the generator compiles
        for at most a few shapes; each kept pixel lies `margin` pixels inside its window
        unless it is at the image's own border.
        """
        if tile < 1 or margin < 0:
            raise SamplingError(f"tile must be >= 1 and margin >= 0, got {tile}, {margin}")
        h, w, _ = source.shape
        f = self.task.factor
        win = tile + 2 * margin
        if h <= win and w <= win:
            return self.run(source)
        out = np.zeros((h * f, w * f, self.channels), np.float32)

        def spans(n):
            for start in range(0, n, tile):
                stop = min(start + tile, n)
                lo = max(0, min(start - margin, n - win)) if n > win else 0
                hi = min(n, lo + win)
                yield start, stop, lo, hi

        for y0, y1, wy0, wy1 in spans(h):
            for x0, x1, wx0, wx1 in spans(w):
                y = self.run(source[wy0:wy1, wx0:wx1])
                out[y0 * f : y1 * f, x0 * f : x1 * f] = y[
                    (y0 - wy0) * f : (y1 - wy0) * f, (x0 - wx0) * f : (x1 - wx0) * f
                ]
        return out

    def __call__(self, image, *, mask=None, degrade: bool = False, seed: int = 0, **kwargs):
        """A uint8 image -> the model's uint8 output (see the module doc)."""
        return self.translate_input(
            self.model_input(image, mask=mask, degrade=degrade, seed=seed), **kwargs
        )

    def translate_input(self, prepared, **kwargs) -> np.ndarray:
        """`model_input`'s (source, image, hole) -> the uint8 output."""
        source, x, hole = prepared
        out = self.translate_source(source, **kwargs)
        if hole is not None:  # keep the known pixels exactly
            out = _to_float(x) * (1 - hole) + out * hole
        return np.clip(np.round((out + 1.0) * 127.5), 0, 255).astype(np.uint8)


def load(workdir: str, step=None, *, use_ema: bool = True) -> Translator:
    """Loads an image-to-image run's generator (latest checkpoint, or `step`).

    Raises:
      SamplingError: the run is not an image-to-image model, or a malformed step.
      ConfigError, CheckpointError: as `sampling.load_generator`.
    """
    if not os.path.isdir(workdir):
        raise SamplingError(f"workdir '{workdir}' does not exist")
    config = config_lib.load(workdir)
    name = config.model.get("name", "")
    if name not in models.MODELS or models.has_latent(config):
        raise SamplingError(
            f"'{workdir}' is a {name or 'unknown'} run, which generates from latents: "
            "translate.py applies image-to-image runs (configs/pix2pix.py); use sample.py"
        )
    objective = objectives.build(config)
    abstract = jax.eval_shape(
        lambda key: state_lib.create_state(config, key, objective=objective), jax.random.PRNGKey(0)
    )
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract
    )
    state = generation.restore_state(workdir, step, abstract)
    return Translator(
        config=config,
        task=objective.task,
        objective=objective,
        variables=state_lib.sampling_variables(state, use_ema=use_ema),
        step=int(jax.device_get(state.step)),
        workdir=workdir,
        use_ema=use_ema and bool(state.ema_params),
    )
