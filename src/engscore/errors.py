"""The one error hierarchy of engscore.

Core code raises these; only the CLI catches them and turns them into a one-line message and an
exit code. Exit codes are part of the product contract (SPEC section 4).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DATA = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75


class EngscoreError(Exception):
    """Base class: a failure the user can act on, reported without a traceback."""

    exit_code = EXIT_DATA

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DataError(EngscoreError):
    """Bad input data: unreadable file, missing column, unparseable values. Exit 1."""

    exit_code = EXIT_DATA


class ConfigError(EngscoreError):
    """Bad usage or configuration: unknown preset, invalid rules or mapping file. Exit 2."""

    exit_code = EXIT_CONFIG


class LockedError(EngscoreError):
    """Another run holds the project lock. Exit 75 (EX_TEMPFAIL): cron may simply retry."""

    exit_code = EXIT_LOCKED
