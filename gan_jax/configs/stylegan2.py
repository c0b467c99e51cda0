r"""StyleGAN2 with ADA (Karras et al. 2020): the model for an artist's folder of a few thousand
images.

Offline default (scikit-learn's digits, conditional, 32 px, narrow, ADA on):

  python train.py --config=configs/stylegan2.py --workdir=runs/sg2_digits

Presets (after the colon; any key overridden with --config.key=value):

  python train.py --config=configs/stylegan2.py:anime --workdir=runs/sg2_anime \
      --config.data.path=/path/to/anime_faces_64
  python train.py --config=configs/stylegan2.py:folder --workdir=runs/sg2_art \
      --config.data.path=/path/to/paintings            # 256 px; :folder-64 ... :folder-1024
  python train.py --config=configs/stylegan2.py:cifar10 --workdir=runs/sg2_cifar10
  python train.py --config=configs/stylegan2.py:ffhq256 --workdir=runs/sg2_ffhq \
      --config.data.path=/path/to/ffhq256

Settings per preset follow StyleGAN2-ADA's `train.py` specs: `folder-N` and `anime` its
`auto` rule at N px for one accelerator (batch min(4096 / N, 32), minibatch-std groups of 4,
channel base 16384 below 512 px and 32768 from it, cap 512, lr 0.0025 (0.002 at 1024),
R1 gamma 0.0002 N^2 / batch, EMA half-life batch * 10 / 32 kimg ramped over the first 5% of
images, 2 mapping layers); `cifar10` its `cifar` spec (conditional, batch 64, groups of 32,
gamma 0.01, EMA 500 kimg, no path length, no style mixing, D without residual skips);
`ffhq256` its `paper256` spec (batch 64, groups of 8, gamma 1, EMA 20 kimg, 8 mapping
layers). Everywhere: Adam (0, 0.99), the non-saturating logistic loss, lazy R1 every 16 steps,
path length (weight 2) every 4, style mixing 0.9, ADA (`augment.mode='ada'`: the `bgc`
pipeline, p adapted toward r_t = 0.6 every 4 steps, 500k images from 0 to 1).

`:anime` keeps that recipe at 64 px but with the channels narrowed (base 4096, cap 256), about
2 CPU-minutes a step; the paper's widths are `--config.model.channel_base=16384
--config.model.channel_max=512`. On a CPU, `:folder-64` with `--config.model.channel_base=1024
--config.model.channel_max=128 --config.model.z_dim=128 --config.model.w_dim=128` draws faces in
two hours (3 s a step on 2 cores; the README's 64 px section). `augment.mode` also takes
'diffaugment', 'fixed:P' and 'none'.
"""

import math
import re

import ml_collections

from gan_jax.configs import common

PRESETS = ("digits", "anime", "cifar10", "folder", "ffhq256")
FOLDER_SIZES = (32, 64, 128, 256, 512, 1024)


def _parse(preset: str | None) -> tuple[str, int]:
    preset = (preset or "digits").strip().lower()
    m = re.fullmatch(r"folder-(\d+)", preset)
    if m:
        size = int(m.group(1))
        if size not in FOLDER_SIZES:
            raise ValueError(f"config preset 'folder-N' takes N in {FOLDER_SIZES}, got {size}")
        return "folder", size
    if preset not in PRESETS:
        raise ValueError(
            f"config preset '{preset}' is unknown; choose one of {', '.join(PRESETS)} "
            "(or folder-N for N px)"
        )
    return preset, {"folder": 256, "anime": 64, "ffhq256": 256}.get(preset, 32)


def _auto(c: ml_collections.ConfigDict, size: int) -> None:
    """StyleGAN2-ADA's `auto` spec for one accelerator at `size` px."""
    batch = max(min(4096 // size, 32), 1)
    c.batch_size = batch
    c.model.mbstd_group = min(batch, 4)
    c.model.channel_base = 32768 if size >= 512 else 16384
    c.model.channel_max = 512
    c.model.map_layers = 2
    c.optim.g_lr = c.optim.d_lr = 0.002 if size >= 1024 else 0.0025
    c.reg.r1 = 0.0002 * size**2 / batch
    _ema(c, kimg=batch * 10 / 32, ramp=0.05)


def _ema(c: ml_collections.ConfigDict, *, kimg: float, ramp: float | None) -> None:
    """EMA half-life of `kimg` thousand images; ramp: the half-life is at most `ramp` x the
    images seen (StyleGAN2-ADA), i.e. the window at most ramp / ln 2 x the steps."""
    c.ema_decay = 0.5 ** (c.batch_size / (kimg * 1000.0))
    c.ema_rampup = ramp / math.log(2.0) if ramp else 0.0  # 0: no ramp


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """Returns the StyleGAN2 config for `preset` (default: the offline `digits` run)."""
    preset, size = _parse(preset)
    c = common.base(preset)
    c.model.name = "stylegan2"
    c.model.num_classes = 0
    c.model.z_dim = 512
    c.model.w_dim = 512
    c.model.map_layers = 8
    c.model.map_lr_mul = 0.01
    c.model.channel_base = 16384
    c.model.channel_max = 512
    c.model.w_avg_beta = 0.995
    c.model.style_mixing = 0.9  # probability of mixing two latents' styles in a batch
    c.model.d_architecture = "resnet"
    c.model.mbstd_group = 4
    c.model.mbstd_channels = 1
    c.model.cmap_dim = 0  # conditional D's projection width; 0 = the channels at 4x4
    c.model.bf16_res = 0  # top resolutions computed in bfloat16 (4 on accelerators)

    c.loss.name = "nonsaturating"  # StyleGAN2's logistic loss
    c.optim.g_b1 = c.optim.d_b1 = 0.0
    c.optim.g_b2 = c.optim.d_b2 = 0.99
    c.reg.r1 = 10.0
    c.reg.r1_every = 16
    c.reg.pl = 2.0
    c.reg.pl_every = 4
    c.augment.mode = "ada"
    c.augment.policy = "bgc"
    c.ema_start = 0
    common.long_run(c)
    c.data.image_size = size

    if preset == "digits":
        # Offline: the 1,797 digits inside scikit-learn, one row per class in the grids.
        c.data.source = "digits"
        c.model.num_classes = 10
        common.short_cpu_run(c, width=None, d_steps=1)
        c.batch_size = 32
        c.model.z_dim = c.model.w_dim = 128
        c.model.map_layers = 2
        c.model.channel_base = 1024  # 4 px: 128 ... 32 px: 32 channels
        c.model.channel_max = 128
        c.optim.g_lr = c.optim.d_lr = 0.0025
        c.reg.r1 = 0.01  # the paper's CIFAR gamma at the same size
        _ema(c, kimg=10 * 32 / 32, ramp=0.05)
        c.augment.adjust_every = 4
    elif preset == "anime":
        c.data.source = "folder"
        c.data.crop = "center"
        _auto(c, size)
        c.model.channel_base = 4096  # narrowed for a CPU (see the docstring)
        c.model.channel_max = 256
        c.num_steps = 50_000
    elif preset == "folder":
        c.data.source = "folder"
        c.data.crop = "center"
        _auto(c, size)
    elif preset == "cifar10":
        c.data.source = "tfds"
        c.data.name = "cifar10"
        c.model.num_classes = 10
        c.batch_size = 64
        c.model.mbstd_group = 32
        c.model.channel_base = 32768
        c.model.map_layers = 2
        c.model.style_mixing = 0.0
        c.model.d_architecture = "orig"
        c.reg.r1 = 0.01
        c.reg.pl = 0.0
        c.optim.g_lr = c.optim.d_lr = 0.0025
        _ema(c, kimg=500, ramp=0.05)
        c.num_steps = 100_000_000 // 64  # the spec's 100M images
    elif preset == "ffhq256":
        c.data.source = "folder"
        c.data.crop = "center"
        c.batch_size = 64
        c.model.mbstd_group = 8
        c.reg.r1 = 1.0
        c.optim.g_lr = c.optim.d_lr = 0.0025
        c.model.bf16_res = 4
        _ema(c, kimg=20, ramp=None)
        c.num_steps = 25_000_000 // 64  # the spec's 25M images
    return c
