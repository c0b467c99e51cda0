r"""CycleGAN (Zhu et al. 2017): translation between two domains learnt from unpaired images.

Two folders (a style transfer between any two sets of pictures):

  python train.py --config=configs/cyclegan.py:folder --workdir=runs/photo2paint \
      --config.data.path_a=/path/to/photos --config.data.path_b=/path/to/paintings

The offline demonstration with a known answer (`:cel_anime`): domain B is a fixed "cel-shaded"
stylisation (posterised colours, dark Canny outlines) of one half of the anime faces, domain
A the other half as they are, so training never sees a face in both domains; on held-out A
faces the true stylisation is known and `evaluate.py` reports PSNR/SSIM to it:

  python train.py --config=configs/cyclegan.py:cel_anime --workdir=runs/cel \
      --config.data.path=/path/to/anime_faces_64
  python evaluate.py --workdir=runs/cel
  python translate.py --workdir=runs/cel --input=face.png --out=out/

Two splits of a TFDS dataset (prepared with `tfds build`, or downloaded where there is a
network):

  python train.py --config=configs/cyclegan.py:folder --workdir=runs/horse2zebra \
      --config.data.source=tfds --config.data.name=cycle_gan/horse2zebra \
      --config.data.split_a=trainA+testA --config.data.split_b=trainB+testB

Offline default (`:digits`): A = the digits, B = their negatives (`data.domain_b='invert'`).

CycleGAN's recipe: ResNet generators (6 blocks up to 128 px), 70x70-share PatchGANs, instance
norm, least-squares loss, cycle weight 10 and identity 0.5 x 10, a history of 50 fakes for D,
Adam 2e-4 with beta1 0.5, constant then linearly decayed to zero over the second half.
"""

import ml_collections

from gan_jax.configs import common

PRESETS = ("digits", "cel_anime", "folder")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """Returns the CycleGAN config for `preset` (default: the offline `digits` run)."""
    preset = (preset or "digits").strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"config preset '{preset}' is unknown; choose one of {', '.join(PRESETS)}")

    c = common.base(preset)
    c.model.name = "cyclegan"
    c.model.g_width = 64  # CycleGAN's ngf
    c.model.d_width = 64  # ndf
    c.model.g_blocks = 0  # 0: 6 residual blocks up to 128 px, 9 above
    c.model.d_layers = 0  # 0: the PatchGAN share of the image pix2pix uses
    c.model.norm = "instance"
    c.model.pool_size = 50  # history of fakes shown to D
    c.model.conv_impl = "auto"
    c.model.dtype = "float32"

    c.data.path_a = ""  # two folders ...
    c.data.path_b = ""
    c.data.split_a = ""  # ... or two splits of a TFDS dataset (data.source='tfds') ...
    c.data.split_b = ""
    c.data.domain_b = ""  # ... or one source, B a stylisation of half of it: cel | invert

    c.loss.name = "least_squares"
    c.loss.cycle = 10.0  # lambda of the cycle losses
    c.loss.identity = 0.5  # identity loss weight, times lambda (0 = off)
    c.optim.schedule = "constant_linear"
    c.optim.decay_start = 0.5
    c.ema_decay = 0.0  # CycleGAN keeps none
    c.eval.fid_every = 0
    c.num_epochs = 0

    if preset == "digits":
        c.data.source = "digits"
        c.data.domain_b = "invert"
        c.data.image_size = 32
        c.data.channels = 1
        c.model.g_width = 16
        c.model.d_width = 16
        c.batch_size = 16
        c.num_steps = 400
        c.log_every = 50
        c.sample_every = 200
        c.checkpoint_every = 200
        return c

    c.data.source = "folder"
    c.data.image_size = 64
    c.data.channels = 3
    c.data.crop = "center"
    c.batch_size = 8
    c.num_steps = 2000
    c.log_every = 100
    c.sample_every = 500
    c.checkpoint_every = 500
    if preset == "cel_anime":
        c.data.path = ""  # set with --config.data.path
        c.data.domain_b = "cel"
        # CPU-sized: ngf 16 (1/16 of CycleGAN's generator compute), batch 4, 1,000 steps.
        c.model.g_width = 16
        c.model.d_width = 32
        c.batch_size = 4
        c.num_steps = 1000
        c.sample_every = 250
        c.checkpoint_every = 250
    return c
