"""Input pipeline: image sources (digits, npz, folder, tfds) -> batches of images and labels.

Usage::

  from gan_jax import input as input_lib

  input_lib.validate(config)  # cheap, before compiling
  ds = input_lib.create_dataset(config, process_index=jax.process_index(),
                                process_count=jax.process_count(), start_step=step)
  logging.info('%d images, %d skipped, %d classes', ds.num_examples, ds.skipped,
               ds.num_classes)
  for batch in ds: ...  # forever: {'image': float32 [local_batch, S, S, C] in [-1, 1],
                        #           'label': int32 [local_batch]} (all 0 when unconditional)

  # Evaluation: a labelled split as arrays (uint8 [N, S, S, C], int32 [N]).
  images, labels = input_lib.load_labelled_arrays(config, "test")
"""

from gan_jax.input.pipeline import Dataset, create_dataset, load_labelled_arrays, validate
from gan_jax.input.sources import SOURCES, DataError

__all__ = ["SOURCES", "DataError", "Dataset", "create_dataset", "load_labelled_arrays", "validate"]
