"""The `config.augment` keys, owned by the augmentation stage, and their checks.

augment.mode          the one-word choice: 'ada' (ADA's pipeline, adaptive p from 0),
                      'diffaugment' (DiffAugment at p = 1), 'fixed:P' (ADA's pipeline at a
                      constant P), 'none'; '' (the default) reads the keys below instead
augment.pipeline      'diffaugment' (gan_jax/augment/diffaugment.py) or 'ada'
                      (gan_jax/augment/ada.py)
augment.policy        what the pipeline applies: DiffAugment's 'color,translation,cutout';
                      ADA's preset ('bgc', 'bg', 'blit', 'geom', 'color') or op names.
                      '' = no augmentation (with a mode: that pipeline's default)
augment.p             probability each transform is applied to a sample (1.0 = DiffAugment
                      as published); the starting p when adaptive
augment.adaptive      adapt p with ADA's heuristic (r_t = E[sign D(real)] toward `target`)
augment.target        r_t target (0.6 in the ADA paper)
augment.adjust_every  steps between adjustments (4)
augment.speed_images  images over which p can move from 0 to 1 (500k in the ADA paper)
"""

from __future__ import annotations

import dataclasses

import jax

from gan_jax import config_lib
from gan_jax.augment import ada, diffaugment

PIPELINES = ("diffaugment", "ada")
MODES = ("", "none", "diffaugment", "ada", "fixed:P")
DEFAULT_POLICY = {"diffaugment": "color,translation,cutout", "ada": "bgc"}


@dataclasses.dataclass(frozen=True)
class Settings:
    pipeline: str = "diffaugment"
    policy: tuple[str, ...] = ()  # DiffAugment policy names or ADA op names; () = off
    p: float = 0.0
    adaptive: bool = False
    target: float = 0.6
    adjust_every: int = 4
    speed_images: int = 500_000

    def apply(self, images: jax.Array, key: jax.Array, p) -> jax.Array:
        """The pipeline on a batch, each transform per sample with probability p."""
        if self.pipeline == "ada":
            return ada.augment(images, key, ops=self.policy, p=p)
        return diffaugment.augment(images, key, policy=self.policy, p=p)


def _parse(pipeline: str, policy: str) -> tuple[str, ...]:
    if pipeline == "ada":
        return ada.parse_preset(policy)
    return diffaugment.parse_policy(policy)


def _fixed_p(mode: str) -> float:
    try:
        return float(mode.split(":", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"augment.mode 'fixed:P' needs a number P, got {mode!r}") from None


def settings(config) -> Settings:
    """The augmentation a config asks for (none when it has no `augment` section)."""
    aug = config.get("augment", None)
    if aug is None:
        return Settings()
    common = dict(
        target=float(aug.get("target", 0.6)),
        adjust_every=int(aug.get("adjust_every", 4)),
        speed_images=int(aug.get("speed_images", 500_000)),
    )
    mode = str(aug.get("mode", "") or "").strip()
    policy = str(aug.get("policy", "") or "")
    if mode == "none":
        return Settings(**common)
    if mode in ("ada", "diffaugment") or mode.startswith("fixed:"):
        pipeline = "diffaugment" if mode == "diffaugment" else "ada"
        try:
            ops = _parse(pipeline, policy) if policy.strip() else ()
        except ValueError:
            ops = ()  # a policy of the other pipeline: this mode's default
        ops = ops or _parse(pipeline, DEFAULT_POLICY[pipeline])
        if mode == "ada":
            return Settings("ada", ops, 0.0, True, **common)  # ADA starts at p = 0
        p = 1.0 if mode == "diffaugment" else _fixed_p(mode)
        return Settings(pipeline, ops, p, False, **common)
    if not policy.strip():
        return Settings(**common)
    pipeline = str(aug.get("pipeline", "diffaugment"))
    return Settings(
        pipeline,
        _parse(pipeline, policy),
        float(aug.get("p", 1.0)),
        bool(aug.get("adaptive", False)),
        **common,
    )


def validate(config) -> None:
    """Checks config.augment (absent = no augmentation)."""
    if "augment" not in config:
        return
    aug = config.augment
    mode = aug.get("mode", "")
    if "mode" in aug:
        config_lib.require(
            isinstance(mode, str) and (mode.strip() in MODES or mode.strip().startswith("fixed:")),
            "augment.mode",
            f"must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}",
        )
        if mode.strip().startswith("fixed:"):
            try:
                p = _fixed_p(mode.strip())
            except ValueError as e:
                config_lib.require(False, "augment.mode", str(e))
            config_lib.require(
                0.0 <= p <= 1.0, "augment.mode", f"fixed:P needs P in [0, 1], got {p}"
            )
    if "pipeline" in aug:
        config_lib.choice(config, "augment.pipeline", PIPELINES)
    if "policy" in aug:
        policy = config_lib.get(config, "augment.policy")
        config_lib.require(isinstance(policy, str), "augment.policy", "must be a string")
        if not str(mode).strip():  # with a mode, a policy of the other pipeline is ignored
            try:
                if policy.strip():
                    _parse(str(aug.get("pipeline", "diffaugment")), policy)
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
    if aug.get("adaptive", False) and not str(mode).strip():
        config_lib.require(
            bool(aug.get("policy", "")),
            "augment.adaptive",
            "needs augment.policy (which transforms to apply with the adaptive p)",
        )
