"""Audio that arrives in Telegram messages, whatever the wrapper: voice notes, audio files, video notes, and
documents whose mime type is audio. All go through the same conversion; each is size-checked before any
download (bots may download 20 MB; a local Bot API server lifts that)."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from telegram import Bot, Message
from telegram.error import BadRequest, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot import texts
from parley.errors import AudioTooLarge, ParleyError

CLOUD_LIMIT_BYTES = texts.TELEGRAM_DOWNLOAD_LIMIT_MB * 1024 * 1024
LOCAL_LIMIT_BYTES = 2000 * 1024 * 1024
"""A local Bot API server (`--local`) hands bots files up to 2 GB, by path."""


@dataclass(frozen=True, slots=True)
class Media:
    kind: str  # voice | audio | video_note | document
    file_id: str
    file_unique_id: str
    file_size: int | None
    duration: float  # as declared by Telegram (it can lie; conversion measures the truth)
    mime_type: str | None


def _seconds(value: object) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value or 0)  # type: ignore[arg-type]


def media_of(message: Message | None) -> Media | None:
    """The audio a message carries, or None (photos, stickers, non-audio documents carry none)."""
    if message is None:
        return None
    with warnings.catch_warnings():  # PTB 22 warns that durations will become timedeltas
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        for kind in ("voice", "audio", "video_note"):
            item = getattr(message, kind)
            if item is not None:
                return Media(
                    kind,
                    item.file_id,
                    item.file_unique_id,
                    item.file_size,
                    _seconds(item.duration),
                    getattr(item, "mime_type", None),
                )
    document = message.document
    if document is not None and (document.mime_type or "").startswith("audio/"):
        return Media("document", document.file_id, document.file_unique_id, document.file_size, 0.0, document.mime_type)
    return None


async def download(bot: Bot, media: Media, *, local: bool) -> bytes:
    """The file's bytes: checked against the download limit first, and Telegram's own refusal translated."""
    limit = LOCAL_LIMIT_BYTES if local else CLOUD_LIMIT_BYTES
    if media.file_size is not None and media.file_size > limit:
        raise AudioTooLarge(f"{media.kind} of {media.file_size} bytes", user_message=texts.TOO_LARGE)
    try:
        telegram_file = await bot.get_file(media.file_id)
        if local and telegram_file.file_path and Path(telegram_file.file_path).is_absolute():
            # A local server hands over a path to a file of up to 2 GB: read it off the event loop.
            return await asyncio.to_thread(Path(telegram_file.file_path).read_bytes)
        return bytes(await telegram_file.download_as_bytearray())
    except BadRequest as exc:
        if "too big" in exc.message.lower():
            raise AudioTooLarge(str(exc), user_message=texts.TOO_LARGE) from exc
        raise ParleyError(f"download: {exc}", user_message=texts.DOWNLOAD_FAILED) from exc
    except TelegramError as exc:
        raise ParleyError(f"download: {exc}", user_message=texts.DOWNLOAD_FAILED) from exc
