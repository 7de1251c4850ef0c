"""/import: history from before the bot joined, from Telegram Desktop's chat export (result.json, or a .zip
of the export folder). A group admin sends the file with /import as its caption or replies /import to it —
in the group, or to the bot in private naming the group (/import -100… or /import @group).

The export must be of that group. It is read in batches off the event loop (one import parses at a time,
so imports never take both cores), stored batch by batch with a progress message, and every message id is
kept once: what the bot saw live stays as it was, and sending the same export twice adds nothing.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from telegram import Message
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError

from bot import texts
from bot.features.groups.payloads import ImportHistory
from bot.intake import Incoming
from bot.media import CLOUD_LIMIT_BYTES, LOCAL_LIMIT_BYTES
from bot.replies import Run
from bot.sender import StatusMessage
from parley.access import Requester
from parley.chat_export import ChatExport, ExportChat, ExportError, ImportLimits
from parley.errors import ParleyError
from parley.i18n import formats

log = logging.getLogger(__name__)

BATCH = 500
PROGRESS_EVERY = 2.0
"""Seconds between progress edits: Telegram allows about one edit a second in a chat."""
_PARSING = asyncio.Semaphore(1)


def export_file(message: Message) -> Message | None:
    """The message carrying the export: this one (file with /import as caption) or the one it replies to."""
    for candidate in (message, message.reply_to_message):
        if candidate is not None and candidate.document is not None:
            return candidate
    return None


def import_history(got: Incoming) -> ImportHistory:
    holder = export_file(got.message)
    document = holder.document if holder is not None else None
    named = ""
    if got.chat.type == ChatType.PRIVATE:
        words = got.args or tuple((got.message.caption or "").split()[1:])
        named = words[0] if words else ""
    return ImportHistory(
        user_id=got.user.id,
        file_id=document.file_id if document is not None else "",
        file_size=document.file_size if document is not None else None,
        file_name=document.file_name if document is not None else None,
        group_id=got.chat.id if got.chat.type != ChatType.PRIVATE else 0,
        group=named,
        message_id=got.message.message_id,
    )


async def _group(run: Run, job: ImportHistory) -> int | None:
    """The group named: its id, or its @username asked of Telegram."""
    if job.group_id:
        return job.group_id
    name = job.group.strip()
    if name.lstrip("-").isdigit():
        return int(name)
    if not name:
        return None
    try:
        chat = await run.bot.get_chat(name if name.startswith("@") else f"@{name}")
    except TelegramError as exc:
        log.info("chat=%s import: group %r not found: %s", run.chat_id, name, exc)
        return None
    return chat.id if chat.type in (ChatType.GROUP, ChatType.SUPERGROUP) else None


async def run_import(job: ImportHistory, run: Run) -> bool:
    reply_to = job.message_id
    if not job.file_id or not (job.group_id or job.group):
        return await run.say(texts.IMPORT_USAGE, reply_to=reply_to)
    group = await _group(run, job)
    if group is None:
        return await run.say(texts.IMPORT_GROUP_UNKNOWN, reply_to=reply_to)
    try:
        member = await run.bot.get_chat_member(group, job.user_id)
    except TelegramError as exc:
        log.info("chat=%s import: getChatMember(%s) failed: %s", run.chat_id, group, exc)
        return await run.say(texts.IMPORT_GROUP_UNKNOWN, reply_to=reply_to)
    if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        return await run.say(texts.IMPORT_ADMINS_ONLY, reply_to=reply_to)
    services = run.services
    if not await services.access.allows(Requester(user_id=0, username=None, chat_id=group, in_group=True)):
        return await run.say(texts.IMPORT_GROUP_NOT_ALLOWED, reply_to=reply_to)
    local = services.settings.telegram.local_bot_api
    limits = ImportLimits(file_bytes=LOCAL_LIMIT_BYTES if local else CLOUD_LIMIT_BYTES)
    if job.file_size is not None and job.file_size > limits.file_bytes:
        return await run.say(texts.import_too_large(limits.file_bytes // (1024 * 1024)), reply_to=reply_to)
    async with _PARSING:
        with tempfile.TemporaryDirectory(prefix="parley-import-") as folder:
            path = await _fetch(run, job, Path(folder), local=local)
            if path is None:
                return await run.say(texts.IMPORT_DOWNLOAD_FAILED, reply_to=reply_to)
            return await _read(run, job, path, group, limits)


async def _fetch(run: Run, job: ImportHistory, folder: Path, *, local: bool) -> Path | None:
    try:
        telegram_file = await run.bot.get_file(job.file_id)
        if local and telegram_file.file_path and Path(telegram_file.file_path).is_absolute():
            return Path(telegram_file.file_path)  # a local Bot API server: the file is already on disk
        return Path(await telegram_file.download_to_drive(folder / "export"))
    except TelegramError as exc:
        log.info("chat=%s import: download failed: %s", run.chat_id, exc)
        return None


async def _read(run: Run, job: ImportHistory, path: Path, group: int, limits: ImportLimits) -> bool:
    services, reply_to = run.services, job.message_id
    groups = services.storage.groups
    retention = services.settings.privacy.group_retention_days
    cutoff = time.time() - retention * 86400 if retention else None
    zone = ZoneInfo(services.settings.groups.timezone)
    added = seen = older = 0
    first: float | None = None
    last: float | None = None
    async with StatusMessage(run.bot, run.chat_id, texts.importing(0, None), reply_to=reply_to) as status:
        try:
            export = await asyncio.to_thread(ChatExport, path, limits)
        except (ExportError, OSError) as exc:
            return await run.fail(_as_parley(exc), reply_to=reply_to)
        try:
            if export.chat.chat_id != group:
                return await run.say(texts.import_wrong_chat(export.chat.name), reply_to=reply_to)
            batches = export.batches(BATCH)
            shown = time.monotonic()
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                kept = [m for m in batch if cutoff is None or m.sent_at >= cutoff]
                older += len(batch) - len(kept)
                if kept:
                    added += await groups.record_many(kept)
                    seen += len(kept)
                    first = min(first or kept[0].sent_at, min(m.sent_at for m in kept))
                    last = max(last or 0.0, max(m.sent_at for m in kept))
                if time.monotonic() - shown >= PROGRESS_EVERY:
                    shown = time.monotonic()
                    await status.update(texts.importing(seen + older, export.bytes_read / max(export.total_bytes, 1)))
        except ExportError as exc:
            log.info("chat=%s import into %s stopped: %s", run.chat_id, group, exc)
            return await run.say(texts.import_stopped(added, exc), reply_to=reply_to)
        finally:
            await asyncio.to_thread(export.close)
    log.info(
        "chat=%s imported into %s: %d new, %d already logged, %d past retention, %s",
        run.chat_id, group, added, seen - added, older, export.counts,
    )  # fmt: skip
    return await run.say(
        texts.imported(_name(export.chat), added, seen - added, older, _day(first, zone), _day(last, zone)),
        reply_to=reply_to,
    )


def _name(chat: ExportChat) -> str:
    return chat.name or str(chat.chat_id)


def _day(at: float | None, zone: ZoneInfo) -> str | None:
    return formats.full_date(datetime.fromtimestamp(at, zone).date()) if at is not None else None


def _as_parley(exc: Exception) -> ParleyError:
    return exc if isinstance(exc, ParleyError) else ParleyError(str(exc), user_message=texts.IMPORT_DOWNLOAD_FAILED)
