"""Tests of gan_jax.input: every source, labels, resume, determinism and process sharding."""

import os
import re

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax import input as input_lib
from gan_jax.input import pipeline, sources

MNIST_NPZ = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist_uint8.npz")


def make_config(batch_size=8, seed=0, num_classes=None, **data):
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
    if num_classes is not None:  # absent: read as 0 (unconditional)
        config.model = ml_collections.ConfigDict({"num_classes": num_classes})
    return config


def take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def check_batch(batch, shape, num_classes=0):
    assert set(batch) == {"image", "label"}
    image, label = batch["image"], batch["label"]
    assert image.shape == shape
    assert image.dtype == np.float32
    assert image.min() >= -1.0 and image.max() <= 1.0
    assert label.shape == shape[:1] and label.dtype == np.int32
    if num_classes:
        assert label.min() >= 0 and label.max() < num_classes
    else:
        assert (label == 0).all()  # unconditional: all zero


def assert_batches_equal(a, b):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["label"], b["label"])


def concat(batches):
    return {k: np.concatenate([b[k] for b in batches]) for k in ("image", "label")}


def to_uint8(image):
    """Inverts x / 127.5 - 1 exactly (images decoded at their stored size)."""
    return np.round((image + 1.0) * 127.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# digits and npz


def test_digits_shape_range():
    ds = input_lib.create_dataset(make_config(image_size=32), process_index=0, process_count=1)
    assert ds.num_examples == 1797 and ds.steps_per_epoch == 1797 // 8 and ds.skipped == 0
    batch = take(ds, 1)[0]
    check_batch(batch, (8, 32, 32, 1))
    batch = batch["image"]
    assert batch.min() == -1.0 and batch.max() == 1.0  # 0 and 16 grey levels reach both ends
    assert len(np.unique(batch)) > 10
    assert ds.num_classes == 0 and ds.class_names == []


def test_digits_rgb():
    ds = input_lib.create_dataset(make_config(channels=3), process_index=0, process_count=1)
    batch = take(ds, 1)[0]
    check_batch(batch, (8, 16, 16, 3))
    np.testing.assert_array_equal(batch["image"][..., 0], batch["image"][..., 2])


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
    np.testing.assert_allclose(take(ds, 1)[0]["image"], want, atol=1e-6)


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
    assert batch["image"].min() == -1.0 and batch["image"].max() == 1.0


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
    tf_out = pipeline._tf_fit(pipeline._tensorflow().constant(img), 64, 3, "center").numpy()
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
    assert_batches_equal(fresh[0], again[0])
    other = take(
        input_lib.create_dataset(
            make_config(batch_size=256, image_size=8, seed=1), process_index=0, process_count=1
        ),
        1,
    )
    assert not np.array_equal(fresh[0]["image"], other[0]["image"])
    assert not np.array_equal(fresh[0]["image"], fresh[7]["image"])  # new permutation each epoch
    for k in (3, 7, 9):  # within the first epoch, at and across the boundary
        resumed = take(
            input_lib.create_dataset(config, process_index=0, process_count=1, start_step=k), 2
        )
        assert_batches_equal(resumed[0], fresh[k])
        assert_batches_equal(resumed[1], fresh[k + 1])


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
    got = concat([take(d, 1)[0] for d in two])
    assert_batches_equal(got, want)
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
        assert_batches_equal(take(ds, 1)[0], fresh[0])
        for k in (2, 6):  # within the first epoch and after the boundary
            resumed = take(
                input_lib.create_dataset(config, process_index=0, process_count=1, start_step=k), 1
            )
            assert_batches_equal(resumed[0], fresh[k])
        sharded = input_lib.create_dataset(config, process_index=1, process_count=2)
        check_batch(take(sharded, 1)[0], (2, size, size, channels))


def test_tfds_unknown_name():
    with pytest.raises(input_lib.DataError, match="TFDS dataset 'no_such_set' not found"):
        input_lib.validate(make_config(source="tfds", name="no_such_set"))


# ---------------------------------------------------------------------------------------------
# class labels (config.model.num_classes > 0)


def _sklearn_digits():
    from sklearn import datasets as sk_datasets

    digits = sk_datasets.load_digits()
    return np.round(digits.images * (255.0 / 16.0)).astype(np.uint8), digits.target


def test_digits_labels_are_the_targets():
    grey, target = _sklearn_digits()
    # At 8 px the images are sklearn's own, so each one names its target (all 1797 differ).
    truth = {img.tobytes(): int(t) for img, t in zip(grey, target, strict=True)}
    config = make_config(image_size=8, batch_size=32, num_classes=10)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.num_classes == 10 and ds.class_names == [str(i) for i in range(10)]
    for batch in take(ds, 60):  # 56 steps an epoch: crosses into the second epoch
        check_batch(batch, (32, 8, 8, 1), num_classes=10)
        got = [truth[img[..., 0].tobytes()] for img in to_uint8(batch["image"])]
        np.testing.assert_array_equal(batch["label"], got)


def _labelled_npz(path, n=37, classes=5, seed=0):
    """Images whose pixel (0, 0) encodes their label (50 * label) and row 1 their index."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(classes), rng.integers(0, classes, n - classes)])
    images = rng.integers(0, 256, (n, 4, 4), np.uint8)
    images[:, 0, 0] = labels * 50
    images[:, 1, :] = np.arange(n)[:, None]
    np.savez(path, x_train=images, y_train=labels.astype(np.uint8))
    return images, labels


def _pixel_labels(batch):
    return to_uint8(batch["image"][:, 0, 0, 0]) // 50


def test_npz_labels_aligned_across_epochs_resume_and_processes(tmp_path):
    path = str(tmp_path / "labelled.npz")
    images, labels = _labelled_npz(path)
    config = make_config(
        source="npz", path=path, label_key="y_train", image_size=4, batch_size=8, num_classes=5
    )
    input_lib.validate(config)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.num_classes == 5 and ds.class_names == ["0", "1", "2", "3", "4"]
    assert ds.steps_per_epoch == 4
    fresh = take(ds, 11)  # nearly three epochs
    for batch in fresh:
        check_batch(batch, (8, 4, 4, 1), num_classes=5)
        np.testing.assert_array_equal(batch["label"], _pixel_labels(batch))
        index = to_uint8(batch["image"][:, 1, 0, 0])
        np.testing.assert_array_equal(batch["label"], labels[index])
    for k in (2, 4, 5, 9):
        resumed = take(
            input_lib.create_dataset(config, process_index=0, process_count=1, start_step=k), 2
        )
        assert_batches_equal(resumed[0], fresh[k])
        assert_batches_equal(resumed[1], fresh[k + 1])
    for start in (3, 5):  # before and after the epoch boundary
        two = [
            take(
                input_lib.create_dataset(
                    config, process_index=p, process_count=2, start_step=start
                ),
                2,
            )
            for p in range(2)
        ]
        for i in range(2):
            check_batch(two[0][i], (4, 4, 4, 1), num_classes=5)
            assert_batches_equal(concat([two[0][i], two[1][i]]), fresh[start + i])


def test_npz_keras_style_labels_and_unconditional(tmp_path):
    path = str(tmp_path / "keras.npz")
    np.savez(
        path,
        x_train=np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4),
        y_train=np.array([[1], [0], [1], [2], [2], [0]], np.int64),  # (N, 1), as Keras gives
    )
    config = make_config(source="npz", path=path, label_key="y_train", image_size=4, batch_size=6)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)  # no model section
    assert ds.num_classes == 0
    check_batch(take(ds, 1)[0], (6, 4, 4, 1))  # labels not read: all zero
    config.model = ml_collections.ConfigDict({"num_classes": 3})
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    batch = take(ds, 1)[0]
    check_batch(batch, (6, 4, 4, 1), num_classes=3)
    index = to_uint8(batch["image"][:, 0, 0, 0]) // 16  # image i starts at pixel value 16 i
    np.testing.assert_array_equal(batch["label"], np.array([1, 0, 1, 2, 2, 0])[index])


def test_npz_label_errors(tmp_path):
    path = str(tmp_path / "data.npz")
    n = 4
    np.savez(
        path,
        x_train=np.zeros((n, 8, 8), np.uint8),
        y_train=np.arange(n) % 2,
        y_float=np.zeros(n),
        y_short=np.zeros(n - 1, np.int32),
        y_negative=np.array([0, 1, -1, 0]),
        y_ten=np.array([0, 3, 6, 9]),  # 10 classes (0..9), some without examples
    )

    def config(num_classes=2, **data):
        return make_config(source="npz", path=path, num_classes=num_classes, **data)

    def create(c):
        return input_lib.create_dataset(c, process_index=0, process_count=1)

    with pytest.raises(input_lib.DataError, match=r"^config\.data\.label_key: set it"):
        input_lib.validate(config())
    with pytest.raises(input_lib.DataError, match=r"config\.data\.label_key: key 'y_nope' not in"):
        input_lib.validate(config(label_key="y_nope"))
    with pytest.raises(input_lib.DataError, match="dtype float64; expected integer class ids"):
        create(config(label_key="y_float"))
    with pytest.raises(input_lib.DataError, match="has 3 labels for 4 images"):
        create(config(label_key="y_short"))
    with pytest.raises(input_lib.DataError, match="has label -1; class ids start at 0"):
        create(config(label_key="y_negative"))
    with pytest.raises(
        input_lib.DataError,
        match=re.escape("config.model.num_classes: 5, but the data has 10 classes (labels 0..9)"),
    ):
        create(config(num_classes=5, label_key="y_ten"))
    with pytest.raises(input_lib.DataError, match=r"config\.model\.num_classes: must be an int"):
        input_lib.validate(config(num_classes=-1, label_key="y_train"))
    assert create(config(label_key="y_train")).num_classes == 2


def test_digits_class_count_mismatch():
    with pytest.raises(
        input_lib.DataError,
        match=re.escape("config.model.num_classes: 5, but the data has 10 classes (labels 0..9"),
    ):
        input_lib.validate(make_config(num_classes=5))


def _write_class_folders(root, size=8):
    """bird/cat/dog subfolders (nested files too) whose pixel value encodes the class."""
    values = {"bird": 0, "cat": 120, "dog": 240}
    counts = {"bird": 3, "cat": 4, "dog": 5}
    for name, count in counts.items():
        for i in range(count):
            folder = root / name / ("nested" if i % 2 else "") / ("deeper" if i % 3 == 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.full((size, size), values[name], np.uint8)
            pixels[1, :] = i  # distinct files
            Image.fromarray(pixels).save(folder / f"{name}_{i}.png")
    (root / "cat" / "broken.png").write_text("not an image")  # skipped: labels stay aligned
    (root / "cat" / "nested" / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.full((size, size), 60, np.uint8)).save(root / "loose.png")  # no class
    (root / ".cache").mkdir()
    Image.fromarray(np.full((size, size), 60, np.uint8)).save(root / ".cache" / "thumb.png")
    return values, counts


def test_folder_subfolder_labels(tmp_path):
    values, counts = _write_class_folders(tmp_path)
    config = make_config(
        source="folder",
        path=str(tmp_path),
        labels="subfolders",
        image_size=8,
        batch_size=4,
        num_classes=3,
    )
    input_lib.validate(config)
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.class_names == ["bird", "cat", "dog"] and ds.num_classes == 3
    assert ds.num_examples == sum(counts.values()) and ds.skipped == 2
    assert np.bincount(ds.labels).tolist() == [3, 4, 5]
    by_value = {v: c for c, v in enumerate(values[n] for n in ds.class_names)}
    fresh = take(ds, 7)  # 3 steps an epoch
    for batch in fresh:
        check_batch(batch, (4, 8, 8, 1), num_classes=3)
        got = [by_value[v] for v in to_uint8(batch["image"][:, 0, 0, 0]).tolist()]
        np.testing.assert_array_equal(batch["label"], got)
    resumed = take(
        input_lib.create_dataset(config, process_index=0, process_count=1, start_step=4), 1
    )
    assert_batches_equal(resumed[0], fresh[4])
    two = [
        take(input_lib.create_dataset(config, process_index=p, process_count=2, start_step=4), 1)[0]
        for p in range(2)
    ]
    assert_batches_equal(concat(two), fresh[4])
    # Unconditional: every image file, loose and hidden ones included, and labels all zero.
    plain = input_lib.create_dataset(
        make_config(source="folder", path=str(tmp_path), labels="subfolders", image_size=8),
        process_index=0,
        process_count=1,
    )
    assert plain.num_examples == sum(counts.values()) + 2 and plain.num_classes == 0
    check_batch(take(plain, 1)[0], (8, 8, 8, 1))


def test_folder_label_errors(tmp_path):
    def config(path, num_classes=2, **data):
        return make_config(source="folder", path=str(path), num_classes=num_classes, **data)

    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(one / "only" / "a.png")
    with pytest.raises(input_lib.DataError, match=r"^config\.data\.labels: set it to 'subfolders'"):
        input_lib.validate(config(one))
    with pytest.raises(input_lib.DataError, match=r"config\.data\.labels: must be one of"):
        input_lib.validate(config(one, labels="folders"))
    with pytest.raises(
        input_lib.DataError, match=r"at least 2 class subfolders.*found 1 \('only'\)"
    ):
        input_lib.validate(config(one, labels="subfolders"))
    (one / "empty").mkdir()
    with pytest.raises(input_lib.DataError, match="'empty' holds no image files"):
        input_lib.validate(config(one, labels="subfolders"))
    (one / "empty" / "junk.png").write_text("junk")  # listed, but nothing decodes
    with pytest.raises(input_lib.DataError, match="'empty' of .* hold no decodable image"):
        input_lib.create_dataset(config(one, labels="subfolders"), process_index=0, process_count=1)
    Image.new("L", (8, 8)).save(one / "empty" / "b.png")
    with pytest.raises(
        input_lib.DataError,
        match=re.escape("config.model.num_classes: 3, but the data has 2 classes (labels 0..1"),
    ):
        input_lib.validate(config(one, num_classes=3, labels="subfolders"))
    ds = input_lib.create_dataset(
        config(one, labels="subfolders", batch_size=2), process_index=0, process_count=1
    )
    assert ds.class_names == ["empty", "only"] and ds.skipped == 1


def _mock_truth(name, split="train"):
    """Image bytes -> label of a mocked TFDS split (mock images are random: all distinct)."""
    ds = tfds.builder(name).as_dataset(split=split, shuffle_files=False)
    return {ex["image"].tobytes(): int(ex["label"]) for ex in ds.as_numpy_iterator()}


@pytest.mark.parametrize(
    "name,size,channels,streaming",
    [("mnist", 28, 1, False), ("cifar10", 32, 3, False), ("mnist", 28, 1, True)],
)
def test_tfds_labels(name, size, channels, streaming):
    extra = {"tfds_in_memory_bytes": 0} if streaming else {}
    config = make_config(
        source="tfds",
        name=name,
        image_size=size,
        channels=channels,
        batch_size=4,
        num_classes=10,
        **extra,
    )
    with tfds.testing.mock_data(num_examples=20):
        truth = _mock_truth(name)
        input_lib.validate(config)
        ds = input_lib.create_dataset(config, process_index=0, process_count=1)
        assert isinstance(ds, pipeline.TfdsStreamDataset) == streaming
        assert ds.num_classes == 10 and len(ds.class_names) == 10
        fresh = take(ds, 8)
        for batch in fresh:
            check_batch(batch, (4, size, size, channels), num_classes=10)
            got = [truth[img.tobytes()] for img in to_uint8(batch["image"])]
            np.testing.assert_array_equal(batch["label"], got)
        for k in (2, 6):
            resumed = take(
                input_lib.create_dataset(config, process_index=0, process_count=1, start_step=k), 1
            )
            assert_batches_equal(resumed[0], fresh[k])
        halves = [
            take(input_lib.create_dataset(config, process_index=p, process_count=2), 1)[0]
            for p in range(2)
        ]
        for half in halves:
            check_batch(half, (2, size, size, channels), num_classes=10)
            got = [truth[img.tobytes()] for img in to_uint8(half["image"])]
            np.testing.assert_array_equal(half["label"], got)
        if not streaming:  # in memory: the halves are the one-process batch
            assert_batches_equal(concat(halves), fresh[0])


def test_tfds_label_errors():
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(
            input_lib.DataError,
            match=r"config\.data\.label_feature: TFDS dataset 'celeb_a' has no 'label' feature",
        ):
            input_lib.validate(make_config(source="tfds", name="celeb_a", num_classes=2))
        with pytest.raises(input_lib.DataError, match="'id' of TFDS dataset 'cifar10' is a Text"):
            input_lib.validate(
                make_config(source="tfds", name="cifar10", label_feature="id", num_classes=2)
            )
        with pytest.raises(
            input_lib.DataError,
            match=re.escape(
                "config.model.num_classes: 5, but the data has 10 classes (labels 0..9"
            ),
        ):
            input_lib.validate(make_config(source="tfds", name="mnist", num_classes=5))


# ---------------------------------------------------------------------------------------------
# load_labelled_arrays (evaluation)


def test_labelled_arrays_digits_holdout():
    grey, target = _sklearn_digits()
    truth = {img.tobytes(): int(t) for img, t in zip(grey, target, strict=True)}
    config = make_config(image_size=8)  # unconditional run: labels are still read
    train_x, train_y = input_lib.load_labelled_arrays(config, "train")
    test_x, test_y = input_lib.load_labelled_arrays(config, "test")
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int32
    assert train_x.shape[1:] == (8, 8, 1) and len(train_x) + len(test_x) == 1797
    for x, y in ((train_x, train_y), (test_x, test_y)):
        np.testing.assert_array_equal(y, [truth[img[..., 0].tobytes()] for img in x])
    assert not {i.tobytes() for i in train_x} & {i.tobytes() for i in test_x}
    # Stratified: 20% of each class (174..183 images each) in the test split.
    assert (np.abs(np.bincount(test_y) - 0.2 * np.bincount(target)) <= 0.5).all()
    again_x, again_y = input_lib.load_labelled_arrays(config, "test")
    np.testing.assert_array_equal(again_x, test_x)
    np.testing.assert_array_equal(again_y, test_y)
    with pytest.raises(input_lib.DataError, match="split 'validation'.*'train' and 'test'"):
        input_lib.load_labelled_arrays(config, "validation")


def test_labelled_arrays_npz(tmp_path):
    path = str(tmp_path / "splits.npz")
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 4, 4), np.uint8),
        "y_train": np.arange(12) % 3,
        "x_test": rng.integers(0, 256, (5, 4, 4), np.uint8),
        "y_test": np.array([2, 0, 1, 1, 0], np.uint8),
    }
    np.savez(path, images=arrays["x_train"], **arrays)
    config = make_config(source="npz", path=path, label_key="y_train", image_size=4, num_classes=3)
    for split in ("train", "test"):
        x, y = input_lib.load_labelled_arrays(config, split)
        np.testing.assert_array_equal(x[..., 0], arrays[f"x_{split}"])
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])
        assert y.dtype == np.int32
    config.data.npz_key = "images"
    with pytest.raises(input_lib.DataError, match=r"config\.data\.npz_key: cannot name the 'test'"):
        input_lib.load_labelled_arrays(config, "test")
    with pytest.raises(input_lib.DataError, match=r"config\.data\.label_key: set it"):
        input_lib.load_labelled_arrays(make_config(source="npz", path=path), "train")


@pytest.mark.skipif(not os.path.exists(MNIST_NPZ), reason=f"{MNIST_NPZ} absent (project data)")
def test_labelled_arrays_real_mnist_npz():
    config = make_config(source="npz", path=MNIST_NPZ, label_key="y_train", image_size=28)
    with np.load(MNIST_NPZ) as npz:
        want = {k: npz[k] for k in ("x_test", "y_test", "y_train")}
    x, y = input_lib.load_labelled_arrays(config, "test")
    assert x.shape == (10000, 28, 28, 1) and y.shape == (10000,)
    np.testing.assert_array_equal(x[..., 0], want["x_test"])
    np.testing.assert_array_equal(y, want["y_test"])
    config.model = ml_collections.ConfigDict({"num_classes": 10})
    ds = input_lib.create_dataset(config, process_index=0, process_count=1)
    assert ds.num_classes == 10
    np.testing.assert_array_equal(ds.labels, want["y_train"])


def test_labelled_arrays_folder(tmp_path):
    values, counts = _write_class_folders(tmp_path)
    config = make_config(source="folder", path=str(tmp_path), labels="subfolders", image_size=8)
    parts = [input_lib.load_labelled_arrays(config, s) for s in ("train", "test")]
    assert sum(len(x) for x, _ in parts) == sum(counts.values())
    names = ["bird", "cat", "dog"]
    for x, y in parts:
        np.testing.assert_array_equal(x[:, 0, 0, 0], [values[names[c]] for c in y])
    assert sorted(parts[1][1].tolist()) == [0, 1, 2]  # every class held out (at least one)
    with pytest.raises(input_lib.DataError, match=r"config\.data\.labels: set it"):
        input_lib.load_labelled_arrays(make_config(source="folder", path=str(tmp_path)), "train")


def test_labelled_arrays_tfds():
    config = make_config(source="tfds", name="mnist", image_size=28, num_classes=10)
    with tfds.testing.mock_data(num_examples=20):
        ds = tfds.builder("mnist").as_dataset(split="test", shuffle_files=False)
        want = list(ds.as_numpy_iterator())
        x, y = input_lib.load_labelled_arrays(config, "test")
        assert x.shape == (20, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int32
        np.testing.assert_array_equal(x, np.stack([ex["image"] for ex in want]))
        np.testing.assert_array_equal(y, [ex["label"] for ex in want])
        with pytest.raises(input_lib.DataError, match=r"config\.data\.label_feature"):
            input_lib.load_labelled_arrays(make_config(source="tfds", name="celeb_a"), "test")
