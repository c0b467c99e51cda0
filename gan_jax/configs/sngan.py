r"""SNGAN (Miyato et al. 2018): ResNet G and a spectrally normalised ResNet D, unconditional or
class-conditional (conditional batch norm in G, projection discriminator).

Offline default (scikit-learn's digits, conditional, 32 px, 1,000 steps: 475 s of training on a
2-core CPU, a row per class in its sample grids):

  python train.py --config=configs/sngan.py --workdir=runs/sngan_digits

Presets (after the colon; any key overridden with --config.key=value):

  python train.py --config=configs/sngan.py:cifar10      --workdir=runs/sngan_cifar10
  python train.py --config=configs/sngan.py:cifar10_cond --workdir=runs/sngan_cifar10_cond
  python train.py --config=configs/sngan.py:mnist_cond   --workdir=runs/sngan_mnist
  python train.py --config=configs/sngan.py:anime --workdir=runs/sngan_anime \
      --config.data.path=/path/to/anime_faces_64
  python train.py --config=configs/sngan.py:folder --workdir=runs/sngan_art \
      --config.data.path=/path/to/paintings

MNIST offline, from an .npz with labels:

  python train.py --config=configs/sngan.py:mnist_cond --workdir=runs/sngan_mnist \
      --config.data.source=npz --config.data.path=mnist_uint8.npz --config.data.label_key=y_train

The paper's recipe (`:cifar10`, `:cifar10_cond`): hinge loss, 5 D steps per G step, Adam 2e-4
with betas (0.0, 0.9) decayed linearly to zero, batch 64, z 128, widths 256 (G) / 128 (D),
100k G steps (Mimicry: FID 16.8 unconditional, 10.8 projection cGAN, 50k vs 50k).
"""

import ml_collections

from gan_jax.configs import common

PRESETS = ("digits", "cifar10", "cifar10_cond", "mnist_cond", "anime", "folder")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """Returns the SNGAN config for `preset` (default: the offline `digits` run)."""
    preset = (preset or "digits").strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"config preset '{preset}' is unknown; choose one of {', '.join(PRESETS)}")

    c = common.base(preset)
    c.model.name = "sngan"
    c.model.z_dim = 128
    c.model.g_width = 256  # the paper's CIFAR G width (ch)
    c.model.d_width = 128  # the paper's CIFAR D width
    c.model.dtype = "float32"
    c.standing_stats = common.BATCH_NORM_STANDING_STATS  # statistics of the sampled weights
    c.model.upsample = "nearest"  # nearest | bilinear: G's 2x upsampling

    # The paper's training recipe.
    c.loss.name = "hinge"
    c.d_steps = 5
    c.optim.schedule = "linear"
    c.optim.g_b1 = c.optim.d_b1 = 0.0
    c.optim.g_b2 = c.optim.d_b2 = 0.9
    c.ema_decay = 0.0  # the paper keeps no EMA
    common.long_run(c)

    if preset == "digits":
        # Offline: 1,797 digits inside scikit-learn, one row per class in the sample grids.
        c.data.source = "digits"
        c.model.num_classes = 10
        common.short_cpu_run(c, width=32)
        # A short run: 1e-3 without decay lets the class embeddings of G's batch norms move
        # far enough in 1,000 steps (at the paper's 2e-4, decayed, G ignored the labels).
        c.optim.g_lr = c.optim.d_lr = 1e-3
        c.optim.schedule = "constant"
    elif preset in ("cifar10", "cifar10_cond"):
        c.data.source = "tfds"
        c.data.name = "cifar10"
        c.model.num_classes = 10 if preset == "cifar10_cond" else 0
    elif preset == "mnist_cond":
        # Conditional MNIST at 32 px, sized to train in minutes on a CPU.
        c.data.source = "tfds"
        c.data.name = "mnist"
        c.data.label_key = "y_train"  # used when --config.data.source=npz
        c.model.num_classes = 10
        common.short_cpu_run(c, width=32)
        c.optim.g_lr = c.optim.d_lr = 1e-3  # as :digits
        c.optim.schedule = "constant"
    elif preset in ("anime", "folder"):
        # A folder of images at 64 px (the anime faces, an artist's paintings).
        c.data.source = "folder"
        c.data.image_size = 64
        c.data.crop = "center"
        c.model.g_width = 64
        c.model.d_width = 64
        c.num_steps = 50_000
    return c
