"""Two CPU ranks (gloo) under energy and time budgets, and SIGTERM to a random rank at a random
moment then resume: counts hangs, agreement and budgets kept. Each trial is a fresh
`frugal-train` process pair.

    python benchmarks/ddp_trials.py --trials 10          # energy, time and signal trials
    python benchmarks/ddp_trials.py --trials 3 --kinds signal
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "logger=none",
    "threads=1",
    "trainer=ddp",
    "trainer.devices=2",
    "trainer.max_steps=100000",
]
HANG_S = 120  # a trial still running after this is a hang


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "frugal.train", f"hydra.run.dir={run_dir}", *TINY, *overrides]


def result_of(run_dir: Path) -> dict:
    path = run_dir / "result.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def poll_allowance(result: dict) -> float | None:
    spent, energy = result.get("spent", {}), result.get("energy", {})
    poll_s, time_s = energy.get("poll_interval_s"), spent.get("time_s")
    if not poll_s or not time_s or spent.get("energy_j") is None:
        return 0.0
    return poll_s * spent["energy_j"] / time_s


def budget_trial(run_dir: Path, budget: str) -> dict:
    started = time.monotonic()
    try:
        done = subprocess.run(
            command(run_dir, budget), capture_output=True, text=True, timeout=HANG_S
        )
    except subprocess.TimeoutExpired:
        return {"budget": budget, "hang": True}
    result = result_of(run_dir)
    key, limit = budget.split("=")[0].split(".")[1], budget.split("=")[1]
    spent_key = {"energy": "energy_j", "time": "time_s"}[key]
    return {
        "budget": budget,
        "hang": False,
        "exit": done.returncode,
        "status": result.get("status"),
        "stopped_by": result.get("stopped_by"),
        "steps": result.get("steps"),
        "spent": result.get("spent", {}).get(spent_key),
        "limit": float(limit.rstrip("Js")),
        # both ranks booked the same step: samples = 2 ranks × 32 × steps
        "ranks_agree": result.get("spent", {}).get("data_samples") == 64 * result.get("steps", -1),
        # a polled meter's contract: ≤ limit + one polling interval's energy (at the run's mean
        # power); None for time
        "poll_allowance": poll_allowance(result) if key == "energy" else 0.0,
        "wall_s": round(time.monotonic() - started, 1),
    }


def signal_trial(run_dir: Path, rng: random.Random) -> dict:
    budget = "budget.data=60000"
    proc = subprocess.Popen(
        command(run_dir, budget), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rank = rng.choice([0, 1])
    out: dict = {"rank": rank}
    try:
        deadline = time.monotonic() + HANG_S
        other = None
        while other is None or not (run_dir / "ledger.json").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                out["error"] = "training never started"
                return out
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if "train_ddp_process_1" in " ".join(child.cmdline()):
                        other = child
                except psutil.Error:  # a short-lived helper process that already ended
                    continue
            time.sleep(0.05)
        delay = rng.uniform(0.0, 3.0)
        time.sleep(delay)
        out["delay_s"] = round(delay, 2)
        os.kill(proc.pid if rank == 0 else other.pid, signal.SIGTERM)
        sent = time.monotonic()
        try:
            out["exit"] = proc.wait(timeout=HANG_S)
            other.wait(timeout=30)
            out["hang"] = False
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            out["hang"] = True
            return out
        out["stop_s"] = round(time.monotonic() - sent, 1)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = result_of(run_dir)
    out.update(status=killed.get("status"), steps=killed.get("steps"))
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        resumed = subprocess.run(
            command(run_dir, budget, f"ckpt_path={last}"),
            capture_output=True,
            text=True,
            timeout=HANG_S,
        )
    except subprocess.TimeoutExpired:
        out["resume_hang"] = True
        return out
    final = result_of(run_dir)
    out.update(
        resume_exit=resumed.returncode,
        resume_status=final.get("status"),
        resume_samples=final.get("spent", {}).get("data_samples"),
        within_budget=(final.get("spent", {}).get("data_samples") or 1e99) <= 60000,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kinds", default="energy,time,signal")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = args.kinds.split(",")
    rows: dict[str, list[dict]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.trials):
            for kind in kinds:
                run_dir = Path(tmp) / f"{kind}_{i}"
                if kind == "energy":
                    row = budget_trial(run_dir, f"budget.energy={rng.uniform(15, 40):.2f}J")
                elif kind == "time":
                    row = budget_trial(run_dir, f"budget.time={rng.uniform(2, 6):.2f}s")
                else:
                    row = signal_trial(run_dir, rng)
                rows[kind].append(row)
                print(kind, i, row, flush=True)
    lines = [f"command: python benchmarks/ddp_trials.py {' '.join(sys.argv[1:])}"]
    for kind, trials in rows.items():
        hangs = sum(bool(t.get("hang") or t.get("resume_hang")) for t in trials)
        if kind == "signal":
            ok = sum(
                t.get("exit") == 143
                and t.get("status") == "interrupted"
                and t.get("within_budget")
                and t.get("resume_exit") == 0
                for t in trials
            )
            slow = max((t.get("stop_s", 0) for t in trials), default=0)
            lines.append(
                f"signal: {len(trials)} trials, {hangs} hangs, {ok} exited 143 as interrupted "
                f"and resumed within the budget; slowest stop {slow} s"
            )
        else:
            within = sum((t.get("spent") or 1e99) <= t.get("limit", 0) for t in trials)
            polled = sum(
                (t.get("spent") or 1e99) <= t.get("limit", 0) + (t.get("poll_allowance") or 0)
                for t in trials
            )
            agree = sum(bool(t.get("ranks_agree")) for t in trials)
            lines.append(
                f"{kind}: {len(trials)} trials, {hangs} hangs, {within} spent ≤ limit, "
                f"{polled} ≤ limit + one polling interval, {agree} with both ranks on the same step"
            )
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    name = f"ddp_trials{'_' + args.tag if args.tag else ''}"
    (RESULTS / f"{name}.txt").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
