"""Batches of training images and labels: ``create_dataset(config, ...)``, ``validate(config)``.

Also ``load_labelled_arrays(config, split)``: a labelled split as arrays, for evaluation.

Two kinds of pipeline sit behind one :class:`Dataset` interface:

* **In memory** (digits, npz, folder, and TFDS datasets up to ``TFDS_IN_MEMORY_BYTES`` at the
  target size, e.g. mnist, fashion_mnist, cifar10): images are decoded once into a uint8
  array. Epoch ``e`` visits the examples in the order of a permutation drawn from
  ``numpy.random.default_rng([seed, e])``; global batch ``b`` of that epoch is positions
  ``[b*B, (b+1)*B)`` of it, and process ``p`` takes the ``p``-th slice of ``B / process_count``
  examples. So the processes' local batches together form exactly the global batch a
  one-process run sees, and resuming at step ``k`` is index arithmetic (no decoding). Labels
  sit in an int32 array beside the images and are taken with the same indices.
  Each epoch drops ``N mod B`` examples (different ones each epoch). Every process holds the
  whole (small) array; folders over ``MAX_IN_MEMORY_BYTES`` live in a disk-backed memmap.
* **Streaming** (larger TFDS datasets: celeb_a, lsun): each process reads its own part of the
  split (``tfds.split_for_jax_process``), and each epoch is its own deterministic tf.data
  pipeline (file shuffle and shuffle buffer seeded by ``(seed, epoch, process)``), so a resume
  at step ``k`` only decodes and drops the batches of the current epoch before ``k``
  (``ds.skip``): at most one epoch of decoding, done before the first batch.

Batches are dicts ``{'image': float32 [local_batch, S, S, C] in [-1, 1] (x / 127.5 - 1),
'label': int32 [local_batch]}``; the labels are class ids when ``config.model.num_classes > 0``
(see :mod:`gan_jax.input.sources` for where each source reads them) and all 0 otherwise.

Notes:

* In-memory sources shuffle with a full permutation; ``data.shuffle_buffer`` only applies to
  streaming. The folder source decodes every file in every process (so all processes agree on
  which files decode and hold equal shards); the decode is also the validation scan, so
  ``Dataset.skipped`` is exact before the first step.
* Optional ``config.data`` fields, read with defaults when absent: ``max_in_memory_bytes``
  (folder; 2 GiB), ``cache_dir`` (folder memmap; system temp dir), ``tfds_in_memory_bytes``
  (512 MiB), ``data_dir`` (TFDS), ``tf_threads`` (tf.data private thread pool; min(8, CPUs)),
  ``label_key`` (npz; '' = no labels), ``labels`` (folder; 'none' | 'subfolders'),
  ``label_feature`` (TFDS; 'label'); and ``config.model.num_classes`` (0).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from absl import logging

from gan_jax.input import sources
from gan_jax.input.sources import DataError

if TYPE_CHECKING:
    import tensorflow as tf


@functools.cache
def _tensorflow():
    """TensorFlow, imported on first use (seconds): only the TFDS source needs it, and the
    commands that never read TFDS (sample.py, project.py, the studio) start without it."""
    try:
        import tensorflow as tf  # noqa: PLC0415
    except ImportError:  # pragma: no cover - only the tfds source needs TensorFlow
        return None
    # tf.data runs on the CPU; keep TensorFlow from reserving accelerator memory JAX needs.
    # RuntimeError/ValueError: the TF runtime is already initialised; nothing to do then.
    with contextlib.suppress(RuntimeError, ValueError):
        tf.config.set_visible_devices([], "GPU")
    return tf


SOURCES = sources.SOURCES

# uint8 -> float32 in [-1, 1]; a table lookup is cheaper than the arithmetic on every pixel.
_TO_FLOAT = (np.arange(256, dtype=np.float64) / 127.5 - 1.0).astype(np.float32)


def is_unpaired(config) -> bool:
    """Two image domains (CycleGAN): `data.path_a`/`data.path_b`, `data.split_a`/`data.split_b`
    or `data.domain_b` is set."""
    keys = ("path_a", "path_b", "split_a", "split_b", "domain_b")
    return any(sources.data_field(config, k, "") for k in keys)


def validate(config) -> None:
    """Cheap checks of ``config.data`` before anything is compiled or decoded.

    Checks the source name, image size, channels and crop, that a folder exists and holds image
    files, that an npz file holds ``npz_key``, and that a TFDS name is known. With
    ``model.num_classes > 0`` also that the source has labels and as many classes: an npz
    holds ``label_key``, a folder with ``labels='subfolders'`` has >= 2 class subfolders with
    images, a TFDS dataset has the ClassLabel ``label_feature``, digits have 10 classes. (An
    npz's label values are checked where they are read, by :func:`create_dataset`.)

    Args:
      config: the run's ConfigDict.

    Raises:
      DataError: with a message that names the offending field.
    """
    source, size, channels, crop = sources.image_settings(config)
    if sources.data_field(config, "task", ""):  # an image-to-image task: paired examples
        from gan_jax.input import paired  # noqa: PLC0415 (paired builds on this module)

        paired.validate(config)
    if source not in SOURCES:
        raise DataError(
            f"config.data.source: unknown source '{source}'; choose one of {', '.join(SOURCES)}"
        )
    if size <= 0:
        raise DataError(f"config.data.image_size: must be a positive integer, got {size}")
    if channels not in (1, 3):
        raise DataError(f"config.data.channels: must be 1 or 3, got {channels}")
    if crop not in sources.CROPS:
        raise DataError(
            f"config.data.crop: must be one of {', '.join(sources.CROPS)}, got '{crop}'"
        )
    if is_unpaired(config):  # two domains (CycleGAN): their own checks
        from gan_jax.input import unpaired  # noqa: PLC0415

        unpaired.validate(config)
        if not sources.data_field(config, "domain_b", ""):
            return  # two folders, checked there; one stylised source is checked below
    num_classes = sources.model_num_classes(config)
    sources.folder_label_mode(config, required=False)  # a typo fails for every source
    if source == "digits":
        if num_classes and num_classes != sources.DIGITS_CLASSES:
            raise DataError(
                f"config.model.num_classes: {num_classes}, but the data has "
                f"{sources.DIGITS_CLASSES} classes (labels 0..{sources.DIGITS_CLASSES - 1}: "
                "scikit-learn's digits)"
            )
    elif source == "folder":
        if num_classes:
            sources.check_folder_classes(config)
        else:
            sources.check_folder(config)
    elif source == "npz":
        sources.check_npz(config)
    elif source == "tfds":
        if _tensorflow() is None:
            raise DataError(
                "config.data.source: 'tfds' needs tensorflow and tensorflow-datasets installed"
            )
        builder = sources.tfds_builder(config)
        if num_classes:
            sources.tfds_label_info(config, builder)


class Dataset:
    """An endless stream of local batches, starting at global step ``start_step``.

    Iterating yields dicts ``{'image': float32 [local_batch, S, S, C] in [-1, 1],
    'label': int32 [local_batch]}`` (labels all 0 when ``num_classes == 0``).

    Attributes:
      num_examples: examples in the whole split (before process sharding, after skipped files).
      steps_per_epoch: ``num_examples // batch_size``, at least 1.
      batch_size: the global batch.
      local_batch_size: ``batch_size // process_count``.
      skipped: files that failed to decode (folder source; 0 otherwise).
      failures: ``(path, reason)`` for each skipped file.
      image_shape: ``(S, S, C)``.
      start_step: the global step of the first batch.
      num_classes: classes in the data when labels are read (``model.num_classes > 0``), else 0.
      class_names: the name of each class (subfolder names, TFDS ClassLabel names, '0'..'K-1'
        for digits and npz); empty when labels are not read.
    """

    def __init__(
        self,
        *,
        num_examples,
        batch_size,
        process_index,
        process_count,
        start_step,
        image_shape,
        skipped=0,
        failures=(),
        class_names=(),
    ):
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.process_index = int(process_index)
        self.process_count = int(process_count)
        self.local_batch_size = self.batch_size // self.process_count
        self.steps_per_epoch = max(1, self.num_examples // self.batch_size)
        self.start_step = int(start_step)
        self.image_shape = tuple(image_shape)
        self.skipped = int(skipped)
        self.failures = list(failures)
        self.class_names = [str(n) for n in class_names]
        self.num_classes = len(self.class_names)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        raise NotImplementedError


class ArrayDataset(Dataset):
    """Batches drawn by index from a uint8 array held in memory (or a memmap).

    Attributes:
      images: uint8 ``[N, S, S, C]``.
      labels: int32 ``[N]``, the class of each image (all 0 when unlabelled).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        seed: int,
        prefetch: int = 2,
        **kwargs,
    ):
        super().__init__(num_examples=len(images), image_shape=images.shape[1:], **kwargs)
        self.images = images
        if labels is None:
            labels = np.zeros(len(images), np.int32)
        labels = np.asarray(labels, np.int32)
        if labels.shape != (len(images),):  # the sources check this; a guard for direct use
            raise ValueError(f"labels {labels.shape} do not pair with images {images.shape}")
        self.labels = labels
        self.seed = int(seed)
        self.prefetch = prefetch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Example indices of one epoch, the same in every process."""
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.seed >> 32 & 0xFFFFFFFF, epoch])
        n = self.num_examples
        # A dataset smaller than one batch is visited several times within its single step.
        repeats = -(-self.batch_size // n)
        return np.concatenate([rng.permutation(n) for _ in range(repeats)])

    def local_indices(self, step: int, order: np.ndarray | None = None) -> np.ndarray:
        """Indices of this process's examples at global ``step``."""
        epoch, b = divmod(step, self.steps_per_epoch)
        if order is None:
            order = self.epoch_order(epoch)
        begin = b * self.batch_size + self.process_index * self.local_batch_size
        return order[begin : begin + self.local_batch_size]

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        order_epoch, order = None, None
        for step in itertools.count(self.start_step):
            epoch = step // self.steps_per_epoch
            if epoch != order_epoch:
                order_epoch, order = epoch, self.epoch_order(epoch)
            yield self.batch(self.local_indices(step, order), epoch)

    def batch(self, idx: np.ndarray, epoch: int) -> dict[str, np.ndarray]:
        """The batch of examples `idx` (read in `epoch`)."""
        del epoch  # the same images every epoch; paired tasks degrade them per epoch
        return {"image": np.take(_TO_FLOAT, self.images[idx]), "label": self.labels[idx]}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        if self.prefetch <= 0:
            return self._batches()
        return _prefetch(self._batches(), self.prefetch)


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _prefetch(iterator: Iterator, depth: int) -> Iterator:
    """Runs ``iterator`` in a background thread, ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def work():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # re-raised in the consumer
            q.put(_Failure(e))

    threading.Thread(target=work, daemon=True, name="gan_jax_input_prefetch").start()

    def consume():
        try:
            while True:
                item = q.get()
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()

    return consume()


# ---------------------------------------------------------------------------------------------
# TFDS


def _tf_fit(image, size: int, channels: int, crop: str):
    """TF twin of :func:`sources.fit_image` + :func:`sources.to_channels`; returns uint8."""
    tf = _tensorflow()
    if image.shape[-1] == 4:  # drop alpha (TFDS image datasets are almost never RGBA)
        image = image[..., :3]
    if image.shape[-1] == 3 and channels == 1:
        image = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
    elif image.shape[-1] == 1 and channels == 3:
        image = tf.image.grayscale_to_rgb(image)
    if image.shape[0] == size and image.shape[1] == size:
        return tf.cast(tf.clip_by_value(tf.round(tf.cast(image, tf.float32)), 0, 255), tf.uint8)
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    h = tf.cast(shape[0], tf.float64)
    w = tf.cast(shape[1], tf.float64)
    if crop == "center":
        # torchvision Resize(size): the shorter side becomes `size`, the other int(size * l / s).
        s = tf.constant(float(size), tf.float64)
        new_h = tf.where(w <= h, tf.floor(s * h / w), s)
        new_w = tf.where(w <= h, s, tf.floor(s * w / h))
        new_h, new_w = tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)
        image = tf.image.resize(image, tf.stack([new_h, new_w]), "bilinear", antialias=True)
        # CenterCrop: Python round(), i.e. half to even, which tf.round also does.
        top = tf.cast(tf.round(tf.cast(new_h - size, tf.float64) / 2.0), tf.int32)
        left = tf.cast(tf.round(tf.cast(new_w - size, tf.float64) / 2.0), tf.int32)
        image = image[top : top + size, left : left + size]
    else:
        image = tf.image.resize(image, (size, size), "bilinear", antialias=True)
    image = tf.ensure_shape(image, (size, size, channels))
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _tf_options(config) -> tf.data.Options:
    tf = _tensorflow()
    options = tf.data.Options()
    options.deterministic = True
    threads = int(sources.data_field(config, "tf_threads", min(8, os.cpu_count() or 1)))
    options.threading.private_threadpool_size = max(1, threads)
    return options


def _tfds_num_examples(builder, split: str) -> int:
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError):
        # No split metadata (tfds.testing.mock_data): count the records instead.
        ds = builder.as_dataset(split=split, shuffle_files=False)
        n = int(ds.cardinality().numpy())
        return n if n >= 0 else sum(1 for _ in ds)


def _tf_example_fn(size: int, channels: int, crop: str, label_feature: str | None):
    """TFDS example -> ``{'image': uint8 [S, S, C], 'label': int32 []}`` (label 0 if None)."""
    tf = _tensorflow()

    def fn(ex):
        image = _tf_fit(ex["image"], size, channels, crop)
        # Unlabelled runs still yield a label, so every batch has the same structure.
        label = tf.cast(ex[label_feature], tf.int32) if label_feature else tf.zeros([], tf.int32)
        return {"image": image, "label": label}

    return fn


def _load_tfds_arrays(
    config, builder, split, size, channels, crop, label_feature: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """A TFDS split decoded in file order: uint8 ``[N, S, S, C]`` and int32 ``[N]`` labels."""
    tf = _tensorflow()
    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = ds.map(
        _tf_example_fn(size, channels, crop, label_feature),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(1024).with_options(_tf_options(config)).prefetch(2)
    parts = list(ds.as_numpy_iterator())
    if not parts:
        return np.zeros((0, size, size, channels), np.uint8), np.zeros((0,), np.int32)
    images = np.concatenate([p["image"] for p in parts], axis=0)
    labels = np.concatenate([p["label"] for p in parts], axis=0)
    return images, labels


class TfdsStreamDataset(Dataset):
    """A TFDS split streamed through tf.data, one deterministic pipeline per epoch."""

    def __init__(self, config, builder, split, *, seed, label_feature=None, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.builder = builder
        self.seed = int(seed)
        self.label_feature = label_feature
        import tensorflow_datasets as tfds

        self.local_split = split
        if self.process_count > 1:
            self.local_split = tfds.split_for_jax_process(
                split,
                process_index=self.process_index,
                process_count=self.process_count,
                drop_remainder=True,
            )

    def epoch_seed(self, epoch: int) -> int:
        seq = np.random.SeedSequence([self.seed & 0xFFFFFFFF, epoch, self.process_index])
        return int(seq.generate_state(1)[0])

    def epoch_dataset(self, epoch: int, skip: int = 0) -> tf.data.Dataset:
        """This process's batches of one epoch, dropping its first ``skip`` batches."""
        tf = _tensorflow()
        import tensorflow_datasets as tfds

        size, channels = self.image_shape[0], self.image_shape[2]
        crop = str(sources.data_field(self.config, "crop", "center"))
        options = _tf_options(self.config)
        seed = self.epoch_seed(epoch)
        read_config = tfds.ReadConfig(shuffle_seed=seed, options=options)
        ds = self.builder.as_dataset(
            split=self.local_split, shuffle_files=True, read_config=read_config
        )
        ds = ds.map(
            _tf_example_fn(size, channels, crop, self.label_feature),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        buffer = int(sources.data_field(self.config, "shuffle_buffer", 10_000))
        if buffer > 1:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
        # repeat() so that a split smaller than a batch still fills one step.
        ds = ds.repeat().batch(self.local_batch_size, drop_remainder=True)
        ds = ds.take(self.steps_per_epoch)
        if skip:
            ds = ds.skip(skip)  # decodes the skipped batches: at most one epoch's worth
        ds = ds.map(
            lambda b: {"image": tf.cast(b["image"], tf.float32) / 127.5 - 1.0, "label": b["label"]}
        )
        return ds.with_options(options).prefetch(2)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        first_epoch, skip = divmod(self.start_step, self.steps_per_epoch)
        for epoch in itertools.count(first_epoch):
            ds = self.epoch_dataset(epoch, skip if epoch == first_epoch else 0)
            yield from ds.as_numpy_iterator()


def _prepared_tfds(config, split: str):
    """``(builder, num_examples)`` of a prepared, non-empty TFDS split."""
    if _tensorflow() is None:
        raise DataError(
            "config.data.source: 'tfds' needs tensorflow and tensorflow-datasets installed"
        )
    builder = sources.tfds_builder(config)
    name = sources.data_field(config, "name", "")
    try:
        builder.download_and_prepare()
    except Exception as e:  # no network, missing manual download, ...
        raise DataError(
            f"config.data.name: TFDS dataset '{name}' is not prepared in {builder.data_dir} and "
            f"could not be downloaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); "
            "prepare it with `tfds build` or use data.source='folder'/'npz'"
        ) from e
    try:
        num_examples = _tfds_num_examples(builder, split)
    except Exception as e:
        raise DataError(f"config.data.split: split '{split}' of TFDS dataset '{name}': {e}") from e
    if num_examples <= 0:
        raise DataError(f"config.data.split: split '{split}' of TFDS dataset '{name}' is empty")
    return builder, num_examples


def load_tfds_images(config, size: int, channels: int, crop: str) -> tuple[np.ndarray, list[str]]:
    """Every image of the TFDS split ``data.split`` decoded into memory, in file order, with
    stable keys '<split>/<index>' (image-to-image tasks hash them into their own splits).

    Raises:
      DataError: the dataset is not prepared, or the split would not fit in
        ``data.tfds_in_memory_bytes`` (a slice such as 'train[:20000]' does).
    """
    split = str(sources.data_field(config, "split", "train"))
    builder, num_examples = _prepared_tfds(config, split)
    limit = int(sources.data_field(config, "tfds_in_memory_bytes", sources.TFDS_IN_MEMORY_BYTES))
    if num_examples * size * size * channels > limit:
        raise DataError(
            f"config.data.split: '{split}' holds {num_examples} images, "
            f"{num_examples * size * size * channels / 2**30:.1f} GiB at {size} px, over "
            f"data.tfds_in_memory_bytes ({limit / 2**30:.1f} GiB); image-to-image tasks decode "
            "their source into memory: take a slice ('train[:20000]') or raise the limit"
        )
    images, _ = _load_tfds_arrays(config, builder, split, size, channels, crop, None)
    return images, [f"{split}/{i}" for i in range(len(images))]


def _create_tfds(config, common, size, channels, crop):
    split = str(sources.data_field(config, "split", "train"))
    builder, num_examples = _prepared_tfds(config, split)
    name = sources.data_field(config, "name", "")
    label_feature, class_names = None, []
    if sources.model_num_classes(config):
        label_feature, _, class_names = sources.tfds_label_info(config, builder)
    limit = int(sources.data_field(config, "tfds_in_memory_bytes", sources.TFDS_IN_MEMORY_BYTES))
    if num_examples * size * size * channels <= limit:
        logging.info("Decoding TFDS %s[%s] (%d images) into memory", name, split, num_examples)
        images, labels = _load_tfds_arrays(
            config, builder, split, size, channels, crop, label_feature
        )
        if label_feature:  # ClassLabel keeps ids in range; a cheap guard all the same
            labels, _ = sources.check_labels(
                labels,
                num_images=len(images),
                where=f"'{label_feature}' of TFDS {name}[{split}]",
                key="data.label_feature",
                num_classes=len(class_names),
                declared=len(class_names),
            )
        return ArrayDataset(images, labels, seed=config.seed, class_names=class_names, **common)
    logging.info("Streaming TFDS %s[%s] (%d images)", name, split, num_examples)
    return TfdsStreamDataset(
        config,
        builder,
        split,
        seed=config.seed,
        label_feature=label_feature,
        class_names=class_names,
        num_examples=num_examples,
        image_shape=(size, size, channels),
        **common,
    )


def create_dataset(config, *, process_index: int, process_count: int, start_step: int = 0):
    """Builds this process's endless stream of training batches.

    Args:
      config: the run's ConfigDict (``seed``, ``batch_size`` (global), ``data.*``).
      process_index: this process, ``jax.process_index()``.
      process_count: all processes, ``jax.process_count()``.
      start_step: global step of the first batch; the stream then equals the one a run from
        step 0 yields from that step on.

    Returns:
      A :class:`Dataset`: iterate it for dicts ``{'image': float32 [local_batch, S, S, C] in
      [-1, 1], 'label': int32 [local_batch]}`` (labels all 0 when ``model.num_classes`` is 0);
      it also carries ``num_examples``, ``steps_per_epoch``, ``local_batch_size``, ``skipped``
      (files that failed to decode, counted before the first batch), ``num_classes`` and
      ``class_names``.

    Raises:
      DataError: the data cannot be used (missing, empty, nothing decodes, bad batch size,
        no labels or a class count other than ``model.num_classes`` for a conditional run,
        malformed labels).
    """
    validate(config)
    source, size, channels, crop = sources.image_settings(config)
    batch_size = int(config.batch_size)
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    if batch_size < 1 or batch_size % process_count:
        raise DataError(
            f"config.batch_size: {batch_size} must be a positive multiple of the process count "
            f"{process_count}"
        )
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    common = dict(
        batch_size=batch_size,
        process_index=process_index,
        process_count=process_count,
        start_step=start_step,
    )
    if sources.data_field(config, "task", ""):
        from gan_jax.input import paired  # noqa: PLC0415

        return paired.create_paired_dataset(config, common=common)
    if is_unpaired(config):
        from gan_jax.input import unpaired  # noqa: PLC0415

        return unpaired.create_unpaired_dataset(config, common=common)
    if source == "tfds":
        return _create_tfds(config, common, size, channels, crop)
    labelled = sources.model_num_classes(config) > 0
    failures, labels, class_names = [], None, []
    if source == "digits":
        if labelled:
            labels, class_names = sources.load_digits_labels(config)
        images = sources.load_digits_images(size, channels)
    elif source == "npz":
        images, labels, class_names = sources.load_npz(
            config, size, channels, crop, labelled=labelled
        )
    elif labelled:
        images, labels, failures, class_names = sources.load_folder_classes(
            config, size, channels, crop
        )
    else:
        images, failures = sources.load_folder_images(config, size, channels, crop)
    logging.info(
        "Data: %s, %d images of %s, %d classes",
        source,
        len(images),
        images.shape[1:],
        len(class_names),
    )
    return ArrayDataset(
        images,
        labels,
        seed=config.seed,
        skipped=len(failures),
        failures=failures,
        class_names=class_names,
        **common,
    )


def load_labelled_arrays(config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One labelled split of the config's data as arrays, for evaluation (e.g. a classifier).

    The images are converted as for training (``data.image_size``, ``channels``, ``crop``) and
    kept in the source's order. Labels are read from the source's labels whatever
    ``model.num_classes`` is (an unconditional GAN can be scored by a classifier too); when it
    is > 0 they must lie in ``[0, num_classes)``.

    Splits by source:

    * ``npz``: 'train' reads ``data.npz_key`` / ``data.label_key``; another name S reads
      the keys with 'train' replaced by S ('test': ``x_test`` / ``y_test``).
    * ``tfds``: the TFDS split of that name ('train', 'test', 'train[:10%]', ...).
    * ``digits`` and ``folder`` (``labels='subfolders'``): 'train' or 'test' of a fixed
      stratified hold-out (20% of each class in 'test', drawn with a fixed seed). Training
      itself uses every image, the hold-out included.

    Args:
      config: the run's config.
      split: the split's name.

    Returns:
      ``(images, labels)``: uint8 ``[N, S, S, C]`` and int32 ``[N]``.

    Raises:
      DataError: the source has no labels configured (naming the key to set), the split does
        not exist, or the labels are malformed.
    """
    validate(config)
    source, size, channels, crop = sources.image_settings(config)
    num_classes = sources.model_num_classes(config)
    split = str(split)
    if source == "digits":
        labels, _ = sources.load_digits_labels(config)
        keep = sources.holdout_indices(labels, split, source="digits")
        return sources.load_digits_images(size, channels)[keep], labels[keep]
    if source == "npz":
        images, labels, _ = sources.load_npz(
            config, size, channels, crop, labelled=True, split=split
        )
        return images, labels
    if source == "folder":
        images, labels, _, _ = sources.load_folder_classes(
            config, size, channels, crop, split=split
        )
        return np.asarray(images), labels
    builder, _ = _prepared_tfds(config, split)
    label_feature, count, _ = sources.tfds_label_info(config, builder)
    images, labels = _load_tfds_arrays(config, builder, split, size, channels, crop, label_feature)
    name = sources.data_field(config, "name", "")
    labels, _ = sources.check_labels(
        labels,
        num_images=len(images),
        where=f"'{label_feature}' of TFDS {name}[{split}]",
        key="data.label_feature",
        num_classes=num_classes,
        declared=count,
    )
    return images, labels
