"""Premium services bound to short numbers `[premium]` no longer has, as the panel says them.

A tariff renumbered in the config (7355 -> 7356) left a service running on the old number alone:
every vote to the new one went to the fallback address. `check-config`, the start and `premium list`
say so ("7355 (not configured)"); the panel's premium page listed the service as if nothing were
wrong, and the dashboard's "Needing attention" had no word of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from markupsafe import Markup, escape

from gateway.premium.numbersgone import gone, still_runs
from gateway.premium.queries import bound_numbers


def _line(password: str, bound: list[str], configured: list[str], operator: bool) -> Markup:
    def words(numbers: list[str], sep: str = " ") -> str:
        return sep.join(str(escape(n)) for n in numbers)

    lost = gone(bound, configured)
    runs = escape(still_runs(bound, configured))
    are = "are" if len(lost) > 1 else "is"
    # What the store holds is escaped: the line is markup, for its commands' <code>.
    name = escape(password)
    said = f"Premium service {name}: number{'s' if len(lost) > 1 else ''} {words(lost)} {are}"
    if not operator:
        # The numbers and the service's binding are the operator's to change.
        return Markup(
            f"{said} no longer among the gateway's premium numbers ({runs}): no SMS comes to the"
            f" service by {'them' if len(lost) > 1 else 'it'}; the gateway's operator sets the service's"
            " numbers."
        )
    fix = (
        f"<code>smsgw premium set {name} --number …</code> (configured: {words(configured, ', ')}) or"
        f" <code>--all-numbers</code>, or put {words(lost)} back in <code>[premium] numbers</code>"
        if configured
        else f"put {words(lost)} back in <code>[premium] numbers</code>"
    )
    return Markup(f"{said} no longer configured in <code>[premium]</code> ({runs}): {fix}.")


def attention(
    conn: sqlite3.Connection, account_id: int | None, configured: Sequence[str], operator: bool
) -> list[tuple[str, Markup]]:
    """(password, line) for each live service in scope (every one for None) bound to a number the
    config no longer has: the dashboard's "Needing attention" lines, with the mend."""
    rows = bound_numbers(conn, account_id)
    wanted = list(configured)
    return [
        (password, _line(password, numbers.split(), wanted, operator))
        for password, numbers in rows
        if gone(numbers.split(), wanted)
    ]
