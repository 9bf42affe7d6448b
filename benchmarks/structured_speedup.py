"""Does structured pruning make training faster? `wide_cnn` before and after keeping 25 % of its
channels (issue 12's target: a training step at least 2× faster).

Two measurements, one thread each:

1. **side by side** (the figure): the dense `wide_cnn` and a copy pruned by the product's own
   code (`frugal.models.structured.prune_to_widths`, as `sparsity=structured` cuts), each with
   AdamW as configured, take training steps (forward, cross-entropy, backward, optimizer step)
   on the same fixed MNIST-1D-shaped batches, alternating dense / pruned step by step (the
   order swapped every step) so machine load hits both alike; median over `--steps` each.
2. **in a real run** (cross-check, `--run`): one `frugal-train`-equivalent run, `data=mnist1d
   model=wide_cnn sparsity=structured sparsity.milestones=[0.5]`, timing every training step
   (batch start to the next batch start, budget callback and Lightning included; intervals with
   a validation left out); median before vs after the cut.

    python benchmarks/structured_speedup.py [--steps 300] [--channel-ratio 0.25] [--batch 100]
        [--run] [--run-steps 600] [--results benchmarks/results/structured_speedup.txt]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from frugal.models import create_model
from frugal.models.accounting import count_params, flop_per_sample
from frugal.models.structured import kept_widths, prune_to_widths, widths

REPO = Path(__file__).resolve().parents[1]
SHAPE, CLASSES = (40,), 10  # MNIST-1D
GOAL = 2.0


def adamw(model: nn.Module) -> torch.optim.Optimizer:  # conf/optimizer/adamw.yaml
    return torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01, foreach=True)


def side_by_side(steps: int, channel_ratio: float, batch: int, warmup: int = 20) -> dict[str, Any]:
    torch.manual_seed(0)
    batches = [(torch.randn(batch, *SHAPE), torch.randint(0, CLASSES, (batch,))) for _ in range(16)]
    dense = create_model("wide_cnn", SHAPE, CLASSES)
    pruned = create_model("wide_cnn", SHAPE, CLASSES)
    pruned.load_state_dict(dense.state_dict())
    prune_to_widths(pruned, batches[0][0], kept_widths(widths(pruned), channel_ratio))
    models = {"dense": dense, "pruned": pruned}
    optimizers = {name: adamw(model) for name, model in models.items()}
    times_ms: dict[str, list[float]] = {"dense": [], "pruned": []}
    for i in range(warmup + steps):
        x, y = batches[i % len(batches)]
        order = ("dense", "pruned") if i % 2 == 0 else ("pruned", "dense")
        for name in order:
            start_s = time.perf_counter()
            optimizers[name].zero_grad(set_to_none=True)
            F.cross_entropy(models[name](x), y).backward()
            optimizers[name].step()
            if i >= warmup:
                times_ms[name].append(1e3 * (time.perf_counter() - start_s))
    return {
        name: {
            "widths": widths(model),
            "params": count_params(model),
            "flop_per_sample": flop_per_sample(model, SHAPE)["dense"],
            "step_ms_median": statistics.median(times_ms[name]),
            "step_ms_p10": statistics.quantiles(times_ms[name], n=10)[0],
            "step_ms_p90": statistics.quantiles(times_ms[name], n=10)[-1],
            "steps": len(times_ms[name]),
        }
        for name, model in models.items()
    }


class StepTimer(L.Callback):
    """Wall time from each training batch start to the next; intervals holding a validation
    are dropped."""

    def __init__(self) -> None:
        self.intervals: list[tuple[int, float]] = []  # (step that started the interval, ms)
        self._last: tuple[int, float] | None = None

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.intervals.append((self._last[0], 1e3 * (now - self._last[1])))
        self._last = (trainer.global_step, now)

    def on_validation_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._last = None


def in_a_run(run_steps: int, channel_ratio: float, out: Path) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from frugal.train import train

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=mnist1d",
                "model=wide_cnn",
                "sparsity=structured",
                f"sparsity.channel_ratio={channel_ratio}",
                "sparsity.milestones=[0.5]",
                f"trainer.max_steps={run_steps}",
                "trainer.enable_progress_bar=false",
                "logger=none",
            ],
        )
    with open_dict(cfg):  # a fresh directory each time: a run never writes into another's
        cfg.paths.output_dir = str(out / time.strftime("%Y-%m-%d_%H-%M-%S"))
    timer = StepTimer()
    result, _ = train(cfg, callbacks=[timer])
    cut = run_steps // 2
    before = [ms for step, ms in timer.intervals if step < cut]
    after = [ms for step, ms in timer.intervals if step > cut]  # the cut's own step left out
    return {
        "status": result["status"],
        "steps": result["steps"],
        "test_acc": result["metrics"].get("test/acc"),
        "params_after": result["model"]["params"],
        "step_ms_median_before": statistics.median(before),
        "step_ms_median_after": statistics.median(after),
        "steps_timed": [len(before), len(after)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per model")
    parser.add_argument("--channel-ratio", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=100, help="conf/data/mnist1d.yaml's")
    parser.add_argument("--run", action="store_true", help="also time a real pruned run")
    parser.add_argument("--run-steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "structured_speedup")
    parser.add_argument(
        "--results", type=Path, default=REPO / "benchmarks" / "results" / "structured_speedup.txt"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        f"$ python benchmarks/structured_speedup.py {' '.join(sys.argv[1:])}".rstrip(),
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, "
        f"batch {args.batch}, wide_cnn at channel_ratio {args.channel_ratio}",
    ]
    side = side_by_side(args.steps, args.channel_ratio, args.batch)
    speedup = side["dense"]["step_ms_median"] / side["pruned"]["step_ms_median"]
    for name, row in side.items():
        lines.append(
            f"side by side, {name:6}: {row['params']:>7,} params, {row['flop_per_sample']:>9,} "
            f"FLOP/sample, step median {row['step_ms_median']:.2f} ms "
            f"(p10 {row['step_ms_p10']:.2f}, p90 {row['step_ms_p90']:.2f}; {row['steps']} steps)"
        )
    lines.append(
        f"side by side: pruned step {speedup:.2f}x faster (goal >= {GOAL}x: "
        f"{'met' if speedup >= GOAL else 'NOT met'})"
    )
    record: dict[str, Any] = {"side_by_side": side, "speedup": speedup}
    if args.run:
        run = in_a_run(args.run_steps, args.channel_ratio, args.out)
        run_speedup = run["step_ms_median_before"] / run["step_ms_median_after"]
        lines.append(
            f"in a run ({run['status']}, {run['steps']} steps, test acc {run['test_acc']:.3f}): "
            f"step median {run['step_ms_median_before']:.2f} ms before the cut, "
            f"{run['step_ms_median_after']:.2f} ms after ({run_speedup:.2f}x; "
            f"{run['steps_timed'][0]} / {run['steps_timed'][1]} steps timed)"
        )
        record.update(run=run, run_speedup=run_speedup)
    lines.append(json.dumps(record, default=str))
    text = "\n".join(lines)
    print(text)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as log:
        log.write(text + "\n\n")


if __name__ == "__main__":
    main()
