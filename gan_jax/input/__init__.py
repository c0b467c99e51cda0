"""Input pipeline: image sources (digits, npz, folder, tfds) -> float32 batches in [-1, 1].

Usage::

  from gan_jax import input as input_lib

  input_lib.validate(config)  # cheap, before compiling
  ds = input_lib.create_dataset(config, process_index=jax.process_index(),
                                process_count=jax.process_count(), start_step=step)
  logging.info('%d images, %d skipped', ds.num_examples, ds.skipped)
  for batch in ds: ...  # [local_batch, S, S, C] float32, forever
"""

from gan_jax.input.pipeline import Dataset, create_dataset, validate
from gan_jax.input.sources import SOURCES, DataError

__all__ = ["SOURCES", "DataError", "Dataset", "create_dataset", "validate"]
