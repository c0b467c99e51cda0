"""The studio (a local web page to explore trained models): the checkout's entry point.

`python studio.py --help` lists its flags. The command lives in gan_jax/commands/studio.py;
installed (`pip install .`), it is `gan-jax-studio`.
"""

from gan_jax.commands import studio

if __name__ == "__main__":
    studio.run()
