"""Projects an image into a trained StyleGAN2 run: the checkout's entry point.

`python project.py --help` lists its flags. The command lives in gan_jax/commands/project.py;
installed (`pip install .`), it is `gan-jax-project`.
"""

from gan_jax.commands import project

if __name__ == "__main__":
    project.run()
