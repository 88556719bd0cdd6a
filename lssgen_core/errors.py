"""The error a bad argument raises: it carries the argument's name, so no caller parses messages.

Every validator of the library raises it (or :class:`LSSArgumentTypeError` for a value of the
wrong type), with a message that names the argument and its allowed range. A command line maps
``.argument`` to its own flag; ``except ValueError`` / ``except TypeError`` still catch them.
"""

from __future__ import annotations


class LSSArgumentError(ValueError):
    """A value outside what ``argument`` allows (``str(error)`` says what it allows)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class LSSArgumentTypeError(LSSArgumentError, TypeError):
    """A value of a type ``argument`` does not take."""
