r"""BigGAN (Brock et al. 2019): hierarchical latents, a shared class embedding, conditional
batch norm, self-attention, spectral norm in G and D, orthogonal regularisation, EMA of G.

Offline default (scikit-learn's digits, conditional, 32 px, widths 16; its time is not measured
yet: `:mnist` at widths 32 took 4.8 s a step on a quiet 2-core CPU, label accuracy 99.80% and
CAS 92.13% after its 1,000 steps, see the README):

  python train.py --config=configs/biggan.py --workdir=runs/biggan_digits

Presets:

  python train.py --config=configs/biggan.py:cifar10 --workdir=runs/biggan_cifar10
  python train.py --config=configs/biggan.py:mnist   --workdir=runs/biggan_mnist \
      --config.data.source=npz --config.data.path=mnist_uint8.npz --config.data.label_key=y_train
  python train.py --config=configs/biggan.py:folder --workdir=runs/biggan_art \
      --config.data.path=/path/to/class_folders --config.data.labels=subfolders \
      --config.model.num_classes=K

`:cifar10` is StudioGAN's CIFAR-10 BigGAN: z 80 in 4 chunks, shared embedding 128, widths 96,
attention at 16 px, hinge loss, 5 D steps per G step, Adam 2e-4 (0.5, 0.999), batch 64, EMA
0.9999 from step 1,000 (StudioGAN: FID 4.16, 50k vs train, 100k G steps on one GPU).
"""

import ml_collections

from gan_jax.configs import common

PRESETS = ("digits", "cifar10", "mnist", "folder")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    """Returns the BigGAN config for `preset` (default: the offline `digits` run)."""
    preset = (preset or "digits").strip().lower()
    if preset not in PRESETS:
        raise ValueError(f"config preset '{preset}' is unknown; choose one of {', '.join(PRESETS)}")

    c = common.base(preset)
    c.model.name = "biggan"
    c.model.num_classes = 10
    c.model.z_dim = 80  # split into one chunk per G block plus one for the first map
    c.model.shared_dim = 128  # the shared class embedding
    c.model.g_width = 96
    c.model.d_width = 96
    c.model.attn_res = 16  # self-attention at this resolution; 0 = none
    c.model.dtype = "float32"
    c.standing_stats = common.BATCH_NORM_STANDING_STATS  # statistics of the sampled weights

    c.loss.name = "hinge"
    c.d_steps = 5
    c.optim.g_b1 = c.optim.d_b1 = 0.5
    c.optim.g_b2 = c.optim.d_b2 = 0.999
    c.reg.ortho = 1e-4  # BigGAN's orthogonal regulariser on G
    c.ema_decay = 0.9999
    c.ema_start = 1000  # the EMA is G itself until then (BigGAN, StudioGAN)
    common.long_run(c)

    if preset == "digits":
        c.data.source = "digits"
        common.short_cpu_run(c, width=16)  # attention at 16 px keeps >= 8 channels
        c.ema_decay = 0.999
        c.ema_start = 250
    elif preset == "cifar10":
        c.data.source = "tfds"
        c.data.name = "cifar10"
    elif preset == "mnist":
        c.data.source = "tfds"
        c.data.name = "mnist"
        c.data.label_key = "y_train"  # used when --config.data.source=npz
        common.short_cpu_run(c, width=32)
        c.ema_decay = 0.999
        c.ema_start = 250
    elif preset == "folder":
        c.data.source = "folder"
        c.data.labels = "subfolders"
        c.data.image_size = 64
        c.data.crop = "center"
        c.model.attn_res = 32
        c.model.g_width = 32
        c.model.d_width = 32
        c.model.z_dim = 120
        c.num_steps = 50_000
    return c
