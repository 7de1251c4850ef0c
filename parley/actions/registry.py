"""Finding tools: every tool, built-in or third-party, is a `parley.tools` entry point.

Parley's own tools are declared in its pyproject.toml exactly as a plugin on PyPI declares its own, so
there is one way in. An entry point's name is what PARLEY_TOOLS enables (`reminders,datetime`); its
object is a Tool, a list of Tools, a small class with `name`, `description`, `parameters` and an async
`__call__(context, **arguments)`, or a function without arguments that returns any of these.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from parley.actions.base import Tool
from parley.actions.schema import SchemaError, check_schema

log = logging.getLogger(__name__)

GROUP = "parley.tools"


class PluginError(Exception):
    """A tool that cannot be offered: unknown, broken, or with a schema outside the supported subset."""


def available() -> dict[str, EntryPoint]:
    """Every installed tool package by the name PARLEY_TOOLS uses for it."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(names: Iterable[str], installed: Mapping[str, EntryPoint] | None = None) -> list[Tool]:
    """The tools of the named entry points, checked; PluginError naming the first that cannot be used."""
    installed = available() if installed is None else installed
    tools: list[Tool] = []
    seen: dict[str, str] = {}
    for name in names:
        entry = installed.get(name)
        if entry is None:
            known = ", ".join(sorted(installed)) or "none installed"
            raise PluginError(f"PARLEY_TOOLS names {name!r}, which is not an installed tool ({known})")
        try:
            loaded = entry.load()
        except Exception as exc:
            raise PluginError(f"tool {name!r} ({entry.value}) could not be imported: {exc}") from exc
        for found in as_tools(loaded, name):
            if found.name in seen:
                raise PluginError(f"tool name {found.name!r} is declared by both {seen[found.name]!r} and {name!r}")
            seen[found.name] = name
            tools.append(found)
        log.info("tools: %s loaded from %s", name, entry.value)
    return tools


def as_tools(obj: Any, origin: str, _depth: int = 0) -> list[Tool]:
    """Normalise what an entry point points at into checked Tools."""
    if isinstance(obj, Tool):
        tools = [obj]
    elif isinstance(obj, list | tuple):
        tools = [t for item in obj for t in as_tools(item, origin, _depth + 1)]
    elif inspect.isclass(obj) or (_depth == 0 and callable(obj) and not _looks_like_tool(obj)):
        if _depth > 1:
            raise PluginError(f"{origin}: a factory must return tools, not another factory")
        try:
            made = obj()
        except Exception as exc:
            raise PluginError(f"{origin}: could not build its tools: {exc}") from exc
        return as_tools(made, origin, _depth + 1)
    elif _looks_like_tool(obj):
        function = obj.__call__
        if not inspect.iscoroutinefunction(function):
            raise PluginError(f"{origin}: {obj.name}.__call__ must be async")
        try:
            tools = [
                Tool(
                    name=obj.name,
                    description=obj.description,
                    parameters=obj.parameters,
                    function=function,
                    admin_only=bool(getattr(obj, "admin_only", False)),
                    timeout=getattr(obj, "timeout", None),
                    where=getattr(obj, "where", "any"),
                )
            ]
        except (TypeError, ValueError) as exc:
            raise PluginError(f"{origin}: {exc}") from exc
    else:
        raise PluginError(f"{origin}: {type(obj).__name__} is not a tool")
    for found in tools:
        if not inspect.iscoroutinefunction(found.function):
            raise PluginError(f"{origin}: tool {found.name} must be an async function")
        try:
            check_schema(found.parameters, f"{found.name}.parameters")
        except SchemaError as exc:
            raise PluginError(f"{origin}: {exc}") from exc
    return tools


def _looks_like_tool(obj: Any) -> bool:
    return all(hasattr(obj, attribute) for attribute in ("name", "description", "parameters")) and callable(obj)
