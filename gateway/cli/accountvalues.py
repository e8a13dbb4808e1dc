"""The values of the account and user options (`--sender`, `--relay-network`, limits, validity,
reply window, notify and inbound addresses, countries), read as the admin typed them.

Each refusal is a usage error (exit 2) naming the option and what it takes: the file and the
database are fine, the argument is not.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.cli.common import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from gateway.config import Config


def say_if_unanswerable(sender: str | None) -> None:
    from gateway.senderrules import unanswerable_note

    if (note := unanswerable_note(sender)) is not None:
        print(f"note: {note}")


def sender_value(cfg: Config, value: str) -> str | None:
    """`--sender`: refused when an SMSC would cut it, or when it is one of the gateway's premium
    numbers (`senderrules.sender_refusal`); `default` (as the other options take it) or empty goes
    back to `[gateway] default_sender`."""
    from gateway.senderform import stored_sender
    from gateway.senderrules import sender_refusal

    sender = value.strip()
    if sender.lower() in ("", "default"):
        return None
    # "+48 500 100 200", quoted as the usage error told, is +48500100200; 500100201 and 0048500100201
    # are too (`gateway.senderform`), as the panel stores them.
    stored = stored_sender(sender, cfg.gateway.default_region)
    if stored.note is not None:
        print(f"note: --sender {stored.note}")
    sender = stored.value
    problem = sender_refusal(cfg, sender)
    if problem is not None:
        raise CliError(f"--sender: {problem}", EXIT_USAGE)
    return sender


def networks_value(cidrs: list[str]) -> list[str]:
    """The networks as stored: a CIDR that is not a network is refused as the usage error it is,
    in check-config's words; one with host bits set is stored as the network it trusts, and said
    (`10.0.0.1/8` kept as typed hid that all of 10.0.0.0/8 may send).

    The config's reader raises ConfigError, whose exit status (3) tells systemd not to restart
    and a script that the config file is broken; here the file is fine and the argument is not.
    """
    from gateway.config import ConfigError
    from gateway.relaynets import network, wide_network_doubt

    stored = []
    for cidr in cidrs:
        try:
            net = str(network(cidr))
        except ConfigError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
        if net != cidr.strip():
            print(f"{cidr.strip()} read as {net}")
        if (doubt := wide_network_doubt(net)) is not None:
            print(f"smsgw: warning: {doubt}", file=sys.stderr)
        stored.append(net)
    return stored


def limit_option(option: str, value: str) -> int | None:
    """`--monthly-limit` or `--daily-limit`: SMS parts, or `none` for no limit."""
    from gateway.adminrules import limit_value

    try:
        return limit_value(option, value)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def zero_limit_notes(who: str, settings: Mapping[str, object]) -> list[str]:
    """What a limit set to 0 does, for `account set` and `user set`: "updated" alone did not say
    that every mail is refused from now on (`none` is no limit)."""
    return [
        f"a {key.removesuffix('_limit')} limit of 0 refuses every mail of {who} from now on"
        " (`none` is no limit)"
        for key in ("monthly_limit", "daily_limit")
        if settings.get(key) == 0
    ]


def validity_hours_value(value: str) -> float | None:
    """`--validity-hours`: hours (fractions allowed), or `default` to use `[gateway] validity_hours`.

    The SMSC gets the validity as a date, and a part waiting here expires after it: a huge value
    makes a date no clock holds (every SMS held with an internal error), less than 5 minutes expires
    every SMS at once, and the failures may suspend the account. The config's range
    (`gateway.configgateway.validity_problem`), said in its words.
    """
    from gateway.configgateway import validity_problem

    if value.lower() in ("default", "none", "-"):
        return None
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if (problem := validity_problem(hours)) is not None:
        raise CliError(
            f"--validity-hours {value!r}: give hours; {problem} (or 'default' for [gateway] validity_hours)",
            EXIT_USAGE,
        )
    return hours


def reply_window_value(value: str) -> float | None:
    """`--reply-window-days`: days (fractions allowed), or `default` to use `[replies] window_days`,
    within the config's range (`gateway.configfeatures.window_problem`)."""
    from gateway.configfeatures import window_problem

    if value.lower() in ("default", "none", "-"):
        return None
    try:
        days = float(value)
    except ValueError:
        days = math.nan
    if (problem := window_problem(days)) is not None:
        raise CliError(
            f"--reply-window-days {value!r}: give days; {problem} (or 'default' for [replies] window_days)",
            EXIT_USAGE,
        )
    return days


def notify_address_value(cfg: Config, value: str) -> str | None:
    """`--notify-address`: `none` or `default` clears it as they clear the other options (it was
    refused as "not an email address", and only "" cleared it); bounces and notices then go to the
    sender."""
    from gateway.adminrules import mail_address_problem

    address = value.strip()
    if address.lower() in ("", "none", "default"):
        return None
    if (problem := mail_address_problem(cfg, address)) is not None:
        raise CliError(f"--notify-address: {problem} (or 'none': bounces to the sender)", EXIT_USAGE)
    return address


def inbound_address_value(cfg: Config, value: str) -> str | None:
    """`--inbound-address`: checked as `--notify-address` is (a mailbox off the gateway's domains, or
    the mail comes back and is refused); `none` or `default` clears it, and such SMS go to the
    operator's `[replies] fallback_address` again."""
    from gateway.adminrules import mail_address_problem

    address = value.strip()
    if address.lower() in ("", "none", "default"):
        return None
    if (problem := mail_address_problem(cfg, address)) is not None:
        raise CliError(f"--inbound-address: {problem} (or 'none': to [replies] fallback_address)", EXIT_USAGE)
    return address


def countries_value(values: list[str]) -> tuple[str, ...]:
    """`--countries PL DE` (or `PL,DE`): the only countries whose numbers the account's SMS go to;
    `any` sends to every number the links serve."""
    from gateway.accountrules import countries_list

    try:
        return countries_list(values)
    except ValueError as exc:
        raise CliError(f"--countries: {exc}", EXIT_USAGE) from None
