"""A run's training curves from its TensorBoard event files, as one PNG (no model, no TF).

Training writes its scalars with `gan_jax.events.EventWriter` to
WORKDIR/events.out.tfevents.* (TF2 summaries: each scalar is a rank-0 tensor with the
"scalars" plugin), and evaluate.py writes its scores to WORKDIR/eval/. The tags:

  every log_every steps (gan_jax/training/loop.py, the metrics of training/step.py):
    d_loss, g_loss, d_real (mean sigmoid D(x)), d_fake (mean sigmoid D(G(z))), g_grad_norm,
    d_grad_norm, nonfinite, images_per_sec, steps_per_sec, uptime (seconds since the start);
    the regularisers that are on: gp, r1, r2, ortho, pl, pl_mean; ada_rt (every GAN run);
    with augmentation: augment_p
  the FID hook every eval.fid_every steps (training/fid_hook.py, evaluation/scoring.scalars):
    fid, kid, kid_std, precision, recall, is, is_std, fid_best, and for conditional models
    label_accuracy, cas, real_accuracy, intra_fid, intra_kid
  evaluate.py (WORKDIR/eval): the same score tags, read here as eval/fid, eval/kid, ...

The records are read with `events.read_records` and TensorBoard's protobufs: TensorBoard's
own readers import TensorFlow (seconds) when it is installed.

    scalars = read_scalars("runs/digits")   # {"d_loss": (steps, values), ...}
    plot_curves(scalars, "curves.png", smoothing=0.6)
"""

from __future__ import annotations

import json
import logging
import math
import os
import re

import numpy as np

from gan_jax import events, files
from gan_jax.errors import SamplingError

log = logging.getLogger(__name__)

_EVENT_FILE = re.compile(r"^events\.out\.tfevents\.(\d+)")

# (title, ((tag, legend label), ...)): one subplot per group that has data, in this order.
# Tags from a subfolder (eval/fid) join the group of their last part, labelled with it.
GROUPS = (
    ("Losses", (("d_loss", "D loss"), ("g_loss", "G loss"))),
    ("D outputs", (("d_real", "D(x)"), ("d_fake", "D(G(z))"))),
    ("FID", (("fid", "FID"), ("fid_best", "best FID"), ("intra_fid", "intra-class FID"))),
    ("KID", (("kid", "KID"), ("intra_kid", "intra-class KID"))),
    ("Precision and recall", (("precision", "precision"), ("recall", "recall"))),
    ("Inception score", (("is", "IS"),)),
    (
        "Class accuracy",
        (("label_accuracy", "label accuracy"), ("cas", "CAS"), ("real_accuracy", "real")),
    ),
    ("Augmentation", (("augment_p", "p"), ("ada_rt", "r_t = E[sign D(real)]"))),
    (
        "Regularisers",
        (("gp", "GP"), ("r1", "R1"), ("r2", "R2"), ("ortho", "ortho"), ("pl", "PL")),
    ),
    ("Gradient norms", (("d_grad_norm", "D"), ("g_grad_norm", "G"))),
)
_SCORES = {"fid", "fid_best", "intra_fid", "kid", "intra_kid", "precision", "recall", "is"}


def event_files(workdir: str) -> list[tuple[str, str]]:
    """(prefix, path) of the event files in `workdir` ('') and its immediate subfolders
    ('eval/', ...), oldest first within each folder."""
    found = []
    folders = [("", workdir)]
    try:
        names = sorted(os.listdir(workdir))
    except OSError as e:
        raise SamplingError(f"cannot read workdir '{workdir}': {e.strerror or e}") from None
    folders += [
        (name + "/", os.path.join(workdir, name))
        for name in names
        if os.path.isdir(os.path.join(workdir, name))
    ]
    for prefix, folder in folders:
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        events = []
        for name in entries:
            match = _EVENT_FILE.match(name)
            if match and os.path.isfile(os.path.join(folder, name)):
                events.append((int(match.group(1)), name))
        found += [(prefix, os.path.join(folder, name)) for _, name in sorted(events)]
    return found


def _scalar(value, plugins: dict[str, str]) -> float | None:
    from tensorboard.util import tensor_util  # noqa: PLC0415 (numpy only, no TF)

    tag = value.tag
    if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
        plugins[tag] = value.metadata.plugin_data.plugin_name
    if plugins.get(tag, "scalars") != "scalars":
        return None
    kind = value.WhichOneof("value")
    if kind == "simple_value":  # TF1-style summaries
        return float(value.simple_value)
    if kind != "tensor" or value.tensor.tensor_shape.dim:
        return None
    try:
        array = tensor_util.make_ndarray(value.tensor)
    except (TypeError, ValueError):
        return None
    if array.ndim or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return None
    return float(array)


def read_scalars(workdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar a run logged: {tag: (steps int64 [N], values float64 [N])}, by step.

    Tags of event files in a subfolder are prefixed with it ('eval/fid'). A run that was
    resumed logs some steps again: as TensorBoard does, a step at or before the last one
    seen for a tag drops the older points from that step on.

    Raises:
      SamplingError: no event files, or no scalars in them.
    """
    from google.protobuf.message import DecodeError  # noqa: PLC0415
    from tensorboard.compat.proto import event_pb2  # noqa: PLC0415 (protobuf only, no TF)

    paths = event_files(workdir)
    if not paths:
        raise SamplingError(
            f"no TensorBoard event files (events.out.tfevents.*) in '{workdir}': training "
            "writes them there as it logs"
        )
    series: dict[str, tuple[list[int], list[float]]] = {}
    for prefix, path in paths:
        plugins: dict[str, str] = {}
        try:
            for data in events.read_records(path):
                event = event_pb2.Event.FromString(data)
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    x = _scalar(value, plugins)
                    if x is None:
                        continue
                    steps, values = series.setdefault(prefix + value.tag, ([], []))
                    if steps and event.step <= steps[-1]:  # resumed: the new points win
                        keep = int(np.searchsorted(steps, event.step))
                        del steps[keep:], values[keep:]
                    steps.append(int(event.step))
                    values.append(x)
        except (OSError, DecodeError) as e:
            log.warning("Skipped the rest of the event file %s: %s", path, e)
    if not series:
        names = ", ".join(os.path.relpath(p, workdir) for _, p in paths[:3])
        raise SamplingError(
            f"the event files in '{workdir}' ({names}) hold no scalars yet: training writes "
            "them every log_every steps"
        )
    return {
        tag: (np.asarray(s, np.int64), np.asarray(v, np.float64))
        for tag, (s, v) in sorted(series.items())
    }


def smooth(values, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: a debiased exponential moving average (weight in [0, 1)).

    Non-finite values are passed through and do not enter the average.
    """
    values = np.asarray(values, np.float64)
    if weight <= 0:
        return values.copy()
    out = np.empty_like(values)
    last, count = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            out[i] = v
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out[i] = last / (1 - weight**count)
    return out


def groups(scalars: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """The `GROUPS` that have data: (title, [(tag, legend label), ...])."""
    out = []
    for title, members in GROUPS:
        labels = dict(members)
        order = list(labels)
        found = []
        for tag in scalars:
            prefix, _, base = tag.rpartition("/")
            if base in labels and len(scalars[tag][0]):
                found.append((tag, labels[base] + (f" ({prefix})" if prefix else "")))
        if found:
            found.sort(key=lambda f: ("/" in f[0], order.index(f[0].rpartition("/")[2]), f[0]))
            out.append((title, found))
    return out


def _ada_target(workdir: str | None) -> float | None:
    if workdir is None:
        return 0.6
    try:
        with open(os.path.join(workdir, "config.json")) as f:
            return float(json.load(f).get("augment", {}).get("target", 0.6))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.6


def plot_curves(
    source,
    path: str,
    *,
    smoothing: float = 0.0,
    title: str | None = None,
    cols: int = 2,
    dpi: int = 100,
) -> list[str]:
    """Draws a run's curves as one PNG: a subplot per group of `GROUPS` that has data.

    Args:
      source: a workdir, or `read_scalars`' dict.
      path: the .png file (written atomically).
      smoothing: TensorBoard-style smoothing weight in [0, 1); above 0 the raw curve is drawn
        faint behind the smoothed one. Scores (FID, KID, ...) are never smoothed.
      title: the figure's title (default: the workdir's name and last step).
      cols: subplots per row.
      dpi: pixels per inch of the PNG (each subplot is about 5.5 x 3.2 inches).

    Returns:
      The titles of the subplots drawn.

    Raises:
      SamplingError: nothing to draw.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415 (Agg via savefig; no pyplot state)
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    if not 0 <= smoothing < 1:
        raise SamplingError(f"smoothing must be in [0, 1), got {smoothing}")
    workdir = source if isinstance(source, (str, os.PathLike)) else None
    scalars = read_scalars(os.fspath(workdir)) if workdir is not None else dict(source)
    chosen = groups(scalars)
    if not chosen:
        raise SamplingError(
            "none of the logged scalars is a loss, D output, score or augmentation p "
            f"(found: {', '.join(sorted(scalars)) or 'none'})"
        )
    cols = max(1, min(cols, len(chosen)))
    rows = -(-len(chosen) // cols)
    fig = Figure(figsize=(5.5 * cols, 3.2 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    last_step = max(int(s[-1]) for s, _ in scalars.values() if len(s))
    if title is None:
        name = os.path.basename(os.path.normpath(os.fspath(workdir))) if workdir else "run"
        title = f"{name}: training curves to step {last_step}"
    fig.suptitle(title)
    for ax, (group, members) in zip(axes, chosen):
        for i, (tag, label) in enumerate(members):
            steps, values = scalars[tag]
            color = f"C{i}"
            score = tag.rpartition("/")[2] in _SCORES
            marker = "o" if score or len(steps) <= 20 else None
            if smoothing > 0 and not score and len(steps) > 1:
                ax.plot(steps, values, color=color, alpha=0.25, linewidth=1)
                ax.plot(steps, smooth(values, smoothing), color=color, label=label, lw=1.5)
            else:
                ax.plot(steps, values, color=color, label=label, marker=marker, ms=3, lw=1.5)
        bases = {tag.rpartition("/")[2] for tag, _ in members}
        if group == "D outputs":
            ax.set_ylim(-0.02, 1.02)
        if group == "Augmentation":  # p in [0, 1], r_t in [-1, 1]
            ax.set_ylim(-1.05 if "ada_rt" in bases else -0.05, 1.05)
            if "ada_rt" in bases:
                target = _ada_target(workdir)
                ax.axhline(target, color="grey", ls="--", lw=1, label=f"ADA's target {target:g}")
        if group == "FID":
            values = np.concatenate([scalars[t][1] for t, _ in members])
            values = values[np.isfinite(values)]
            if len(values) and values.min() > 0 and values.max() / values.min() > 10:
                ax.set_yscale("log")
        ax.set_title(group)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return [group for group, _ in chosen]
