"""Image grids and PNG files from generator outputs in [-1, 1] (used by training's sample
grids and by sampling; a leaf module so that both can import it)."""

import io
import os

import numpy as np
from PIL import Image

from gan_jax import files


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats (any array) -> uint8 [0, 255], rounding like torchvision's save_image."""
    x = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images, *, cols: int | None = None, padding: int = 2) -> np.ndarray:
    """Tiles [N, H, W, C] images into one uint8 [rows*(H+p)+p, cols*(W+p)+p, C] grid.

    Args:
      images: N images, floats in [-1, 1] or uint8.
      cols: images per row (default: the square root of N, rounded up).
      padding: pixels of black between tiles.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8:
        x = to_uint8(x)
    if x.ndim == 3:
        x = x[..., None]
    n, h, w, c = x.shape
    if n == 0:
        raise ValueError("make_grid needs at least one image")
    cols = int(np.ceil(np.sqrt(n))) if not cols else min(int(cols), n)
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[top : top + h, left : left + w] = x[i]
    return grid


def png_bytes(image: np.ndarray, *, pnginfo=None) -> bytes:
    """A uint8 HxW(xC) image as PNG bytes (one channel as greyscale); `pnginfo`: PIL's
    text chunks (the recipe PNGs)."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", pnginfo=pnginfo)
    return buf.getvalue()


def save_png(image: np.ndarray, path: str, *, pnginfo=None):
    """Writes a uint8 HxW(xC) image atomically (a kill never leaves half a PNG)."""
    data = png_bytes(image, pnginfo=pnginfo)
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def save_images(batches, folder: str, *, start: int = 0, digits: int = 6) -> list[str]:
    """Writes each image of an iterable of uint8 [b, H, W, C] batches as `folder/NNNNNN.png`.

    Batches are written as they arrive, so a generator of batches never has to fit in memory.

    Args:
      batches: iterable of image batches (e.g. `sampling.generate(...)`).
      folder: output folder (created).
      start: number of the first file.
      digits: zero-padded width of the file numbers.

    Returns:
      The paths written, in order.
    """
    os.makedirs(folder, exist_ok=True)
    paths = []
    i = start
    for batch in batches:
        for image in np.asarray(batch):
            path = os.path.join(folder, f"{i:0{digits}d}.png")
            save_png(image if image.dtype == np.uint8 else to_uint8(image), path)
            paths.append(path)
            i += 1
    return paths
