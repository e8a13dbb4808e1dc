"""The argparse types and actions the `smsgw` subcommands share: a bad value is refused by argparse,
naming the argument, before any command opens the config or the store.

Kept apart from `gateway.cli.common` (errors, exit codes, the config and the store) because these
only read a value as typed, by the rules the config and the web panel apply to the same values.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from gateway.adminrules import SQLITE_INT_MAX, account_name_problem


def bounded_int(what: str, low: int = 0, high: int = SQLITE_INT_MAX) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]; argparse prefixes the argument's name."""

    def parse(value: str) -> int:
        text = value.strip()
        digits = text.removeprefix("-")
        # isdecimal alone would take other scripts' digits, which int() reads but nobody means here.
        if not (digits.isascii() and digits.isdecimal()):
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number ({what})")
        number = int(text)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: {what} is from {low} to {high}")
        return number

    return parse


class EndMarker(argparse.Action):
    """`--end-marker`: the line that ends an SMS text, `--` included (a signature's delimiter).

    argparse (3.11's among others) drops a value `--` as if it ended the options (`_get_values`), so
    `--end-marker=--` arrived as an empty list, which SQLite refused with a binding error. A value
    of dashes given apart (`--end-marker --`) is joined to its option first (`main.dash_values`).
    The text is stripped: body lines are compared stripped, so `-- ` would never match.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        marker = "--" if values == [] else values
        if not isinstance(marker, str):  # nargs is one value: nothing else reaches here
            raise argparse.ArgumentError(self, f"expected one marker, got {marker!r}")
        setattr(namespace, self.dest, marker.strip())


def mailbox(value: str) -> str:
    """`send --as`: a user's bare address, as `user add` takes it.

    An empty one is the null reverse path `<>`: the gateway rightly takes mail from it for a bounce
    and records it (or forwards it to the fallback address) instead of sending an SMS.
    """
    from gateway.mailheaders import is_plain_address  # here: it imports the SMS encodings

    if not is_plain_address(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a mail address: give a user's bare address such as anna@example.com"
        )
    return value.strip()


# A terminal's worth and far beyond; SQLite would take a negative LIMIT as "no limit".
LIST_LIMIT_MAX = 1_000_000
list_limit = bounded_int("the number of lines", 1, LIST_LIMIT_MAX)


def account_name(value: str) -> str:
    """An account name as the config's [[account]] name and the web panel take it: trimmed, not
    empty, at most 64 characters (`gateway.adminrules`).

    Spaces around a name would make a second account that looks like the first in every list, and
    the name becomes the billing file's name.
    """
    name = value.strip()
    if (problem := account_name_problem(name)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return name
