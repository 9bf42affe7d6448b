"""What enforcing a budget costs: `frugal-train` with every budget set (none binding) against
the same job in plain Lightning with no frugal callbacks.

The frugal side is the default job (MNIST-1D, the CNN, AdamW, 6,000 steps, validation every 5
epochs, best + last checkpoints, CSV logger, LR monitor, test on the best checkpoint) with
`budget.energy=1MJ budget.compute=1PFLOP budget.data=1G budget.time=10h budget.memory=64GB
budget.params=10M`: every budget is planned, booked and checked, none stops the run. The plain
side (`--plain`, this file run as its own process) builds the same data, model, optimizer,
Trainer settings, checkpoints, logger and test from frugal's own functions and `conf/` files,
but no BudgetCallback, energy meter, curve recorder, progress callback, Hydra or result.json.

Pairs of fresh processes alternate (plain first in even pairs, frugal first in odd ones), each
timed from launch to exit. Training time is the time from Lightning's `on_fit_start` to
`on_fit_end`, taken by the same small callback (`FitTimer`, below) in both; on the frugal side
it is added through `+callbacks.fit_timer`. Prints per-pair lines and medians, and writes a log
to benchmarks/results/enforcement_overhead[_TAG].txt.

    python benchmarks/enforcement_overhead.py [--pairs 3] [--steps N] [--tag busy]
        [-- extra frugal-train overrides]

Run it on a quiet machine: the ratio is of two timings that each move with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONF = ROOT / "conf"
RESULTS = HERE / "results"
BUDGETS = [
    "budget.energy=1MJ",
    "budget.compute=1PFLOP",
    "budget.data=1G",
    "budget.time=10h",
    "budget.memory=64GB",
    "budget.params=10M",
]


class FitTimer(L.Callback):
    """Writes the seconds from `on_fit_start` to `on_fit_end` to `path` (JSON)."""

    def __init__(self, path: str):
        self.path = path
        self._start_s = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_s = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fit_s = time.perf_counter() - self._start_s
        Path(self.path).write_text(json.dumps({"fit_s": fit_s, "steps": trainer.global_step}))


# ---- the plain side --------------------------------------------------------------------------
def plain_job(out_dir: Path, max_steps: int | None = None) -> None:
    """The default job in plain Lightning: frugal's data source, model builder and module, the
    Trainer, checkpoint, LR-monitor and CSV-logger settings of `conf/`, no frugal callbacks."""
    from functools import partial

    import torch
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from omegaconf import OmegaConf

    from frugal.data.arrays import ArrayDataModule
    from frugal.data.sources import mnist1d
    from frugal.models.registry import build_model
    from frugal.module import FrugalModule

    def conf(name: str) -> dict[str, Any]:
        return OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))

    top, data_cfg, model_cfg = conf("train"), conf("data/mnist1d"), conf("model/cnn")
    optim_cfg, trainer_cfg, callbacks_cfg = (
        conf("optimizer/adamw"),
        conf("trainer/cpu"),
        conf("callbacks/default"),
    )
    torch.set_num_threads(int(top["threads"]))
    L.seed_everything(top["seed"], workers=True, verbose=False)
    cache_dir = os.environ.get(
        "FRUGAL_CACHE_DIR", os.path.join(os.environ.get("HOME", "/tmp"), ".cache", "frugal")
    )
    source = data_cfg["source"]
    splits = mnist1d(val_size=source["val_size"], seed=source["seed"], cache_dir=cache_dir)
    datamodule = ArrayDataModule(splits, data_cfg["batch_size"])
    backbone = build_model(model_cfg, datamodule.input_shape, datamodule.num_classes)
    optimizer = partial(
        getattr(torch.optim, optim_cfg["_target_"].rsplit(".", 1)[1]),
        **{k: v for k, v in optim_cfg.items() if not k.startswith("_")},
    )
    module = FrugalModule(backbone, optimizer=optimizer, num_classes=datamodule.num_classes)

    checkpoint_kwargs = {
        k: v
        for k, v in callbacks_cfg["model_checkpoint"].items()
        if k not in ("_target_", "dirpath")
    }
    lr_kwargs = {k: v for k, v in callbacks_cfg["lr_monitor"].items() if k != "_target_"}
    timer = FitTimer(str(out_dir / "fit_timer.json"))
    trainer_kwargs = {
        k: v
        for k, v in trainer_cfg.items()
        if k not in ("_target_", "default_root_dir", "enable_progress_bar")
    }
    if max_steps:
        trainer_kwargs["max_steps"] = max_steps
    trainer = L.Trainer(
        **trainer_kwargs,
        default_root_dir=str(out_dir),
        enable_progress_bar=False,
        callbacks=[
            timer,
            ModelCheckpoint(dirpath=str(out_dir / "checkpoints"), **checkpoint_kwargs),
            LearningRateMonitor(**lr_kwargs),
        ],
        logger=CSVLogger(save_dir=str(out_dir), name="csv", version=""),
    )
    trainer.fit(module, datamodule=datamodule)
    best = trainer.checkpoint_callback.best_model_path or None
    trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    fit = json.loads((out_dir / "fit_timer.json").read_text())
    print(
        json.dumps(
            {
                "test_acc": float(trainer.callback_metrics["test/acc"]),
                "steps": trainer.global_step,
                "fit_s": fit["fit_s"],
            }
        )
    )


# ---- the comparison --------------------------------------------------------------------------
def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start_s = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall_s = time.perf_counter() - start_s
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return wall_s, done.stdout


def run_plain(env: dict[str, str], steps: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out_dir:
        cmd = [
            sys.executable,
            __file__,
            "--plain",
            out_dir,
            *(["--steps", str(steps)] if steps else []),
        ]
        wall_s, out = timed(cmd, env)
    report = json.loads(out.strip().splitlines()[-1])
    return {
        "wall_s": wall_s,
        "fit_s": report["fit_s"],
        "test_acc": report["test_acc"],
        "steps": report["steps"],
    }


def run_frugal(env: dict[str, str], overrides: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as run_dir:
        timer_path = Path(run_dir) / "fit_timer.json"
        cmd = [
            sys.executable,
            "-m",
            "frugal.train",
            *BUDGETS,
            "+callbacks.fit_timer._target_=enforcement_overhead.FitTimer",
            f"+callbacks.fit_timer.path={timer_path}",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ]
        wall_s, _ = timed(cmd, env)
        result = json.loads((Path(run_dir) / "result.json").read_text())
        fit = json.loads(timer_path.read_text())
    if result["stopped_by"] is not None or result["status"] != "completed":
        sys.exit(f"a budget bound the frugal run: {result['status']} ({result['stopped_by']})")
    return {
        "wall_s": wall_s,
        "fit_s": fit["fit_s"],
        "test_acc": result["metrics"]["test/acc"],
        "steps": result["steps"],
        "budget_time_s": result["spent"]["time_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, help="cap trainer.max_steps on both sides")
    parser.add_argument("--tag", default="", help="log to enforcement_overhead_TAG.txt")
    parser.add_argument("--plain", metavar="OUT_DIR", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra frugal-train overrides")
    args = parser.parse_args()
    if args.plain:
        plain_job(Path(args.plain), args.steps)
        return

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    started, load_before = time.time(), os.getloadavg()
    lines, plain, frugal = [], [], []
    for pair in range(args.pairs):
        order = ("plain", "frugal") if pair % 2 == 0 else ("frugal", "plain")
        for side in order:
            if side == "plain":
                plain.append(run_plain(env, args.steps))
            else:
                steps = [f"trainer.max_steps={args.steps}"] if args.steps else []
                frugal.append(run_frugal(env, [*steps, *args.overrides]))
        p, f = plain[-1], frugal[-1]
        line = (
            f"pair {pair} ({order[0]} first): plain {p['wall_s']:.1f} s wall, {p['fit_s']:.1f} s "
            f"fit, acc {p['test_acc']:.4f} | frugal {f['wall_s']:.1f} s wall, {f['fit_s']:.1f} s "
            f"fit ({f['budget_time_s']:.1f} s budget time), acc {f['test_acc']:.4f} | ratio "
            f"wall {f['wall_s'] / p['wall_s']:.3f}, fit {f['fit_s'] / p['fit_s']:.3f}"
        )
        lines.append(line)
        print(line, flush=True)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    summary = {
        "pairs": args.pairs,
        "plain_wall_s": round(med(plain, "wall_s"), 2),
        "frugal_wall_s": round(med(frugal, "wall_s"), 2),
        "plain_fit_s": round(med(plain, "fit_s"), 2),
        "frugal_fit_s": round(med(frugal, "fit_s"), 2),
        "wall_ratio": round(
            statistics.median(
                f["wall_s"] / p["wall_s"] for p, f in zip(plain, frugal, strict=True)
            ),
            3,
        ),
        "fit_ratio": round(
            statistics.median(f["fit_s"] / p["fit_s"] for p, f in zip(plain, frugal, strict=True)),
            3,
        ),
        "wall_ratio_of_medians": round(med(frugal, "wall_s") / med(plain, "wall_s"), 3),
        "fit_ratio_of_medians": round(med(frugal, "fit_s") / med(plain, "fit_s"), 3),
        "plain_test_acc": round(med(plain, "test_acc"), 4),
        "frugal_test_acc": round(med(frugal, "test_acc"), 4),
        "steps": [frugal[0]["steps"], plain[0]["steps"]],
    }
    load_after = os.getloadavg()
    command = "python benchmarks/enforcement_overhead.py " + " ".join(sys.argv[1:])
    notes = [
        f"command: {command}",
        f"host: {platform.node()}, {os.cpu_count()} CPUs, load average before "
        f"{[round(x, 2) for x in load_before]}, after {[round(x, 2) for x in load_after]}; "
        f"total {time.time() - started:.0f} s",
        "ratios: median over pairs of frugal ÷ plain (wall: launch to exit; fit: on_fit_start "
        "to on_fit_end, the same callback on both sides)",
    ]
    print(json.dumps(summary))
    for note in notes:
        print(note)
    RESULTS.mkdir(exist_ok=True)
    name = "enforcement_overhead" + (f"_{args.tag}" if args.tag else "") + ".txt"
    (RESULTS / name).write_text("\n".join([*lines, json.dumps(summary), *notes]) + "\n")
    print(f"written: {RESULTS / name}")


if __name__ == "__main__":
    main()
