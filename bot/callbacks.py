"""Typed callback data: what an inline button carries, packed as `prefix:field:field` and read back whole.

Telegram keeps at most 64 bytes of callback data per button and silently refuses a keyboard with more, so
`pack()` checks the limit when the button is made, not when a user taps it. A feature owns its types and
their prefixes; a tap is routed by prefix to the one that made it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self

CALLBACK_DATA_LIMIT = 64
SEPARATOR = ":"


class CallbackDataError(ValueError):
    """The data does not fit in a button, or a tap carries data this type did not make."""


@dataclass(frozen=True)  # no slots: they would remake the class under __init_subclass__'s super()
class CallbackData:
    """Base of every button's data; subclasses are frozen dataclasses of str and int fields."""

    prefix: ClassVar[str]

    def __init_subclass__(cls, *, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix:
            if SEPARATOR in prefix:
                raise ValueError(f"a callback prefix cannot contain {SEPARATOR!r}: {prefix!r}")
            cls.prefix = prefix

    def pack(self) -> str:
        """`prefix:value:…`; only the last field may contain the separator (it is split off last)."""
        values = [str(getattr(self, field.name)) for field in dataclasses.fields(self)]
        if any(SEPARATOR in value for value in values[:-1]):
            raise CallbackDataError(f"{type(self).__name__}: only the last field may contain {SEPARATOR!r}")
        data = SEPARATOR.join([self.prefix, *values])
        if len(data.encode()) > CALLBACK_DATA_LIMIT:
            raise CallbackDataError(f"{data!r} is longer than Telegram's {CALLBACK_DATA_LIMIT} bytes")
        return data

    @classmethod
    def unpack(cls, data: str) -> Self:
        fields = dataclasses.fields(cls)
        prefix, *values = data.split(SEPARATOR, len(fields))
        if prefix != cls.prefix or len(values) != len(fields):
            raise CallbackDataError(f"{data!r} is not {cls.__name__} data")
        arguments: dict[str, Any] = {}
        for field, value in zip(fields, values, strict=True):
            if field.type in (int, "int"):
                if not value.lstrip("-").isdigit():
                    raise CallbackDataError(f"{data!r}: {field.name} is not a number")
                arguments[field.name] = int(value)
            else:
                arguments[field.name] = value
        return cls(**arguments)


def prefix_of(data: str) -> str:
    return data.partition(SEPARATOR)[0]
