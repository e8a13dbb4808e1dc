"""What `smsgw status` says of a running daemon newer than the installed smsgw: its package rolled
back, or status run from an older venv. It said "restart it", as of an older daemon after an
upgrade, and the restart ran the installed code, which refused the database the newer one had
upgraded (exit 3): the gateway was down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config


def newer(ran: str, installed: str) -> bool:
    """Whether the version a daemon runs is newer than the installed one."""
    return _release(ran) > _release(installed)


def _release(version: str) -> tuple[int, ...]:
    """A version's numbers, to tell which of two is newer ("0.2.42" > "0.2.41"); what follows a
    part's digits (".dev1", "rc1") is left out; what is no version reads as (), never newer."""
    parts = []
    for part in version.split("."):
        digits = part[: len(part) - len(part.lstrip("0123456789"))]
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def newer_words(cfg: Config, ran: str) -> str:
    """What to do about a daemon newer than the installed smsgw (its package rolled back, or this
    status from an older venv). It said "restart it", and the restart ran the installed code, which
    refused the database the newer one had upgraded (exit 3): the gateway was down."""
    from gateway import __version__
    from gateway.cli.statusdaemon import schema_of
    from gateway.store.schema import SCHEMA_VERSION

    schema = schema_of(cfg.db_path)
    why = (
        f"which cannot open the database {ran} upgraded (schema {schema}; {__version__}'s is"
        f" {SCHEMA_VERSION})"
        if schema is not None and schema > SCHEMA_VERSION
        else "which would run in its place"
    )
    return (
        f"newer than the installed {__version__}: do not restart it (a restart runs {__version__}, {why});"
        f" install {ran} again (or, to go back, restore the backup taken before its upgrade with this"
        " version's `smsgw restore`)"
    )
