"""What `check-config` and the start say of a domain taken out of `[gateway] domains` that the
database still names: the gateway's own mail gave out addresses on it, and their replies now come to
a domain it no longer serves.

Where the database keeps a domain at all: each conversation keeps the one its mail was sent to, which
its answer mails come From (`+48601123456@sms.old.example`). A premium service's confirmation token
is kept without the domain of its address (the first of `[gateway] domains` when it was mailed), so a
service waiting for its confirmation is named only as one that may be waiting on the dropped domain.
The relay port answers such mail with the address to write to instead (`gateway.smtp.formerdomains`);
this says so before the first reply bounces, and what keeps that mail coming in. Which domains those
are is what the daemon's last start found (`gateway.smtp.domainsserved`): the conversations are read
here only for domains it did not look at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.cli.stored import read_by, read_rows
from gateway.premium.queries import confirmations_out
from gateway.smtp import domainsserved

if TYPE_CHECKING:
    from gateway.config import Config

_NAMED = 5  # services named in the line; the rest are counted


def dropped_domains(cfg: Config) -> list[str]:
    """A line for each domain no longer in `[gateway] domains` that stored conversations name, and
    one for the premium services whose confirmation may be out on it."""
    found = domainsserved.held(lambda query: read_rows(cfg.db_path, query), cfg.gateway.domains)
    held = sorted((domain, n, last) for domain, (n, last) in found.items())
    if not held:
        return []
    new = cfg.gateway.domains[0]
    lines = [
        f"[gateway] domains no longer has {domain}, which {n} stored conversation(s) name (the last SMS"
        f" sent in one {datetime.fromtimestamp(last, UTC):%Y-%m-%d}): replies to their answer mails"
        f" (From <number>@{domain}) are refused with the address to write to instead (<number>@{new});"
        f" keep {domain} in [gateway] domains while mail for it still comes here (its MX)"
        for domain, n, last in held
    ]
    waiting = read_by(cfg.db_path, confirmations_out)  # passwords, of services confirming now
    if waiting:
        names = ", ".join(waiting[:_NAMED]) + (
            f" and {len(waiting) - _NAMED} more" if len(waiting) > _NAMED else ""
        )
        dropped = " or ".join(domain for domain, _, _ in held)
        lines.append(
            f"{len(waiting)} premium service(s) ({names}) await confirmation by mail to a confirm-…"
            f" address on the domain first in [gateway] domains when it was mailed (the database does"
            f" not keep which):"
            f" if that was {dropped}, the mail is refused with the address on {new} to write to instead;"
            f" to mail a new one on {new}: `smsgw premium verify PASSWORD --resend`"
        )
    return lines
