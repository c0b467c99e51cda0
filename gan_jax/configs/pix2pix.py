r"""Image-to-image translation (pix2pix: Isola et al. 2017) and super-resolution (an
SRResNet-style generator, trained for L1 and then fine-tuned adversarially, as SRGAN).

The data is any folder of images (or the digits, an npz, a TFDS split): `data.task` turns
each image into a (model input, target) pair (`gan_jax/input/tasks.py`): `sr2`/`sr4` (bicubic
downscaling), `inpaint[:box|stroke|mixed]` (a hole from a seeded mask; G also reads the mask),
`colorize` (luma to RGB), `edges[:canny|sobel]` (an edge map to the image), `denoise[:SIGMA]`.
Images are split into train / validation / test (90/5/5%) by a hash of each file's name;
training reads only train, the sample grids show validation (rows: input, output, target) and
`evaluate.py --workdir=W` scores test.

Offline default (the digits, inpainting at 32 px, a few minutes on a 2-core CPU):

  python train.py --config=configs/pix2pix.py --workdir=runs/p2p_digits

Anime faces at 64 px (`--config.data.path` a folder of face images):

  python train.py --config=configs/pix2pix.py:sr4_anime --workdir=runs/sr4_l1 \
      --config.data.path=/path/to/anime_faces_64                  # x4 SR for L1 (PSNR)
  python train.py --config=configs/pix2pix.py:sr4_anime_gan --workdir=runs/sr4_gan \
      --config.data.path=/path/to/anime_faces_64 --config.init_from=runs/sr4_l1  # + GAN
  python train.py --config=configs/pix2pix.py:inpaint_anime  --config.data.path=... --workdir=...
  python train.py --config=configs/pix2pix.py:colorize_anime --config.data.path=... --workdir=...
  python train.py --config=configs/pix2pix.py:edges_anime    --config.data.path=... --workdir=...

Then `python translate.py --workdir=W --input=IMG_OR_DIR --out=DIR` applies the model and
`python evaluate.py --workdir=W` reports PSNR/SSIM (and hole, edge or colour scores) on the
test split beside the task's classical baseline.

pix2pix's recipe: U-Net G (dropout 0.5), PatchGAN D conditioned on the input, batch norm,
non-saturating loss + 100 x L1, Adam 2e-4 with beta1 0.5. The PatchGAN's receptive field keeps
pix2pix's share of the image (70 px of 256; 16 px at 64 px: `model.d_layers=0`).

ESRGAN's choices for super-resolution: `--config.model.sr_block=rrdb` (residual-in-residual
dense blocks) and `--config.loss.name=relativistic_average` (a relativistic average D).
"""

import ml_collections

from gan_jax.configs import common

PRESETS = (
    "digits",
    "sr4_anime",
    "sr4_anime_gan",
    "sr2_anime",
    "sr2_anime_gan",
    "inpaint_anime",
    "colorize_anime",
    "edges_anime",
    "denoise_anime",
    "folder",
)


def _anime(c: ml_collections.ConfigDict) -> None:
    """64 px RGB faces from a folder, 2,000 G steps of batch 16 (CPU-sized: ~15 min)."""
    c.data.source = "folder"
    c.data.path = ""  # set with --config.data.path
    c.data.image_size = 64
    c.data.channels = 3
    c.data.crop = "center"
    c.batch_size = 16
    c.num_steps = 2000
    c.log_every = 100
    c.sample_every = 500
    c.checkpoint_every = 500


def _sr(c: ml_collections.ConfigDict, factor: int, gan: bool) -> None:
    c.data.task = f"sr{factor}"
    c.model.generator = "srresnet"
    c.model.g_width = 64
    c.model.sr_blocks = 8
    c.model.norm = "none"  # the SR generator has none; D without it too (ESRGAN's D has BN)
    c.optim.g_b1 = c.optim.d_b1 = 0.9
    c.optim.g_b2 = c.optim.d_b2 = 0.99
    # L1 regression first (the "PSNR model"); the GAN preset fine-tunes it (init_from) with
    # the adversarial term at 1/100 of L1 (pix2pix's ratio) and a perceptual feature term
    # (FID Inception's stem, as VGG for SRGAN/ESRGAN; 0.1 x its MSE is about L1 at the start)
    # at half the learning rate.
    c.loss.l1 = 1.0
    c.loss.adv = 0.01 if gan else 0.0
    c.loss.feature = 0.1 if gan else 0.0
    if gan:
        c.optim.g_lr = c.optim.d_lr = 1e-4
        c.num_steps = 1000


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """Returns the pix2pix config for `preset` (default: the offline `digits` run)."""
    preset = (preset or "digits").strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"config preset '{preset}' is unknown; choose one of {', '.join(PRESETS)}")

    c = common.base(preset)
    c.model.name = "pix2pix"
    c.model.generator = "unet"  # unet | resnet (same size) | srresnet (sr tasks)
    c.model.g_width = 64  # pix2pix's ngf
    c.model.d_width = 64  # pix2pix's ndf
    c.model.norm = "batch"  # batch | instance | none
    c.model.dropout = 0.5  # the U-Net's decoder dropout (pix2pix's noise)
    c.model.d_layers = 0  # PatchGAN stride-2 layers; 0 = pix2pix's share of the image
    c.model.sr_blocks = 8  # residual blocks of the SR generator
    c.model.sr_block = "res"  # res (SRResNet/EDSR) | rrdb (ESRGAN's residual-in-residual dense)
    c.model.sr_growth = 32  # rrdb: channels each dense convolution adds
    c.model.conv_impl = "auto"
    c.model.dtype = "float32"

    c.data.task = "inpaint"  # see the module doc
    c.loss.name = "nonsaturating"
    c.loss.l1 = 100.0  # weight of mean |G(x) - y|
    c.loss.adv = 1.0  # weight of the adversarial term (0: L1 regression only)
    c.loss.feature = 0.0  # weight of the perceptual feature MSE (FID Inception's stem)
    c.loss.feature_weights = ""  # its weights file ('' = the FID weights found offline)
    # A workdir whose latest checkpoint starts G (and its EMA) when this run starts from
    # scratch: the GAN fine-tuning of an L1-trained SR model. Same model config required.
    c.init_from = ""
    c.ema_decay = 0.999
    c.eval.fid_every = 0  # scored by evaluate.py on the test split, not by FID in training

    if preset == "digits":
        c.data.source = "digits"
        c.data.image_size = 32
        c.data.channels = 1
        c.data.task = "inpaint:box"
        c.model.g_width = 16
        c.model.d_width = 16
        c.batch_size = 32
        c.num_epochs = 0
        c.num_steps = 600
        c.log_every = 50
        c.sample_every = 200
        c.checkpoint_every = 200
        return c

    if preset == "folder":  # any folder; set data.path and data.task
        _anime(c)
        return c

    _anime(c)
    c.num_epochs = 0
    if preset.startswith("sr"):
        _sr(c, int(preset[2]), gan=preset.endswith("_gan"))
    else:
        c.data.task = {
            "inpaint_anime": "inpaint",
            "colorize_anime": "colorize",
            "edges_anime": "edges:canny",
            "denoise_anime": "denoise",
        }[preset]
        c.model.g_width = 32  # a quarter of pix2pix's U-Net compute, for CPUs
    return c
