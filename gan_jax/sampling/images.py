"""Image grids and PNG files from generator outputs in [-1, 1]."""

import os

import numpy as np
from PIL import Image


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


def save_png(image: np.ndarray, path: str):
    """Writes a uint8 HxW(xC) image atomically (a kill never leaves half a PNG)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)
