"""Charts for /stats, drawn with matplotlib's Agg backend (no display, no pyplot state).

Rendering takes tens of milliseconds of CPU: callers run it in a thread (asyncio.to_thread), never on the
event loop that serves every chat.
"""

from __future__ import annotations

import io
from datetime import date


def daily_costs_png(days: list[tuple[date, float]], title: str) -> bytes:
    """A bar chart of USD per day, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # before anything else of matplotlib's: never try to open a window
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6), dpi=100)
    axes = figure.subplots()
    labels = [f"{day:%d %b}" for day, _ in days]
    axes.bar(range(len(days)), [cost for _, cost in days], color="#4C72B0")
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step), labels[::step], rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("USD")
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
