"""The short table printed at the end of a run (rich)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from frugal.budget.plan import BUDGET_KEY, UNIT
from frugal.budget.units import format_amount


def print_summary(result: dict[str, Any], output_dir: Path) -> None:
    energy = result["energy"]
    title = f"{result['model']['name']}: {result['status']}"
    if result["stopped_by"]:
        title += f" (stopped by {result['stopped_by']})"
    table = Table(title=title)
    for column in ("", "spent", "budget"):
        table.add_column(column, justify="right" if column else "left")
    for key, spent in result["spent"].items():
        limit = result["budget"].get(key)
        shown = format_amount(spent, UNIT[key])
        if key == "energy_j" and spent is not None:
            shown += f" ({energy['method']}{'' if energy['measured'] else ', estimate'})"
        budget = "-" if limit is None else (format_amount(limit, UNIT[key]))
        table.add_row(BUDGET_KEY[key], shown, budget)
    for name in ("test/acc", "val/acc"):
        if name in result["metrics"]:
            table.add_row(name, f"{result['metrics'][name]:.4f}", "")
    table.add_row("steps", str(result["steps"]), str(result["plan"]["max_steps"]))
    console = Console()
    console.print(table)
    console.print(f"outputs: {output_dir}")
