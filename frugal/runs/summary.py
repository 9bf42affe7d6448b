"""The short table printed at the end of a run (rich). Accuracy in percent, as in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from frugal.core.keys import CONFIG_KEY, UNIT
from frugal.core.units import format_amount, percent


def print_summary(result: dict[str, Any], output_dir: Path) -> None:
    energy = result["energy"]
    title = f"{result['model']['name']}: {result['status']}"
    if result["stopped_by"]:
        title += f" (stopped by {result['stopped_by']})"
    table = Table(title=title)
    for column in ("", "spent", "budget"):
        table.add_column(column, justify="right" if column else "left")
    for key, spent in result["spent"].items():
        if key == "machine_energy_j":  # beside the run's own, never a budget
            shown = "unknown" if spent is None else format_amount(spent, UNIT["energy_j"])
            table.add_row("energy, whole machine", shown, "")
            continue
        limit = result["budget"].get(key)
        shown = format_amount(spent, UNIT[key])
        if key == "energy_j" and spent is not None:
            shown += f" ({energy['method']}{'' if energy['measured'] else ', estimate'})"
        budget = "-" if limit is None else (format_amount(limit, UNIT[key]))
        table.add_row(CONFIG_KEY[key], shown, budget)
    compression = result.get("compression")
    if compression and compression.get("acc_after_compression") is not None:
        name = f"acc after {compression['method']}"
        table.add_row(name, percent(compression["acc_after_compression"]), "")
    for name in ("test/acc", "val/acc"):
        if result["metrics"].get(name) is not None:
            table.add_row(name, percent(result["metrics"][name]), "")
    max_steps = result["plan"]["max_steps"]
    table.add_row("steps", str(result["steps"]), "-" if max_steps is None else str(max_steps))
    console = Console()
    console.print(table)
    if compression:
        console.print(f"compressed from: {compression['source_run']}", soft_wrap=True)
    console.print(f"outputs: {output_dir}", soft_wrap=True)  # one line: a path to copy
