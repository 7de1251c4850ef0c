"""How a setting is declared: once, as a dataclass field carrying its variable, default, parser and doc.

A group of settings is a frozen dataclass whose fields are all made by `setting(...)`; `read_group` walks the
fields, so adding a setting is one line and the documentation test sees it without a second list to keep.
A parser takes the variable's non-empty, stripped text and returns the value or raises `Invalid` with the
rest of one plain sentence ("must be a whole number, got 'two'"); the reader puts the variable's name in
front and collects every problem instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
G = TypeVar("G", bound="DataclassInstance")

_SPEC = "parley.setting"


class Invalid(ValueError):
    """A variable's value cannot be used; the message completes a sentence that starts with its name."""


@dataclass(frozen=True, slots=True)
class Spec:
    """What the environment variable `env` is, how it is read, and whether it is a secret or required."""

    env: str
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False
    required: str | None = None


def setting(
    env: str, default: T, parse: Callable[[str], T], doc: str, *, secret: bool = False, required: str | None = None
) -> T:
    """A field of a settings group read from `env`. Secrets are left out of the group's repr.

    `required` is the hint given when the variable is missing ("copy .env.example to .env and fill it in").
    """
    spec = Spec(env, parse, doc, secret=secret, required=required)
    return field(default=default, repr=not secret, metadata={_SPEC: spec})


def specs(group: type[DataclassInstance]) -> Iterator[tuple[str, Spec]]:
    """The (field name, declaration) pairs of a settings group, in declaration order."""
    for f in fields(group):
        yield f.name, f.metadata[_SPEC]


def raw(env: Mapping[str, str], name: str) -> str | None:
    """A variable's text, stripped; None when it is unset or blank."""
    value = env.get(name)
    if value is None:
        return None
    return value.strip() or None


def read_group(group: type[G], env: Mapping[str, str], problems: list[str]) -> G:
    """Build `group` from `env`: unset variables keep their defaults; each bad one adds a problem line."""
    values: dict[str, object] = {}
    for f in fields(group):
        spec: Spec = f.metadata[_SPEC]
        text = raw(env, spec.env)
        if text is None:
            if spec.required is not None:
                problems.append(f"{spec.env} is not set: {spec.required}")
            continue
        try:
            values[f.name] = spec.parse(text)
        except Invalid as exc:
            message = str(exc)
            problems.append(f"{spec.env}{message}" if message.startswith(":") else f"{spec.env} {message}")
    return group(**values)
