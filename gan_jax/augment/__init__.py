"""Data-efficient augmentation for the discriminator.

`diffaugment` holds the differentiable transforms (DiffAugment, Zhao et al. 2020) and
`augment`, which applies a policy to a batch with a per-op, per-sample probability p;
`adaptive` holds ADA's heuristic (Karras et al. 2020) that tunes p from D's outputs on real
images. Typical use in a discriminator step:

    x_real = augment(real, key_r, policy=policy, p=state["p"])
    x_fake = augment(fake, key_f, policy=policy, p=state["p"])
    state = adaptive.accumulate(state, d_real_logits)
    # every N steps: state = adaptive.adjust(state, images_per_adjust=N * batch_size)
"""

from gan_jax.augment import adaptive
from gan_jax.augment.adaptive import accumulate, adjust, init_state, rt
from gan_jax.augment.diffaugment import (
    OPS,
    POLICIES,
    POLICY_OPS,
    augment,
    brightness,
    contrast,
    cutout,
    parse_policy,
    policy_ops,
    saturation,
    translation,
)

__all__ = [
    "OPS",
    "POLICIES",
    "POLICY_OPS",
    "accumulate",
    "adaptive",
    "adjust",
    "augment",
    "brightness",
    "contrast",
    "cutout",
    "init_state",
    "parse_policy",
    "policy_ops",
    "rt",
    "saturation",
    "translation",
]
