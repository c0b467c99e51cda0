r"""Runs a training command for a fixed CPU-time budget, then stops it with SIGTERM (which saves).

Equal-budget comparisons on a shared machine: wall-clock time counts whatever else runs beside
the job, CPU time (user + system of the process and its children) counts only the job's own
work. 40 minutes of both cores of the 2-core CPU is `--cpu_minutes=80`:

  python bench/budget.py --cpu_minutes=80 --log=runs/sngan_cifar.log -- \
      python train.py --config=configs/sngan.py:cifar10 --workdir=runs/sngan_cifar ...

Prints one line per minute (CPU minutes used, wall minutes, the share of the machine the job
had), and at the end a JSON line with both times, so a README row can state its budget.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import psutil


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system seconds of `proc` and its live descendants (and their reaped children)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu_minutes", type=float, required=True)
    parser.add_argument("--log", default=None, help="file for the command's stdout and stderr")
    parser.add_argument(
        "--grace_s", type=float, default=600, help="wait for the save after SIGTERM"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    if args.cpu_minutes <= 0:
        parser.error("--cpu_minutes must be > 0")

    out = open(args.log, "ab") if args.log else None  # noqa: SIM115 (held for the run)
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT if out else None)
    proc = psutil.Process(child.pid)
    budget = args.cpu_minutes * 60.0
    used, stopped, last_report = 0.0, False, start
    while child.poll() is None:
        time.sleep(2.0)
        used = max(used, cpu_seconds(proc))
        now = time.monotonic()
        if now - last_report >= 60:
            last_report = now
            wall = now - start
            print(
                f"budget: {used / 60:.1f} / {args.cpu_minutes:g} CPU min, {wall / 60:.1f} wall "
                f"min ({used / max(wall, 1e-9):.2f} cores)",
                flush=True,
            )
        if not stopped and used >= budget:
            stopped = True
            stop_wall = now - start
            print(f"budget: spent after {stop_wall / 60:.1f} wall min; SIGTERM", flush=True)
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=args.grace_s)
            except subprocess.TimeoutExpired:
                child.kill()
    wall = time.monotonic() - start
    print(
        json.dumps(
            {
                "cpu_minutes": round(used / 60, 2),
                "wall_minutes": round(wall / 60, 2),
                "stopped_by_budget": stopped,
                "returncode": child.returncode,
                "command": command,
                "cpus": os.cpu_count(),
            }
        ),
        flush=True,
    )
    return 0 if stopped or child.returncode == 0 else int(child.returncode or 1)


if __name__ == "__main__":
    sys.exit(main())
