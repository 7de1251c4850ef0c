"""What every feature may use: the core's services, the bot, the JobQueue, and the door into the job table.

Built once by the application and handed to each job (inside its `Run`) and to the intake, so a feature
needs no globals and no constructor of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from telegram import Bot
from telegram.ext import JobQueue

from bot.languages import Languages
from parley.services import Services

if TYPE_CHECKING:
    from bot.jobs import Payload


class Jobs(Protocol):
    """The dispatcher as features see it: record a new job, or run a requeued one now."""

    async def accept(self, *, chat_id: int, source: str, job: Payload, message_id: int | None = None) -> bool: ...

    async def run(self, job_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Edge:
    services: Services
    bot: Bot
    jobs: Jobs
    job_queue: JobQueue | None  # python-telegram-bot's; None only when built without its job-queue extra
    languages: Languages  # which language each chat is answered in
