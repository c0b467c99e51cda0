r"""Several runs' curves on shared axes, one panel per tag: the README's few-shot figure.

    python bench/compare_runs.py --out few_shot.png --smoothing=0.6 \
        --run "ADA=runs/few_ada" --run "no augmentation=runs/few_none" \
        --tag "ada_rt=r_t = E[sign D(real)]" --tag "augment_p=ADA's p" --tag "eval/fid=FID"

TensorBoard shows the same when pointed at the runs' parent folder; this draws it as one PNG
for a page. Tags are read with `gan_jax.sampling.curves.read_scalars` (evaluate.py's scores
are 'eval/fid', 'eval/kid', ...). A run without a tag is left out of that panel; a tag no run
has is an error.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gan_jax.sampling import curves  # noqa: E402


def _pair(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"{what} must be NAME=VALUE, got {text!r}")
    return name, value


def plot(runs, tags, out: str, *, smoothing: float = 0.0, title: str | None = None):
    """runs: [(label, workdir)]; tags: [(tag, panel title)]; writes the PNG to `out`.

    Returns {tag: [labels of the runs drawn in its panel]}.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    scalars = {label: curves.read_scalars(workdir) for label, workdir in runs}
    missing = [t for t, _ in tags if not any(t in s for s in scalars.values())]
    if missing:
        raise SystemExit(f"no run logged {', '.join(missing)}")
    drawn = {tag: [] for tag, _ in tags}
    fig, axes = plt.subplots(1, len(tags), figsize=(4.2 * len(tags), 3.4), squeeze=False)
    for ax, (tag, panel) in zip(axes[0], tags, strict=True):
        for i, (label, _) in enumerate(runs):
            if tag not in scalars[label]:
                continue
            steps, values = scalars[label][tag]
            score = tag.startswith("eval/") or len(steps) <= 20
            if smoothing > 0 and not score:
                ax.plot(steps, values, color=f"C{i}", alpha=0.25, lw=1)
                values = curves.smooth(values, smoothing)
            ax.plot(
                steps, values, color=f"C{i}", label=label, lw=1.5, marker="o" if score else None
            )
            drawn[tag].append(label)
        if tag == "ada_rt":
            ax.axhline(0.6, color="grey", ls="--", lw=1, label="ADA's target 0.6")
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return drawn


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="LABEL=WORKDIR")
    parser.add_argument("--tag", action="append", required=True, help="TAG=PANEL TITLE")
    parser.add_argument("--out", required=True)
    parser.add_argument("--smoothing", type=float, default=0.0)
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    runs = [_pair(r, "--run") for r in args.run]
    tags = [_pair(t, "--tag") for t in args.tag]
    for label, workdir in runs:
        if not os.path.isdir(workdir):
            raise SystemExit(f"--run {label}: {workdir} is not a folder")
    plot(runs, tags, args.out, smoothing=args.smoothing, title=args.title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
