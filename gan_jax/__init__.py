"""gan_jax: generative adversarial networks for art and content generation, in JAX/Flax.

Data flows through the subpackages in this order: `input` (tf.data pipelines) -> `models`
(generators and discriminators) -> `losses` -> `training` (the jitted adversarial step, the
loop, checkpoints, logs) -> `evaluation` (FID and friends) -> `sampling` (grids, videos).
"""

__version__ = "0.1.0"
