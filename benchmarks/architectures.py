"""What each compact family really costs on this CPU, against its dense baseline at equal width.

For every model: stored and effective parameters, dense and effective forward FLOPs per sample
(`frugal.models.accounting`), and measured wall time of one training step (forward, backward,
Adam) and of one inference batch. Masked-sparse models run the same dense kernels as their
baseline (plus the mask multiply), so their effective FLOPs fall but their time does not.

    python benchmarks/architectures.py [--threads 1] [--batch 100] [--width-mults 1 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from frugal.models import create_model
from frugal.models.accounting import count_params, count_params_effective, flop_per_sample

# (task, input shape, dense baseline, its compact / sparse / factorised variants)
FAMILIES = [
    ("mnist1d", (40,), "mlp", ["lowrank_mlp", "sparse_mlp"]),
    ("mnist1d", (40,), "cnn", ["dsconv_cnn", "lowrank_cnn", "sparse_cnn"]),
    ("digits", (1, 8, 8), "cnn2d", ["dsconv_cnn2d", "lowrank_cnn2d", "sparse_cnn2d"]),
]
REFERENCES = [("mnist1d", (40,), name) for name in ("logreg", "gru", "wide_cnn", "wide_mlp")]


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times_s = []
    for _ in range(repeats):
        start_s = time.perf_counter()
        fn()
        times_s.append(time.perf_counter() - start_s)
    return 1e3 * statistics.median(times_s)


def time_model(
    model: nn.Module, shape: tuple[int, ...], batch: int, repeats: int
) -> tuple[float, float]:
    """(ms per training step, ms per inference batch), medians."""
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def infer() -> None:
        with torch.no_grad():
            model(x)

    step_ms = median_ms(train_step, repeats, warmup=5)
    model.eval()
    infer_ms = median_ms(infer, repeats, warmup=5)
    return step_ms, infer_ms


def row(
    task: str, shape: tuple[int, ...], name: str, width_mult: float | None, args: argparse.Namespace
) -> dict:
    torch.manual_seed(0)
    kwargs = {} if width_mult is None else {"width_mult": width_mult}
    model = create_model(name, shape, 10, **kwargs)
    flop = flop_per_sample(model, shape)
    step_ms, infer_ms = time_model(model, shape, args.batch, args.repeats)
    return {
        "task": task,
        "model": name,
        "width": "-" if width_mult is None else f"×{width_mult:g}",
        "params": count_params(model),
        "params_eff": count_params_effective(model),
        "flop_dense": flop["dense"],
        "flop_eff": flop["effective"],
        "ms_step": step_ms,
        "ms_infer": infer_ms,
    }


def print_table(rows: list[dict], baselines: dict[tuple[str, str], dict]) -> None:
    print(
        "| task | model | width | params | params_eff | FLOP/sample dense | FLOP/sample eff "
        "| ms/step | vs dense | ms/infer batch | vs dense |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        base = baselines.get((r["task"], r["width"], r["model"]), r)
        print(
            f"| {r['task']} | {r['model']} | {r['width']} | {r['params']:,} | "
            f"{r['params_eff']:,} | {r['flop_dense']:,} | {r['flop_eff']:,} | "
            f"{r['ms_step']:.2f} | {r['ms_step'] / base['ms_step']:.2f}× | "
            f"{r['ms_infer']:.3f} | {r['ms_infer'] / base['ms_infer']:.2f}× |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--width-mults", type=float, nargs="+", default=[1.0, 4.0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows, baselines = [], {}
    for width_mult in args.width_mults:
        for task, shape, dense, variants in FAMILIES:
            base = row(task, shape, dense, width_mult, args)
            rows.append(base)
            for name in variants:
                rows.append(row(task, shape, name, width_mult, args))
                baselines[(task, base["width"], name)] = base
    rows += [row(task, shape, name, None, args) for task, shape, name in REFERENCES]
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
        f"median of {args.repeats}; 'vs dense': time over the dense baseline at equal width"
    )
    print_table(rows, baselines)


if __name__ == "__main__":
    main()
