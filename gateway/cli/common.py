"""What every `smsgw` subcommand shares: the error type, exit codes and opening the store."""

from __future__ import annotations

from datetime import datetime

from gateway.config import Config
from gateway.store.db import Store

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def open_store(cfg: Config) -> Store:
    return Store.open(cfg.db_path, create=True)


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"
