"""`linelimits.for_keywords` makes each list of keywords' limits once and hands out a new mapping at
each call: the same limits as making them every time, and no session's changes reach the next."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable

from gateway.smtp import linelimits
from gateway.smtp.linelimits import COMMAND_LINE, RAISES, for_keywords
from gateway.smtp.sessionlimits import COMMAND_LINE_CAP

WORDS = [
    *RAISES,
    "size",
    "Dsn",
    "mx.gateway.example",
    "STARTTLS",
    "PIPELINING",
    "ENHANCEDSTATUSCODES",
    "HELP",
]


def made_each_time(keywords: Iterable[str]) -> defaultdict[str, int]:
    """The limits as `for_keywords` made them before they were kept."""
    limits: defaultdict[str, int] = defaultdict(lambda: COMMAND_LINE)
    limits["AUTH"] = COMMAND_LINE_CAP
    for keyword in keywords:
        for command, extra in RAISES.get(keyword.upper(), {}).items():
            limits[command] += extra
    return limits


def same(keywords: list[str]) -> None:
    got, want = for_keywords(keywords), made_each_time(keywords)
    assert list(got.items()) == list(want.items()), keywords  # the same order too
    assert got["NOOP"] == want["NOOP"] == COMMAND_LINE  # a command not raised, put in as before
    assert list(got.items()) == list(want.items())


def test_limits_as_made_each_time() -> None:
    for n in range(4):
        for keywords in itertools.permutations(WORDS, n):
            same(list(keywords))
            same(list(keywords))  # the second time from what was kept
    rng = random.Random(15)
    for _ in range(2000):
        same(rng.choices(WORDS, k=rng.randrange(12)))


def test_a_sessions_changes_do_not_reach_the_next() -> None:
    keywords = ["mx.gateway.example", "SIZE", "8BITMIME", "SMTPUTF8", "PIPELINING", "DSN", "HELP"]
    first = for_keywords(keywords)
    first["MAIL"] += 26  # as an EHLO adds for SIZE
    first["NOOP"]  # a look-up of a command not in it puts it in
    first["RCPT"] = 1
    second = for_keywords(keywords)
    assert second is not first
    assert list(second.items()) == list(made_each_time(keywords).items())
    assert "NOOP" not in second


def test_kept_lists_are_bounded() -> None:
    for i in range(linelimits._MADE_MAX * 3):
        same([f"host-{i}.example", "SIZE"])
    assert len(linelimits._made) <= linelimits._MADE_MAX
