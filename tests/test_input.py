"""Tests of gan_jax.input: every source, resume, determinism and process sharding."""

import os

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax import input as input_lib
from gan_jax.input import pipeline, sources

MNIST_NPZ = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist_uint8.npz")


def make_config(batch_size=8, seed=0, **data):
    fields = dict(
        source="digits",
        name="",
        split="train",
        path="",
        npz_key="x_train",
        image_size=16,
        channels=1,
        crop="center",
        shuffle_buffer=100,
    )
    fields.update(data)
    config = ml_collections.ConfigDict()
    config.seed = seed
    config.batch_size = batch_size
    config.data = ml_collections.ConfigDict(fields)
    return config


def take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def check_batch(batch, shape):
    assert batch.shape == shape
    assert batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0


# ---------------------------------------------------------------------------------------------
# digits and npz


def test_digits_shape_range():
    ds = input_lib.create_dataset(make_config(image_size=32), process_index=0, process_count=1)
    assert ds.num_examples == 1797 and ds.steps_per_epoch == 1797 // 8 and ds.skipped == 0
    batch = take(ds, 1)[0]
    check_batch(batch, (8, 32, 32, 1))
    assert batch.min() == -1.0 and batch.max() == 1.0  # 0 and 16 grey levels reach both ends
    assert len(np.unique(batch)) > 10


def test_digits_rgb():
    ds = input_lib.create_dataset(make_config(channels=3), process_index=0, process_count=1)
    batch = take(ds, 1)[0]
    check_batch(batch, (8, 16, 16, 3))
    np.testing.assert_array_equal(batch[..., 0], batch[..., 2])


def test_npz_resize_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "data.npz")
    np.savez(
        path,
        gray=rng.integers(0, 256, (10, 12, 20), np.uint8),
        rgb=rng.integers(0, 256, (10, 16, 16, 3), np.uint8),
    )
    ds = input_lib.create_dataset(
        make_config(
            source="npz", path=path, npz_key="gray", image_size=8, channels=3, batch_size=4
        ),
        process_index=0,
        process_count=1,
    )
    assert ds.num_examples == 10 and ds.steps_per_epoch == 2
    check_batch(take(ds, 1)[0], (4, 8, 8, 3))
    # Same size, same channels: values are exactly x / 127.5 - 1.
    config = make_config(source="npz", path=path, npz_key="rgb", channels=3, batch_size=4)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    with np.load(path) as npz:
        raw = npz["rgb"]
    want = raw[ds.local_indices(0)].astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(take(ds, 1)[0], want, atol=1e-6)


def test_npz_errors(tmp_path):
    path = str(tmp_path / "data.npz")
    np.savez(path, x_train=np.zeros((4, 8, 8), np.uint8), floats=np.zeros((4, 8, 8)))
    with pytest.raises(input_lib.DataError, match="key 'nope'.*x_train"):
        input_lib.validate(make_config(source="npz", path=path, npz_key="nope"))
    with pytest.raises(input_lib.DataError, match="does not exist"):
        input_lib.validate(make_config(source="npz", path=str(tmp_path / "missing.npz")))
    with pytest.raises(input_lib.DataError, match="uint8"):
        input_lib.create_dataset(
            make_config(source="npz", path=path, npz_key="floats"), process_index=0, process_count=1
        )


@pytest.mark.skipif(not os.path.exists(MNIST_NPZ), reason=f"{MNIST_NPZ} absent (project data)")
def test_real_mnist_npz():
    config = make_config(source="npz", path=MNIST_NPZ, image_size=28, batch_size=64)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.num_examples == 60000 and ds.steps_per_epoch == 937
    batch = take(ds, 1)[0]
    check_batch(batch, (64, 28, 28, 1))
    assert batch.min() == -1.0 and batch.max() == 1.0


def test_config_errors():
    with pytest.raises(input_lib.DataError, match="data.source"):
        input_lib.validate(make_config(source="webdataset"))
    with pytest.raises(input_lib.DataError, match="data.channels"):
        input_lib.validate(make_config(channels=2))
    with pytest.raises(input_lib.DataError, match="batch_size"):
        input_lib.create_dataset(make_config(batch_size=5), process_index=0, process_count=2)
    assert set(input_lib.SOURCES) == {"digits", "tfds", "folder", "npz"}


# ---------------------------------------------------------------------------------------------
# folder


def _write_messy_folder(root):
    """Writes good images of every awkward kind plus three corrupt files; returns counts."""
    sub = root / "sub" / "deeper"
    sub.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 41, 3), np.uint8)
    Image.fromarray(rgb).save(root / "odd.jpg")
    Image.fromarray(rgb).save(root / "upper.JPEG")
    Image.fromarray(rgb[:, :, 0]).save(root / "sub" / "gray.png")
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent black -> white on white
    Image.fromarray(rgba).save(sub / "clear.png")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(sub / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(np.full((9, 13), 65535 // 2, np.uint16)).save(root / "sixteen.png")
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    Image.fromarray(rgb).save(sub / "pic.bmp")
    Image.fromarray(rgb).save(sub / "pic.webp")
    good = 10
    # Corrupt: truncated JPEG, zero bytes, text with an image extension.
    data = (root / "odd.jpg").read_bytes()
    (sub / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "sub" / "notes.png").write_text("not an image")
    (root / "readme.txt").write_text("ignored: not an image extension")
    return good, 3


def test_folder_messy(tmp_path):
    good, bad = _write_messy_folder(tmp_path)
    config = make_config(source="folder", path=str(tmp_path), channels=3, batch_size=4)
    input_lib.validate(config)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.num_examples == good and ds.skipped == bad and ds.steps_per_epoch == 2
    assert sorted(os.path.basename(p) for p, _ in ds.failures) == [
        "empty.jpg",
        "notes.png",
        "truncated.jpg",
    ]
    for batch in take(ds, 3):
        check_batch(batch, (4, 16, 16, 3))
    assert ds.images.shape == (good, 16, 16, 3)


def test_folder_conversions(tmp_path):
    _write_messy_folder(tmp_path)

    def decode(name, channels=3):
        return sources.decode_file(str(tmp_path / name), 16, channels, "center")

    assert (decode("sub/deeper/clear.png") == 255).all()  # transparency composited on white
    np.testing.assert_allclose(decode("sixteen.png", 1), 127, atol=1)  # 16-bit scaled, not clipped
    np.testing.assert_array_equal(decode("anim.gif")[0, 0], (255, 0, 0))  # first frame
    assert decode("sub/gray.png", 3).shape == (16, 16, 3)
    assert decode("cmyk.jpg", 1).shape == (16, 16, 1)


def test_large_images(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (600, 900, 3), np.uint8)
    Image.fromarray(big).save(tmp_path / "big.jpg")  # decoded at a reduced DCT scale (draft)
    assert sources.decode_file(str(tmp_path / "big.jpg"), 16, 3, "center").shape == (16, 16, 3)
    # Over 2x PIL's decompression-bomb limit: skipped with the reason, never fatal.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600 * 900 // 3)
    Image.fromarray(big[:32, :32]).save(tmp_path / "small.png")
    config = make_config(source="folder", path=str(tmp_path), batch_size=1)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.num_examples == 1 and ds.skipped == 1
    assert "DecompressionBomb" in ds.failures[0][1]


def test_center_crop_matches_torchvision_rule():
    assert sources.center_crop_box(178, 218, 64) == ((64, 78), (0, 7, 64, 71))
    assert sources.center_crop_box(41, 30, 16) == ((21, 16), (2, 0, 18, 16))
    # TF (tfds) and PIL (folder) paths crop the same window.
    y, x = np.mgrid[0:218, 0:178]
    img = np.stack([y, x, (x + y) // 2], -1).astype(np.uint8)
    tf_out = pipeline._tf_fit(pipeline.tf.constant(img), 64, 3, "center").numpy()
    pil_out = sources.fit_array(img[None], 64, 3, "center")[0]
    assert np.abs(tf_out.astype(int) - pil_out).mean() < 1.5


def test_folder_errors(tmp_path):
    with pytest.raises(input_lib.DataError, match="does not exist"):
        input_lib.validate(make_config(source="folder", path=str(tmp_path / "missing")))
    with pytest.raises(input_lib.DataError, match="no image files"):
        input_lib.create_dataset(
            make_config(source="folder", path=str(tmp_path)), process_index=0, process_count=1
        )
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("junk")
    with pytest.raises(input_lib.DataError, match=r"no decodable images.*2 files tried, 2 failed"):
        input_lib.create_dataset(
            make_config(source="folder", path=str(tmp_path)), process_index=0, process_count=1
        )


def test_folder_memmap(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        Image.new("L", (8, 8), i * 40).save(images / f"{i}.png")
    config = make_config(
        source="folder",
        path=str(images),
        image_size=8,
        batch_size=2,
        max_in_memory_bytes=1,
        cache_dir=str(tmp_path / "cache"),
    )
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert isinstance(ds.images, np.memmap) and ds.num_examples == 6
    assert sorted(np.round(ds.images[:, 0, 0, 0])) == [0, 40, 80, 120, 160, 200]
    check_batch(take(ds, 1)[0], (2, 8, 8, 1))


# ---------------------------------------------------------------------------------------------
# determinism, resume, sharding (in memory)


def test_determinism_and_resume():
    config = make_config(batch_size=256, image_size=8)  # 1797 // 256 = 7 steps an epoch
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.steps_per_epoch == 7
    fresh = take(ds, 12)
    again = take(input_lib.create_dataset(config, process_index=0, process_count=1), 2)
    np.testing.assert_array_equal(fresh[0], again[0])
    other = take(
        input_lib.create_dataset(
            make_config(batch_size=256, image_size=8, seed=1), process_index=0, process_count=1
        ),
        1,
    )
    assert not np.array_equal(fresh[0], other[0])
    assert not np.array_equal(fresh[0], fresh[7])  # a new permutation each epoch
    for k in (3, 7, 9):  # within the first epoch, at and across the boundary
        resumed = take(
            input_lib.create_dataset(config, process_index=0, process_count=1, start_step=k), 2
        )
        np.testing.assert_array_equal(resumed[0], fresh[k])
        np.testing.assert_array_equal(resumed[1], fresh[k + 1])


def test_process_sharding():
    config = make_config(batch_size=16, image_size=8)
    one = input_lib.create_dataset(config, process_index=0, process_count=1)
    two = [
        input_lib.create_dataset(config, process_index=p, process_count=2, start_step=3)
        for p in range(2)
    ]
    assert two[0].local_batch_size == 8 and two[0].num_examples == 1797
    for step in (3, 4):
        a, b = (set(d.local_indices(step).tolist()) for d in two)
        assert not a & b
    want = take(
        input_lib.create_dataset(config, process_index=0, process_count=1, start_step=3), 1
    )[0]
    got = np.concatenate([take(d, 1)[0] for d in two])
    np.testing.assert_array_equal(got, want)
    assert one.steps_per_epoch == two[0].steps_per_epoch


def test_batch_larger_than_dataset(tmp_path):
    path = str(tmp_path / "tiny.npz")
    np.savez(path, x_train=np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4))
    config = make_config(source="npz", path=path, image_size=4, batch_size=8)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.steps_per_epoch == 1
    check_batch(take(ds, 2)[1], (8, 4, 4, 1))


# ---------------------------------------------------------------------------------------------
# tfds (offline, tfds.testing.mock_data)


@pytest.mark.parametrize(
    "name,size,channels,streaming",
    [
        ("mnist", 28, 1, False),
        ("cifar10", 32, 3, False),
        ("celeb_a", 16, 3, True),
        ("lsun/bedroom", 8, 3, True),
    ],
)
def test_tfds(name, size, channels, streaming):
    extra = {"tfds_in_memory_bytes": 0} if streaming else {}
    config = make_config(
        source="tfds", name=name, image_size=size, channels=channels, batch_size=4, **extra
    )
    with tfds.testing.mock_data(num_examples=20):
        input_lib.validate(config)
        ds = input_lib.create_dataset(config, process_index=0, process_count=1)
        assert isinstance(ds, pipeline.TfdsStreamDataset) == streaming
        assert ds.num_examples == 20 and ds.steps_per_epoch == 5 and ds.skipped == 0
        fresh = take(ds, 8)
        for batch in fresh:
            check_batch(batch, (4, size, size, channels))
        np.testing.assert_array_equal(take(ds, 1)[0], fresh[0])
        for k in (2, 6):  # within the first epoch and after the boundary
            resumed = take(
                input_lib.create_dataset(config, process_index=0, process_count=1, start_step=k), 1
            )
            np.testing.assert_array_equal(resumed[0], fresh[k])
        sharded = input_lib.create_dataset(config, process_index=1, process_count=2)
        check_batch(take(sharded, 1)[0], (2, size, size, channels))


def test_tfds_unknown_name():
    with pytest.raises(input_lib.DataError, match="TFDS dataset 'no_such_set' not found"):
        input_lib.validate(make_config(source="tfds", name="no_such_set"))
