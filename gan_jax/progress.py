"""The training loop's live progress bar: one self-updating console line with rate and ETA.

    step 1200/5000 [####......] 24% | 18.3 img/s | 0.57 s/step | ETA 36m12s | d 0.693 g 1.004

Shown by process 0 when stderr (where absl's log lines go) is a terminal, or when asked for
(`train.py --progress=on`); otherwise the loop prints only its periodic log lines, as logs and
cluster jobs want. The line is redrawn with a carriage return at most `min_interval` apart,
and erased before any log line prints (`ClearBeforeLog`), so log lines scroll above it.

The rate is host wall time between steps, so the bar adds no device synchronisation: the
loop already waits for the step before last. The first `skip` steps of a process (compiling)
are left out; a resumed run counts from its resume step. The ETA divides the steps left by
the rate of the last `eta_window` steps (periodic checkpoints and samples included); s/step
and img/s show the last `recent_window` steps.

A leaf module: the standard library only.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import sys
import threading
import time
from typing import TextIO

MODES = ("auto", "on", "off")


def format_duration(seconds: float) -> str:
    """'3m20s' under an hour, '1h02m' from an hour on (negative counts as 0)."""
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def eta_seconds(steps_done: int, elapsed: float, remaining: int) -> float | None:
    """Seconds left when `steps_done` steps took `elapsed` seconds; None before any step."""
    if steps_done <= 0 or elapsed <= 0:
        return None
    return remaining * elapsed / steps_done


def wanted(mode: str, stream: TextIO | None = None) -> bool:
    """Whether to show the bar: 'on', 'off', or 'auto' (a terminal that is not TERM=dumb)."""
    if mode not in MODES:
        raise ValueError(f"progress mode '{mode}' is unknown; choose one of {', '.join(MODES)}")
    if mode != "auto":
        return mode == "on"
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return bool(tty) and os.environ.get("TERM", "") != "dumb"


class StepRate:
    """Seconds per step from host wall time, leaving out each process's first `skip` steps.

    `add(step, now)` once per step, with the step count after it and `time.perf_counter()`.
    """

    def __init__(self, start_step: int, skip: int = 1, eta_window: int = 1000):
        self.start_step = int(start_step)
        self.skip = max(int(skip), 0)
        self._samples: collections.deque[tuple[int, float]] = collections.deque(
            maxlen=max(int(eta_window), 1) + 1
        )

    def add(self, step: int, now: float) -> None:
        if step - self.start_step >= self.skip:  # the end of the compile step is the anchor
            self._samples.append((int(step), float(now)))

    def seconds_per_step(self, last: int | None = None) -> float | None:
        """Over the last `last` steps measured (default: the whole window); None before two."""
        samples = self._samples
        if len(samples) < 2:
            return None
        first = samples[0] if last is None else samples[max(0, len(samples) - 1 - last)]
        step, now = samples[-1]
        if step <= first[0] or now <= first[1]:
            return None
        return (now - first[1]) / (step - first[0])

    def eta(self, step: int, total: int) -> float | None:
        seconds = self.seconds_per_step()
        return None if seconds is None else max(total - step, 0) * seconds


def format_line(
    step: int,
    total: int,
    *,
    seconds_per_step: float | None,
    eta: float | None,
    batch_size: int,
    losses: tuple[float, float] | None = None,
    width: int = 120,
    bar_width: int = 20,
) -> str:
    """The bar's text, at most `width - 1` characters.

    Too narrow a console drops parts in this order: s/step, bar cells (down to 10), img/s,
    losses; what still does not fit is cut.
    """
    total = max(int(total), 1)
    frac = min(max(step / total, 0.0), 1.0)
    digits = len(str(total))
    rate = "-- img/s" if not seconds_per_step else f"{batch_size / seconds_per_step:.1f} img/s"
    per = "-- s/step" if not seconds_per_step else f"{seconds_per_step:.3g} s/step"
    parts = {
        "img/s": rate,
        "s/step": per,
        "eta": "ETA " + ("--" if eta is None else format_duration(eta)),
        "losses": "" if losses is None else f"d {losses[0]:.3f} g {losses[1]:.3f}",
    }

    def render(cells: int, keep: list[str]) -> str:
        filled = int(frac * cells)
        head = f"step {step:>{digits}d}/{total} [{'#' * filled}{'.' * (cells - filled)}]"
        fields = [f"{head} {int(frac * 100):3d}%"]  # 100% only when done
        fields += [parts[k] for k in ("img/s", "s/step", "eta", "losses") if k in keep]
        return " | ".join(f for f in fields if f)

    limit = max(int(width) - 1, 10)
    keep = ["img/s", "s/step", "eta", "losses"]
    cells = bar_width
    line = render(cells, keep)
    for drop in ("s/step", "cells", "img/s", "losses"):
        if len(line) <= limit:
            break
        if drop == "cells":
            cells = max(10, bar_width - (len(line) - limit))
        else:
            keep.remove(drop)
        line = render(cells, keep)
    return line[:limit]


def _columns(stream: TextIO) -> int:
    """The console's width; $COLUMNS or 80 for a pipe or a terminal that reports 0."""
    if not os.environ.get("COLUMNS"):
        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        if columns > 0:
            return columns
    return shutil.get_terminal_size().columns


class ProgressBar:
    """A console line redrawn in place (`\\r`), erased before log lines (see `ClearBeforeLog`).

    Args:
      total: the run's last step.
      start_step: the step this process starts from (the resume step).
      batch_size: images per step, for img/s.
      stream: where to draw (default: sys.stderr, where absl logs).
      min_interval: seconds between redraws (a redraw right after a log line is immediate).
      skip: first steps left out of the rate (compiling).
    """

    def __init__(
        self,
        total: int,
        start_step: int,
        batch_size: int,
        *,
        stream: TextIO | None = None,
        min_interval: float = 0.25,
        skip: int = 1,
        recent_window: int = 50,
        eta_window: int = 1000,
    ):
        self.total = int(total)
        self.batch_size = int(batch_size)
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = float(min_interval)
        self.recent_window = int(recent_window)
        self.rate = StepRate(start_step, skip=skip, eta_window=eta_window)
        self.losses: tuple[float, float] | None = None
        self._lock = threading.RLock()
        self._shown = 0  # characters on screen, 0 when erased
        self._last_draw = -float("inf")
        self._closed = False

    def line(self, step: int) -> str:
        return format_line(
            step,
            self.total,
            seconds_per_step=self.rate.seconds_per_step(self.recent_window),
            eta=self.rate.eta(step, self.total),
            batch_size=self.batch_size,
            losses=self.losses,
            width=_columns(self.stream),
        )

    def update(self, step: int, now: float | None = None, *, force: bool = False) -> None:
        """Records that `step` steps are done at `now` (perf_counter) and redraws if due."""
        now = time.perf_counter() if now is None else now
        self.rate.add(step, now)
        if self._closed:
            return
        due = force or not self._shown or now - self._last_draw >= self.min_interval
        if not due:
            return
        with self._lock:
            text = self.line(step)
            pad = " " * max(self._shown - len(text), 0)
            self._write("\r" + text + pad)
            self._shown = len(text)
            self._last_draw = now

    def clear(self) -> None:
        """Erases the line, so that what prints next starts on a clean line."""
        with self._lock:
            if self._shown:
                self._write("\r" + " " * self._shown + "\r")
                self._shown = 0

    def close(self) -> None:
        """Ends the bar: a line still shown is kept, with a newline after it."""
        with self._lock:
            if self._shown and not self._closed:
                self._write("\n")
            self._shown = 0
            self._closed = True

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken console: stop drawing
            self._closed = True


class ClearBeforeLog(logging.Filter):
    """A handler filter that erases the bar before each record the handler prints.

    Add it last to the handler (after filters that drop records), so that only records that
    print erase the bar; the loop redraws it at its next step.
    """

    def __init__(self, bar: ProgressBar):
        super().__init__()
        self.bar = bar

    def filter(self, record: logging.LogRecord) -> bool:
        self.bar.clear()
        return True
