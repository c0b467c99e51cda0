"""Applies a trained image-to-image run to images: the checkout's entry point.

`python translate.py --help` lists its flags. The command lives in
gan_jax/commands/translate.py; installed (`pip install .`), it is `gan-jax-translate`.
"""

from gan_jax.commands import translate

if __name__ == "__main__":
    translate.run()
