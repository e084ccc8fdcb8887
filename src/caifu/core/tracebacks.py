"""Tracebacks for logs: the frames, never the message or local variables (either may quote
a customer's data)."""

from __future__ import annotations

import traceback
from types import TracebackType


def frames(tb: TracebackType | None, keep: int = 30) -> str:
    """A traceback's frames (file, line, function, source line). When there are more than
    ``keep``, the innermost are kept: that is where it failed (``format_tb(limit=…)`` keeps
    the outermost — the server's and Starlette's, never caifu's failing frame)."""
    stack = traceback.extract_tb(tb)
    cut = len(stack) - keep
    text = "".join(traceback.format_list(stack[max(cut, 0):]))
    return f"  … {cut} outer frames left out\n{text}" if cut > 0 else text
