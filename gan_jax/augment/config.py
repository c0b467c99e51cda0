"""The `config.augment` keys, owned by the augmentation stage, and their checks.

augment.policy        DiffAugment transforms for every D input, e.g. 'color,translation,cutout'
                      ('' = no augmentation)
augment.p             probability each transform is applied to a sample (1.0 = DiffAugment
                      as published); the starting p when adaptive
augment.adaptive      adapt p with ADA's heuristic (r_t = E[sign D(real)] toward `target`)
augment.target        r_t target (0.6 in the ADA paper)
augment.adjust_every  steps between adjustments (4)
augment.speed_images  images over which p can move from 0 to 1 (500k in the ADA paper)
"""

from __future__ import annotations

import dataclasses

from gan_jax import config_lib
from gan_jax.augment import diffaugment


@dataclasses.dataclass(frozen=True)
class Settings:
    policy: tuple[str, ...] = ()
    p: float = 0.0
    adaptive: bool = False
    target: float = 0.6
    adjust_every: int = 4
    speed_images: int = 500_000


def settings(config) -> Settings:
    """The augmentation a config asks for (none when it has no `augment` section)."""
    aug = config.get("augment", None)
    if aug is None or not aug.get("policy", ""):
        return Settings()
    return Settings(
        policy=diffaugment.parse_policy(aug.policy),
        p=float(aug.get("p", 1.0)),
        adaptive=bool(aug.get("adaptive", False)),
        target=float(aug.get("target", 0.6)),
        adjust_every=int(aug.get("adjust_every", 4)),
        speed_images=int(aug.get("speed_images", 500_000)),
    )


def validate(config) -> None:
    """Checks config.augment (absent = no augmentation)."""
    if "augment" not in config:
        return
    aug = config.augment
    if "policy" in aug:
        policy = config_lib.get(config, "augment.policy")
        config_lib.require(isinstance(policy, str), "augment.policy", "must be a string")
        try:
            diffaugment.parse_policy(policy)
        except ValueError as e:
            config_lib.require(False, "augment.policy", str(e))
    if "p" in aug:
        config_lib.number_in(config, "augment.p", 0.0, 1.0)
    if "target" in aug:
        config_lib.number_in(config, "augment.target", 0.0, 1.0, low_open=True, high_open=True)
    if "adjust_every" in aug:
        config_lib.positive_int(config, "augment.adjust_every")
    if "speed_images" in aug:
        config_lib.positive_int(config, "augment.speed_images")
    if aug.get("adaptive", False):
        config_lib.require(
            bool(aug.get("policy", "")),
            "augment.adaptive",
            "needs augment.policy (which transforms to apply with the adaptive p)",
        )
