"""A run's training timelapse: its fixed-noise grids over the steps, one labelled frame each.

Training writes the grid of its fixed latents every `sample_every` steps as
WORKDIR/samples/step_%08d.png (`gan_jax.training.loop.SAMPLES_DIR`). These functions read
those PNGs (no model, no checkpoint) and turn them into frames with a bar above the grid that
says "step N"; `gan_jax.sampling.video` writes them as GIF, MP4 or filmstrip:

    frames, steps = timelapse_frames("runs/digits", max_frames=100, scale=2)
    save_gif(frames, "timelapse.gif", fps=10)

Grids of different sizes in one folder (a run resumed with another `num_sample_images` or
image size) are fitted into the last grid's size, aspect ratio kept and the rest black, with
one warning: the timelapse still shows the whole run, and its end, the current setting, is
shown as written.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from gan_jax.errors import SamplingError
from gan_jax.sampling.video import upscale

SAMPLES_DIR = "samples"  # the same as gan_jax.training.loop.SAMPLES_DIR (not imported: TF)
_GRID_NAME = re.compile(r"^step_(\d+)\.png$")

log = logging.getLogger(__name__)


def grid_files(workdir: str) -> list[tuple[int, str]]:
    """(step, path) of each WORKDIR/samples/step_N.png, sorted by the step number.

    Raises:
      SamplingError: no samples folder, or no grid in it.
    """
    folder = os.path.join(workdir, SAMPLES_DIR)
    hint = "training writes one every sample_every steps"
    if not os.path.isdir(folder):
        raise SamplingError(f"no sample grids in '{folder}' (no such folder): {hint}")
    found = []
    for name in os.listdir(folder):
        match = _GRID_NAME.match(name)
        if match and os.path.isfile(os.path.join(folder, name)):
            found.append((int(match.group(1)), os.path.join(folder, name)))
    if not found:
        raise SamplingError(f"no sample grids in '{folder}': {hint}")
    return sorted(found)


def select(steps, *, every: int = 0, max_frames: int | None = None) -> np.ndarray:
    """Indices of the grids to show, always the first and the last.

    Args:
      steps: the grids' steps, ascending.
      every: keep a grid only if it is at least this many steps after the last one kept
        (0: every grid). The last grid is kept whatever its distance.
      max_frames: at most this many (>= 2), evenly spread over what `every` kept.
    """
    steps = np.asarray(steps, np.int64)
    n = len(steps)
    if n == 0:
        return np.zeros(0, np.int64)
    keep = [0]
    if every and every > 0:
        for i in range(1, n - 1):
            if steps[i] - steps[keep[-1]] >= every:
                keep.append(i)
    else:
        keep.extend(range(1, n - 1))
    if n > 1:
        keep.append(n - 1)
    keep = np.asarray(keep, np.int64)
    if max_frames is not None and len(keep) > max(2, max_frames):
        picks = np.round(np.linspace(0, len(keep) - 1, max(2, max_frames))).astype(np.int64)
        keep = keep[np.unique(picks)]
    return keep


def _read(path: str) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        log.warning("Skipped the unreadable sample grid %s: %s", path, e)
        return None
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def load_grids(files: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Reads grid PNGs: (uint8 [T, H, W, C], steps [T]); unreadable ones are skipped.

    All grids take the last readable grid's size: others are fitted into it (aspect kept,
    black around). A mix of grey and colour grids is all colour.

    Raises:
      SamplingError: none of the files could be read.
    """
    read = [(step, path, _read(path)) for step, path in files]
    read = [(step, path, image) for step, path, image in read if image is not None]
    if not read:
        names = ", ".join(os.path.basename(p) for _, p in files[:3])
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        raise SamplingError(f"none of the sample grids could be read ({names}{more})")
    size = read[-1][2].size
    mode = "RGB" if any(image.mode == "RGB" for _, _, image in read) else "L"
    odd = sorted({image.size for _, _, image in read if image.size != size})
    if odd:
        log.warning(
            "%d of %d sample grids are not %dx%d px like the last one (%s): fitted into it "
            "(the run was probably resumed with another num_sample_images or image size)",
            sum(image.size != size for _, _, image in read),
            len(read),
            *size,
            ", ".join(f"{w}x{h}" for w, h in odd),
        )
    arrays = []
    for _, _, image in read:
        if image.mode != mode:
            image = image.convert(mode)
        if image.size != size:
            grow = size[0] >= image.size[0] and size[1] >= image.size[1]
            method = Image.Resampling.NEAREST if grow else Image.Resampling.LANCZOS
            image = ImageOps.pad(image, size, method=method, color=0)
        array = np.asarray(image, np.uint8)
        arrays.append(array[..., None] if array.ndim == 2 else array)
    steps = np.asarray([step for step, _, _ in read], np.int64)
    return np.stack(arrays), steps


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font: nothing is fetched
    except (TypeError, ValueError, OSError, ImportError):  # no FreeType: the bitmap font
        return ImageFont.load_default()


def bar_height(width: int) -> int:
    """Pixels of the label bar above a frame `width` pixels wide."""
    return int(np.clip(width // 16, 16, 48))


def label_frames(frames, steps, *, text: str = "step {step}") -> np.ndarray:
    """Adds a black bar with `text` (white) above each frame: [T, H + bar, W, C].

    The bar is added, never drawn over the images. `text` is formatted with `step` and, for
    the frame's place, `index` (from 1) and `total`.
    """
    frames = np.asarray(frames, np.uint8)
    if frames.ndim == 3:
        frames = frames[..., None]
    t, _, w, c = frames.shape
    bar = bar_height(w)
    font = _font(max(8, int(bar * 0.7)))
    out = []
    for i, (frame, step) in enumerate(zip(frames, steps)):
        label = Image.new("L", (w, bar), 0)
        words = text.format(step=int(step), index=i + 1, total=t)
        draw = ImageDraw.Draw(label)
        left, top, right, bottom = draw.textbbox((0, 0), words, font=font)
        x = max(2, min(bar // 4, w - (right - left)))
        y = (bar - (bottom - top)) // 2 - top
        draw.text((x, y), words, fill=255, font=font)
        strip = np.asarray(label, np.uint8)[..., None].repeat(c, axis=-1)
        out.append(np.concatenate([strip, frame]))
    return np.stack(out)


def timelapse_frames(
    workdir: str,
    *,
    every: int = 0,
    max_frames: int | None = None,
    scale: int | None = None,
    label: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The run's sample grids as animation frames, oldest first.

    Args:
      workdir: the training run's folder (its samples/step_N.png grids are read).
      every: at least this many steps between frames (0: every grid); see `select`.
      max_frames: at most this many frames, evenly spread, first and last included.
      scale: nearest-neighbour upscaling of the grids (None: 1), before the label is drawn,
        so the text stays sharp.
      label: add the "step N" bar above each grid.

    Returns:
      (uint8 frames [T, H', W', C], steps [T]); C is 1 for grey grids, 3 for colour.

    Raises:
      SamplingError: no grids, or none readable.
    """
    files = grid_files(workdir)
    picked = select([s for s, _ in files], every=every, max_frames=max_frames)
    grids, steps = load_grids([files[i] for i in picked])
    frames = upscale(grids, scale or 1)
    if label:
        frames = label_frames(frames, steps)
    return frames, steps


def hold_last(frames, seconds: float, fps: float) -> np.ndarray:
    """Repeats the last frame so it stays `seconds` (at least one frame's time) on screen."""
    frames = np.asarray(frames)
    extra = max(0, int(round(seconds * fps)) - 1)
    if extra == 0:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], extra, axis=0)])
