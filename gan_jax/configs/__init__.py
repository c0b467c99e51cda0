"""The training configs that ship with gan_jax: one file per model, presets after a colon.

Each `NAME.py` here with a `get_config(preset)` is a config that `--config=NAME[:preset]`
names from any folder once gan_jax is installed (`gan-jax-train --config=dcgan:celeba`);
`--config=PATH[:preset]` loads any other file, such as a copy of one of these edited for a
project. In a checkout, `configs/` is a link to this folder, so `--config=configs/dcgan.py`
loads the same file. `common.py` holds the keys every config shares.

A config file may import `gan_jax.configs.common` (and nothing else of gan_jax): it is loaded
by path, before gan_jax's layers, and must stay cheap to import.
"""
