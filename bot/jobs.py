"""Typed jobs: each kind of work is a frozen dataclass, stored as JSON in the job row and read back whole.

A feature declares its payloads (`class Reset(Payload, kind="reset")`) and the function that runs each; the
application hands the dispatcher the table of both (`routes(...)`). Nothing reads a payload's keys by
string anywhere else, and a row written by an older Parley still loads: missing optional fields take their
defaults, and the JSON keeps the shape it always had (a field's name is its key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from storage import JobRow

if TYPE_CHECKING:
    from bot.replies import Run


@dataclass(frozen=True)  # no slots: they would remake the class under __init_subclass__'s super()
class Payload:
    """Base of every job payload: its `kind` names it in the job table (and so must never change)."""

    kind: ClassVar[str]

    def __init_subclass__(cls, *, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            cls.kind = kind

    def to_json(self) -> dict[str, Any]:
        """The row's payload: one key per field (shallow: a Telegram message stays the dict it came as)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in names})


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, slots=True)
class Route(Generic[P]):
    """One job kind: its payload type, the function that runs it, and whether it waits behind the chat's
    replies (the default) or runs beside them in the chat's background lane (work nobody is waiting for).
    `logs_itself`: the job writes its own line (with each step's time), so the dispatcher writes none."""

    payload: type[P]
    run: Callable[[P, Run], Awaitable[bool]]
    background: bool = False
    logs_itself: bool = False

    @property
    def kind(self) -> str:
        return self.payload.kind

    async def __call__(self, row: JobRow, run: Run) -> bool:
        """True when the job is done; False leaves it failed (its payload kept for the Retry button)."""
        return await self.run(self.payload.from_json(row.payload), run)


def routes(*table: Route[Any], aliases: Mapping[str, str] | None = None) -> dict[str, Route[Any]]:
    """The kind → route table the dispatcher receives; `aliases` keeps kinds older rows were written with."""
    by_kind: dict[str, Route[Any]] = {}
    for route in table:
        if route.kind in by_kind:
            raise ValueError(f"two routes for the job kind {route.kind!r}")
        by_kind[route.kind] = route
    for old, new in (aliases or {}).items():
        by_kind[old] = by_kind[new]
    return by_kind
