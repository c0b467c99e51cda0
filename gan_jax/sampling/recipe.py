"""A recipe: everything that makes one image, small enough to travel in a PNG's metadata.

    g = sampling.load_generator("runs/sg2_anime")
    r = sampling.Recipe(x=7, truncation=0.7, edits=(("sefa", 0, 2.0),), edit_layers="0-3")
    image = sampling.render_recipes(g, [r])[0]
    sampling.save_recipe_png(image, "edit.png", g, r)     # the studio's "Save"
    meta, r2 = sampling.read_recipe_png("edit.png")        # sample.py --from_png
    assert (sampling.render_recipes(g, [r2])[0] == image).all()

The latent of a recipe comes from the seed plane: the integer point (i, j) holds the latent of
seed `i + PLANE_WIDTH * j` (image 0 of that seed's grid, as `sample.py --seeds`), and a
fractional point blends its four neighbours bilinearly: in z with the weights renormalised so
that the blend of independent N(0, I) latents is again N(0, I), in w (StyleGAN2) linearly, as
StyleGAN3's visualizer does. A walk goes from (x, y) to `to` (slerp in z, lerp in w) and stops
at fraction `t`; StyleGAN2's style mixing replaces the ws of `mix_layers` with those of
`mix_seed`; edits then add SeFa/GANSpace directions (`sampling.directions`).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
from collections.abc import Callable, Sequence

import numpy as np

from gan_jax import images as images_lib
from gan_jax.errors import SamplingError
from gan_jax.sampling import directions as directions_lib
from gan_jax.sampling import style
from gan_jax.sampling.generation import Generator, latents_for_seeds, render
from gan_jax.sampling.interpolate import slerp

PLANE_WIDTH = 1000  # seeds per row of the seed plane: (i, j) is seed i + 1000 j
PNG_KEY = "gan_jax"  # the PNG text chunk holding the recipe
FORMAT_VERSION = 1
MAX_EDITS = 32
MAX_COORD = 10**6
NOISE_MODES = ("const", "random", "none")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One image (see the module docstring).

    Attributes:
      x, y: position on the seed plane (>= 0); integers are single seeds.
      truncation: z models: redraw |z| > t (None: none); StyleGAN2: psi toward the average
        w (None: 1).
      label: the class of a conditional model (None: 0).
      noise_mode: StyleGAN2's noise inputs.
      to: the end of a walk, (x, y) on the plane, or None.
      t: how far along the walk, 0-1.
      edits: ((method, direction index, strength in standard deviations), ...).
      edit_layers: StyleGAN2: the ws the edits move ('0-3', 'all').
      mix_seed: StyleGAN2: the seed whose styles replace `mix_layers`.
      mix_layers: StyleGAN2: the ws taken from `mix_seed`.
      w: StyleGAN2: a projected w [w_dim] (project.py) used instead of the plane point.
    """

    x: float = 0.0
    y: float = 0.0
    truncation: float | None = None
    label: int | None = None
    noise_mode: str = "const"
    to: tuple[float, float] | None = None
    t: float = 0.0
    edits: tuple[tuple[str, int, float], ...] = ()
    edit_layers: str = "all"
    mix_seed: int | None = None
    mix_layers: str = "0-3"
    w: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.w is not None:  # float32, as stored in a PNG: a round trip is exact
            object.__setattr__(self, "w", tuple(float(v) for v in np.asarray(self.w, np.float32)))

    @classmethod
    def from_seed(cls, seed: int, **kwargs) -> Recipe:
        """The plane point of one seed."""
        if seed < 0:
            raise SamplingError(f"seeds are >= 0, got {seed}")
        return cls(x=float(seed % PLANE_WIDTH), y=float(seed // PLANE_WIDTH), **kwargs)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["edits"] = [list(e) for e in self.edits]
        d["to"] = None if self.to is None else list(self.to)
        d["w"] = None if self.w is None else _encode_w(self.w)
        return d

    @classmethod
    def from_dict(cls, d) -> Recipe:
        """Checks and converts a dict (from JSON: a web request or a PNG) into a Recipe.

        Raises:
          SamplingError: an unknown key, a wrong type or a value out of range.
        """
        if not isinstance(d, dict):
            raise SamplingError(f"a recipe is a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SamplingError(f"unknown recipe keys: {', '.join(unknown)}")
        out = {}
        for key in ("x", "y"):
            if key in d:
                out[key] = _number(d[key], key, 0, MAX_COORD)
        if d.get("truncation") is not None:
            out["truncation"] = _number(d["truncation"], "truncation", -1.0, 10.0)
        if d.get("label") is not None:
            out["label"] = _integer(d["label"], "label", 0, 100_000)
        if "noise_mode" in d:
            if d["noise_mode"] not in NOISE_MODES:
                raise SamplingError(f"noise_mode must be one of {', '.join(NOISE_MODES)}")
            out["noise_mode"] = d["noise_mode"]
        if d.get("to") is not None:
            to = d["to"]
            if not isinstance(to, (list, tuple)) or len(to) != 2:
                raise SamplingError("to must be [x, y]")
            out["to"] = (
                _number(to[0], "to[0]", 0, MAX_COORD),
                _number(to[1], "to[1]", 0, MAX_COORD),
            )
        if "t" in d:
            out["t"] = _number(d["t"], "t", 0.0, 1.0)
        if d.get("edits"):
            edits = d["edits"]
            if not isinstance(edits, (list, tuple)) or len(edits) > MAX_EDITS:
                raise SamplingError(f"edits must be a list of at most {MAX_EDITS} edits")
            parsed = []
            for e in edits:
                if not isinstance(e, (list, tuple)) or len(e) != 3:
                    raise SamplingError("an edit is [method, direction index, strength]")
                if e[0] not in directions_lib.METHODS:
                    raise SamplingError(
                        f"edit method must be one of {', '.join(directions_lib.METHODS)}"
                    )
                parsed.append(
                    (
                        e[0],
                        _integer(e[1], "edit index", 0, 4096),
                        _number(e[2], "strength", -100, 100),
                    )
                )
            out["edits"] = tuple(parsed)
        for key in ("edit_layers", "mix_layers"):
            if key in d:
                if not isinstance(d[key], str) or len(d[key]) > 64:
                    raise SamplingError(f"{key} is a string like '0-3' or 'all'")
                out[key] = d[key]
        if d.get("mix_seed") is not None:
            out["mix_seed"] = _integer(d["mix_seed"], "mix_seed", 0, 2**31 - 1)
        if d.get("w") is not None:
            out["w"] = _decode_w(d["w"])
        return cls(**out)


def _number(v, name, lo, hi) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SamplingError(f"{name} must be a number, got {v!r}")
    if not lo <= v <= hi:
        raise SamplingError(f"{name} must lie in [{lo}, {hi}], got {v}")
    return float(v)


def _integer(v, name, lo, hi) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SamplingError(f"{name} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise SamplingError(f"{name} must lie in [{lo}, {hi}], got {v}")
    return int(v)


def _encode_w(w) -> str:
    return base64.b64encode(np.asarray(w, "<f4").tobytes()).decode("ascii")


def _decode_w(text) -> tuple[float, ...]:
    try:
        raw = base64.b64decode(text, validate=True)
        w = np.frombuffer(raw, "<f4")
    except (TypeError, ValueError):
        raise SamplingError("w must be base64 of little-endian float32 values") from None
    if not 1 <= w.size <= 4096 or not np.isfinite(w).all():
        raise SamplingError("w must hold 1-4096 finite values")
    return tuple(float(v) for v in w)


def plane_seed(i: int, j: int) -> int:
    """The seed at the integer point (i, j) of the seed plane."""
    return int(i) + PLANE_WIDTH * int(j)


def plane_corners(x: float, y: float) -> list[tuple[int, float]]:
    """[(seed, bilinear weight)] of the (up to four) plane points around (x, y)."""
    i, j = math.floor(x), math.floor(y)
    fx, fy = x - i, y - j
    out = []
    for di, dj, wt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        if wt > 0:
            out.append((plane_seed(i + di, j + dj), wt))
    return out


def _plane_z(handle: Generator, x, y, truncation) -> np.ndarray:
    corners = plane_corners(x, y)
    z = latents_for_seeds(handle.z_dim, [s for s, _ in corners], truncation=truncation)
    wts = np.asarray([wt for _, wt in corners], np.float64)
    return (np.tensordot(wts, z, 1) / np.sqrt(np.sum(wts**2))).astype(np.float32)


def _plane_ws(handle: Generator, x, y, label) -> np.ndarray:
    corners = plane_corners(x, y)
    ws = style.seed_ws(handle, [s for s, _ in corners], labels=label)
    wts = np.asarray([wt for _, wt in corners], np.float32)
    return np.tensordot(wts, ws, 1).astype(np.float32)


def _label(handle: Generator, recipe: Recipe) -> int | None:
    if not handle.conditional:
        if recipe.label is not None:
            raise SamplingError("this model is unconditional: the recipe's label does not apply")
        return None
    label = 0 if recipe.label is None else recipe.label
    if label >= handle.num_classes:
        raise SamplingError(f"label {label} is not in [0, {handle.num_classes})")
    return label


DirectionsFn = Callable[[str, str | None], directions_lib.Directions]


def directions_cache(handle: Generator) -> DirectionsFn:
    """`(method, layers) -> Directions` for `handle`, each computed once (all of them)."""
    cache = {}

    def get(method, layers):
        key = (method, layers)
        if key not in cache:
            cache[key] = directions_lib.find(handle, method, num=10**6, layers=layers)
        return cache[key]

    return get


def _edit_offset(recipe: Recipe, directions: DirectionsFn, layers) -> np.ndarray | None:
    if not recipe.edits:
        return None
    total = None
    for method in dict.fromkeys(m for m, _, _ in recipe.edits):
        d = directions(method, layers)
        off = d.offset([(i, s) for m, i, s in recipe.edits if m == method])
        total = off if total is None else total + off
    return total


def style_handle(handle: Generator, recipe: Recipe) -> Generator:
    """The handle with the recipe's psi and noise mode (StyleGAN2), else unchanged."""
    if not handle.is_style_based:
        if recipe.noise_mode != "const" or recipe.mix_seed is not None or recipe.w is not None:
            raise SamplingError("noise modes, style mixing and w are for StyleGAN2 runs")
        return handle
    psi = 1.0 if recipe.truncation is None else recipe.truncation
    return dataclasses.replace(handle, psi=psi, noise_mode=recipe.noise_mode)


def recipe_latent(handle: Generator, recipe: Recipe, directions: DirectionsFn | None = None):
    """z [z_dim] (most models) or ws [num_ws, w_dim] (StyleGAN2) of a recipe."""
    directions = directions or directions_cache(handle)
    label = _label(handle, recipe)
    if not handle.is_style_based:
        style_handle(handle, recipe)  # rejects StyleGAN2-only fields
        t = recipe.truncation
        if t is not None and not t > 0:
            raise SamplingError(f"truncation must be > 0 for {handle.config.model.name}, got {t}")
        z = _plane_z(handle, recipe.x, recipe.y, t)
        if recipe.to is not None:
            z_to = _plane_z(handle, *recipe.to, t)
            z = slerp(z, z_to, recipe.t)
        offset = _edit_offset(recipe, directions, None)
        return z if offset is None else z + offset
    handle = style_handle(handle, recipe)
    num_ws = handle.module.num_ws
    if recipe.w is not None:
        w = np.asarray(recipe.w, np.float32)
        w_dim = int(handle.config.model.w_dim)
        if w.shape != (w_dim,):
            raise SamplingError(f"the recipe's w has {w.size} values; this model's w has {w_dim}")
        ws = np.broadcast_to(w, (num_ws, w_dim)).copy()
    else:
        ws = _plane_ws(handle, recipe.x, recipe.y, label)
    if recipe.to is not None:
        ws_to = _plane_ws(handle, *recipe.to, label)
        ws = (1 - recipe.t) * ws + recipe.t * ws_to  # lerp in w, as StyleGAN2 does
    if recipe.mix_seed is not None:
        picked = list(style.parse_layers(recipe.mix_layers, num_ws))
        ws[picked] = style.seed_ws(handle, [recipe.mix_seed], labels=label)[0][picked]
    layers = recipe.edit_layers or "all"
    offset = _edit_offset(recipe, directions, layers)
    if offset is not None:
        edited = list(directions_lib._layers(handle, layers))
        ws[edited] += offset
    return ws


def render_recipes(
    handle: Generator, recipes: Sequence[Recipe], directions: DirectionsFn | None = None
) -> np.ndarray:
    """uint8 images [N, H, W, C] of the recipes, in one batch per shared setting."""
    if not recipes:
        raise SamplingError("no recipes to render")
    directions = directions or directions_cache(handle)
    latents = [recipe_latent(handle, r, directions) for r in recipes]
    out = [None] * len(recipes)
    if not handle.is_style_based:
        labels = [_label(handle, r) for r in recipes]
        z = np.stack(latents)
        lb = None if not handle.conditional else np.asarray(labels, np.int32)
        return np.concatenate(list(render(handle, z, labels=lb, batch_size=64)))
    # Group by (psi, noise mode): each group is one synthesis call.
    groups = {}
    for i, r in enumerate(recipes):
        h = style_handle(handle, r)
        groups.setdefault((h.psi, h.noise_mode), (h, []))[1].append(i)
    for h, idx in groups.values():
        images = style.render_ws(h, np.stack([latents[i] for i in idx]))
        for k, i in enumerate(idx):
            out[i] = images[k]
    return np.stack(out)


def recipe_metadata(handle: Generator, recipe: Recipe) -> dict:
    """What a PNG carries: the model, its checkpoint and the recipe."""
    return {
        "version": FORMAT_VERSION,
        "workdir": handle.workdir,
        "model": handle.config.model.get("name", ""),
        "step": int(handle.step),
        "ema": bool(handle.use_ema),
        "standing_stats": int(handle.config.get("standing_stats", 0) or 0),
        "recipe": recipe.to_dict(),
    }


def encode_recipe_png(
    image: np.ndarray, handle: Generator, recipe: Recipe, *, scale: int = 1
) -> bytes:
    """PNG bytes of `image` with the recipe in an iTXt chunk (nearest upscaling by `scale`)."""
    return images_lib.png_bytes(_scaled(image, scale), pnginfo=_recipe_info(handle, recipe, scale))


def save_recipe_png(image, path: str, handle: Generator, recipe: Recipe, *, scale: int = 1) -> None:
    """Writes `encode_recipe_png` to `path` (via a temporary file: never half-written)."""
    images_lib.save_png(_scaled(image, scale), path, pnginfo=_recipe_info(handle, recipe, scale))


def _scaled(image, scale: int) -> np.ndarray:
    image = np.asarray(image, np.uint8)
    return image.repeat(scale, 0).repeat(scale, 1) if scale > 1 else image


def _recipe_info(handle: Generator, recipe: Recipe, scale: int):
    from PIL import PngImagePlugin  # noqa: PLC0415

    info = PngImagePlugin.PngInfo()
    meta = recipe_metadata(handle, recipe)
    meta["scale"] = int(scale)
    info.add_itxt(PNG_KEY, json.dumps(meta, sort_keys=True))
    return info


def read_recipe_png(path_or_bytes) -> tuple[dict, Recipe]:
    """(metadata, Recipe) from a PNG written by the studio or `save_recipe_png`.

    Raises:
      SamplingError: not a readable PNG, or one without a gan_jax recipe.
    """
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    name = "the image" if isinstance(path_or_bytes, bytes) else f"'{path_or_bytes}'"
    try:
        with Image.open(source) as im:
            text = dict(getattr(im, "text", {}) or {})
    except FileNotFoundError:
        raise SamplingError(f"{name} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise SamplingError(f"cannot read {name} as a PNG: {e}") from None
    if PNG_KEY not in text:
        raise SamplingError(
            f"{name} carries no gan_jax recipe (save it from the studio or save_recipe_png)"
        )
    try:
        meta = json.loads(text[PNG_KEY])
    except json.JSONDecodeError as e:
        raise SamplingError(f"{name}: the recipe is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
        raise SamplingError(f"{name}: unknown recipe format {meta.get('version')!r}")
    return meta, Recipe.from_dict(meta.get("recipe"))
