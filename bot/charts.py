"""Charts for /stats, drawn with matplotlib's Agg backend (no display, no pyplot state).

Rendering takes tens of milliseconds of CPU: callers run it in a thread (asyncio.to_thread), never on the
event loop that serves every chat.

The chart carries no words, only dates and sums written the reader's way (the caller's `day` and `money`):
matplotlib's fonts have no CJK or Devanagari glyphs and it does not shape Arabic, so anything said about the
chart goes in its caption, which the reader's Telegram app draws.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date

_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Direction marks Babel puts into some locales' sums: invisible in a chat, boxes in a picture."""


def daily_costs_png(days: list[tuple[date, float]], day: Callable[[date], str], money: Callable[[float], str]) -> bytes:
    """A bar chart of US dollars per day, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # before anything else of matplotlib's: never try to open a window
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(8, 3.6), dpi=100)
    axes = figure.subplots()
    labels = [_drawable(day(d)) for d, _ in days]
    axes.bar(range(len(days)), [cost for _, cost in days], color="#4C72B0")
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step), labels[::step], rotation=45, ha="right", fontsize=8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: _drawable(money(value))))
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _drawable(text: str) -> str:
    return _BIDI_CONTROLS.sub("", text)
