"""The package's errors: the CLI prints a ``DiagError`` as one line; anything else is a bug
and keeps its traceback."""

from __future__ import annotations


class DiagError(Exception):
    """A user's mistake or bad input; the message names the file or option and what is wrong."""


class DataError(DiagError, ValueError):
    """Bad input data: a missing or unreadable file, a wrong layout, a set made otherwise."""


class ConfigError(DiagError, ValueError):
    """A setting out of range or of the wrong type; the message names the ``SECTION.FIELD``."""


class BuildError(DiagError, RuntimeError):
    """A notebook failed or carries an error, or the book did not build; the message names it."""


class MissingResult(DiagError, RuntimeError):
    """A result is not in the results folder and computing was switched off."""
