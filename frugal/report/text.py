"""Text that came from a run (names, overrides, paths, error reasons), made safe to show: one
line, visible characters, bounded length. Markdown escaping is in ``table.md``."""

from __future__ import annotations

import unicodedata

_INVISIBLE = {"Cc", "Cf"}  # control and format characters: newlines, zero-width, bidi overrides


def visible(text: str) -> str:
    """Control and format characters as escapes (a newline as ``\\n``); the rest unchanged."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) in _INVISIBLE else ch
        for ch in text
    )


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
