"""Sampling: load a trained generator, make images, grids, interpolations and videos.

The same functions serve sample.py, the notebook and other programs:

    from gan_jax import sampling
    g = sampling.load_generator("runs/digits")              # latest checkpoint, EMA weights
    grid = sampling.make_grid(sampling.generate_array(g, 64, seed=0))
    sampling.save_png(grid, "grid.png")
    z = sampling.latents(g.z_dim, 4, seed=1)                 # 4 key points
    frames = sampling.render_frames(g, sampling.path(z, 60, loop=True))
    sampling.save_gif(frames, "walk.gif", fps=24)
"""

from gan_jax.images import make_grid, save_images, save_png, to_uint8
from gan_jax.sampling.directions import Directions, ganspace, sefa
from gan_jax.sampling.generation import (
    BEST_DIR,
    Generator,
    SamplingError,
    from_state,
    generate,
    generate_array,
    latents,
    latents_for_seeds,
    load_generator,
    render,
)
from gan_jax.sampling.interpolate import lerp, path, slerp
from gan_jax.sampling.projector import (
    NOISE_FILE,
    Projection,
    load_noise_maps,
    load_target,
    noise_regularisation,
    project,
    psnr,
)
from gan_jax.sampling.recipe import (
    Recipe,
    encode_recipe_png,
    read_recipe_png,
    render_recipes,
    save_recipe_png,
)
from gan_jax.sampling.style import parse_layers, render_ws, seed_ws, style_mix_grid
from gan_jax.sampling.video import (
    auto_scale,
    render_frames,
    save_gif,
    save_mp4,
    save_strip,
    upscale,
)

__all__ = [
    "BEST_DIR",
    "NOISE_FILE",
    "load_noise_maps",
    "noise_regularisation",
    "Directions",
    "Recipe",
    "Generator",
    "Projection",
    "SamplingError",
    "auto_scale",
    "encode_recipe_png",
    "ganspace",
    "from_state",
    "generate",
    "generate_array",
    "latents",
    "latents_for_seeds",
    "lerp",
    "load_generator",
    "load_target",
    "make_grid",
    "parse_layers",
    "path",
    "project",
    "psnr",
    "read_recipe_png",
    "render",
    "render_frames",
    "render_recipes",
    "render_ws",
    "save_gif",
    "save_images",
    "save_mp4",
    "save_png",
    "save_recipe_png",
    "save_strip",
    "seed_ws",
    "sefa",
    "slerp",
    "style_mix_grid",
    "to_uint8",
    "upscale",
]
