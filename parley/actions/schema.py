"""A small JSON Schema validator for the subset tools use to describe their arguments.

The model writes a tool's arguments; they are checked here before the tool runs, so a tool never sees a
missing field, a wrong type or an unknown extra. Only the keywords below are understood, and a tool whose
schema uses any other is refused when it loads: a constraint that is silently ignored would be worse
than none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

ANNOTATIONS = frozenset({"description", "title", "default", "examples"})
KEYWORDS: dict[str, frozenset[str]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "string": frozenset({"type", "enum", "minLength", "maxLength", "pattern"}),
    "integer": frozenset({"type", "enum", "minimum", "maximum"}),
    "number": frozenset({"type", "enum", "minimum", "maximum"}),
    "boolean": frozenset({"type"}),
    "array": frozenset({"type", "items", "minItems", "maxItems"}),
}
MAX_DEPTH = 8


class SchemaError(ValueError):
    """The schema itself is outside the supported subset (a tool's author's mistake)."""


class InvalidArguments(ValueError):
    """The arguments do not match the schema (the model's mistake: it is told, and may try again)."""


def check_schema(schema: Any, where: str = "parameters", depth: int = 0) -> None:
    """Refuse a schema that uses anything this validator would not enforce. The top is an object."""
    if depth > MAX_DEPTH:
        raise SchemaError(f"{where}: nested too deeply")
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema is an object")
    kind = schema.get("type")
    if depth == 0 and kind != "object":
        raise SchemaError(f"{where}: the arguments' schema must have type object")
    if kind not in KEYWORDS:
        raise SchemaError(f"{where}: type must be one of {', '.join(KEYWORDS)}, got {kind!r}")
    unknown = set(schema) - KEYWORDS[kind] - ANNOTATIONS
    if unknown:
        raise SchemaError(f"{where}: unsupported keyword(s) {', '.join(sorted(unknown))} for type {kind}")
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        raise SchemaError(f"{where}: enum must be a non-empty list")
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except (re.error, TypeError) as exc:
            raise SchemaError(f"{where}: pattern does not compile: {exc}") from exc
    if kind == "object":
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            raise SchemaError(f"{where}: properties must be an object")
        for name, sub in properties.items():
            check_schema(sub, f"{where}.{name}", depth + 1)
        required = schema.get("required", [])
        if not isinstance(required, list) or any(name not in properties for name in required):
            raise SchemaError(f"{where}: required must list declared properties")
        if not isinstance(schema.get("additionalProperties", False), bool):
            raise SchemaError(f"{where}: additionalProperties must be true or false")
    if kind == "array":
        if "items" not in schema:
            raise SchemaError(f"{where}: an array needs items")
        check_schema(schema["items"], f"{where}[]", depth + 1)


def validate(value: Any, schema: Mapping[str, Any], where: str = "arguments") -> None:
    """Raise InvalidArguments naming the first place `value` breaks `schema` (already `check_schema`ed).

    Objects allow no properties beyond those declared unless additionalProperties is true."""
    kind = schema["type"]
    if not _is_type(value, kind):
        raise InvalidArguments(f"{where}: expected {kind}, got {_json_type(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise InvalidArguments(f"{where}: must be one of {', '.join(map(str, schema['enum']))}")
    if kind == "string":
        if len(value) < schema.get("minLength", 0):
            raise InvalidArguments(f"{where}: at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise InvalidArguments(f"{where}: at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise InvalidArguments(f"{where}: does not match {schema['pattern']}")
    elif kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise InvalidArguments(f"{where}: at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise InvalidArguments(f"{where}: at most {schema['maximum']}")
    elif kind == "array":
        if len(value) < schema.get("minItems", 0):
            raise InvalidArguments(f"{where}: at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise InvalidArguments(f"{where}: at most {schema['maxItems']} items")
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")
    elif kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise InvalidArguments(f"{where}: {name} is required")
        if not schema.get("additionalProperties", False):
            extra = sorted(set(value) - set(properties))
            if extra:
                raise InvalidArguments(f"{where}: unexpected {', '.join(extra)}")
        for name, item in value.items():
            if name in properties:
                validate(item, properties[name], f"{where}.{name}")


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, {"string": str, "boolean": bool, "array": list, "object": dict}[kind])


def _json_type(value: Any) -> str:
    for kind in ("boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, kind):
            return kind
    return "null" if value is None else type(value).__name__
