"""gan_jax.events: TensorBoard event files written without TensorFlow, read back by
TensorFlow's own record reader and TensorBoard's event loader."""

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_jax import events
from gan_jax.sampling import curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_all(logdir):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    gray = rng.random((6, 4, 1)).astype(np.float32)
    writer = events.EventWriter(str(logdir))
    writer.write_hparams({"lr": 2e-4, "model.name": "dcgan", "ema": True, "size": 32, "t": (1, 2)})
    writer.write_scalars(1, {"d_loss": 0.5, "g_loss": np.float32(-1.25)})
    writer.write_scalars(2, {"d_loss": 0.25})
    writer.write_images(2, {"samples": rgb, "gray": gray})
    writer.write_texts(3, {"note": "**hello** tensorboard"})
    writer.close()
    return writer.path, rgb, gray


def test_tensorflow_reads_what_we_write(tmp_path):
    import tensorflow as tf  # noqa: PLC0415
    from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: PLC0415

    path, rgb, gray = _write_all(tmp_path)
    assert os.path.basename(path).startswith("events.out.tfevents.")
    # TF's reader checks both CRCs of every record.
    read = list(tf.compat.v1.train.summary_iterator(path))
    assert read[0].file_version == "brain.Event:2"
    values = {}
    for event in read[1:]:
        for value in event.summary.value:
            values.setdefault(value.tag, []).append((event.step, value))
    assert [(s, float(tf.make_ndarray(v.tensor))) for s, v in values["d_loss"]] == [
        (1, 0.5),
        (2, 0.25),
    ]
    ((step, g_loss),) = values["g_loss"]
    assert step == 1 and float(tf.make_ndarray(g_loss.tensor)) == -1.25
    assert g_loss.metadata.plugin_data.plugin_name == "scalars"

    ((step, samples),) = values["samples"]
    assert step == 2 and samples.metadata.plugin_data.plugin_name == "images"
    strings = tf.make_ndarray(samples.tensor)
    assert strings[:2].tolist() == [b"7", b"5"]  # width, height
    for png, image in zip(strings[2:], rgb, strict=True):
        np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), image)
    ((_, gray_value),) = values["gray"]
    decoded = tf.io.decode_png(tf.make_ndarray(gray_value.tensor)[2]).numpy()
    np.testing.assert_array_equal(decoded, np.round(gray[None][0] * 255).astype(np.uint8))

    ((step, note),) = values["note"]
    assert step == 3 and note.metadata.plugin_data.plugin_name == "text"
    assert tf.make_ndarray(note.tensor) == b"**hello** tensorboard"

    ((step, hp),) = values["_hparams_/session_start_info"]
    assert step == 0 and hp.metadata.plugin_data.plugin_name == "hparams"
    info = plugin_data_pb2.HParamsPluginData.FromString(
        hp.metadata.plugin_data.content
    ).session_start_info
    assert info.hparams["lr"].number_value == pytest.approx(2e-4)
    assert info.hparams["model.name"].string_value == "dcgan"
    assert info.hparams["ema"].bool_value is True
    assert info.hparams["t"].string_value == "(1, 2)"  # no tuple type: shown as text


def test_tensorboard_loader_and_our_curves_agree(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415

    _write_all(tmp_path)
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    assert {"d_loss", "g_loss", "samples", "gray", "note"} <= set(acc.Tags()["tensors"])
    scalars = curves.read_scalars(str(tmp_path))
    assert sorted(scalars) == ["d_loss", "g_loss"]  # images, text and hparams are not scalars
    assert scalars["d_loss"][0].tolist() == [1, 2]
    assert scalars["d_loss"][1].tolist() == [0.5, 0.25]


def test_a_corrupted_record_is_caught_by_its_crc(tmp_path):
    import tensorflow as tf  # noqa: PLC0415

    path, _, _ = _write_all(tmp_path)
    data = bytearray(Path(path).read_bytes())
    data[40] ^= 0xFF  # inside the first record's data
    Path(path).write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.compat.v1.train.summary_iterator(path))


def test_records_of_a_file_still_being_written(tmp_path):
    path, _, _ = _write_all(tmp_path)
    data = Path(path).read_bytes()
    whole = list(events.read_records(path))
    assert len(whole) == 6  # the version record, then 5 writes
    Path(path).write_bytes(data[:-3])  # the last record's tail not yet on disk
    assert list(events.read_records(path)) == whole[:-1]


def test_a_failed_write_is_raised_with_its_os_error(tmp_path):
    from clu import asynclib  # noqa: PLC0415

    writer = events.EventWriter(str(tmp_path))
    writer.flush()
    full = writer._file = open("/dev/full", "wb")  # noqa: SIM115 (every write fails: ENOSPC)
    writer.write_scalars(1, {"x": 1.0})
    with pytest.raises(asynclib.AsyncError) as caught:
        writer.flush()
    assert isinstance(caught.value.__cause__, OSError)
    assert "No space left on device" in str(caught.value.__cause__)
    with pytest.raises(ValueError, match=r"expected \[N, H, W, C\]"):
        writer.write_images(1, {"bad": np.zeros((4, 4))})
    writer._file = open(os.devnull, "wb")  # noqa: SIM115 (closed by writer.close)
    with contextlib.suppress(OSError):
        full.close()
    writer.close()
    writer.close()  # a second close does nothing
    with pytest.raises(ValueError, match="closed"):
        writer.write_scalars(2, {"x": 1.0})


def test_training_does_not_import_tensorflow():
    """The point of the module: train.py's start-up without TensorFlow (9 s on 2 cores)."""
    code = (
        "import sys; import gan_jax.training.loop, gan_jax.evaluation.scoring; "
        "print(sorted(m for m in ('tensorflow', 'clu.metric_writers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_png_of_floats_and_alpha():
    rgba = np.zeros((3, 2, 4), np.uint8)
    rgba[..., 3] = 128
    image = Image.open(io.BytesIO(events._png(rgba)))
    assert image.mode == "RGBA" and np.asarray(image)[0, 0, 3] == 128
    floats = np.full((2, 2, 3), 0.5, np.float32)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(events._png(floats)))), 128)
