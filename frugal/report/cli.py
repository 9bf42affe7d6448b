"""``frugal-report RUN_OR_MULTIRUN_DIR... [-o OUT]`` (also ``python -m frugal.report``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from frugal.core.record import RESULT_FILE
from frugal.core.status import EXIT_BAD_INPUT
from frugal.report import envelope, size_search
from frugal.report.collect import collect_runs
from frugal.report.compare import Comparison, compare
from frugal.report.files import NO_SUCH_DIR, Skipped
from frugal.report.table import DEFAULT_INFERENCES, write_report_md, write_runs_csv
from frugal.report.text import plural, visible

DEFAULT_OUT = Path("report")
EXIT_NO_RUNS = EXIT_BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frugal-report",
        description=(
            f"Compare training runs: finds every {RESULT_FILE} under the given run or multirun "
            "directories (recursively) and writes runs.csv, report.md, pareto.png, curves.png and, "
            "when a run measured its inference energy, lifetime.png; size_search.png for runs "
            "that searched their size (pilot runs are part of their run, not runs), "
            "envelope.png for sweeps with a shared envelope (envelope.json)."
        ),
        epilog=(
            "Runs whose result.json is missing, malformed, out of range or not a regular file "
            "are listed as skipped in report.md; a bad curve.csv only drops that run's curve. "
            "Exit status 0 when at least one run was reported, 2 when none was or OUT is not "
            "a directory."
        ),
    )
    parser.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="RUN_OR_MULTIRUN_DIR",
        help="a run directory, a multirun directory (numbered job subdirs) or any parent",
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory, created if needed (default: ./{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--inferences",
        type=_count,
        default=DEFAULT_INFERENCES,
        metavar="N",
        help="lifetime energy = training + N predictions (default: %(default)s)",
    )
    parser.add_argument(
        "--no-plots",
        action="store_true",
        help="write runs.csv and report.md only (e.g. for sweeps too large to label in a plot)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = _out_problem(args.out)
    if problem:
        print(
            visible(f"frugal-report: -o {args.out}: {problem}; expected a directory"),
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    collected = collect_runs(args.dirs)
    runs, skipped = collected.runs, collected.skipped
    if not runs:
        message = _no_runs_message(args.dirs, skipped, len(collected.pilots))
        print(f"frugal-report: {message}", file=sys.stderr)
        return EXIT_NO_RUNS
    comparison = compare(runs)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(
            visible(f"frugal-report: -o {args.out}: {err.strerror}; expected a directory"),
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    write_runs_csv(comparison, args.out / "runs.csv", args.inferences)
    write_report_md(
        comparison,
        skipped,
        args.dirs,
        args.out / "report.md",
        plots=not args.no_plots,
        inferences=args.inferences,
    )
    searches, search_problems = size_search.load_size_searches(collected.size_searches)
    envelopes, envelope_problems = envelope.load_envelopes(args.dirs)
    _add_sections(
        args.out / "report.md",
        size_search.size_search_section(
            searches, search_problems, collected.pilots, comparison, plots=not args.no_plots
        ),
        envelope.envelope_section(envelopes, envelope_problems, comparison, not args.no_plots),
    )
    if not args.no_plots:
        _draw(args.out, comparison, args.inferences, searches, envelopes)
    pilots = f", {plural(len(collected.pilots), 'pilot')} not counted" if collected.pilots else ""
    print(
        f"frugal-report: {plural(len(runs), 'run')}, {len(skipped)} skipped{pilots} -> {args.out}"
    )
    return 0


def _draw(
    out: Path,
    comparison: Comparison,
    inferences: int,
    searches: Sequence[size_search.SizeSearch],
    envelopes: Sequence[envelope.Envelope],
) -> None:
    """The figures; matplotlib is imported only when drawing."""
    from frugal.report.envelope_plot import plot_envelopes
    from frugal.report.lifetime_plot import plot_lifetime
    from frugal.report.plots import plot_curves, plot_pareto
    from frugal.report.size_search_plot import plot_size_search

    plot_pareto(comparison, out / "pareto.png")
    plot_curves(comparison, out / "curves.png")
    if any(run.inference_j_per_1k is not None for run in comparison.runs):
        plot_lifetime(comparison, out / "lifetime.png", inferences)
    if searches:
        plot_size_search(searches, comparison, out / size_search.FILE_NAME)
    if any(e.keys and e.jobs for e in envelopes):
        plot_envelopes(envelopes, out / envelope.FILE_NAME)


def _add_sections(report: Path, *sections: str) -> None:
    """Put ``sections`` into report.md after the datasets, before the closing lists of runs
    whose curve was not drawn and of skipped files (table.py writes those last)."""
    added = "\n\n".join(s for s in sections if s)
    if not added:
        return
    text = report.read_text().rstrip("\n")
    tails = [text.find(f"\n\n{h}\n") for h in ("## Curves not drawn", "## Skipped")]
    cut = min((t for t in tails if t >= 0), default=len(text))
    report.write_text(f"{text[:cut]}\n\n{added}{text[cut:]}\n")


def _out_problem(out: Path) -> str | None:
    """Why ``out`` cannot be the output directory, checked before any run is read: an existing
    non-directory, or a parent that is not a directory."""
    if out.exists() and not out.is_dir():
        return "is a file" if out.is_file() else "exists and is not a directory"
    for parent in out.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is not a directory"
    return None


def _count(text: str) -> int:
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _no_runs_message(dirs: Sequence[Path], skipped: Sequence[Skipped], pilots: int = 0) -> str:
    where = visible(", ".join(str(d) for d in dirs))
    malformed = [s for s in skipped if s.reason != NO_SUCH_DIR]
    if pilots and not malformed:
        return (
            f"only pilot runs of a size search under {where} ({pilots}); "
            "report the run they belong to"
        )
    if not malformed:
        return f"no {RESULT_FILE} under {where}"
    first = malformed[0]
    return visible(
        f"no readable {RESULT_FILE} under {where} "
        f"({len(malformed)} malformed; first: {first.path}: {first.reason})"
    )
