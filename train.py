"""Trains a GAN: the checkout's entry point.

`python train.py --help` lists its flags. The command lives in gan_jax/commands/train.py;
installed (`pip install .`), it is `gan-jax-train`.
"""

from gan_jax.commands import train

if __name__ == "__main__":
    train.run()
