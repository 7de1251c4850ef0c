"""Tools: discovered through entry points, checked when loaded, and held to the rules when the model calls them."""

from __future__ import annotations

import json
import logging
import time
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from parley.actions import GROUP, PluginError, Toolbox, ToolCall, ToolContext, available, load
from parley.actions.schema import InvalidArguments, SchemaError, check_schema, validate
from tests import plugin_examples

SECRET = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ"


def installed(**targets: str) -> dict[str, EntryPoint]:
    return {name: EntryPoint(name=name, value=value, group=GROUP) for name, value in targets.items()}


def context(**changes: object) -> ToolContext:
    values: dict[str, object] = {"user_id": 7, "chat_id": 7, "now": time.time(), "timezone": "Europe/Berlin"}
    values.update(changes)
    return ToolContext(**values)  # type: ignore[arg-type]


def call(name: str, arguments: object = None, raw: str | None = None) -> ToolCall:
    return ToolCall(id=f"call_{name}", name=name, arguments=raw if raw is not None else json.dumps(arguments or {}))


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    plugin_examples.calls.clear()


def test_builtins_are_entry_points_like_any_plugin() -> None:
    found = available()
    assert {"datetime", "reminders", "group_memory"} <= set(found)
    assert all(found[name].value.startswith("parley.actions.builtin.") for name in ("datetime", "reminders"))
    names = [t.name for t in load(["datetime", "reminders", "group_memory"])]
    assert names == [
        "current_time", "set_timezone", "create_reminder", "list_reminders", "cancel_reminder",
        "search_group_log", "read_group_log",
    ]  # fmt: skip


def test_a_third_party_entry_point_may_be_a_function_a_class_instance_a_factory_or_a_list() -> None:
    entries = installed(
        one="tests.plugin_examples:echo", made="tests.plugin_examples:factory", cls="tests.plugin_examples:Shout"
    )
    assert [t.name for t in load(["one"], entries)] == ["echo"]
    assert [t.name for t in load(["made"], entries)] == ["echo", "shout"]
    assert [t.name for t in load(["cls"], entries)] == ["shout"]


def test_unknown_broken_and_unchecked_plugins_are_refused_with_a_plain_reason() -> None:
    entries = installed(
        echo="tests.plugin_examples:echo",
        also_echo="tests.plugin_examples:factory",
        missing="tests.no_such_module:tool",
        sync="tests.plugin_examples:sync_tool",
        loose="tests.plugin_examples:bad_schema",
    )
    with pytest.raises(PluginError, match=r"'weather'.*also_echo, echo, loose, missing, sync"):
        load(["weather"], entries)
    with pytest.raises(PluginError, match="could not be imported"):
        load(["missing"], entries)
    with pytest.raises(PluginError, match="async"):
        load(["sync"], entries)
    with pytest.raises(PluginError, match="oneOf"):
        load(["loose"], entries)
    with pytest.raises(PluginError, match="'echo' is declared by both"):
        load(["echo", "also_echo"], entries)


def test_schemas_outside_the_subset_are_refused_and_arguments_are_checked_against_the_rest() -> None:
    unsupported: list[dict[str, Any]] = [
        {"type": "array", "items": {"type": "string"}},  # the top must be an object
        {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
    ]
    for wrong in unsupported:
        with pytest.raises(SchemaError):
            check_schema(wrong)
    schema = plugin_examples.ECHO_SCHEMA
    validate({"word": "hi", "times": 2}, schema)
    for bad, reason in (
        ({}, "word is required"),
        ({"word": "hi", "times": 4}, "at most 3"),
        ({"word": "hi", "times": True}, "expected integer, got boolean"),
        ({"word": "hi", "times": 1.5}, "expected integer, got number"),
        ({"word": ""}, "at least 1 characters"),
        ({"word": "hi", "for_user": 8}, "unexpected for_user"),
        ([], "expected object"),
    ):
        with pytest.raises(InvalidArguments, match=reason):
            validate(bad, schema)


async def test_a_valid_call_runs_with_the_callers_context() -> None:
    box = Toolbox(load(["made"], installed(made="tests.plugin_examples:factory")))
    outcome = await box.run(call("echo", {"word": "hi", "times": 2}), context(user_id=42, chat_id=42))
    assert outcome.ok
    assert json.loads(outcome.content) == {"said": "hi hi", "for_user": 42}
    assert (await box.run(call("shout", {"word": "hi"}), context())).content == "HI"
    assert plugin_examples.calls == [("echo", {"word": "hi", "times": 2}), ("shout", {"word": "hi"})]


async def test_malformed_or_invalid_arguments_never_reach_the_tool() -> None:
    box = Toolbox([plugin_examples.echo])
    for bad in (
        call("echo", raw="{word: hi}"),
        call("echo", {"word": "hi", "user_id": 99}),
        call("echo", {"times": 2}),
        call("echo", raw=json.dumps({"word": "x" * 10_000})),
        call("nonexistent", {}),
    ):
        outcome = await box.run(bad, context())
        assert not outcome.ok
        assert "error" in json.loads(outcome.content)
    assert plugin_examples.calls == []


async def test_a_slow_tool_is_stopped_at_the_timeout_and_a_tool_may_only_shorten_it() -> None:
    box = Toolbox([plugin_examples.slow, plugin_examples.hasty], timeout=0.3)
    started = time.perf_counter()
    outcome = await box.run(call("slow", {"seconds": 30}), context())
    assert time.perf_counter() - started < 5
    assert not outcome.ok and "took too long (over 0.3 s)" in outcome.content
    started = time.perf_counter()
    outcome = await Toolbox([plugin_examples.hasty], timeout=60).run(call("hasty"), context())
    assert time.perf_counter() - started < 5
    assert not outcome.ok and "over 0.2 s" in outcome.content
    assert (await box.run(call("slow", {"seconds": 0}), context())).ok


async def test_results_are_cut_to_the_size_limit() -> None:
    box = Toolbox([plugin_examples.big], result_chars=500)
    outcome = await box.run(call("big", {"size": 100_000}), context())
    assert len(outcome.content) == 500
    assert outcome.content.endswith("[cut: the result had 100000 characters, the limit is 500]")
    assert (await box.run(call("big", {"size": 499}), context())).content == "x" * 499


async def test_secrets_are_never_sent_into_a_tool_nor_returned_from_one(monkeypatch: pytest.MonkeyPatch) -> None:
    box = Toolbox([plugin_examples.parrot], secrets=[SECRET])
    refused = await box.run(call("parrot", {"text": f"token {SECRET}"}), context())
    assert not refused.ok and SECRET not in refused.content
    assert plugin_examples.calls == []

    monkeypatch.setenv("EXAMPLE_PLUGIN_KEY", SECRET)
    outcome = await Toolbox([plugin_examples.leaky], secrets=[SECRET]).run(call("leaky"), context())
    assert outcome.content == "key: [redacted]"


async def test_admin_tools_only_for_admins_and_group_tools_only_in_groups() -> None:
    box = Toolbox([plugin_examples.echo, plugin_examples.wipe, plugin_examples.group_only])
    person, admin = context(), context(is_admin=True)
    assert [d["function"]["name"] for d in box.offer(person)] == ["echo"]
    assert [d["function"]["name"] for d in box.offer(admin)] == ["echo", "wipe"]
    assert [d["function"]["name"] for d in box.offer(context(chat_id=-100, in_group=True))] == ["echo", "group_only"]
    refused = await box.run(call("wipe"), person)  # named anyway: the model may invent a call
    assert not refused.ok
    assert plugin_examples.calls == []
    assert (await box.run(call("wipe"), admin)).content == "wiped"


async def test_a_failing_tool_gives_the_model_a_sentence_and_the_log_the_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Toolbox([plugin_examples.broken, plugin_examples.refuses])
    with caplog.at_level(logging.ERROR, logger="parley.actions.runner"):
        outcome = await box.run(call("broken"), context())
    assert json.loads(outcome.content) == {"error": "the tool failed"}
    assert "/srv/parley/secret/path.py" in caplog.text
    refused = await box.run(call("refuses"), context())
    assert json.loads(refused.content) == {"error": "the moon is not available today"}
    assert not refused.ok
