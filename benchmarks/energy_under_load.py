"""Does the same work cost the same joules on a quiet and on a busy machine?

The default job (MNIST-1D, the paper's CNN; `--steps` steps, inference measured as usual) run
alone and beside `--competitors` busy processes (`while True: pass`, one per competitor), in
pairs of fresh processes whose order alternates (alone first in even pairs, loaded first in
odd ones). For each run, from its result.json: the attributed energy per step
(`spent.energy_j`, what budgets enforce) and the machine's figure per step
(`spent.machine_energy_j`, shown beside it), then the loaded/alone ratio of each pair and the
median over pairs. Writes a log to benchmarks/results/energy_under_load[_TAG].txt.

    python benchmarks/energy_under_load.py [--pairs 3] [--competitors 2] [--steps 1500]
        [--tag name] [-- extra frugal-train overrides]

`--sweep` runs README's comparison instead, `frugal-train -m model=cnn,lowrank_cnn,wide_cnn
budget.energy=500J`, once alone and once loaded (order alternating over `--pairs`): each model's
steps, test accuracy and attributed energy, the loaded/alone step ratio, and whether the three
models rank the same way (by test accuracy) in both.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@contextmanager
def competitors(count: int):
    """`count` busy processes for the duration of the block."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def run_job(out: Path, steps: int, extra: list[str]) -> dict[str, Any]:
    """One fresh `frugal-train` of the default job; its result.json."""
    command = [
        sys.executable,
        "-m",
        "frugal.train",
        f"trainer.max_steps={steps}",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={out}",
        *extra,
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((out / "result.json").read_text())


SWEEP = ["-m", "model=cnn,lowrank_cnn,wide_cnn", "budget.energy=500J"]


def run_sweep(out: Path, extra: list[str]) -> dict[str, dict[str, Any]]:
    """README's small-vs-large sweep into `out`; each job's result.json by model name."""
    command = [
        sys.executable,
        "-m",
        "frugal.train",
        *SWEEP,
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={out}",
        *extra,
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    found = {}
    for path in sorted(out.glob("*/result.json")):
        result = json.loads(path.read_text())
        found[result["model"]["name"]] = result
    return found


def sweep_main(args: argparse.Namespace) -> list[str]:
    lines = [
        f"README sweep {' '.join(SWEEP)} alone and beside {args.competitors} busy competitors",
        "pair  model        steps alone  loaded  ratio   test acc alone  loaded   J alone  loaded",
    ]
    print(*lines, sep="\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="frugal-load-sweep-") as tmp:
        for pair in range(args.pairs):
            order = ["alone", "loaded"] if pair % 2 == 0 else ["loaded", "alone"]
            found = {}
            for which in order:
                with competitors(args.competitors if which == "loaded" else 0):
                    found[which] = run_sweep(Path(tmp) / f"{pair}-{which}", args.extra)
            for model in sorted(found["alone"]):
                alone, loaded = found["alone"][model], found["loaded"].get(model)
                if loaded is None:
                    continue
                line = (
                    f"{pair:>4}  {model:<11}  {alone['steps']:>11}  {loaded['steps']:>6}  "
                    f"{loaded['steps'] / max(alone['steps'], 1):>5.3f}   "
                    f"{_num(alone['metrics'].get('test/acc'), 3):>14}  "
                    f"{_num(loaded['metrics'].get('test/acc'), 3):>6}   "
                    f"{_num(alone['spent']['energy_j'], 1):>7}  "
                    f"{_num(loaded['spent']['energy_j'], 1):>6}"
                )
                lines.append(line)
                print(line, flush=True)
            ranks = {
                which: sorted(runs, key=lambda m: -(runs[m]["metrics"].get("test/acc") or 0.0))
                for which, runs in found.items()
            }
            same = ranks["alone"] == ranks["loaded"]
            line = f"pair {pair}: ranking alone {ranks['alone']}, loaded {ranks['loaded']}: " + (
                "same" if same else "DIFFERENT"
            )
            lines.append(line)
            print(line, flush=True)
    return lines


def per_step(result: dict[str, Any], key: str) -> float | None:
    value = result["spent"].get(key)
    return None if value is None or not result["steps"] else value / result["steps"]


def ratio(loaded: float | None, alone: float | None) -> float | None:
    return None if loaded is None or not alone else loaded / alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--competitors", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--tag", default="")
    parser.add_argument("--sweep", action="store_true", help="README's three-model sweep")
    parser.add_argument("extra", nargs="*", help="frugal-train overrides (after --)")
    args = parser.parse_args()
    if args.sweep:
        lines = sweep_main(args)
        RESULTS.mkdir(exist_ok=True)
        name = f"energy_under_load_sweep{'_' + args.tag if args.tag else ''}.txt"
        (RESULTS / name).write_text("\n".join(lines) + "\n")
        return
    lines = [
        f"energy under load: default job, {args.steps} steps, {args.competitors} busy "
        f"competitors, {args.pairs} alternating pairs; {platform.node()}, "
        f"{platform.processor() or platform.machine()}",
        f"overrides: {' '.join(args.extra) or '(none)'}",
        "pair  order         attributed J/step alone  loaded  ratio   "
        "machine J/step alone  loaded  ratio   method",
    ]
    print(*lines, sep="\n", flush=True)
    attributed_ratios, machine_ratios = [], []
    with tempfile.TemporaryDirectory(prefix="frugal-load-") as tmp:
        for pair in range(args.pairs):
            order = ["alone", "loaded"] if pair % 2 == 0 else ["loaded", "alone"]
            found: dict[str, dict[str, Any]] = {}
            for which in order:
                out = Path(tmp) / f"{pair}-{which}"
                with competitors(args.competitors if which == "loaded" else 0):
                    found[which] = run_job(out, args.steps, args.extra)
            alone, loaded = found["alone"], found["loaded"]
            row = {
                key: (per_step(alone, key), per_step(loaded, key))
                for key in ("energy_j", "machine_energy_j")
            }
            attributed = ratio(row["energy_j"][1], row["energy_j"][0])
            machine = ratio(row["machine_energy_j"][1], row["machine_energy_j"][0])
            attributed_ratios.append(attributed)
            machine_ratios.append(machine)
            line = (
                f"{pair:>4}  {'/'.join(order):<12}  "
                f"{_num(row['energy_j'][0]):>22}  {_num(row['energy_j'][1]):>6}  "
                f"{_num(attributed, 3):>5}   "
                f"{_num(row['machine_energy_j'][0]):>19}  {_num(row['machine_energy_j'][1]):>6}  "
                f"{_num(machine, 3):>5}   {alone['energy']['method']}"
            )
            lines.append(line)
            print(line, flush=True)
    summary = (
        f"median loaded/alone: attributed {_num(_median(attributed_ratios), 3)}, "
        f"machine {_num(_median(machine_ratios), 3)}"
    )
    lines.append(summary)
    print(summary)
    RESULTS.mkdir(exist_ok=True)
    name = f"energy_under_load{'_' + args.tag if args.tag else ''}.txt"
    (RESULTS / name).write_text("\n".join(lines) + "\n")


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
