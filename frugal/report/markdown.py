"""Markdown for report.md: text from the files made safe inside a table cell or a list item,
code spans, tables."""

from __future__ import annotations

import re
from collections.abc import Sequence

from frugal.report.text import visible

_MARKUP = re.compile(r"[\\`*\[\]<>|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def md(text: object) -> str:
    """Text safe inside a markdown table cell or list item: control characters shown escaped
    (a newline as ``\\n``), markup characters backslash-escaped."""
    return _MARKUP.sub(lambda m: "\\" + m.group(0), visible(str(text)))


def md_code(text: object) -> str:
    """Text as an inline code span, whatever backticks it holds (pipes still need ``md`` rules
    inside tables, so this is for list items and prose)."""
    text = visible(str(text))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
