r"""DCGAN configs: the seed's recipe and its presets.

Run the offline default (scikit-learn's digits, 32 px, a few minutes on a laptop CPU):

  python train.py --config=configs/dcgan.py --workdir=/tmp/dcgan_digits

Presets are picked by the string after the colon, overrides by --config.key=value:

  python train.py --config=configs/dcgan.py:celeba  --workdir=runs/celeba    # the seed, exactly
  python train.py --config=configs/dcgan.py:mnist   --workdir=runs/mnist
  python train.py --config=configs/dcgan.py:cifar10 --workdir=runs/cifar10
  python train.py --config=configs/dcgan.py:folder  --workdir=runs/art \
      --config.data.path=/path/to/paintings
  python train.py --config=configs/dcgan.py:npz     --workdir=runs/npz \
      --config.data.path=mnist_uint8.npz --config.data.npz_key=x_train
"""

import ml_collections

from gan_jax.configs import common

PRESETS = ("digits", "celeba", "mnist", "cifar10", "folder", "npz")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """Returns the config for `preset` (default: the offline `digits` run)."""
    preset = (preset or "digits").strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"config preset '{preset}' is unknown; choose one of {', '.join(PRESETS)}")

    c = common.base(preset)
    c.model.name = "dcgan"
    c.model.z_dim = 100
    c.model.g_width = 64  # the seed's ngf
    c.model.d_width = 64  # the seed's ndf
    c.model.conv_impl = "auto"  # auto | fast | lax (same parameters, different kernels)
    c.model.dtype = "float32"  # compute dtype: float32 | bfloat16 (parameters stay float32)
    c.standing_stats = common.BATCH_NORM_STANDING_STATS  # statistics of the sampled weights

    if preset == "digits":
        # 1,797 real 8x8 digits that ship inside scikit-learn: works offline anywhere.
        c.num_epochs = 25
        c.model.g_width = 32
        c.model.d_width = 32
        c.ema_decay = 0.99  # a 700-step run: average over the last ~100 steps
        c.log_every = 50
        c.sample_every = 200
        c.checkpoint_every = 200
    elif preset == "celeba":
        # The seed's section 4, unchanged: CelebA 64x64, z 100, batch 64, Adam 2e-4/0.5, BCE.
        c.data.source = "tfds"
        c.data.name = "celeb_a"
        c.data.image_size = 64
        c.data.channels = 3
        c.data.crop = "center"
        c.ema_decay = 0.0  # the seed keeps no EMA
    elif preset == "mnist":
        c.data.source = "tfds"
        c.data.name = "mnist"
        c.data.image_size = 28
        c.num_epochs = 20
    elif preset == "cifar10":
        c.data.source = "tfds"
        c.data.name = "cifar10"
        c.data.channels = 3
        c.num_epochs = 100
    elif preset == "folder":
        # Any folder of images (paintings, faces, ...), e.g. the anime-faces set at 64 px.
        c.data.source = "folder"
        c.data.image_size = 64
        c.data.channels = 3
        c.data.crop = "center"
        c.num_epochs = 50
        # At 3,673 steps the EMA (window ~400 steps) scored 256.1 against the raw weights'
        # 218.8: the average starts later, as BigGAN's does (20k steps there).
        c.ema_start = 5000
    elif preset == "npz":
        c.data.source = "npz"
        c.data.image_size = 28
        c.num_epochs = 20
    return c
