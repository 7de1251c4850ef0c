"""A façade attribute that reads and writes a field of the server's Script, so `fake.latency = 2` still works."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar, overload

from .script import Script

__all__ = ["Knob"]

T = TypeVar("T")


class _Scripted(Protocol):
    script: Script


class Knob(Generic[T]):
    """`latency: Knob[float] = Knob()` on a class whose instances have a `script` holding `latency`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Knob[T]: ...
    @overload
    def __get__(self, obj: _Scripted, objtype: type | None = None) -> T: ...
    def __get__(self, obj: _Scripted | None, objtype: type | None = None) -> Knob[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj.script, self.name)
        return value

    def __set__(self, obj: _Scripted, value: T) -> None:
        setattr(obj.script, self.name, value)
