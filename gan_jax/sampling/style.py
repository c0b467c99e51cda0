"""StyleGAN2's w space: mapping seeds to w, rendering ws, and the style-mixing grid.

    g = sampling.load_generator("runs/sg2_anime")
    grid = sampling.style_mix_grid(g, rows=[1, 2, 3], cols=[10, 11, 12, 13], layers=range(4))
    sampling.save_png(grid, "mix.png")

Row r, column c of the grid is rendered from column c's ws with the layers in `layers`
(coarse ones: pose, shape) taken from row r's; the top row shows the columns' own images and
the left column the rows'. With the same seed for a row and a column the cell is that seed's
plain image.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import SamplingError
from gan_jax.images import make_grid
from gan_jax.objectives.latents import latents
from gan_jax.sampling.generation import Generator, _check_labels


def _require_style(handle: Generator) -> None:
    if not handle.is_style_based:
        raise SamplingError(
            f"style mixing and w need a StyleGAN2 run; this one is {handle.config.model.name!r}"
        )


@functools.lru_cache(maxsize=8)
def _compiled(module, is_conditional: bool):
    cls = type(module)

    def mapping(variables, z, labels, psi):
        return module.apply(
            variables, z, labels if is_conditional else None, psi=psi, method=cls.mapping
        )

    def synthesis(variables, ws, key, noise_mode, noise_maps=None):
        rngs = {"noise": key} if noise_mode == "random" else None
        x = module.apply(variables, ws, noise_mode, noise_maps, method=cls.synthesis, rngs=rngs)
        return jnp.clip(jnp.round((x + 1.0) * 127.5), 0, 255).astype(jnp.uint8)

    return jax.jit(mapping), jax.jit(synthesis, static_argnames="noise_mode")


def seed_ws(handle: Generator, seeds, *, labels=None) -> np.ndarray:
    """ws [len(seeds), num_ws, w_dim] of image 0 of each seed, truncated by `handle.psi`."""
    _require_style(handle)
    z = np.concatenate([latents(handle.z_dim, 1, seed=int(s)) for s in seeds])
    labels = _check_labels(handle, labels, len(z))
    mapping, _ = _compiled(handle.module, handle.conditional)
    return np.asarray(mapping(handle.variables, z, labels, jnp.float32(handle.psi)))


def render_ws(handle: Generator, ws, *, noise_seed: int = 0, noise_maps=None) -> np.ndarray:
    """uint8 images [N, H, W, C] of ws [N, num_ws, w_dim] (noise per `handle.noise_mode`, or
    the given per-layer `noise_maps`, e.g. a projection's)."""
    _require_style(handle)
    ws = np.asarray(ws, np.float32)
    expected = handle.module.num_ws
    if ws.ndim != 3 or ws.shape[1] != expected:
        raise SamplingError(f"ws must be [N, {expected}, w_dim], got {ws.shape}")
    _, synthesis = _compiled(handle.module, handle.conditional)
    key = jax.random.PRNGKey(noise_seed)
    if noise_maps is not None:
        noise_maps = tuple(jnp.asarray(m, jnp.float32) for m in noise_maps)
    try:
        images = synthesis(handle.variables, ws, key, handle.noise_mode, noise_maps)
    except ValueError as e:  # maps of another model's shapes
        raise SamplingError(str(e)) from None
    return np.asarray(images)


def parse_layers(spec, num_ws: int) -> tuple[int, ...]:
    """'0-3' or '0,1,2,3' (or an iterable of ints) -> sorted layer indices in [0, num_ws)."""
    if isinstance(spec, str):
        out = set()
        try:
            for part in spec.split(","):
                part = part.strip()
                if "-" in part:
                    lo, hi = (int(v) for v in part.split("-", 1))
                    out.update(range(lo, hi + 1))
                elif part:
                    out.add(int(part))
        except ValueError:
            raise SamplingError(f"layers take the form '0-3' or '0,2,5', got {spec!r}") from None
    else:
        out = {int(v) for v in spec}
    if not out or min(out) < 0 or max(out) >= num_ws:
        raise SamplingError(f"layers must lie in 0-{num_ws - 1} (this model's ws), got {spec!r}")
    return tuple(sorted(out))


def style_mix_grid(
    handle: Generator, rows, cols, *, layers="0-3", label=None, padding: int = 2
) -> np.ndarray:
    """The style-mixing figure as one uint8 image (see the module docstring).

    Args:
      handle: a StyleGAN2 generator (`load_generator`).
      rows: seeds whose styles at `layers` are mixed in (one grid row each).
      cols: seeds that give the other layers (one grid column each).
      layers: ws indices taken from the rows: '0-3' (coarse), '4-7' (middle), ...
      label: the class of a conditional model (default 0).
      padding: pixels between cells.

    Returns:
      uint8 [(len(rows) + 1) cells high, (len(cols) + 1) cells wide, C].
    """
    _require_style(handle)
    rows, cols = [int(s) for s in rows], [int(s) for s in cols]
    if not rows or not cols:
        raise SamplingError("style mixing needs at least one row seed and one column seed")
    picked = parse_layers(layers, handle.module.num_ws)
    label = (0 if label is None else label) if handle.conditional else None
    row_ws = seed_ws(handle, rows, labels=label)
    col_ws = seed_ws(handle, cols, labels=label)
    mask = np.zeros((1, 1, handle.module.num_ws, 1), bool)
    mask[0, 0, list(picked)] = True
    mixed = np.where(mask, row_ws[:, None], col_ws[None, :])  # [R, C, num_ws, w_dim]
    r, c = len(rows), len(cols)
    images = render_ws(
        handle, np.concatenate([col_ws, row_ws, mixed.reshape(r * c, *mixed.shape[2:])])
    )
    h, w, ch = images.shape[1:]
    cells = np.full((r + 1, c + 1, h, w, ch), 255, np.uint8)  # top-left corner left white
    cells[0, 1:] = images[:c]
    cells[1:, 0] = images[c : c + r]
    cells[1:, 1:] = images[c + r :].reshape(r, c, h, w, ch)
    return make_grid(cells.reshape(-1, h, w, ch), cols=c + 1, padding=padding)
