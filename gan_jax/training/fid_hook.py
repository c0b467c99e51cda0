"""FID during training, and the best-FID checkpoint kept apart from the rolling ones.

GAN runs often get worse late in training (mode collapse), so the latest checkpoint is not
the one to keep: every ``config.eval.fid_every`` steps `FidHook` samples
``config.eval.num_samples`` images (EMA weights when kept, fixed latents), scores them
against as many images of the training set (reference statistics cached, see
`gan_jax.evaluation.reference`), logs ``fid``, ``kid``, ``precision`` and ``recall`` to
TensorBoard, and when the FID is the lowest so far saves the GANState into
``workdir/checkpoints_best`` (an orbax CheckpointManager keeping one step) and records the
step and score in ``workdir/checkpoints_best/best.json``. A resumed run reads best.json, so
only a better FID replaces the kept checkpoint. ``sample.py --step=best`` loads it.

In a multi-process run every process computes the score (the saves are collective) and
process 0's value decides; only process 0 writes files and logs.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from gan_jax import config_lib, files, objectives
from gan_jax.objectives import latents as latents_lib
from gan_jax.training import state as state_lib

BEST_DIR = "checkpoints_best"  # gan_jax.sampling.BEST_DIR looks here
BEST_FILE = "best.json"
LATENT_SEED = 0x0F1D  # fixed: successive evaluations score the same latents
# Beyond what the exact SVD form covers cheaply (see metrics.fid_method_for): the same trace
# as pytorch-fid's sqrtm to ~1e-9 relative, ~8x faster.
FID_METHOD = "eigh"


def _fid_method(reference, num_fake: int) -> str:
    """The exact SVD form when the reference keeps its features and the sets are small enough
    (`metrics.fid_method_for`), else `FID_METHOD`."""
    from gan_jax.evaluation import metrics  # noqa: PLC0415

    features, mu = getattr(reference, "features", None), getattr(reference, "mu", None)
    if features is None or mu is None:
        return FID_METHOD
    return metrics.fid_method_for("auto", len(features), num_fake, len(mu), FID_METHOD)


class FidHook:
    """Scores the generator every `fid_every` steps and keeps the best-FID checkpoint.

    Use `FidHook.create`, which returns None when FID is off (``config.eval.fid_every == 0``).
    Call the hook with every step; it acts on multiples of `fid_every` and the last step.
    """

    @classmethod
    def create(cls, config, workdir: str, *, writer=None, is_chief: bool = True):
        """A hook for `config`, or None when `config.eval.fid_every` is 0 or absent.

        Raises:
          ConfigError: FID is on but the Inception weights are missing (names the key).
        """
        eval_config = config.get("eval")
        if eval_config is None or not eval_config.get("fid_every", 0):
            return None
        return cls(config, workdir, writer=writer, is_chief=is_chief)

    def __init__(self, config, workdir: str, *, writer=None, is_chief: bool = True):
        from gan_jax.evaluation import inception, weights  # noqa: PLC0415

        self.config = config
        self.objective = objectives.build(config)
        self._sampling_variables = state_lib.sampling_variables_fn(config, self.objective)
        objective = self.objective

        # Compiled once for the run, not at every evaluation.
        @jax.jit
        def apply(variables, z, labels):
            x = objective.run_G(variables, z, labels, train=False)[0]
            return jnp.clip(jnp.round((x + 1.0) * 127.5), 0, 255).astype(jnp.uint8)

        self._apply = apply
        self.every = int(config.eval.fid_every)
        self.num_samples = int(config.eval.num_samples)
        self.batch_size = int(config.eval.batch_size)
        self.writer = writer
        self.is_chief = is_chief
        try:  # At start-up: missing weights end the run before any training, not at step N.
            self.extractor = inception.InceptionFeatures(
                config.eval.get("inception_weights") or None,
                preprocessing=config.eval.preprocessing,
            )
        except weights.WeightsError as e:
            raise config_lib.ConfigError(
                f"config.eval.fid_every: FID during training needs the Inception weights "
                f"(or set it to 0). {e}"
            ) from None
        self.directory = os.path.join(os.path.abspath(workdir), BEST_DIR)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, enable_async_checkpointing=False
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.best = self._read_best()
        self._reference = None

    # ----------------------------------------------------------------------------------------

    def _read_best(self) -> dict | None:
        path = os.path.join(self.directory, BEST_FILE)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            best = json.load(f)
        if best.get("step") not in self.manager.all_steps():
            logging.warning(
                "%s names step %s, which %s does not hold; the next FID starts a new best",
                path,
                best.get("step"),
                self.directory,
            )
            return {"history": best.get("history", [])}
        logging.info("Best FID so far: %.4f at step %d (%s)", best["fid"], best["step"], path)
        return best

    def _write_best(self, record: dict) -> None:
        path = os.path.join(self.directory, BEST_FILE)
        files.write_json(path, record)  # atomic: a kill never leaves half a pointer

    @property
    def best_fid(self) -> float | None:
        return None if self.best is None else self.best.get("fid")

    def should_run(self, step: int, total: int) -> bool:
        return step % self.every == 0 or step == total

    def __call__(self, step: int, state, *, total: int = 0, writer=None) -> dict | None:
        """Evaluates at multiples of `fid_every` (and at `total`); returns the result or None.

        Args:
          step: the step just done.
          state: the GANState after it.
          total: the run's last step (always evaluated).
          writer: an `events.EventWriter` for the scalars (default: the one given at creation).
        """
        if not self.should_run(step, total):
            return None
        if writer is not None:
            self.writer = writer
        return self.evaluate(step, state)

    def evaluate(self, step: int, state) -> dict:
        """Scores `state`'s generator now; saves it as the best when its FID is the lowest."""
        from gan_jax.evaluation import reference, scoring  # noqa: PLC0415

        t0 = time.perf_counter()
        if self._reference is None:
            self._reference = reference.reference_stats(
                self.config,
                self.extractor,
                num_samples=self.num_samples,
                batch_size=self.batch_size,
                write_cache=self.is_chief,
            )
        result = scoring.evaluate_generator(
            self._generate_fn(state),
            self.extractor,
            config=self.config,
            num_samples=self.num_samples,
            batch_size=self.batch_size,
            seed=LATENT_SEED,
            reference=self._reference,
            fid_method=_fid_method(self._reference, self.num_samples),
            fake={"step": int(step), "checkpoint": "training", "ema": bool(state.ema_params)},
        )
        fid = float(result["fid"])
        if jax.process_count() > 1:  # one decision for all processes: process 0's number
            from jax.experimental import multihost_utils  # noqa: PLC0415

            fid = float(multihost_utils.broadcast_one_to_all(np.float64(fid)))
            result["fid"] = fid
        improved = math.isfinite(fid) and (self.best_fid is None or fid < self.best_fid)
        entry = {k: result.get(k) for k in ("fid", "kid", "kid_std", "precision", "recall", "is")}
        history = (self.best or {}).get("history", []) + [dict(entry, step=int(step))]
        if improved:
            self._save_checkpoint(step, state)
            self.best = dict(entry, step=int(step), protocol=result["protocol"])
        self.best = dict(self.best or {}, history=history)
        if self.is_chief:  # after the checkpoint is complete: never points at a partial one
            self._write_best(self.best)
        scalars = scoring.scalars(result)
        scalars["fid_best"] = self.best_fid if self.best_fid is not None else fid
        if self.is_chief and self.writer is not None:
            self.writer.write_scalars(step, scalars)
        logging.info(
            "Step %d: FID %.4f (%d fakes vs %d reals, %s), best %.4f at step %s; %.1f s%s",
            step,
            fid,
            result["protocol"]["num_fake"],
            result["protocol"]["num_real"],
            result["protocol"]["preprocessing"],
            scalars["fid_best"],
            self.best.get("step", step),
            time.perf_counter() - t0,
            " (new best, saved)" if improved else "",
        )
        return result

    def _generate_fn(self, state):
        """(num, seed) -> uint8 batches from `state`'s generator (EMA weights when kept)."""
        variables = jax.device_get(self._sampling_variables(state))
        variables = jax.device_put(variables, jax.devices()[0])
        objective = self.objective
        classes = objective.num_classes
        apply = self._apply

        def generate(num, seed):
            for lo in range(0, num, self.batch_size):
                b = min(self.batch_size, num - lo)
                z = latents_lib.latents(objective.z_dim, self.batch_size, seed=seed, start=lo)
                # Conditional: every class in turn, as sampling does with no label given.
                labels = (np.arange(lo, lo + self.batch_size) % max(classes, 1)).astype(np.int32)
                yield np.asarray(apply(variables, z, labels))[:b]

        return generate

    def _save_checkpoint(self, step: int, state) -> None:
        # A lower step than the kept one (a resume from an earlier rolling checkpoint): drop
        # the kept one first, since the manager keeps the highest step.
        for kept in self.manager.all_steps():
            if kept >= step:
                self.manager.delete(kept)
        self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
