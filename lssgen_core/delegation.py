"""Read-only attributes that read through to a value the object holds.

A plan shows its checked arguments (``plan.start_sigma`` is ``plan.arguments.values.start_sigma``),
a stage its size, an upsampler its config. One line per attribute says where it reads from, and
the object never keeps a second copy that could disagree.
"""

from __future__ import annotations

import operator
from typing import Generic, TypeVar, cast, overload

T = TypeVar("T")


class Delegated(Generic[T]):
    """The value at the dotted ``path`` below the instance (``Delegated[int]("size.height")``);
    ``doc`` is the attribute's docstring. Read-only: the instance's own fields say what it holds."""

    def __init__(self, path: str, doc: str | None = None) -> None:
        self.path = path
        self.name = path
        self._read = operator.attrgetter(path)
        self.__doc__ = doc

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Delegated[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Delegated[T] | T:
        if instance is None:
            return self
        return cast(T, self._read(instance))

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, instance: object, value: object) -> None:
        # A data descriptor, as a property is: assigning fails instead of shadowing the value.
        raise AttributeError(f"{self.name} is read from {self.path}; it cannot be set")
