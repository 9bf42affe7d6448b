"""Train the default CNN on MNIST-1D, compress it by truncated SVD, fine-tune: what is lost?

Three runs of the real command line, each in its own Hydra run directory:

1. dense: the default job, `python -m frugal.train threads=1 test_on=last`;
2. compressed, before fine-tuning: `compress=svd compress.rank_ratio=R ckpt_path=<1>/last.ckpt
   trainer.max_steps=0` (zero training steps: the test pass scores the SVD-truncated weights);
3. compressed and fine-tuned: the same with `trainer.max_steps=N` (and `optimizer.lr=LR` if
   given) under a fresh budget.

The table (test accuracy, parameters, forward FLOPs per sample, energy and time of each run,
and the gap to the dense accuracy in points) is printed and written to
`benchmarks/results/compress_svd.md`. The issue's goal: the fine-tuned model stays within 2
points of the dense one.

    python benchmarks/compress_svd.py [--steps 1000] [--rank-ratio 0.5] [--lr 1e-3]
        [--out outputs/compress_svd] [--reuse-dense] [--dense-steps N]
        [--results benchmarks/results/compress_svd.md] [fine-tuning overrides...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOAL_POINTS = 2.0


def run(run_dir: Path, overrides: list[str], log: list[str]) -> dict[str, Any]:
    """One `python -m frugal.train` run; returns its result.json (and the command, logged)."""
    command = [
        sys.executable,
        "-m",
        "frugal.train",
        f"hydra.run.dir={run_dir}",
        "threads=1",
        "test_on=last",
        "trainer.enable_progress_bar=false",
        *overrides,
    ]
    shown = shlex.join(["python", *command[1:]]).replace(f"{REPO}/", "")
    log.append(shown)
    print(f"$ {shown}", flush=True)
    start_s = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall_s = time.perf_counter() - start_s
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"run failed (exit {done.returncode}): {shown}")
    result = json.loads((run_dir / "result.json").read_text())
    result["_wall_s"] = wall_s
    print(f"  {result['status']}, {result['steps']} steps, {wall_s:.0f} s", flush=True)
    return result


def optimizer(run_dir: Path) -> str:
    """The optimizer and LR schedule a run used, from the config Hydra saved with it."""
    import yaml

    cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    opt = cfg["optimizer"]
    options = ", ".join(f"{k}={v}" for k, v in opt.items() if not k.startswith("_"))
    schedule = cfg.get("scheduler")
    schedule = "constant LR" if not schedule else schedule["_target_"].rsplit(".", 1)[-1]
    return f"{opt['_target_'].rsplit('.', 1)[-1]}({options}), {schedule}"


def acc(result: dict[str, Any]) -> float:
    return 100.0 * float(result["metrics"]["test/acc"])


def energy(result: dict[str, Any]) -> str:
    joules = result["spent"].get("energy_j")
    if joules is None:
        return "-"
    label = "" if result["energy"]["measured"] else " (est.)"
    return f"{joules:,.0f} J{label}"


def seconds(result: dict[str, Any]) -> str:
    time_s = result["spent"].get("time_s")
    return "-" if time_s is None else f"{time_s:,.0f} s"


def table(rows: list[tuple[str, dict[str, Any]]], dense: dict[str, Any]) -> str:
    lines = [
        "| model | steps | test acc (%) | loss vs dense (points) | params | FLOPs/sample | "
        "train energy | train time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, result in rows:
        gap = acc(dense) - acc(result)
        model = result["model"]
        lines.append(
            f"| {label} | {result['steps']} | {acc(result):.1f} | "
            f"{'-' if result is dense else f'{gap:+.1f}'} | {model['params']:,} | "
            f"{model['flop_per_sample']['effective']:,} | {energy(result)} | {seconds(result)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="fine-tuning steps")
    parser.add_argument("--rank-ratio", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=None, help="fine-tuning LR (default: config)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "compress_svd")
    parser.add_argument("--reuse-dense", action="store_true", help="keep an existing dense run")
    parser.add_argument(
        "--dense-steps", type=int, default=None, help="dense run's max_steps (default: config)"
    )
    parser.add_argument(
        "--results", type=Path, default=REPO / "benchmarks" / "results" / "compress_svd.md"
    )
    parser.add_argument("overrides", nargs="*", help="extra overrides for the fine-tuning run")
    args = parser.parse_args()
    out = args.out.resolve()
    commands: list[str] = []

    dense_dir = out / "dense"
    if args.reuse_dense and (dense_dir / "result.json").is_file():
        dense = json.loads((dense_dir / "result.json").read_text())
        commands.append(f"(reused {dense_dir}: " + " ".join(dense["run"]["overrides"]) + ")")
    else:
        steps = [] if args.dense_steps is None else [f"trainer.max_steps={args.dense_steps}"]
        dense = run(dense_dir, steps, commands)
    ckpt = dense_dir / "checkpoints" / "last.ckpt"

    tag = f"r{args.rank_ratio:g}"
    compress = ["compress=svd", f"compress.rank_ratio={args.rank_ratio}", f"ckpt_path={ckpt}"]
    before = run(out / f"svd_{tag}_0", [*compress, "trainer.max_steps=0"], commands)
    tuning = [*compress, f"trainer.max_steps={args.steps}", *args.overrides]
    if args.lr is not None:
        tuning.append(f"optimizer.lr={args.lr:g}")
    lr_tag = f"_lr{args.lr:g}" if args.lr is not None else ""
    after_dir = out / f"svd_{tag}_{args.steps}{lr_tag}"
    after = run(after_dir, tuning, commands)

    gap = acc(dense) - acc(after)
    rows = [
        ("cnn (dense)", dense),
        (f"cnn + SVD r={args.rank_ratio:g}, before fine-tuning", before),
        (
            f"cnn + SVD r={args.rank_ratio:g}, fine-tuned{f' lr={args.lr:g}' if args.lr else ''}",
            after,
        ),
    ]
    verdict = "met" if gap <= GOAL_POINTS else "missed"
    params_frac = after["model"]["params"] / dense["model"]["params"]
    flop = [r["model"]["flop_per_sample"]["effective"] for r in (after, dense)]
    text = "\n".join(
        [
            "# SVD compression of the MNIST-1D CNN",
            "",
            table(rows, dense),
            "",
            f"Fine-tuned gap: {gap:+.1f} points; the goal (within {GOAL_POINTS:g} points of the "
            f"dense accuracy) is {verdict}. "
            f"Params {params_frac:.0%} and FLOPs/sample {flop[0] / flop[1]:.0%} of the dense "
            "model's.",
            "",
            f"Energy: `{dense['energy']['method']}` "
            f"({'measured' if dense['energy']['measured'] else 'estimated'}). "
            f"Machine: {os.cpu_count()} cores, torch threads=1, seed {dense['seed']}. "
            f"Optimizer: dense {optimizer(dense_dir)}; fine-tuning {optimizer(after_dir)}.",
            "",
            "Reproduce: `python "
            + shlex.join(["benchmarks/compress_svd.py", *sys.argv[1:]])
            + "`, which runs (from the repository root):",
            "",
            "```",
            *commands,
            "```",
            "",
        ]
    )
    print("\n" + text)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)


if __name__ == "__main__":
    main()
