"""The premium numbers as the gateway recognises them (R-4.4), and why no account may send from one.

An SMSC writes a short code as it writes the gateway's other numbers: "+487355", "487355" or
"00487355" for 7355 (`own_form`). The MO's route reads it so (`handlers.on_whole_mo`), and so does
the sender rule: an account sending from a premium number has its staff's SMS answered to it, and
each answer is a premium SMS the phone pays for, without a password, so it goes to the premium
fallback address and the staff member never sees it.

Light on purpose: the config's check (`gateway.configgateway.premium_sender_refusal`), the CLI's
`--sender` and the panel read it, and none of them needs the store or the handlers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.conversations.numbers import own_form

if TYPE_CHECKING:
    from gateway.config import Config


def premium_number(cfg: Config, destination: str) -> str | None:
    """The configured premium number an MO was sent to, as configured; None: not premium traffic.

    SMSCs write a short code as they write the gateway's other numbers: "+487355", "487355" or
    "00487355" for 7355 (`own_form`); taken for an ordinary number, a paid vote was lost unrecorded."""
    number = destination.removeprefix("+")
    if number in cfg.premium.tariffs:
        return number
    return own_form(destination, cfg.premium.tariffs, cfg.gateway.default_region)


def premium_sender_problem(cfg: Config, sender: str) -> str | None:
    """Why `sender` cannot be an account's sender because it is one of `[premium] numbers` in any
    form an SMSC writes it, or None. The CLI, the panel and the config refuse it in these words."""
    if not cfg.premium.tariffs or not sender.strip():
        return None
    number = premium_number(cfg, sender.strip())
    if number is None:
        return None
    from billing_reports.render import pln  # only for a sender refused: the monthly report's module

    price = cfg.premium.tariffs[number].price
    return (
        f"sender {sender!r} is the premium number {number} ([premium] numbers): a phone answering an SMS"
        f" from it sends a premium SMS, charged {pln(price)} PLN, which has no password and goes to the"
        " premium fallback address, never to the staff member; give the company's own number"
    )


def premium_sender_lines(cfg: Config, stored: Iterable[tuple[str, str | None]]) -> list[str]:
    """A warning for each stored account (name, sender) that sends from a premium number, with the
    command that mends it. Set before the rule, it is kept (the database is the admin's, and a
    refusal at the start would stop every account's SMS), but said at check-config and the start."""
    lines = []
    for name, sender in stored:
        if sender and (problem := premium_sender_problem(cfg, sender)) is not None:
            lines.append(f"account {name}: {problem}; set another: `smsgw account set {name!r} --sender …`")
    return lines


def stored_premium_senders(cfg: Config) -> list[str]:
    """`premium_sender_lines` of the accounts the database holds; read-only, as every stored warning
    (`gateway.cli.stored`), after the caller's check of the WAL."""
    if not cfg.premium.tariffs:
        return []
    from gateway.cli.stored import read_rows

    query = "SELECT name, sender FROM accounts WHERE sender IS NOT NULL ORDER BY name"
    return premium_sender_lines(cfg, read_rows(cfg.db_path, query))
