"""Projection of an image into a StyleGAN2 model: the w whose image looks most like it.

    g = sampling.load_generator("runs/sg2_anime")
    target = sampling.load_target("face.png", g)               # [H, W, C] in [-1, 1]
    result = sampling.project(g, target, steps=300)            # result.ws [num_ws, w_dim]
    sampling.save_png(sampling.render_ws(g, result.ws[None])[0], "projected.png")

One w (as StyleGAN2's projector: in W, broadcast to every layer) starts at the average w and
is optimised by Adam (learning rate 0.1, ramped up over the first 5% of the steps and down
with a cosine over the last 25%), with Gaussian noise of 5% of w's spread added to it early
on (fading to 0 at 75% of the steps) so that it explores before it settles. The distance is
the pixels' mean squared error plus the squared distance of the FID Inception network's
pool3 features (2048-d, images resized to 299 px): StyleGAN2 uses LPIPS (VGG) features, whose
weights cannot be downloaded here, so the offline Inception network stands in for them.
With `noise=True` (the default, as StyleGAN2's projector) every layer's noise map is optimised
too, starting from the model's constant maps, kept at zero mean and unit variance after each
step and held back from fitting the image by a penalty on its autocorrelation between
neighbouring pixels at every scale down to 8x8 (`noise_regularisation`, weight 1e5): the maps
take up detail that w cannot reach (hair strands, texture) without turning into the image.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.errors import SamplingError
from gan_jax.images import to_uint8
from gan_jax.models import stylegan2
from gan_jax.sampling.generation import Generator
from gan_jax.sampling.style import _require_style

W_STATS_SAMPLES = 2000
LR = 0.1
NOISE_FACTOR = 0.05
NOISE_RAMP = 0.75
LR_RAMPDOWN = 0.25
LR_RAMPUP = 0.05
NOISE_REG_WEIGHT = 1e5
NOISE_FILE = "noise.npz"  # project.py's fitted noise maps, beside w.npy


def load_noise_maps(path: str) -> tuple[np.ndarray, ...]:
    """The maps `project.py` saved (np.savez, in layer order).

    Raises:
      SamplingError: not an .npz of maps.
    """
    try:
        with np.load(path) as f:
            return tuple(f[f"arr_{i}"] for i in range(len(f.files)))
    except (OSError, ValueError, KeyError) as e:
        raise SamplingError(
            f"'{path}' is not a file of noise maps (project.py's noise.npz): {e}"
        ) from None


@dataclasses.dataclass
class Projection:
    """What `project` found.

    Attributes:
      ws: [num_ws, w_dim] the projected w, broadcast to every layer (for `render_ws`).
      frames: uint8 [F, H, W, C] the image along the optimisation (every `frame_every` steps).
      losses: [steps] the distance at each step (with the noise penalty when noise is fitted).
      psnr: PSNR (dB) of the final image against the target (rendered with `noise_maps`).
      noise_maps: the fitted noise maps, one [1, r, r, 1] per layer, or None when the model's
        constant maps were kept.
    """

    ws: np.ndarray
    frames: np.ndarray
    losses: np.ndarray
    psnr: float
    noise_maps: tuple[np.ndarray, ...] | None = None


def noise_regularisation(maps) -> jax.Array:
    """Sum over maps and scales of the squared mean products of each pixel with its right and
    lower neighbours (wrapping around); each map is then 2x2-average-pooled until 8x8.

    Near 0 for white noise (each term about 1 / pixels), 2 per scale for a constant map of
    ones: it keeps the fitted maps noise-like rather than image-like.
    """
    total = jnp.zeros((), jnp.float32)
    for m in maps:
        m = m[0, :, :, 0]
        while True:
            total += jnp.mean(m * jnp.roll(m, 1, axis=1)) ** 2
            total += jnp.mean(m * jnp.roll(m, 1, axis=0)) ** 2
            if m.shape[0] <= 8:
                break
            h, w = m.shape
            m = m.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return total


def _normalise(maps):
    return tuple((m - jnp.mean(m)) / jnp.std(m) for m in maps)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(4.0 / mse)


def load_target(path: str, handle: Generator) -> np.ndarray:
    """An image file as the model's input: centre-cropped square, resized, [-1, 1] float32.

    Raises:
      SamplingError: a missing or undecodable file, or a grey image for a colour model (and
        the reverse is converted).
    """
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    size, _, channels = handle.image_shape
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if channels == 3 and mode in ("L", "1", "I", "F", "LA"):
                raise SamplingError(f"'{path}' is a grey image; this model makes colour images")
            im = im.convert("RGB" if channels == 3 else "L")
    except FileNotFoundError:
        raise SamplingError(f"image '{path}' does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise SamplingError(f"cannot read '{path}' as an image: {e}") from None
    w, h = im.size
    side = min(w, h)
    im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    im = im.resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(im, np.float32).reshape(size, size, channels)
    return x / 127.5 - 1.0


def _w_stats(handle: Generator, seed: int) -> tuple[np.ndarray, float]:
    cls = type(handle.module)
    z = jax.random.normal(jax.random.PRNGKey(seed), (W_STATS_SAMPLES, handle.z_dim))
    labels = jnp.zeros((W_STATS_SAMPLES,), jnp.int32) if handle.conditional else None
    ws = handle.module.apply(handle.variables, z, labels, method=cls.mapping)[:, 0]
    w_avg = jnp.mean(ws, axis=0)
    w_std = jnp.sqrt(jnp.sum(jnp.square(ws - w_avg)) / W_STATS_SAMPLES)
    return np.asarray(w_avg), float(w_std)


def _schedule(steps: int) -> Callable:
    def lr(i):
        t = i / steps
        ramp = jnp.minimum(1.0, (1.0 - t) / LR_RAMPDOWN)
        ramp = 0.5 - 0.5 * jnp.cos(ramp * jnp.pi)
        return LR * ramp * jnp.minimum(1.0, t / LR_RAMPUP)

    return lr


def project(
    handle: Generator,
    target: np.ndarray,
    *,
    steps: int = 300,
    feature_weight: float = 1.0,
    pixel_weight: float = 1.0,
    extractor=None,
    seed: int = 0,
    frame_every: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    noise: bool = True,
    noise_weight: float = NOISE_REG_WEIGHT,
) -> Projection:
    """Finds the w whose image is closest to `target` (see the module docstring).

    Args:
      handle: a StyleGAN2 generator.
      target: [H, W, C] float in [-1, 1], the model's size (`load_target`).
      steps: optimisation steps.
      feature_weight: weight of the Inception feature distance (0: pixels only, no network).
      pixel_weight: weight of the pixel MSE.
      extractor: an `evaluation.inception.InceptionFeatures` (loaded when needed and None).
      seed: the exploration noise and w statistics' seed.
      frame_every: keep a frame every this many steps (default: about 60 frames).
      progress: called as progress(step, loss) every 10 steps.
      noise: also fit every layer's noise map (from the constant maps); False keeps them.
      noise_weight: weight of `noise_regularisation` on the fitted maps.

    Returns:
      A `Projection`.
    """
    _require_style(handle)
    target = np.asarray(target, np.float32)
    if target.shape != handle.image_shape:
        raise SamplingError(f"the target must be {handle.image_shape}, got {target.shape}")
    if steps < 1:
        raise SamplingError(f"steps must be >= 1, got {steps}")
    cls = type(handle.module)
    num_ws = handle.module.num_ws
    w_avg, w_std = _w_stats(handle, seed)
    target_j = jnp.asarray(target)[None]

    features = None
    if feature_weight > 0:
        if extractor is None:
            from gan_jax.evaluation import inception  # noqa: PLC0415

            extractor = inception.InceptionFeatures()
        params = extractor.params
        model = extractor.model
        prep = extractor.preprocessing

        def features(x):
            from gan_jax.evaluation.inception import preprocess  # noqa: PLC0415

            x = preprocess(x, input_range="[-1,1]", preprocessing=prep, quantize=False)
            return model.apply({"params": params}, x)[0]

        target_features = features(target_j)

    def render(w, maps):
        ws = jnp.broadcast_to(w[:, None, :], (1, num_ws, w.shape[-1]))
        return handle.module.apply(handle.variables, ws, "const", maps, method=cls.synthesis)

    def loss_fn(fitted, noise_scale, key):
        w, maps = fitted
        image = render(w + jax.random.normal(key, w.shape) * noise_scale, maps)
        loss = pixel_weight * jnp.mean(jnp.square(image - target_j))
        if features is not None:
            loss = loss + feature_weight * jnp.sum(jnp.square(features(image) - target_features))
        if maps is not None:
            loss = loss + noise_weight * noise_regularisation(maps)
        return loss, image

    tx = optax.adam(_schedule(steps), b1=0.9, b2=0.999)

    @jax.jit
    def step(fitted, opt_state, i, key):
        t = i / steps
        noise_scale = w_std * NOISE_FACTOR * jnp.square(jnp.maximum(0.0, 1.0 - t / NOISE_RAMP))
        (loss, image), grad = jax.value_and_grad(loss_fn, has_aux=True)(fitted, noise_scale, key)
        updates, opt_state = tx.update(grad, opt_state, fitted)
        w, maps = optax.apply_updates(fitted, updates)
        return (w, None if maps is None else _normalise(maps)), opt_state, loss, image

    fitted = (
        jnp.asarray(w_avg)[None],
        stylegan2.const_noise_maps(handle.image_shape[0]) if noise else None,
    )
    opt_state = tx.init(fitted)
    frame_every = frame_every or max(1, steps // 60)
    frames, losses = [], []
    base = jax.random.PRNGKey(seed + 1)
    for i in range(steps):
        fitted, opt_state, loss, image = step(fitted, opt_state, i, jax.random.fold_in(base, i))
        losses.append(float(loss))
        if not np.isfinite(losses[-1]):
            raise SamplingError(f"the projection diverged at step {i} (loss {losses[-1]})")
        if i % frame_every == 0:
            frames.append(np.asarray(image[0]))
        if progress is not None and (i + 1) % 10 == 0:
            progress(i + 1, losses[-1])
    w, maps = fitted
    ws = np.broadcast_to(np.asarray(w), (num_ws, w.shape[-1])).copy()
    final = np.asarray(jax.jit(render)(w, maps))[0]
    frames.append(final)
    return Projection(
        ws=ws,
        frames=np.stack([to_uint8(f) for f in frames]),
        losses=np.asarray(losses, np.float32),
        psnr=psnr(final, target),
        noise_maps=None if maps is None else tuple(np.asarray(m) for m in maps),
    )
