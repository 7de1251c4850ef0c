"""Typed jobs and callback data: rows written by an older Parley still load, and no button outgrows Telegram."""

from __future__ import annotations

import pytest

from bot.buttons import Press
from bot.callbacks import CallbackDataError
from bot.features.groups.payloads import Summarize
from bot.features.preferences import ModelChoice, VoiceChoice, model_keyboard
from bot.registry import ROUTES
from bot.replies import Retry


def test_callback_data_packs_and_unpacks_within_64_bytes() -> None:
    assert VoiceChoice("coral").pack() == "voice:coral"
    assert Retry.unpack("retry:12") == Retry(12)
    with pytest.raises(CallbackDataError):
        ModelChoice("m" * 60).pack()  # 66 bytes: Telegram would refuse the whole keyboard
    with pytest.raises(CallbackDataError):
        Retry.unpack("retry:twelve")
    with pytest.raises(CallbackDataError):
        VoiceChoice.unpack("model:coral")


def test_a_model_name_too_long_for_a_button_gets_no_button() -> None:
    keyboard = model_keyboard(("gpt-audio", "x" * 70), "gpt-audio")
    assert [b.callback_data for row in keyboard.inline_keyboard for b in row] == ["model:gpt-audio"]


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("converse", {"message": {"message_id": 7}}),  # private: no "text" key
        ("converse", {"message": {"message_id": 7}, "text": None}),
        ("summary", {"span": "", "digest": True}),  # a scheduled digest
        ("retry", {"user_id": 1, "message_id": 9, "data": "retry:5", "job_id": 5}),  # before taps were "button"
        ("usage", {"user_id": 1, "name": None}),  # /usage once shared /model's payload
        ("say", {"what": "help"}),
        ("forget", {}),
    ],
)
def test_rows_written_by_older_versions_still_load(kind: str, payload: dict) -> None:
    job = ROUTES[kind].payload.from_json(payload)
    assert type(job).from_json(job.to_json()) == job


def test_every_route_reads_back_what_it_writes() -> None:
    assert ROUTES["retry"].payload is Press
    digest = Summarize(digest=True)
    assert Summarize.from_json(digest.to_json()) == digest
    assert {route.kind for route in ROUTES.values()} <= set(ROUTES)


def test_one_table_makes_the_menus_and_help() -> None:
    from bot.registry import COMMANDS, Menu, help_text, menu

    everyone = [c.command for c in menu(Menu.EVERYONE)]
    assert everyone[:3] == ["start", "help", "voice"] and "stats" not in everyone
    admins = {c.command for c in menu(Menu.ADMINS)}
    assert {"allow", "deny", "users", "stats"} <= admins and "summary" not in admins
    assert "summary" not in {c.command for c in menu(Menu.PRIVATE_CHATS)}
    assert {"forget", "allow", "usage"}.isdisjoint({c.command for c in menu(Menu.GROUP_CHATS)})
    # Each scope's /help names every command of its menu that has a help line, and nothing else's.
    for which in (Menu.PRIVATE_CHATS, Menu.GROUP_CHATS, Menu.ADMINS):
        shown = {c.command for c in menu(which)}
        for c in COMMANDS:
            if c.help:
                assert (f"/{c.name}" in help_text(which)) == (c.name in shown), (which, c.name)
