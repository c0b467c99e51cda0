"""Scores of an image-to-image model on held-out pairs, each beside the task's baseline.

  result = evaluate_pairs(pairs, translate_batch, task=task, extractor=inception)

`pairs` are a split's degraded examples (`gan_jax.input.paired.load_split`): model inputs,
targets and (inpainting) masks, float32 in [-1, 1]. `translate_batch` maps a batch of inputs
to outputs. Every method's output is scored the same way, on 8-bit images (rounded, as the
PNG files a user would get):

* all tasks: PSNR and SSIM on RGB and on the BT.601 luma (Y), with the SR factor cropped from
  each border (BasicSR's protocol; 0 for same-size tasks), and mean L1;
* ``sr``: bicubic and Lanczos upsampling of the 8-bit input;
* ``inpaint``: the known pixels are kept (outputs composited into the input), then L1 and
  PSNR inside the hole by hole-area bucket; OpenCV's Telea and Navier-Stokes fills;
* ``colorize``: the input itself (grey, no colour); ``denoise``: the noisy input;
* ``edges``: edge F1 (Sobel threshold, 1 px tolerance) between the output's edges and the
  target's, beside the input edge map's own F1 against them;
* KID (and FID) of each method's outputs against the targets with the FID Inception network
  (`extractor`), when one is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gan_jax.evaluation import image_metrics as im
from gan_jax.evaluation import metrics as metrics_lib
from gan_jax.images import to_uint8
from gan_jax.input import tasks
from gan_jax.objectives.pix2pix import display

KID_SUBSETS = 100


def baselines(task: tasks.Task | None, pairs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The task's classical answers, uint8 [N, H, W, C] by name (CycleGAN: the input)."""
    source = pairs["input"]
    if task is None:
        return {"input": to_uint8(source)}
    channels = pairs["target"].shape[-1]
    small = to_uint8(source)
    if task.kind == "sr":
        return {k: im.upsample(small, task.factor, k) for k in im.UPSAMPLE_KERNELS}
    if task.kind == "inpaint":
        masked = to_uint8(source[..., :-1])
        out = {}
        try:
            for method in im.INPAINT_METHODS:
                out[method] = im.inpaint_opencv(masked, pairs["mask"], method)
        except ImportError:
            pass  # no OpenCV: the model is scored alone (the report says so)
        return out
    if task.kind in ("colorize", "denoise"):
        return {"input": to_uint8(display(source, task, channels))}
    return {}


def _scores(outputs: np.ndarray, target: np.ndarray, crop: int) -> dict[str, float]:
    t = to_uint8(target)
    diff = np.abs(outputs.astype(np.float64) - t.astype(np.float64)) / 255.0
    return {
        "psnr": im.psnr(outputs, t, crop_border=crop).mean,
        "ssim": im.ssim(outputs, t, crop_border=crop).mean,
        "psnr_y": im.psnr(outputs, t, crop_border=crop, y_channel=True).mean,
        "ssim_y": im.ssim(outputs, t, crop_border=crop, y_channel=True).mean,
        "l1": float(diff.mean()),
    }


def _hole_scores(outputs, target, mask) -> dict[str, Any]:
    hole = im.masked_l1_psnr(outputs, to_uint8(target), mask)
    buckets = im.area_buckets(hole.hole_fraction)
    l1 = im.by_bucket(hole.l1, buckets)
    ps = im.by_bucket(hole.psnr, buckets)
    return {
        "hole_l1": hole.mean_l1,
        "hole_psnr": hole.mean_psnr,
        "by_bucket": {
            str(b): {"count": l1[b].count, "hole_l1": l1[b].mean, "hole_psnr": ps[b].mean}
            for b in l1
        },
    }


def _edge_f1(outputs, target) -> float:
    return im.edge_f1(im.edges_of(outputs), im.edges_of(to_uint8(target))).mean


def _finite(x):
    return None if x is None or not math.isfinite(x) else float(x)


def evaluate_pairs(
    pairs: dict[str, np.ndarray],
    translate_batch: Callable[[np.ndarray], np.ndarray],
    *,
    task: tasks.Task,
    batch_size: int = 64,
    extractor=None,
) -> dict[str, Any]:
    """Scores `translate_batch` (float inputs -> float outputs in [-1, 1]) on `pairs`.

    Returns:
      {'num_examples', 'task', 'crop_border', 'methods': {'model': scores, baseline: scores,
      ...}, 'protocol': ...}; scores hold psnr, ssim, psnr_y, ssim_y, l1, plus hole scores
      (inpaint), edge_f1 (edges), kid/kid_std/fid (with an extractor).
    """
    source, target = pairs["input"], pairs.get("target")
    n = len(source)
    outs = []
    for i in range(0, n, batch_size):
        outs.append(np.asarray(translate_batch(source[i : i + batch_size]), np.float32))
    model = np.concatenate(outs)
    if task is not None and task.kind == "inpaint":  # known pixels kept, as translate.py does
        hole = pairs["mask"]
        model = target * (1 - hole) + model * hole
    methods = {"model": to_uint8(model), **baselines(task, pairs)}
    kind = task.kind if task is not None else "cyclegan"
    crop = task.factor if kind == "sr" else 0
    name = str(task) if task is not None else "A -> B (CycleGAN)"
    result: dict[str, Any] = {"num_examples": n, "task": name, "crop_border": crop}
    scored = {}
    for method, images in methods.items():
        s = _scores(images, target, crop) if target is not None else {}
        if kind == "inpaint":
            s.update(_hole_scores(images, target, pairs["mask"]))
        if kind == "edges":
            s["edge_f1"] = _edge_f1(images, target)
        scored[method] = s
    if kind == "edges":  # how well the input's own edges match: the model's ceiling
        scored["input_edges"] = {
            "edge_f1": im.edge_f1(source[..., 0] > 0, im.edges_of(to_uint8(target))).mean
        }
    if extractor is not None:
        # Against the targets; for CycleGAN, against held-out images of domain B.
        reference = pairs["domain_b"] if kind == "cyclegan" else to_uint8(target)
        real = extractor.features(reference, batch_size=batch_size)
        result["kid_reference"] = "domain B (held out)" if kind == "cyclegan" else "targets"
        for name, images in methods.items():
            fake = extractor.features(images, batch_size=batch_size)
            # Subsets of half the images (at most 1000, KID's usual size): a spread to report.
            kid, kid_std = metrics_lib.kernel_inception_distance(
                real, fake, num_subsets=KID_SUBSETS, subset_size=min(1000, max(2, n // 2))
            )
            scored[name]["kid"], scored[name]["kid_std"] = _finite(kid), _finite(kid_std)
            scored[name]["fid"] = _finite(metrics_lib.fid_from_features(real, fake))
        result["feature_protocol"] = extractor.protocol()
    result["methods"] = scored
    return result


def format_result(result: dict[str, Any]) -> str:
    """A table: one row per method (the model first), one column per score."""
    methods = result["methods"]
    columns = []
    for s in methods.values():
        for k, v in s.items():
            if k != "by_bucket" and k not in columns and isinstance(v, (int, float)):
                columns.append(k)
    widths = {c: max(8, len(c) + 1) for c in columns}
    lines = [
        f"{result['task']} on {result['num_examples']} test images (border crop "
        f"{result['crop_border']} px; 8-bit outputs)",
        f"{'method':<12}" + "".join(f"{c:>{widths[c]}}" for c in columns),
    ]
    for name, s in methods.items():
        cells = []
        for c in columns:
            v = s.get(c)
            if v is None:
                cells.append(f"{'-':>{widths[c]}}")
            elif c.startswith("psnr") or c == "hole_psnr" or c == "fid":
                cells.append(f"{v:>{widths[c]}.2f}")
            else:
                cells.append(f"{v:>{widths[c]}.4f}")
        lines.append(f"{name:<12}" + "".join(cells))
    if any("by_bucket" in s for s in methods.values()):
        lines.append("hole PSNR (dB) by hole area:")
        for name, s in methods.items():
            if "by_bucket" in s:
                parts = [
                    f"{b} {v['hole_psnr']:.2f} (n={v['count']})" for b, v in s["by_bucket"].items()
                ]
                lines.append(f"  {name:<10} " + ", ".join(parts))
    return "\n".join(lines)
