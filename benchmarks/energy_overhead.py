"""What energy metering costs: one `read_j()` per backend, and a whole training run on vs off.

(a) Median cost of one `read_j()`, in microseconds, for each backend readable here: RAPL against
    a fake powercap tree this script writes (a tmpfs/disk file, not real sysfs: labelled so),
    NVML if a GPU and driver answer, codecarbon for real.
(b) Wall time of the default training job with metering on (`energy.backend=auto`) versus off
    (`energy.backend=none`): interleaved pairs, order alternating, median ratio of the whole
    subprocess and of result.json's `spent.time_s`.

    python benchmarks/energy_overhead.py                     # (a) and (b), 5 pairs
    python benchmarks/energy_overhead.py --skip-runs         # (a) only
    python benchmarks/energy_overhead.py --pairs 3 --overrides trainer.max_steps=500

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from frugal.meters.energy import BackendUnavailable, EnergyConfig, build_energy_meter
from frugal.meters.energy.fallback import FallbackMeter


def median_read_us(meter: FallbackMeter, reads: int) -> float:
    """Median of `reads` timed `read_j()` calls, in microseconds."""
    costs_ns = []
    for _ in range(reads):
        began_ns = time.perf_counter_ns()
        meter.read_j()
        costs_ns.append(time.perf_counter_ns() - began_ns)
    return statistics.median(costs_ns) / 1e3


def write_fake_rapl_tree(root: Path) -> None:
    """Two packages, each with core and dram sub-zones: four counted zones, as on a 2-socket box."""
    zones = {
        "intel-rapl:0": "package-0",
        "intel-rapl:0:0": "core",
        "intel-rapl:0:1": "dram",
        "intel-rapl:1": "package-1",
        "intel-rapl:1:0": "core",
        "intel-rapl:1:1": "dram",
    }
    for zone_id, name in zones.items():
        zone = root / zone_id
        zone.mkdir()
        (zone / "name").write_text(f"{name}\n")
        (zone / "energy_uj").write_text("123456789\n")
        (zone / "max_energy_range_uj").write_text("262143328850\n")


def time_backend(label: str, cfg: EnergyConfig, reads: int) -> dict[str, Any]:
    try:
        meter = build_energy_meter(cfg)
    except BackendUnavailable as err:
        return {"backend": label, "read_us": None, "note": str(err)}
    assert meter is not None
    began_s = time.perf_counter()
    meter.start()
    start_s = time.perf_counter() - began_s
    read_us = median_read_us(meter, reads)
    meter.stop()
    return {"backend": label, "method": meter.method, "read_us": read_us, "start_s": start_s}


def read_costs(reads: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_fake_rapl_tree(Path(tmp))
        cfg = EnergyConfig(backend="rapl", rapl_root=tmp)
        rows.append(time_backend("rapl (fake tree, 4 zones)", cfg, reads))
    rows.append(time_backend("nvml", EnergyConfig(backend="nvml"), reads))
    rows.append(time_backend("codecarbon", EnergyConfig(backend="codecarbon"), reads))
    return rows


def train_once(energy_backend: str, run_dir: Path, overrides: list[str]) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "frugal.train",
        f"energy.backend={energy_backend}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    began_s = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall_s = time.perf_counter() - began_s
    result = json.loads((run_dir / "result.json").read_text())
    return {"wall_s": wall_s, "time_s": float(result["spent"]["time_s"])}


def run_pairs(pairs: int, overrides: list[str], energy_on: str) -> dict[str, Any]:
    on: list[dict[str, float]] = []
    off: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(pairs):
            order = [energy_on, "none"] if i % 2 == 0 else ["none", energy_on]  # cancel drift
            for backend in order:
                timing = train_once(backend, Path(tmp) / f"{i}-{backend}", overrides)
                (off if backend == "none" else on).append(timing)
                print(f"pair {i} energy.backend={backend}: {timing}", file=sys.stderr)
    summary: dict[str, Any] = {"pairs": pairs, "overrides": overrides, "energy_on": energy_on}
    for key in ("wall_s", "time_s"):
        summary[f"ratio_{key}"] = statistics.median(
            a[key] / b[key] for a, b in zip(on, off, strict=True)
        )
        summary[f"on_{key}"] = statistics.median(t[key] for t in on)
        summary[f"off_{key}"] = statistics.median(t[key] for t in off)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=10_000, help="timed read_j() calls")
    parser.add_argument("--pairs", type=int, default=5, help="interleaved on/off training runs")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra Hydra overrides")
    parser.add_argument("--energy-on", default="auto", help="energy.backend of the 'on' runs")
    parser.add_argument("--skip-runs", action="store_true", help="only (a): per-read costs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    rows = read_costs(args.reads)
    print(f"{'backend':<28} {'method':<22} {'read_j median':>14} {'start':>8}")
    for row in rows:
        read = f"{row['read_us']:.2f} µs" if row["read_us"] is not None else "n/a"
        start = f"{row['start_s']:.2f} s" if "start_s" in row else ""
        print(f"{row['backend']:<28} {row.get('method', '-'):<22} {read:>14} {start:>8}")
        if "note" in row:
            print(f"  {row['note']}")
    report: dict[str, Any] = {"reads": args.reads, "read_costs": rows}
    if not args.skip_runs:
        runs = run_pairs(args.pairs, args.overrides, args.energy_on)
        print(
            f"training, {runs['pairs']} pairs: wall on/off median ratio {runs['ratio_wall_s']:.3f}"
            f" ({runs['on_wall_s']:.1f} s / {runs['off_wall_s']:.1f} s); spent.time_s ratio "
            f"{runs['ratio_time_s']:.3f} ({runs['on_time_s']:.1f} s / {runs['off_time_s']:.1f} s)"
        )
        report["runs"] = runs
    print(json.dumps(report))


if __name__ == "__main__":
    main()
