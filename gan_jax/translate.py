"""Apply a trained image-to-image run from Python: `gan_jax.translate.load(workdir)(image)`.

The same as `translate.py` on the command line; see `gan_jax.sampling.translate`.
"""

from gan_jax.sampling.translate import DEFAULT_TILE, Translator, load

__all__ = ["DEFAULT_TILE", "Translator", "load"]
