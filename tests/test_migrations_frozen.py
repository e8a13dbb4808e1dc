"""The migrations released up to 0.2.1 stay as every upgraded database ran them.

A database records only the version it reached: an edited early migration would leave new
installations with a schema the upgraded ones never got, and a reordered or lost one would shift
every version after it. The numbers in the comments are what the README's upgrade notes name.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from gateway.store.migrations import SINCE_CORE
from gateway.store.migrations_early import UP_TO_0_2_1
from gateway.store.schema import CORE, MIGRATIONS, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
# sha256 of json.dumps(UP_TO_0_2_1) as 0.2.1 was released: migrations 2 to 30
EARLY_SHA256 = "51041ea309fb7578997ceddf7b90d5c0885e774e666820f9d8fde213fd1599cb"


def numbers_in_comments(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"^    # (\d+): ", path.read_text(encoding="utf-8"), re.MULTILINE)]


def test_the_released_early_migrations_are_unchanged_and_come_first() -> None:
    assert len(UP_TO_0_2_1) == 29  # versions 2 to 30
    assert hashlib.sha256(json.dumps(UP_TO_0_2_1).encode()).hexdigest() == EARLY_SHA256
    assert SINCE_CORE[: len(UP_TO_0_2_1)] == UP_TO_0_2_1
    assert MIGRATIONS == [CORE, *SINCE_CORE]


def test_each_migration_sits_at_the_version_its_comment_names() -> None:
    early = numbers_in_comments(ROOT / "gateway" / "store" / "migrations_early.py")
    later = numbers_in_comments(ROOT / "gateway" / "store" / "migrations.py")
    later += numbers_in_comments(ROOT / "gateway" / "store" / "migrations_since_61.py")
    assert early == list(range(2, 31))
    assert later == list(range(31, SCHEMA_VERSION + 1))
    assert SCHEMA_VERSION >= 53  # 0.2.9's upgrade note names migration 53
