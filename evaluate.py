"""Scores a trained run or an image folder: the checkout's entry point.

`python evaluate.py --help` lists its flags. The command lives in gan_jax/commands/evaluate.py;
installed (`pip install .`), it is `gan-jax-evaluate`.
"""

from gan_jax.commands import evaluate

if __name__ == "__main__":
    evaluate.run()
