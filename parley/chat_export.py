"""Telegram Desktop's chat export ("Export chat history", JSON format) read into group-log entries.

Bots cannot read what was said before they joined; an admin's export can fill that gap. The export is
`result.json` (also inside a .zip, as people send folders), written by Telegram Desktop with the chat's
`name`, `type` and `id` before its `messages` array, so one streaming pass checks the chat and then yields
messages in batches: memory stays at one batch however long the history is.

Everything is bounded before it costs: the file's size, the JSON's real (not declared) uncompressed size,
a zip's member count and compression ratio, the number of messages, the bytes of one message object and
the characters of one text. The parser is synchronous CPU work: callers step it off the event loop.

The export's own shape decides the rest: `from_id` is "user123" for people and "channel123" for chats
posting as themselves; `text` is a string or a list of strings and entity objects; a forum's topics are
the `topic_created` service messages, and a message belongs to a topic when it replies to the topic's root
or to a message in that topic (the export keeps only `reply_to_message_id`).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from parley.errors import ParleyError
from parley.i18n.marks import N_
from storage.groups import UNNAMED, GroupMessage

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportLimits:
    file_bytes: int = 20 * MB
    """The file as sent: what a bot can download through the cloud Bot API."""
    json_bytes: int = 256 * MB
    """result.json itself, counted as it is decompressed (a zip's declared sizes are only a first check)."""
    zip_members: int = 20_000
    """An export folder with its media can hold many files; more than this is not an export."""
    zip_ratio: int = 100
    """Declared uncompressed / compressed size of result.json in a zip; JSON compresses ~5-20x, bombs ~1000x."""
    messages: int = 500_000
    message_bytes: int = 256 * 1024
    """One message object's JSON; a Telegram message holds at most 4,096 characters plus its entities."""
    text_chars: int = 8_192


DEFAULT_LIMITS = ImportLimits()

FILE_NOT_INCLUDED = "(File not included"
SUPERGROUP_TYPES = ("private_supergroup", "public_supergroup")
GROUP_TYPES = ("private_group",)

_MEDIA_KINDS = {
    "voice_message": "voice",
    "video_message": "video_note",
    "audio_file": "audio",
    "video_file": "video",
    "animation": "animation",
    "sticker": "sticker",
}


class ExportError(ParleyError):
    user_message = N_("That file is not a chat export I can read.")


@dataclass(frozen=True, slots=True)
class ExportChat:
    name: str
    type: str
    bare_id: int

    @property
    def chat_id(self) -> int:
        """The chat's id as the Bot API gives it: -100… for supergroups, minus the id for basic groups."""
        if self.type in SUPERGROUP_TYPES:
            return -(10**12 + self.bare_id)
        return -self.bare_id


@dataclass(slots=True)
class ExportCounts:
    messages: int = 0
    duplicates: int = 0
    service: int = 0
    skipped: int = 0
    """Messages without a usable id or time, unsupported ones, and the history of the basic group a
    supergroup replaced: Telegram Desktop shifts those ids below zero (they are another chat's, and no link
    leads to them)."""


def group_chat_id(chat_type: str, bare_id: int) -> int | None:
    if chat_type in SUPERGROUP_TYPES:
        return -(10**12 + bare_id)
    if chat_type in GROUP_TYPES:
        return -bare_id
    return None


def flatten_text(value: object) -> str:
    """`text` as the export writes it: a plain string, or a list of strings and {"type", "text"} parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in value
                       if isinstance(part, str | dict))  # fmt: skip
    return ""


class _Counted(io.RawIOBase):
    """A reader that refuses to go past `limit` bytes (the real size, whatever a header declared)."""

    def __init__(self, inner: IO[bytes], limit: int, what: str) -> None:
        self.inner = inner
        self.limit = limit
        self.what = what
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        try:
            data = self.inner.read(min(len(view), self.limit - self.count + 1))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a CRC or size that does not match, a cut stream
            raise ExportError(f"damaged zip member: {exc}", user_message=ZIP_DAMAGED) from exc
        self.count += len(data)
        if self.count > self.limit:
            raise ExportError(
                f"{self.what} is larger than {self.limit} bytes",
                user_message=TOO_LARGE,
                values={"megabytes": self.limit // MB},
            )
        view[: len(data)] = data
        return len(data)


def _open_zip(path: Path, limits: ImportLimits) -> tuple[zipfile.ZipFile, IO[bytes], int]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportError(f"unreadable zip: {exc}", user_message=ZIP_DAMAGED) from exc
    try:
        members = archive.infolist()
        if len(members) > limits.zip_members:
            raise ExportError(f"zip with {len(members)} members", user_message=N_("That .zip holds too many files."))
        names = [m for m in members if PurePosixPath(m.filename).name == "result.json" and not m.is_dir()]
        if not names:
            if any(PurePosixPath(m.filename).name == "messages.html" for m in members):
                raise ExportError("HTML export", user_message=NEEDS_JSON)
            raise ExportError("no result.json in the zip", user_message=N_("That .zip has no result.json in it."))
        if len(names) > 1:
            raise ExportError(
                "several result.json in the zip", user_message=N_("That .zip holds several exports: send one chat's.")
            )
        member = names[0]
        if member.flag_bits & 0x1:
            raise ExportError("encrypted member", user_message=N_("That .zip is password-protected."))
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ExportError(
                f"compression method {member.compress_type}",
                user_message=N_("That .zip uses a compression I don't read: zip it again with the usual settings."),
            )
        if member.file_size > limits.json_bytes:
            raise ExportError(
                f"result.json declares {member.file_size} bytes",
                user_message=TOO_LARGE,
                values={"megabytes": limits.json_bytes // MB},
            )
        if member.file_size > limits.zip_ratio * max(member.compress_size, 1):
            raise ExportError(
                f"compression ratio {member.file_size}/{member.compress_size}",
                user_message=N_("That .zip does not look like a chat export."),
            )
        inner = archive.open(member)
    except BaseException:
        archive.close()
        raise
    return archive, inner, member.file_size


NEEDS_JSON = N_(
    "That export is in HTML. Export the chat again with the format set to “Machine-readable JSON” and send "
    "me result.json (or a .zip of the export folder)."
)

CUT_SHORT = N_("That export is cut short: send it again.")
TOO_LARGE = N_("That export is too large: I import up to {megabytes} MB of chat history.")
NOT_AN_EXPORT = N_("That file is not a chat export.")
DAMAGED = N_("That export is damaged: send it again.")
ZIP_DAMAGED = N_("That .zip file is damaged.")


class ChatExport:
    """One export file, read once: `chat` first (checked by the caller), then `batches()`.

    Use as a context manager; every method is blocking and belongs off the event loop.
    """

    def __init__(self, path: Path | str, limits: ImportLimits = DEFAULT_LIMITS) -> None:
        self.path = Path(path)
        self.limits = limits
        self.counts = ExportCounts()
        self._archive: zipfile.ZipFile | None = None
        size = self.path.stat().st_size
        if size > limits.file_bytes:
            raise ExportError(
                f"file of {size} bytes",
                user_message=N_("That file is too large: I read exports up to {megabytes} MB."),
                values={"megabytes": limits.file_bytes // MB},
            )
        with self.path.open("rb") as probe:
            head = probe.read(512)
        magic = head[:4]
        self._looks_html = head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
        if magic == b"PK\x03\x04":
            self._archive, raw, self.total_bytes = _open_zip(self.path, limits)
        else:
            raw, self.total_bytes = self.path.open("rb"), size
        self._reader = _Counted(raw, limits.json_bytes, "result.json")
        # ijson is imported here, not with the module: the bot imports this module at start, and only an
        # /import of a chat export needs the parser.
        import ijson.common

        self._json_error = ijson.common.JSONError
        self._object_builder = ijson.common.ObjectBuilder
        self._events = ijson.parse(io.BufferedReader(self._reader, 64 * 1024), use_float=True)
        self.chat = self._read_header()

    def __enter__(self) -> ChatExport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.inner.close()
        if self._archive is not None:
            self._archive.close()

    @property
    def bytes_read(self) -> int:
        return self._reader.count

    def _next(self) -> tuple[str, str, Any]:
        try:
            return next(self._events)
        except StopIteration:
            raise ExportError("the JSON ended early", user_message=CUT_SHORT) from None
        except self._json_error as exc:
            if self._looks_html:
                raise ExportError("not JSON", user_message=NEEDS_JSON) from exc
            if "premature EOF" in str(exc):
                raise ExportError("the JSON ended early", user_message=CUT_SHORT) from exc
            raise ExportError(f"broken JSON: {exc}", user_message=DAMAGED) from exc

    def _read_header(self) -> ExportChat:
        fields: dict[str, Any] = {}
        prefix, event, value = self._next()
        if event != "start_map":
            raise ExportError("the JSON is not an object", user_message=NOT_AN_EXPORT)
        while True:
            prefix, event, value = self._next()
            if prefix == "" and event == "end_map":
                raise ExportError("no messages", user_message=N_("That export has no messages in it."))
            if event != "map_key":
                continue
            key = value
            if key in ("chats", "left_chats", "personal_information"):
                raise ExportError(
                    "a whole-account export",
                    user_message=N_(
                        "That is an export of a whole account. Export just this group: in the group's menu choose "
                        "“Export chat history”, format JSON."
                    ),
                )
            if key in ("name", "type", "id"):
                _, kind, scalar = self._next()
                fields[key] = scalar if kind in ("string", "number", "null") else None
                continue
            if key == "messages":
                break
            self._skip_value()
        chat_type, bare_id = fields.get("type"), fields.get("id")
        if not isinstance(chat_type, str) or not isinstance(bare_id, int):
            raise ExportError("no chat type or id before the messages", user_message=NOT_AN_EXPORT)
        if group_chat_id(chat_type, bare_id) is None:
            raise ExportError(
                f"a {chat_type} export", user_message=N_("That export is not of a group: export the group's history.")
            )
        prefix, event, _ = self._next()
        if event != "start_array":
            raise ExportError("messages is not a list", user_message=NOT_AN_EXPORT)
        return ExportChat(name=str(fields.get("name") or ""), type=chat_type, bare_id=bare_id)

    def _skip_value(self) -> None:
        depth = 0
        while True:
            _, event, _ = self._next()
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            if depth <= 0:
                return

    def _raw_messages(self) -> Iterator[dict[str, Any]]:
        while True:
            _, event, value = self._next()
            if event == "end_array":
                return
            if event != "start_map":
                raise ExportError("a message is not an object", user_message=DAMAGED)
            start = self._reader.count
            builder = self._object_builder()
            builder.event(event, value)
            depth = 1
            while depth:
                _, event, value = self._next()
                builder.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                if self._reader.count - start > self.limits.message_bytes + 64 * 1024:  # one read-ahead buffer
                    raise ExportError(
                        "a message object over the size limit",
                        user_message=N_(
                            "That export has a message larger than Telegram allows: it is not a Telegram Desktop "
                            "export."
                        ),
                    )
            if isinstance(builder.value, dict):
                yield builder.value

    def batches(self, size: int = 500) -> Iterator[list[GroupMessage]]:
        """The export's messages as log entries for `self.chat`, `size` at a time, each id once."""
        reader = _Reader(self.chat.chat_id, self.limits, self.counts)
        batch: list[GroupMessage] = []
        for raw in self._raw_messages():
            entry = reader.entry(raw)
            if entry is None:
                continue
            batch.append(entry)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


class _Reader:
    """Turns raw export messages into log entries, remembering what later messages refer to: the forum's
    topic roots, each message's topic, and the ids already seen."""

    def __init__(self, chat_id: int, limits: ImportLimits, counts: ExportCounts) -> None:
        self.chat_id = chat_id
        self.limits = limits
        self.counts = counts
        self.seen: set[int] = set()
        self.topics: set[int] = set()
        self.topic_of: dict[int, int] = {}

    def entry(self, raw: dict[str, Any]) -> GroupMessage | None:
        message_id = raw.get("id")
        if not isinstance(message_id, int) or message_id <= 0:
            self.counts.skipped += 1
            return None
        if raw.get("type") == "service":
            self.counts.service += 1
            if raw.get("action") == "topic_created":
                self.topics.add(message_id)
            return None
        if raw.get("type") != "message":
            self.counts.skipped += 1
            return None
        sent_at = _unixtime(raw.get("date_unixtime"))
        if sent_at is None:
            self.counts.skipped += 1
            return None
        if message_id in self.seen:
            self.counts.duplicates += 1
            return None
        if self.counts.messages >= self.limits.messages:
            raise ExportError(
                f"more than {self.limits.messages} messages",
                user_message=N_(
                    "That export has more than {count} messages: export a shorter period (the export dialog has "
                    "a date range)."
                ),
                values={"count": self.limits.messages},
            )
        self.seen.add(message_id)
        self.counts.messages += 1
        reply_to = raw.get("reply_to_message_id")
        if not isinstance(reply_to, int) or "reply_to_peer_id" in raw:
            reply_to = None  # a reply to another chat's message has no place in this log
        thread = None
        if reply_to is not None and self.topics:
            thread = reply_to if reply_to in self.topics else self.topic_of.get(reply_to)
        if thread is not None:
            self.topic_of[message_id] = thread
        kind, text = _kind_and_text(raw)
        if text and len(text) > self.limits.text_chars:
            text = text[: self.limits.text_chars]
        author, user_id = _author(raw)
        forwarded = None
        if "forwarded_from" in raw:
            forwarded = raw["forwarded_from"] if isinstance(raw["forwarded_from"], str) else UNNAMED
        return GroupMessage(
            chat_id=self.chat_id,
            message_id=message_id,
            thread_id=thread,
            user_id=user_id,
            author=author,
            kind=kind,
            text=text or None,
            transcript_state=None,
            forwarded_from=forwarded,
            forwarded_from_id=_user_id(raw.get("forwarded_from_id")),
            reply_to=reply_to,
            sent_at=sent_at,
        )


def _unixtime(value: object) -> float | None:
    if isinstance(value, str) and value.isdigit():
        return float(value)
    if isinstance(value, int) and value > 0:
        return float(value)
    return None


def _author(raw: dict[str, Any]) -> tuple[str, int | None]:
    name = raw.get("from")
    name = name.strip() if isinstance(name, str) and name.strip() else "Deleted Account"
    return name, _user_id(raw.get("from_id"))


def _user_id(peer: object) -> int | None:
    """A person's id from an export's peer ("user123"; channels and chats are not people)."""
    if isinstance(peer, str) and peer.startswith("user") and peer[4:].isdigit():
        return int(peer[4:])
    return None


def _kind_and_text(raw: dict[str, Any]) -> tuple[str, str]:
    text = flatten_text(raw.get("text")).strip()
    media = raw.get("media_type")
    if isinstance(media, str) and media in _MEDIA_KINDS:
        return _MEDIA_KINDS[media], text
    if "photo" in raw:
        return "photo", text
    if isinstance(raw.get("poll"), dict):
        poll = raw["poll"]
        answers = [str(a.get("text", "")) for a in poll.get("answers", []) if isinstance(a, dict)]
        question = str(poll.get("question", ""))
        return "poll", f"{question} ({' / '.join(answers)})" if answers else question
    if "location_information" in raw or "place_name" in raw:
        return "location", text or str(raw.get("place_name") or "")
    if "contact_information" in raw:
        return "contact", text
    if "file" in raw:
        return "document", text
    return "text", text
