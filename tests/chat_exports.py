"""Chat exports shaped like Telegram Desktop's ("Export chat history", JSON): result.json and zipped folders.

Fields, their order, their types and their quirks follow what Telegram Desktop writes: `date` in local ISO
time beside `date_unixtime` as a string; `text` a plain string, or a list of strings and entity objects
when the message has formatting, with `text_entities` beside it; `from_id` "user…" or "channel…"; media
not downloaded marked "(File not included. …)"; service messages with `actor` and `action`; forum topics
as `topic_created` service messages, their messages replying to the topic's root; the history of the basic
group a supergroup replaced with ids shifted below zero.
"""

from __future__ import annotations

import json
import random
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"
EXPORTER_ZONE = timezone(timedelta(hours=1))  # `date` is the exporting computer's local time
MIGRATED_SHIFT = -1_000_000_000


@dataclass(frozen=True)
class Person:
    name: str
    user_id: int

    @property
    def from_id(self) -> str:
        return f"user{self.user_id}"


PEOPLE = (
    Person("Anna Müller", 5012345678),
    Person("Bob Li", 6023456789),
    Person("Zoë Faure", 443322110),
    Person("山田太郎", 7034567890),
    Person("陈伟", 1122334455),
)

LINES = (
    "Has anyone looked at the budget for the spring fair?",
    "I think we can keep it under 1,200 euros if we skip the stage.",
    "Le café est fermé à cause de la grève, on se retrouve à la bibliothèque ?",
    "Ça me va, à 18 h devant l'entrée.",
    "我们下周三开会讨论预算。",
    "明日の会議は十時からです。資料を準備してください。",
    "Can someone bring the extension cords?",
    "The council replied: the permit for the square is approved.",
    "We still need two volunteers for the ticket desk on Saturday.",
    "I'll do the ticket desk in the morning.",
    "Reminder: the printer shop closes at 17:00 on Fridays.",
    "Who has the keys to the shed?",
    "Die Spendenquittungen sind fertig, ich bringe sie mit.",
    "Noted. Let's vote on the poster design tomorrow.",
    "新しいポスターのデザインはとても良いと思います。",
)


def _date_fields(at: float) -> dict[str, str]:
    local = datetime.fromtimestamp(at, EXPORTER_ZONE).replace(tzinfo=None)
    return {"date": local.isoformat(timespec="seconds"), "date_unixtime": str(int(at))}


def _text_fields(text: str | list[Any]) -> dict[str, Any]:
    if isinstance(text, str):
        entities = [{"type": "plain", "text": text}] if text else []
        return {"text": text, "text_entities": entities}
    entities = [{"type": "plain", "text": p} if isinstance(p, str) else p for p in text]
    return {"text": text, "text_entities": entities}


@dataclass
class ExportBuilder:
    """Builds one chat's export message by message, in order, as Telegram Desktop writes it."""

    name: str = "Garden club"
    chat_type: str = "private_supergroup"
    bare_id: int = 1987654321
    start: float = datetime(2026, 11, 2, 8, 0, tzinfo=UTC).timestamp()
    messages: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1
    now: float = 0.0
    topic_of: dict[int, int | None] = field(default_factory=dict)
    """In a forum: the topic each message was written in (None: the General topic), as the writer knew it."""

    def __post_init__(self) -> None:
        self.now = self.start

    @property
    def chat_id(self) -> int:
        return -(10**12 + self.bare_id) if "supergroup" in self.chat_type else -self.bare_id

    def _advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def _take_id(self) -> int:
        message_id = self.next_id
        self.next_id += 1
        return message_id

    def message(
        self,
        who: Person,
        text: str | list[Any] = "",
        *,
        reply_to: int | None = None,
        forwarded_from: str | bool | None = False,
        forwarded_from_id: str | None = None,
        media: dict[str, Any] | None = None,
        edited_after: float | None = None,
        after: float = 60.0,
        message_id: int | None = None,
    ) -> int:
        at = self._advance(after)
        item: dict[str, Any] = {"id": message_id if message_id is not None else self._take_id(), "type": "message"}
        item.update(_date_fields(at))
        if edited_after is not None:
            edited = _date_fields(at + edited_after)
            item["edited"], item["edited_unixtime"] = edited["date"], edited["date_unixtime"]
        item["from"] = who.name
        item["from_id"] = who.from_id
        if forwarded_from is not False:
            item["forwarded_from"] = forwarded_from  # None: the original sender's account is deleted
        if forwarded_from_id is not None:
            item["forwarded_from_id"] = forwarded_from_id
        if reply_to is not None:
            item["reply_to_message_id"] = reply_to
        item.update(media or {})
        item.update(_text_fields(text))
        self.messages.append(item)
        return item["id"]

    def as_group(self, text: str, *, after: float = 60.0) -> int:
        """An anonymous admin's message: the group itself is the sender."""
        at = self._advance(after)
        item = {"id": self._take_id(), "type": "message", **_date_fields(at), "from": self.name,
                "from_id": f"channel{self.bare_id}", **_text_fields(text)}  # fmt: skip
        self.messages.append(item)
        return item["id"]

    def service(self, who: Person, action: str, *, after: float = 30.0, own_id: int | None = None, **extra: Any) -> int:
        at = self._advance(after)
        item = {"id": own_id if own_id is not None else self._take_id(), "type": "service",
                **_date_fields(at), "actor": who.name, "actor_id": who.from_id, "action": action, **extra,
                **_text_fields("")}  # fmt: skip
        self.messages.append(item)
        return item["id"]

    def voice(self, who: Person, seconds: int, *, reply_to: int | None = None, after: float = 60.0) -> int:
        media = {"file": NOT_INCLUDED, "media_type": "voice_message", "mime_type": "audio/ogg",
                 "duration_seconds": seconds}  # fmt: skip
        return self.message(who, "", media=media, reply_to=reply_to, after=after)

    def unsupported(self, *, after: float = 10.0) -> int:
        self._advance(after)
        item = {"id": self._take_id(), "type": "unsupported"}
        self.messages.append(item)
        return item["id"]

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.chat_type, "id": self.bare_id, "messages": self.messages}

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.document(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    def zip(self, path: Path, *, folder: str = "ChatExport_2026-11-20", media_files: int = 3) -> Path:
        """The export folder zipped as people do: result.json beside the folders Telegram Desktop makes."""
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{folder}/result.json", json.dumps(self.document(), ensure_ascii=False, indent=1))
            for index in range(media_files):
                archive.writestr(f"{folder}/photos/photo_{index + 1}@02-11-2026_09-00-00.jpg", bytes(range(256)) * 8)
        return path


def realistic_export(*, count: int = 300, seed: int = 18, forum: bool = False, **chat: Any) -> ExportBuilder:
    """A few weeks of a busy group: several authors in several languages, replies, forwards, voice notes,
    photos with captions, stickers, a poll, formatted text, edits, service messages; in a forum, topics."""
    rng = random.Random(seed)
    export = ExportBuilder(**chat)
    anna, bob, zoe, yamada, chen = PEOPLE
    # The basic group's history comes first, its ids shifted below zero, ending with the migration.
    for k, line in enumerate(LINES[:4], start=1):
        export.message(rng.choice(PEOPLE), line, message_id=MIGRATED_SHIFT + 10 * k, after=600)
    export.service(anna, "migrate_to_supergroup", own_id=MIGRATED_SHIFT + 50)
    export.service(anna, "migrate_from_group", title=export.name)
    export.service(anna, "invite_members", members=[bob.name, zoe.name, yamada.name, chen.name])
    topics: list[int] = []
    if forum:
        topics = [export.service(anna, "topic_created", title="Budget"),
                  export.service(bob, "topic_created", title="Events")]  # fmt: skip
    recent: list[int] = []
    topic_of = export.topic_of
    for _ in range(count):
        who = rng.choice(PEOPLE)
        topic = rng.choice([*topics, None]) if topics else None
        in_topic = [m for m in recent[-15:] if topic_of.get(m) == topic]
        reply_to = rng.choice(in_topic) if in_topic and rng.random() < 0.3 else topic
        after = rng.choice([15, 40, 90, 300, 1800, 7200])
        roll = rng.random()
        if roll < 0.08:
            message_id = export.voice(who, rng.randint(3, 95), reply_to=reply_to, after=after)
        elif roll < 0.13:
            origin = rng.choice(["Tech News", "City Council", None])
            message_id = export.message(who, rng.choice(LINES), forwarded_from=origin, reply_to=topic, after=after)
        elif roll < 0.17:
            photo = {"photo": NOT_INCLUDED, "width": 1280, "height": 960}
            message_id = export.message(who, rng.choice(["", "The new poster", "Regardez ça !"]), media=photo,
                                        reply_to=reply_to, after=after)  # fmt: skip
        elif roll < 0.20:
            sticker = {"file": NOT_INCLUDED, "thumbnail": NOT_INCLUDED, "media_type": "sticker",
                       "sticker_emoji": "👍", "width": 512, "height": 512}  # fmt: skip
            message_id = export.message(who, "", media=sticker, reply_to=reply_to, after=after)
        elif roll < 0.24:
            formatted = ["Budget update: ", {"type": "bold", "text": "€1,150"}, " so far, see ",
                         {"type": "link", "text": "https://example.org/budget"}, " — thanks ",
                         {"type": "mention", "text": "@zoe_f"}]  # fmt: skip
            message_id = export.message(who, formatted, reply_to=reply_to, after=after, edited_after=120)
        else:
            message_id = export.message(who, rng.choice(LINES), reply_to=reply_to, after=after)
        topic_of[message_id] = topic
        recent.append(message_id)
        if rng.random() < 0.01:
            export.service(who, "pin_message", message_id=message_id)
    poll = {"poll": {"question": "Which Saturday for the fair?", "closed": False, "total_voters": 4,
                     "answers": [{"text": "14 March", "voters": 3, "chosen": False},
                                 {"text": "21 March", "voters": 1, "chosen": True}]}}  # fmt: skip
    export.message(anna, "", media=poll)
    export.as_group("Fair committee notice: the meeting moves to Thursday.")
    export.unsupported()
    return export
