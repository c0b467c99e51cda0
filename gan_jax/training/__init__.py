"""Training: the state, the jitted step, checkpoints and the loop.

`train_and_evaluate` is imported lazily: `sample.py` needs the state and checkpoint modules
but not the loop, which pulls in TensorFlow (about 10 s of imports on a small CPU).
"""


def __getattr__(name):
    if name in ("train_and_evaluate", "clear_compiled", "programs"):
        from gan_jax.training import loop  # noqa: PLC0415

        return getattr(loop, name)
    raise AttributeError(f"module 'gan_jax.training' has no attribute {name!r}")


__all__ = ["clear_compiled", "programs", "train_and_evaluate"]  # noqa: F822 (provided lazily by __getattr__)
