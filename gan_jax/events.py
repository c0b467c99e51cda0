"""TensorBoard event files without TensorFlow: the writer of training and evaluate.py, and
the record reader of the curves plot.

The layout is what `tf.summary` writes in TF2 (TensorBoard reads both alike): a TFRecord
file `events.out.tfevents.<time>.<host>.<pid>.<n>.v2` whose first record says the file
version, then one `Event` per write, each value a tensor tagged with its plugin (a rank-0
float for "scalars"; [width, height, PNG...] strings for "images"; a string for "text"), and
the hyperparameters as the "hparams" plugin's session-start record at step 0.

Why not clu's `metric_writers.SummaryWriter`: importing `clu.metric_writers` imports
TensorFlow, about 9 s of every train.py start on a 2-core CPU, for a file format that is a
few protobufs. TensorBoard's protobufs and plugin metadata used here are pure Python.

    writer = EventWriter("runs/digits")
    writer.write_scalars(10, {"d_loss": 0.7})
    writer.write_images(10, {"samples": grid[None]})   # uint8 [N, H, W, C]
    writer.close()
"""

from __future__ import annotations

import io
import itertools
import os
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from clu import asynclib

_FILE_COUNTER = itertools.count()


def _masked_crc(data: bytes) -> bytes:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c  # noqa: PLC0415

    return struct.pack("<I", masked_crc32c(data))


def _record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C."""
    header = struct.pack("<Q", len(data))
    return header + _masked_crc(header) + data + _masked_crc(data)


def read_records(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file; stops quietly at a record still being written."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while True:
            header = f.read(12)  # uint64 length, uint32 masked CRC of the length
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            if f.tell() + length + 4 > size:
                return
            data = f.read(length)
            f.read(4)  # CRC of the data
            yield data


def _png(image: np.ndarray) -> bytes:
    from PIL import Image  # noqa: PLC0415

    if image.dtype != np.uint8:  # floats in [0, 1], as tf.summary.image takes them
        image = np.clip(np.round(np.asarray(image, np.float64) * 255), 0, 255).astype(np.uint8)
    if image.shape[-1] == 1:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _hparam_value(value: Any) -> bool | int | float | str:
    # The hparams plugin takes bool, number and string; a tuple or None is shown as text.
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _plugin_summary(plugin: str, to_array, values: Mapping[str, Any]):
    """A Summary of one TensorBoard plugin ('scalar', 'image', 'text'): each value a tensor
    made by `to_array`, tagged with the plugin's metadata as tf.summary writes it."""
    import importlib  # noqa: PLC0415

    from tensorboard.compat.proto import summary_pb2  # noqa: PLC0415
    from tensorboard.util import tensor_util  # noqa: PLC0415

    metadata = importlib.import_module(f"tensorboard.plugins.{plugin}.metadata")
    meta = metadata.create_summary_metadata(display_name="", description="")
    return summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=tag, metadata=meta, tensor=tensor_util.make_tensor_proto(to_array(value))
            )
            for tag, value in values.items()
        ]
    )


class EventWriter:
    """Writes scalars, images, texts and hyperparameters to a TensorBoard event file.

    The encoding (PNG, CRC) and the writes run on one background thread, in call order, so
    the training loop never waits on them. A failed write (a full disk) is raised as clu's
    `asynclib.AsyncError`, caused by the OSError, at the next call, `flush()` or `close()`.
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        stamp, host, pid = int(time.time()), socket.gethostname(), os.getpid()
        name = f"events.out.tfevents.{stamp:010d}.{host}.{pid}.{next(_FILE_COUNTER)}.v2"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._pool = asynclib.Pool(thread_name_prefix="EventWriter", max_workers=1)
        self._write = self._pool(self._write_event)
        self._closed = False
        self._write(dict(wall_time=time.time(), file_version="brain.Event:2"))

    def _write_event(self, fields: dict, values=None) -> None:
        from tensorboard.compat.proto import event_pb2  # noqa: PLC0415

        event = event_pb2.Event(**fields)
        if values is not None:
            event.summary.CopyFrom(values())
        self._file.write(_record(event.SerializeToString()))
        # Flushed per event (one every log_every steps): the studio and `sample.py
        # --mode=curves` read a live run's file, and a full disk shows at this write.
        self._file.flush()

    def _summary(self, step: int, values) -> None:
        if self._closed:
            raise ValueError("write to a closed EventWriter")
        self._write(dict(wall_time=time.time(), step=int(step)), values)

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Each value as a rank-0 float32 tensor of the "scalars" plugin."""
        scalars = {k: float(v) for k, v in scalars.items()}  # device arrays read here
        self._summary(step, lambda: _plugin_summary("scalar", np.float32, scalars))

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        """Each value a batch [N, H, W, C] (or one [H, W, C]) of uint8, or floats in [0, 1];
        C is 1, 3 or 4. Stored as tf.summary.image does: [width, height, PNG per image]."""
        batches = {}
        for tag, value in images.items():
            value = np.asarray(value)
            if value.ndim == 3:
                value = value[None]
            if value.ndim != 4 or value.shape[-1] not in (1, 3, 4):
                raise ValueError(f"image summary '{tag}': expected [N, H, W, C], got {value.shape}")
            batches[tag] = value

        def strings(batch):
            sizes = [str(batch.shape[2]).encode(), str(batch.shape[1]).encode()]
            return np.array(sizes + [_png(image) for image in batch], dtype=object)

        self._summary(step, lambda: _plugin_summary("image", strings, batches))

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        """Each value a string of the "text" plugin (TensorBoard renders it as Markdown)."""
        texts = {k: str(v) for k, v in texts.items()}
        self._summary(
            step, lambda: _plugin_summary("text", lambda t: np.array(t.encode(), object), texts)
        )

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        """The run's hyperparameters for TensorBoard's HParams tab (step 0)."""
        hparams = {k: _hparam_value(v) for k, v in hparams.items()}

        def values():
            from tensorboard.plugins.hparams import summary_v2  # noqa: PLC0415

            return summary_v2.hparams_pb(hparams)

        self._summary(0, values)

    def flush(self) -> None:
        """Waits for the writes so far and flushes the file; raises the first failed one."""
        self._pool.join()
        self._file.flush()

    def close(self) -> None:
        """Flushes and closes the file (again: nothing); raises the first failed write."""
        if self._closed:
            return
        self._closed = True
        try:
            self._pool.close()
            self._file.flush()
        finally:
            self._file.close()


class NullWriter:
    """EventWriter's interface, writing nothing: the other processes of a multi-host run."""

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        pass

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        pass

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        pass

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
