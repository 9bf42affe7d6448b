"""`make train`'s job against the plain PyTorch loop, side by side.

Runs `benchmarks/plain_loop.py` (batch 100, Adam 1e-2, 6,000 steps, 1 thread) and the default
`frugal-train` job alternately, `--pairs` times, each as a fresh process timed from launch to
exit (imports, data generation, training, test and outputs included), and prints the median
wall times, test accuracies and their ratio.

    python benchmarks/train_overhead.py [--pairs 3] [-- extra frugal-train overrides]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, str]:
    start_s = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start_s, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra frugal-train overrides")
    args = parser.parse_args()

    plain_s, plain_acc, frugal_s, frugal_acc = [], [], [], []
    for pair in range(args.pairs):
        wall_s, out = timed([sys.executable, str(HERE / "plain_loop.py")])
        plain_s.append(wall_s)
        plain_acc.append(json.loads(out.strip().splitlines()[-1])["test_acc"])
        with tempfile.TemporaryDirectory() as run_dir:
            cmd = [
                sys.executable,
                "-m",
                "frugal.train",
                f"hydra.run.dir={run_dir}",
                *args.overrides,
            ]
            wall_s, _ = timed(cmd)
            result = json.loads((Path(run_dir) / "result.json").read_text())
        frugal_s.append(wall_s)
        frugal_acc.append(result["metrics"]["test/acc"])
        print(
            f"pair {pair}: plain {plain_s[-1]:.1f} s acc {plain_acc[-1]:.4f} | "
            f"frugal {frugal_s[-1]:.1f} s acc {frugal_acc[-1]:.4f}",
            flush=True,
        )
    summary = {
        "pairs": args.pairs,
        "plain_wall_s": round(statistics.median(plain_s), 2),
        "plain_test_acc": round(statistics.median(plain_acc), 4),
        "frugal_wall_s": round(statistics.median(frugal_s), 2),
        "frugal_test_acc": round(statistics.median(frugal_acc), 4),
        "ratio": round(statistics.median(frugal_s) / statistics.median(plain_s), 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
