"""Animations from frame stacks: GIF (Pillow), MP4 (imageio's ffmpeg plugin), filmstrip PNG.

Every writer takes uint8 frames [N, H, W, C] (C = 1 or 3) and writes atomically: to a
temporary file beside the target, renamed when complete, removed if anything fails.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from gan_jax import files
from gan_jax import images as images_lib

FORMATS = ("gif", "mp4", "strip")


def upscale(frames, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of [..., H, W, C] by an integer factor (crisp pixels)."""
    frames = np.asarray(frames)
    if scale <= 1:
        return frames
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def auto_scale(side: int, target: int = 256) -> int:
    """The smallest integer factor that brings `side` pixels to at least `target`."""
    return max(1, -(-target // max(side, 1)))


def _check(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = images_lib.to_uint8(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[0] < 1 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be [N, H, W, 1|3] with N >= 1, got {frames.shape}")
    return frames


def save_gif(frames, path: str, *, fps: float = 24.0, loop: bool = True):
    """Writes an animated GIF.

    GIF stores frame times in 1/100 s, so the rate is rounded (24 fps plays at 25). Pillow
    merges consecutive frames that are identical pixel for pixel into one longer frame.

    Args:
      frames: uint8 [N, H, W, C].
      path: the .gif file.
      fps: frames per second.
      loop: repeat forever (else play once).
    """
    frames = _check(frames)
    mode = "L" if frames.shape[-1] == 1 else "RGB"
    pics = [Image.fromarray(f[..., 0] if mode == "L" else f, mode=mode) for f in frames]
    duration = max(20, int(round(1000.0 / fps / 10.0)) * 10)
    kwargs = {"loop": 0} if loop else {}
    with files.atomic_path(path) as tmp:
        pics[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=pics[1:],
            duration=duration,
            disposal=1,
            **kwargs,
        )


def save_mp4(frames, path: str, *, fps: float = 24.0, quality: int = 8):
    """Writes an H.264 MP4 (yuv420p, plays everywhere) with imageio's bundled ffmpeg.

    H.264 in yuv420p needs even sides: an odd side gets one black row or column.

    Args:
      frames: uint8 [N, H, W, C].
      path: the .mp4 file.
      fps: frames per second.
      quality: 0-10, imageio's scale (10 is near lossless).
    """
    import imageio.v2 as imageio  # noqa: PLC0415 (ffmpeg only when a video is asked for)

    frames = _check(frames)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    _, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    with files.atomic_path(path) as tmp, warnings.catch_warnings():
        # imageio starts ffmpeg with subprocess (fork + exec at once): CPython's warning
        # about forking a multithreaded (JAX) process does not apply.
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            quality=quality,
            pixelformat="yuv420p",
            macro_block_size=1,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()


def strip_frames(num_frames: int, count: int) -> np.ndarray:
    """Indices of `count` frames evenly spread over `num_frames` (first and last included)."""
    count = max(1, min(count, num_frames))
    return np.unique(np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64))


def save_strip(frames, path: str, *, count: int = 10, padding: int = 2):
    """Writes a filmstrip PNG: `count` evenly spaced frames side by side in one row.

    Args:
      frames: uint8 [N, H, W, C].
      path: the .png file.
      count: frames shown (at most N).
      padding: black pixels between frames.
    """
    frames = _check(frames)
    picked = frames[strip_frames(frames.shape[0], count)]
    images_lib.save_png(images_lib.make_grid(picked, cols=len(picked), padding=padding), path)


def render_frames(
    handle, path_z, *, cols: int | None = None, labels=None, batch_size: int = 256
) -> np.ndarray:
    """Generates an animation from a latent path, tiling parallel paths into one grid a frame.

    Args:
      handle: a `generation.Generator`.
      path_z: float32 [F, D] (one path) or [F, P, D] (P parallel paths).
      cols: grid columns for parallel paths (default: square).
      labels: class labels for a conditional model, one per path.
      batch_size: images per device call.

    Returns:
      uint8 frames [F, H', W', C]: the images themselves for one path, grids for several.
    """
    from gan_jax.sampling.generation import render  # noqa: PLC0415 (no import cycle)

    path_z = np.asarray(path_z, np.float32)
    if path_z.ndim == 2:
        path_z = path_z[:, None]
    f, p, d = path_z.shape
    if labels is not None:
        labels = np.broadcast_to(np.asarray(labels), (p,))
        labels = np.tile(labels, f)
    flat = np.concatenate(
        list(render(handle, path_z.reshape(f * p, d), labels=labels, batch_size=batch_size))
    )
    flat = flat.reshape(f, p, *flat.shape[1:])
    if p == 1:
        return flat[:, 0]
    return np.stack([images_lib.make_grid(frame, cols=cols) for frame in flat])
