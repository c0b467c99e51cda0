"""Training: the state, the jitted step, checkpoints and the loop.

`train_and_evaluate` is imported lazily: `sample.py` needs the state and checkpoint modules
but not the loop, which pulls in TensorFlow (about 10 s of imports on a small CPU).
"""


def __getattr__(name):
    if name == "train_and_evaluate":
        from gan_jax.training.loop import train_and_evaluate  # noqa: PLC0415

        return train_and_evaluate
    raise AttributeError(f"module 'gan_jax.training' has no attribute {name!r}")


__all__ = ["train_and_evaluate"]  # noqa: F822 (provided lazily by __getattr__)
