"""Tests for class-conditional evaluation: the small CNN, its cache, label accuracy, CAS, intra-FID.

The "generators" here return real images, so the right scores are known: one that returns
images of the label asked for is a perfect generator (label accuracy and CAS at the real-data
classifier's level), one that returns the next class's images is always wrong (label accuracy
~0), one that ignores the label teaches nothing (CAS ~ chance). MNIST comes from
``../shared/data/mnist_uint8.npz`` (the tests that need it skip without it; the file is sorted
by class, so every subset is drawn at random); scikit-learn's digits serve the rest.
"""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from gan_jax.errors import DataError, SamplingError
from gan_jax.evaluation import classifier as classifier_lib
from gan_jax.evaluation import conditional, metrics

# These tests run the networks more than they compile them (see the fixture).
pytestmark = pytest.mark.usefixtures("full_optimisation")

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist_uint8.npz"
# Small enough for ~10 s of training on 2 shared cores, large enough for > 93% on MNIST.
STEPS, BATCH = 200, 32


@pytest.fixture(scope="module")
def mnist():
    if not MNIST.is_file():
        pytest.skip(f"{MNIST} not found")
    with np.load(MNIST) as d:
        x_train, y_train = d["x_train"][..., None], d["y_train"].astype(np.int32)
        x_test, y_test = d["x_test"][..., None], d["y_test"].astype(np.int32)
    rng = np.random.default_rng(1)
    train = rng.permutation(len(x_train))
    test = rng.permutation(len(x_test))[:1000]
    return {
        # Training subset of the real classifier, and a disjoint pool the generators draw from.
        "train": (x_train[train[:2000]], y_train[train[:2000]]),
        "pool": (x_train[train[2000:12000]], y_train[train[2000:12000]]),
        "test": (x_test[test], y_test[test]),
    }


@pytest.fixture(scope="module")
def real_params(mnist):
    x, y = mnist["train"]
    return classifier_lib.train_classifier(
        x, y, num_classes=10, steps=STEPS, batch_size=BATCH, seed=0
    )


@pytest.fixture(scope="module")
def digits():
    from sklearn import datasets  # noqa: PLC0415

    d = datasets.load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # [1797, 8, 8, 1]
    return images, d.target.astype(np.int32)


def real_generator(images, labels, *, shift: int = 0, ignore_label: bool = False, calls=None):
    """generate(num, seed, labels) drawing real images of class (label + shift) % 10.

    With ignore_label, images of random classes instead. The seed picks the images, so the
    same seed gives the same images.
    """
    by_class = [np.flatnonzero(labels == c) for c in range(10)]

    def generate(num, seed, wanted):
        if calls is not None:
            calls.append((num, seed, np.array(wanted)))
        rng = np.random.default_rng(seed)
        wanted = np.asarray(wanted)
        assert wanted.dtype == np.int32 and wanted.shape == (num,)
        if ignore_label:
            wanted = rng.integers(0, 10, num)
        picks = [rng.choice(by_class[(c + shift) % 10]) for c in wanted]
        return images[np.array(picks)]

    return generate


# --------------------------------------------------------------------------------------------
# The classifier.


def test_classifier_learns_mnist(mnist, real_params):
    x, y = mnist["test"]
    predicted = classifier_lib.predict(real_params, x)
    assert predicted.dtype == np.int32 and predicted.shape == (len(x),)
    acc = classifier_lib.accuracy(real_params, x, y)
    assert acc == pytest.approx(float((predicted == y).mean()))
    # 2,000 training images, 200 steps of 32: ~96% measured; chance is 10%.
    assert acc >= 0.93
    per_class = classifier_lib.class_accuracies(predicted, y, 10)
    assert len(per_class) == 10 and min(per_class) >= 0.8
    # Batching and padding do not change the predictions.
    np.testing.assert_array_equal(
        classifier_lib.predict(real_params, x[:53], batch_size=7), predicted[:53]
    )


def test_classifier_on_digits_and_deterministic(digits):
    images, labels = digits
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1200], order[1200:]
    params = classifier_lib.train_classifier(
        images[train], labels[train], num_classes=10, steps=100, batch_size=BATCH, seed=3
    )
    # 8x8 images, upscaled inside the network: ~95% measured.
    assert classifier_lib.accuracy(params, images[test], labels[test]) >= 0.85
    # Same seed, same parameters; another seed, others.
    kwargs = dict(num_classes=10, steps=5, batch_size=8)
    a = classifier_lib.train_classifier(images[:100], labels[:100], seed=3, **kwargs)
    b = classifier_lib.train_classifier(images[:100], labels[:100], seed=3, **kwargs)
    c = classifier_lib.train_classifier(images[:100], labels[:100], seed=4, **kwargs)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a["head"]["kernel"], c["head"]["kernel"])
    # Shapes are read back from the parameters: 1 channel, 10 classes.
    assert classifier_lib.num_classes_of(a) == 10 and classifier_lib.channels_of(a) == 1


def test_classifier_three_channels_and_64px():
    rng = np.random.default_rng(0)
    # Class 0: dark images, class 1: bright ones; 64x64 RGB.
    labels = rng.integers(0, 2, 64).astype(np.int32)
    images = (rng.integers(0, 100, (64, 64, 64, 3)) + 150 * labels[:, None, None, None]).astype(
        np.uint8
    )
    params = classifier_lib.train_classifier(
        images, labels, num_classes=2, steps=20, batch_size=16, seed=0
    )
    assert classifier_lib.channels_of(params) == 3
    assert classifier_lib.accuracy(params, images, labels) >= 0.95
    with pytest.raises(DataError, match="3-channel"):
        classifier_lib.predict(params, images[..., :1])


@pytest.mark.parametrize(
    "images, labels, num_classes, match",
    [
        (np.zeros((4, 16, 16, 1), np.float32), np.zeros(4), 10, "uint8"),
        (np.zeros((4, 16, 16), np.uint8), np.zeros(4), 10, r"\[N, H, W, C\]"),
        (np.zeros((4, 16, 16, 2), np.uint8), np.zeros(4), 10, "C 1 or 3"),
        (np.zeros((4, 4, 4, 1), np.uint8), np.zeros(4), 10, "at least 8x8"),
        (np.zeros((4, 16, 16, 1), np.uint8), np.zeros(3, np.int32), 10, "one per image"),
        (np.zeros((4, 16, 16, 1), np.uint8), np.full(4, 10), 10, "label 10 is not in"),
        (np.zeros((4, 16, 16, 1), np.uint8), np.zeros(4), 1, "num_classes >= 2"),
    ],
)
def test_classifier_bad_inputs(images, labels, num_classes, match):
    with pytest.raises(DataError, match=match):
        classifier_lib.train_classifier(
            images, np.asarray(labels).astype(np.int32), num_classes=num_classes, steps=1
        )


# --------------------------------------------------------------------------------------------
# The cache.


def _protocol(**overrides):
    kwargs = dict(
        dataset="digits", split="train", resolution=8, channels=1, num_classes=10, steps=10
    )
    kwargs.update(overrides)
    return classifier_lib.classifier_protocol(batch_size=8, **kwargs)


def test_cache_loads_without_training_and_retrains_on_a_new_protocol(digits, tmp_path, monkeypatch):
    loads, trainings = [], []
    real_train = classifier_lib.train_classifier

    def counting_train(*args, **kwargs):
        trainings.append(kwargs["steps"])
        return real_train(*args, **kwargs)

    def load_data():
        loads.append(1)
        return digits

    monkeypatch.setattr(classifier_lib, "train_classifier", counting_train)
    first = classifier_lib.cached_classifier(_protocol(), load_data, stats_dir=tmp_path)
    assert first.trained and trainings == [10] and len(loads) == 1
    assert Path(first.path).is_file() and Path(first.path).parent == tmp_path
    assert first.info["num_train"] == len(digits[1])

    # Second call: read from the file; the data is not even loaded.
    second = classifier_lib.cached_classifier(_protocol(), load_data, stats_dir=tmp_path)
    assert not second.trained and trainings == [10] and len(loads) == 1
    assert second.path == first.path and second.protocol == first.protocol
    jax.tree.map(np.testing.assert_array_equal, first.params, second.params)

    # Another protocol (steps, seed, data): another classifier, trained.
    third = classifier_lib.cached_classifier(_protocol(steps=11), load_data, stats_dir=tmp_path)
    assert third.trained and trainings == [10, 11] and third.path != first.path
    fourth = classifier_lib.cached_classifier(
        _protocol(max_train=500), load_data, stats_dir=tmp_path
    )
    assert fourth.trained and fourth.info["num_train"] == 500

    # A file at the right path holding another protocol (edited, or an older architecture):
    # not trusted, retrained and overwritten.
    with np.load(first.path) as data:
        arrays = dict(data)
    stale = dict(first.protocol, architecture="an older network")
    arrays["protocol"] = np.array(json.dumps(stale, sort_keys=True))
    np.savez(first.path, **arrays)
    fifth = classifier_lib.cached_classifier(_protocol(), load_data, stats_dir=tmp_path)
    assert fifth.trained and trainings == [10, 11, 10, 10]
    assert classifier_lib.load_classifier(first.path)[1] == _protocol()

    # An unreadable file: retrained too.
    Path(first.path).write_bytes(b"not an npz")
    assert classifier_lib.cached_classifier(_protocol(), load_data, stats_dir=tmp_path).trained
    # write_cache=False leaves no file.
    unsaved = classifier_lib.cached_classifier(
        _protocol(seed=9), load_data, stats_dir=tmp_path, write_cache=False
    )
    assert unsaved.trained and unsaved.path == ""
    assert not classifier_lib.classifier_path(tmp_path, _protocol(seed=9)).exists()


def test_real_classifier_from_config(digits, tmp_path, monkeypatch):
    from gan_jax import input as input_lib  # noqa: PLC0415
    from gan_jax.configs import dcgan  # noqa: PLC0415

    asked = []

    def fake_load_labelled_arrays(config, split):
        asked.append(split)
        return digits

    # A stand-in loader, to count the reads (the real one is tested below).
    monkeypatch.setattr(input_lib, "load_labelled_arrays", fake_load_labelled_arrays, raising=False)
    config = dcgan.get_config()
    config.data.source = "digits"
    kwargs = dict(num_classes=10, steps=3, batch_size=8, stats_dir=tmp_path)
    first = classifier_lib.real_classifier(config, **kwargs)
    assert first.trained and asked == ["train"]
    assert first.protocol["dataset"] == "digits" and first.protocol["split"] == "train"
    assert not classifier_lib.real_classifier(config, **kwargs).trained and asked == ["train"]
    # Another split, or another resolution of the same data: its own classifier.
    assert classifier_lib.real_classifier(config, split="test", **kwargs).trained
    config.data.image_size = int(config.data.image_size) * 2
    assert classifier_lib.real_classifier(config, **kwargs).trained
    assert asked == ["train", "test", "train"]
    # Labels from elsewhere: another classifier.
    config.data.label_key = "y_other"
    assert classifier_lib.real_classifier(config, **kwargs).trained


def test_real_classifier_with_the_input_pipeline(tmp_path):
    """End to end with `gan_jax.input.load_labelled_arrays` (digits: a fixed 80/20 hold-out)."""
    from gan_jax import input as input_lib  # noqa: PLC0415
    from gan_jax.configs import dcgan  # noqa: PLC0415

    config = dcgan.get_config()
    config.data.source, config.data.image_size = "digits", 16
    trained = classifier_lib.real_classifier(
        config, num_classes=10, steps=60, batch_size=BATCH, stats_dir=tmp_path
    )
    assert trained.trained and trained.info["num_train"] > 1000
    test_x, test_y = input_lib.load_labelled_arrays(config, "test")
    assert test_x.shape[1:] == (16, 16, 1)
    assert classifier_lib.accuracy(trained.params, test_x, test_y) >= 0.8


# --------------------------------------------------------------------------------------------
# Label accuracy and CAS.


def test_label_accuracy(mnist, real_params):
    pool_x, pool_y = mnist["test"]
    calls = []
    perfect = conditional.label_accuracy(
        real_generator(pool_x, pool_y, calls=calls),
        real_params,
        num_classes=10,
        per_class=50,
        seed=0,
        real_images=pool_x,
        real_labels=pool_y,
    )
    real_acc = classifier_lib.accuracy(real_params, pool_x, pool_y)
    assert perfect["real_accuracy"] == pytest.approx(real_acc)
    # Images of the right class score what the classifier scores on real images.
    assert abs(perfect["label_accuracy"] - real_acc) <= 0.04
    assert len(perfect["label_accuracy_per_class"]) == 10
    assert perfect["label_accuracy"] == pytest.approx(np.mean(perfect["label_accuracy_per_class"]))
    assert perfect["protocol"]["num_fake"] == 500
    json.dumps(perfect)  # results are written as JSON next to the FID ones
    # One call per class, 50 labels of that class, each class its own seed.
    assert [int(c[2][0]) for c in calls] == list(range(10))
    assert all(c[0] == 50 and (c[2] == c[2][0]).all() for c in calls)
    assert len({c[1] for c in calls}) == 10

    # Images of the next class: the classifier almost never agrees with the label asked.
    wrong = conditional.label_accuracy(
        real_generator(pool_x, pool_y, shift=1), real_params, num_classes=10, per_class=50
    )
    assert wrong["label_accuracy"] <= 0.05 and wrong["real_accuracy"] is None
    text = conditional.format_conditional(perfect)
    assert "label accuracy" in text and f"{100 * real_acc:.2f}%" in text


def test_classification_accuracy_score(mnist, real_params):
    pool_x, pool_y = mnist["pool"]
    test_x, test_y = mnist["test"]
    kwargs = dict(num_classes=10, per_class=200, train_steps=STEPS, batch_size=BATCH, seed=0)
    perfect = conditional.classification_accuracy_score(
        real_generator(pool_x, pool_y), test_x, test_y, real_classifier=real_params, **kwargs
    )
    real_acc = classifier_lib.accuracy(real_params, test_x, test_y)
    assert perfect["real_accuracy"] == pytest.approx(real_acc)
    # Real images of the right class, 2,000 of them, same training: the real classifier's level.
    assert perfect["cas"] >= real_acc - 0.04 and perfect["cas"] >= 0.9
    assert len(perfect["cas_per_class"]) == 10
    assert perfect["protocol"]["num_fake"] == 2000
    json.dumps(perfect)

    # Labels unrelated to the images: nothing to learn, chance level on the test split.
    shuffled = conditional.classification_accuracy_score(
        real_generator(pool_x, pool_y, ignore_label=True),
        test_x,
        test_y,
        **dict(kwargs, train_steps=50),
    )
    assert shuffled["cas"] <= 0.25 and shuffled["real_accuracy"] is None
    assert "CAS" in conditional.format_conditional(perfect)


# --------------------------------------------------------------------------------------------
# Intra-class FID with a cheap feature function.


PROJECTION = np.random.default_rng(0).normal(size=(28 * 28, 16)) / 28.0


def projected_features(images):
    """A tiny stand-in for Inception: a fixed random projection of the pixels -> 16 features.

    (Pooled pixels would not do: some classes leave whole blocks blank in every image, and
    constant features make the covariances singular.)
    """
    return (images.reshape(len(images), -1) / 255.0) @ PROJECTION


def test_intra_class_fid(mnist):
    pool_x, pool_y = mnist["pool"]
    real_x, real_y = mnist["train"]
    kwargs = dict(num_classes=10, per_class=100, extractor=projected_features, seed=0)
    right = conditional.intra_class_fid(real_generator(pool_x, pool_y), real_x, real_y, **kwargs)
    wrong = conditional.intra_class_fid(
        real_generator(pool_x, pool_y, shift=1), real_x, real_y, **kwargs
    )
    assert len(right["intra_fid_per_class"]) == 10
    # Same classes, other images: far closer than every class's neighbour class.
    assert right["intra_fid"] * 3 < wrong["intra_fid"]
    assert all(right["intra_fid_per_class"][c] < wrong["intra_fid_per_class"][c] for c in range(10))
    assert right["intra_kid"] < wrong["intra_kid"]
    # 'auto' on 100 fakes per class against more reals, 16 features: beyond the SVD's reach.
    assert right["protocol"]["fid_method"] == "sqrtm"
    json.dumps(right)

    # Each class's score is the ordinary FID/KID of that class's real and generated images.
    calls = []
    one = conditional.intra_class_fid(
        real_generator(pool_x, pool_y, calls=calls),
        real_x,
        real_y,
        classes=[3],
        max_real_per_class=80,
        **kwargs,
    )
    ((num, seed, labels),) = calls
    fake = real_generator(pool_x, pool_y)(num, seed, labels)
    real = real_x[real_y == 3][:80]
    expected = metrics.fid_from_features(projected_features(real), projected_features(fake))
    assert one["intra_fid"] == pytest.approx(expected, rel=1e-9)
    assert one["intra_fid_per_class"] == {3: pytest.approx(expected, rel=1e-9)}
    real_f, fake_f = projected_features(real), projected_features(fake)
    kid, _ = metrics.kernel_inception_distance(
        real_f, fake_f, num_subsets=100, subset_size=1000, seed=0
    )
    assert one["intra_kid"] == pytest.approx(kid, rel=1e-9)
    assert one["protocol"]["features"] == {"extractor": "projected_features"}
    assert "intra-class FID" in conditional.format_conditional(one)


# --------------------------------------------------------------------------------------------
# Requests that cannot work.


def _untrained(channels=1, num_classes=10):
    return classifier_lib.SmallCNN(num_classes).init(
        jax.random.PRNGKey(0), np.zeros((1, 16, 16, channels), np.uint8)
    )["params"]


def _const_generator(shape, dtype=np.uint8, extra=0):
    def generate(num, seed, labels):
        return np.zeros((num + extra, *shape), dtype)

    return generate


TEST_X = np.zeros((20, 16, 16, 1), np.uint8)
TEST_Y = np.arange(20, dtype=np.int32) % 10


@pytest.mark.parametrize("num_classes", [0, 1])
def test_unconditional_model_is_refused(num_classes):
    gen = _const_generator((16, 16, 1))
    with pytest.raises(SamplingError, match="class-conditional"):
        conditional.label_accuracy(gen, _untrained(), num_classes=num_classes, per_class=4)
    with pytest.raises(SamplingError, match="class-conditional"):
        conditional.classification_accuracy_score(
            gen, TEST_X, TEST_Y, num_classes=num_classes, per_class=4
        )
    with pytest.raises(SamplingError, match="class-conditional"):
        conditional.intra_class_fid(
            gen, TEST_X, TEST_Y, num_classes=num_classes, per_class=4, extractor=projected_features
        )


@pytest.mark.parametrize(
    "generate, match",
    [
        (_const_generator((16, 16)), r"\[N, H, W, C\]"),
        (_const_generator((16, 16, 1), np.float32), "uint8"),
        (_const_generator((16, 16, 1), extra=1), "asked for 4, got 5"),
        (_const_generator((16, 16, 3)), "3 channel"),
    ],
)
def test_bad_generated_images_label_accuracy(generate, match):
    with pytest.raises(SamplingError, match=match):
        conditional.label_accuracy(generate, _untrained(), num_classes=10, per_class=4)


@pytest.mark.parametrize(
    "generate, match",
    [
        (_const_generator((16, 16, 3)), r"shape \(16, 16, 3\), expected \(16, 16, 1\)"),
        (_const_generator((32, 32, 1)), "expected"),
        (_const_generator((16, 16, 1), extra=-1), "asked for 4, got 3"),
    ],
)
def test_bad_generated_images_cas(generate, match):
    with pytest.raises(SamplingError, match=match):
        conditional.classification_accuracy_score(
            generate, TEST_X, TEST_Y, num_classes=10, per_class=4, train_steps=1
        )


def test_other_bad_requests():
    gen = _const_generator((16, 16, 1))
    with pytest.raises(SamplingError, match="classifier has 5 classes, the model 10"):
        conditional.label_accuracy(gen, _untrained(num_classes=5), num_classes=10, per_class=4)
    with pytest.raises(SamplingError, match="samples per class"):
        conditional.label_accuracy(gen, _untrained(), num_classes=10, per_class=0)
    with pytest.raises(SamplingError, match=r"samples per class must be an integer >= 2"):
        conditional.intra_class_fid(
            gen, TEST_X, TEST_Y, num_classes=10, per_class=1, extractor=projected_features
        )
    with pytest.raises(DataError, match="label 10 is not in"):
        conditional.classification_accuracy_score(
            gen, TEST_X, TEST_Y + 1, num_classes=10, per_class=4
        )
    with pytest.raises(DataError, match="class 1 has 1 real image"):
        conditional.intra_class_fid(
            gen, TEST_X[:11], TEST_Y[:11], num_classes=10, per_class=2, extractor=projected_features
        )
    with pytest.raises(SamplingError, match="class 12 is not in"):
        conditional.intra_class_fid(
            gen,
            TEST_X,
            TEST_Y,
            num_classes=10,
            per_class=2,
            extractor=projected_features,
            classes=[12],
        )


def test_class_seeds_distinct_and_stable():
    seeds = {conditional.class_seed(s, c) for s in range(3) for c in range(100)}
    assert len(seeds) == 300 and all(0 <= s < 2**31 for s in seeds)
    assert conditional.class_seed(5, 7) == conditional.class_seed(5, 7)


def test_progress_lines_name_the_metric():
    lines = []
    clock = iter([0.0, 40.0, 50.0, 50.0]).__next__
    p = conditional._Progress("CAS", "generated", 100, clock=clock, log=lines.append)
    p.update(40)
    p.finish()
    assert lines[0].startswith("CAS (generated): 40/100 images, 1.0 img/s, ETA 1m00s")
    assert lines[1].endswith("done in 50 s")
