"""Training: the state, the jitted step, checkpoints and the loop."""

from gan_jax.training.loop import train_and_evaluate

__all__ = ["train_and_evaluate"]
