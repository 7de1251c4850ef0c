"""A hard deadline for stopping: when it passes, the process kills its children and exits, whatever runs.

On SIGTERM running jobs get PARLEY_SHUTDOWN_SECONDS and are then cancelled, which kills the child processes
they wait on (ffmpeg, document extraction). Cancellation cannot stop a thread, though (a library call that
never returns), and asyncio.run waits for every thread of its executor, so an orchestrator would wait and
then SIGKILL the bot, losing the log line that says why. The deadline is a thread of its own that ends the
process a few seconds after the grace period, saying so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MARGIN_SECONDS = 5.0
"""After the grace period: time to cancel jobs, close connections and write the last log lines."""


def exit_after(seconds: float, code: int) -> threading.Timer:
    """Exit with `code` in `seconds` unless the process has ended by then (the timer thread is a daemon)."""

    def expire() -> None:
        log.error("shutdown: still running %.0f s after the stop signal: killing children and exiting", seconds)
        kill_children()
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(code)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.name = "shutdown-deadline"
    timer.start()
    return timer


def kill_children() -> None:
    """SIGKILL this process's direct children (Linux: read from /proc; elsewhere nothing is done)."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name (field 2) may contain spaces and parentheses: the parent id follows the last ")".
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            if parent == me:
                os.kill(int(stat.parent.name), signal.SIGKILL)
