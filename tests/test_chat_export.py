"""Reading Telegram Desktop chat exports: what comes out of a real-looking export, and what is refused."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from parley.chat_export import DEFAULT_LIMITS, ChatExport, ExportError, ImportLimits, flatten_text, group_chat_id
from storage.groups import GroupMessage
from tests.chat_exports import MIGRATED_SHIFT, PEOPLE, ExportBuilder, realistic_export


def read_all(
    path: Path, limits: ImportLimits = DEFAULT_LIMITS, size: int = 500
) -> tuple[ChatExport, list[GroupMessage]]:
    with ChatExport(path, limits) as export:
        messages = [m for batch in export.batches(size) for m in batch]
    return export, messages


def test_a_supergroup_export_becomes_log_entries(tmp_path: Path) -> None:
    built = realistic_export(count=300)
    export, messages = read_all(built.write(tmp_path / "result.json"))
    assert export.chat.chat_id == -1001987654321 == built.chat_id
    assert export.chat.name == "Garden club"
    written = [m for m in built.messages if m["type"] == "message" and m["id"] > 0]
    assert [m.message_id for m in messages] == [m["id"] for m in written]
    assert export.counts.messages == len(written) == 300 + 2  # the loop's 300, the poll, the admin's notice
    assert {m.chat_id for m in messages} == {built.chat_id}
    by_id = {m.message_id: m for m in messages}
    people = {p.user_id: p.name for p in PEOPLE}
    for raw in written:
        entry = by_id[raw["id"]]
        assert entry.sent_at == float(raw["date_unixtime"])
        assert entry.reply_to == raw.get("reply_to_message_id")
        assert entry.thread_id is None  # not a forum
        if raw["from_id"].startswith("user"):
            assert people[entry.user_id] == entry.author == raw["from"]
        else:
            assert entry.user_id is None and entry.author == "Garden club"
        if "forwarded_from" in raw:
            assert entry.forwarded_from == (raw["forwarded_from"] or "someone")
        else:
            assert entry.forwarded_from is None
    kinds = {m.kind for m in messages}
    assert {"text", "voice", "photo", "sticker", "poll"} <= kinds
    voices = [m for m in messages if m.kind == "voice"]
    assert voices and all(m.text is None and m.transcript_state is None for m in voices)
    formatted = next(m for m in messages if m.text and m.text.startswith("Budget update"))
    assert formatted.text == "Budget update: €1,150 so far, see https://example.org/budget — thanks @zoe_f"
    poll = next(m for m in messages if m.kind == "poll")
    assert poll.text == "Which Saturday for the fair? (14 March / 21 March)"
    assert any(m.text == "我们下周三开会讨论预算。" for m in messages)
    # The basic group's history (ids below zero), service messages and the unsupported one are not entries.
    assert all(m.message_id > 0 for m in messages)
    assert export.counts.skipped == 4 + 1 + 1  # the old group's four messages and its last service one, an unsupported
    assert export.counts.service == sum(1 for m in built.messages if m["type"] == "service" and m["id"] > 0)


def test_forum_topics_come_from_topic_roots_and_reply_chains(tmp_path: Path) -> None:
    built = realistic_export(count=250, forum=True, seed=3)
    _, messages = read_all(built.write(tmp_path / "result.json"))
    assert len(built.topic_of) == 250
    threads = {m.message_id: m.thread_id for m in messages}
    for message_id, topic in built.topic_of.items():
        assert threads[message_id] == topic, message_id
    assert {t for t in threads.values()} == {None, 3, 4}


def test_a_zipped_export_folder_reads_the_same(tmp_path: Path) -> None:
    built = realistic_export(count=120)
    _, plain = read_all(built.write(tmp_path / "result.json"))
    export, zipped = read_all(built.zip(tmp_path / "export.zip"), size=50)
    assert zipped == plain
    assert export.total_bytes == (tmp_path / "result.json").stat().st_size


def test_batches_are_bounded(tmp_path: Path) -> None:
    built = realistic_export(count=130)
    with ChatExport(built.write(tmp_path / "result.json")) as export:
        sizes = [len(batch) for batch in export.batches(40)]
    assert sizes == [40, 40, 40, 12]


def test_a_forward_from_a_person_keeps_their_id_and_from_a_channel_none(tmp_path: Path) -> None:
    """So that the person's /forget finds the forwards of their messages that an import brought in."""
    built = ExportBuilder()
    built.message(PEOPLE[0], "the venue is booked", forwarded_from=PEOPLE[1].name, forwarded_from_id=PEOPLE[1].from_id)
    built.message(
        PEOPLE[0], "road works all week", forwarded_from="City Council", forwarded_from_id="channel1500000000"
    )
    _, (person, channel) = read_all(built.write(tmp_path / "result.json"))
    assert (person.forwarded_from, person.forwarded_from_id) == (PEOPLE[1].name, PEOPLE[1].user_id)
    assert (channel.forwarded_from, channel.forwarded_from_id) == ("City Council", None)


def test_a_basic_group_export_has_the_negative_id() -> None:
    assert group_chat_id("private_group", 4455667) == -4455667
    assert group_chat_id("public_supergroup", 1234567890) == -1001234567890
    assert group_chat_id("personal_chat", 42) is None
    assert group_chat_id("private_channel", 42) is None


def test_flatten_text_joins_strings_and_entities() -> None:
    assert flatten_text("plain") == "plain"
    assert flatten_text(["a ", {"type": "bold", "text": "b"}, " c", {"type": "custom_emoji", "text": "🎉",
                        "document_id": "x"}]) == "a b c🎉"  # fmt: skip
    assert flatten_text(None) == ""


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"about": "Here is the data you requested.", "personal_information": {"user_id": 1}, "chats": {}},
         "whole account"),
        ({"name": "Anna Müller", "type": "personal_chat", "id": 5012345678, "messages": []}, "not of a group"),
        ({"name": "News", "type": "public_channel", "id": 1500000000, "messages": []}, "not of a group"),
        ({"name": "Garden club", "type": "private_supergroup", "id": 1987654321}, "no messages"),
        ([1, 2, 3], "not a chat export"),
    ],
)  # fmt: skip
def test_other_exports_are_refused_plainly(tmp_path: Path, document: object, says: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ExportError) as caught:
        read_all(path)
    assert says in caught.value.user_message


def test_an_html_export_gets_told_to_choose_json(tmp_path: Path) -> None:
    page = tmp_path / "messages.html"
    page.write_text('<!DOCTYPE html>\n<html>\n <head>\n  <meta charset="utf-8"/>\n  <title>Exported Data</title>')
    with pytest.raises(ExportError) as caught:
        read_all(page)
    assert "JSON" in caught.value.user_message
    folder = tmp_path / "html.zip"
    with zipfile.ZipFile(folder, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ChatExport_2026-11-20/messages.html", page.read_text())
        archive.writestr("ChatExport_2026-11-20/css/style.css", "body { margin: 0 }")
    with pytest.raises(ExportError) as caught:
        read_all(folder)
    assert "JSON" in caught.value.user_message


def test_a_cut_or_broken_file_is_refused(tmp_path: Path) -> None:
    text = realistic_export(count=40).write(tmp_path / "result.json").read_text(encoding="utf-8")
    (tmp_path / "cut.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ExportError) as caught:
        read_all(tmp_path / "cut.json")
    assert "cut short" in caught.value.user_message
    (tmp_path / "broken.json").write_text(text.replace('"type": "message"', '"type": message', 1), encoding="utf-8")
    with pytest.raises(ExportError) as caught:
        read_all(tmp_path / "broken.json")
    assert "damaged" in caught.value.user_message


def test_size_limits_hold(tmp_path: Path) -> None:
    path = realistic_export(count=60).write(tmp_path / "result.json")
    size = path.stat().st_size
    with pytest.raises(ExportError, match="file of"):
        ChatExport(path, ImportLimits(file_bytes=size - 1))
    with pytest.raises(ExportError, match="larger than"):  # the real bytes, counted as they are read
        read_all(path, ImportLimits(json_bytes=size // 2))
    with pytest.raises(ExportError, match="more than 20 messages"):
        read_all(path, ImportLimits(messages=20))


def test_a_giant_message_is_refused_and_long_texts_are_cut(tmp_path: Path) -> None:
    builder = ExportBuilder()
    builder.message(PEOPLE[0], "x" * 20_000)
    _, messages = read_all(builder.write(tmp_path / "long.json"), ImportLimits(text_chars=4096))
    assert messages[0].text == "x" * 4096
    giant = ExportBuilder()
    giant.message(PEOPLE[0], "hello")
    giant.message(PEOPLE[1], ["y", *({"type": "bold", "text": "z" * 50} for _ in range(20_000))])
    with pytest.raises(ExportError, match="size limit"):
        read_all(giant.write(tmp_path / "giant.json"), ImportLimits(message_bytes=256 * 1024))


def _member_offsets(data: bytes) -> tuple[int, int]:
    central = data.rindex(b"PK\x01\x02")
    return data.index(b"PK\x03\x04"), central


def test_zip_bombs_are_refused_before_they_unpack(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        head = b'{"name": "x", "type": "private_supergroup", "id": 1, "messages": ['
        archive.writestr("ChatExport/result.json", head + b" " * (30 * 1024 * 1024) + b"]}")
    assert bomb.stat().st_size < 100 * 1024  # ~1000:1
    with pytest.raises(ExportError, match="compression ratio"):
        read_all(bomb)
    with pytest.raises(ExportError, match="declares"):
        read_all(bomb, ImportLimits(json_bytes=10 * 1024 * 1024))
    crowded = tmp_path / "crowded.zip"
    with zipfile.ZipFile(crowded, "w") as archive:
        archive.writestr("ChatExport/result.json", realistic_export(count=5).write(tmp_path / "r.json").read_bytes())
        for index in range(30):
            archive.writestr(f"ChatExport/files/{index}.txt", b"")
    with pytest.raises(ExportError, match="members"):
        read_all(crowded, ImportLimits(zip_members=20))


def test_a_zip_that_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    """Declared sizes are rewritten small in both headers: the real stream gives more, and is refused."""
    source = realistic_export(count=80).write(tmp_path / "result.json").read_bytes()
    liar = tmp_path / "liar.zip"
    with zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ChatExport/result.json", source)
    data = bytearray(liar.read_bytes())
    local, central = _member_offsets(bytes(data))
    small = 4096
    struct.pack_into("<I", data, local + 22, small)  # local header: uncompressed size
    struct.pack_into("<I", data, central + 24, small)  # central directory: uncompressed size
    liar.write_bytes(bytes(data))
    with pytest.raises(ExportError) as caught:
        read_all(liar)
    assert "damaged" in caught.value.user_message or "cut short" in caught.value.user_message


def test_encrypted_or_several_exports_in_one_zip_are_refused(tmp_path: Path) -> None:
    body = realistic_export(count=5).write(tmp_path / "r.json").read_bytes()
    double = tmp_path / "double.zip"
    with zipfile.ZipFile(double, "w") as archive:
        archive.writestr("ChatExport_1/result.json", body)
        archive.writestr("ChatExport_2/result.json", body)
    with pytest.raises(ExportError, match="several"):
        read_all(double)
    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(locked, "w") as archive:
        archive.writestr("ChatExport/result.json", body)
    data = bytearray(locked.read_bytes())
    local, central = _member_offsets(bytes(data))
    struct.pack_into("<H", data, local + 6, 0x1)  # general purpose flag: encrypted
    struct.pack_into("<H", data, central + 8, 0x1)
    locked.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="encrypted"):
        read_all(locked)


def test_migrated_history_ids_are_below_zero_in_the_fixture() -> None:
    """The fixture follows Telegram Desktop: a supergroup's export starts with the old group's shifted ids."""
    built = realistic_export(count=10)
    assert built.messages[0]["id"] == MIGRATED_SHIFT + 10
