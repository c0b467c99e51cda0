"""Makes images and animations from a trained run: the checkout's entry point.

`python sample.py --help` lists its flags. The command lives in gan_jax/commands/sample.py;
installed (`pip install .`), it is `gan-jax-sample`.
"""

from gan_jax.commands import sample

if __name__ == "__main__":
    sample.run()
