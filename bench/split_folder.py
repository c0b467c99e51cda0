r"""Splits an image folder (or a .zip of one) into training and held-out folders, reproducibly.

The README's anime-face tables hold images out before training so that FID is measured against
faces the model never saw; a few-shot run then takes the first N training images by name:

  python bench/split_folder.py --src=anime_faces_64.zip --heldout=2000 --seed=0 \
      --train_out=anime_train --heldout_out=anime_heldout --few=100 --few_out=faces_100

The held-out set is the first --heldout names of a seeded permutation of the sorted names, so the
same arguments give the same split on any machine. Files are copied byte for byte.
"""

import argparse
import os
import shutil
import sys
import zipfile

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(src: str) -> list[str]:
    """Image names in `src` (a folder, searched recursively, or a .zip), sorted."""
    if zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as z:
            names = z.namelist()
    elif os.path.isdir(src):
        names = [os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs]
    else:
        raise FileNotFoundError(f"--src '{src}' is neither a folder nor a .zip file")
    return sorted(n for n in names if n.lower().endswith(IMAGE_EXTS))


def split(names: list[str], heldout: int, seed: int) -> tuple[list[str], list[str]]:
    if not 0 < heldout < len(names):
        raise ValueError(f"--heldout={heldout} must be between 1 and {len(names) - 1}")
    order = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in order[:heldout])
    held_set = set(held)
    return [n for n in names if n not in held_set], held


def copy(src: str, names: list[str], out: str) -> None:
    os.makedirs(out, exist_ok=True)
    zf = zipfile.ZipFile(src) if zipfile.is_zipfile(src) else None
    try:
        for n in names:
            dest = os.path.join(out, os.path.basename(n))
            if zf is not None:
                with zf.open(n) as f, open(dest, "wb") as g:
                    shutil.copyfileobj(f, g)
            else:
                shutil.copyfile(os.path.join(src, n), dest)
    finally:
        if zf is not None:
            zf.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, help="a folder of images or a .zip of one")
    p.add_argument("--heldout", type=int, required=True, help="how many images to hold out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train_out", required=True)
    p.add_argument("--heldout_out", required=True)
    p.add_argument("--few", type=int, default=0, help="also copy the first N training names")
    p.add_argument("--few_out", default=None)
    args = p.parse_args(argv)
    try:
        names = list_images(args.src)
        train, held = split(names, args.heldout, args.seed)
        if args.few and (args.few_out is None or args.few > len(train)):
            raise ValueError(f"--few={args.few} needs --few_out and at most {len(train)} images")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len({os.path.basename(n) for n in names}) != len(names):
        print("error: two images share a file name in different subfolders", file=sys.stderr)
        return 2
    copy(args.src, train, args.train_out)
    copy(args.src, held, args.heldout_out)
    if args.few:
        copy(args.src, train[: args.few], args.few_out)
    print(
        f"{len(train)} training images -> {args.train_out}, {len(held)} held out -> "
        f"{args.heldout_out}" + (f", first {args.few} -> {args.few_out}" if args.few else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
