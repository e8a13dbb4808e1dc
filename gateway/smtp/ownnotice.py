"""The gateway's own notice sent back to it by a mail rule (R-1.7): machine mail, never an SMS.

Apart from `gateway.smtp.automail`, which names it among its reasons, because the rule reads the From
address whole and a forward's quoted header block, which no other machine-mail rule looks at.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

# Headers that Exchange and other servers put on mail a rule forwarded or redirected, not a person.
RULE_FORWARD_HEADERS = (
    "x-ms-exchange-inbox-rules-loop",
    "x-ms-exchange-organization-autoforwarded",
    "auto-forwarded",
    "x-auto-forwarded",
)
OWN_NOTICE = "the gateway's own notice, sent back by a mail rule"


# The first header line of a quoted mail as mail clients write it in a forward (Outlook's English,
# Polish, German, French), and the separator lines above it that nobody types.
QUOTED_FROM = re.compile(r"^[ \t>*]*(?:from|od|von|de)[ \t]*:[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE)
_SEPARATOR = re.compile(
    r"^\s*(?:[-_=*]{3,}.*|.*(?:original message|forwarded message|begin forwarded|wiadomość oryginalna"
    r"|przekazana wiadomość|ursprüngliche nachricht|weitergeleitete nachricht).*)?\s*$",
    re.IGNORECASE,
)


def bare_address(value: str) -> str:
    return parseaddr(value)[1].strip().casefold()


def from_own(sender: str, own_address: str | None) -> bool:
    """Whether the From value `sender` is the gateway's own address (`own_address`), whole.

    Parsed only where it can be: parsing every staff mail's From cost 2 % of the relay worker's
    CPU, and a From that does not contain the address cannot be it."""
    if not own_address:
        return False
    own = own_address.strip().casefold()
    return own in sender.casefold() and bare_address(sender) == own


def own_notice(headers: dict[str, str], body: str, own_address: str | None) -> bool:
    """A notice of the gateway (delivery confirmation, bounce) that a mail rule sent back to a phone:
    redirected (its From is still the gateway's address), or forwarded by a rule (Exchange marks
    those) with nothing typed above a quoted header block whose From is the gateway's. "Forward
    everything to my phone" and `dlr_mail = all` made each confirmation an SMS, whose confirmation
    was forwarded again, until the identical-SMS rule bit. Addresses compare whole: "it-sms@…" is
    not "sms@…", and a colleague's mail that quotes a notice further down is still a person's."""
    if not own_address:
        return False
    if from_own(headers.get("from", ""), own_address):
        return True
    if not any(h in headers for h in RULE_FORWARD_HEADERS):
        return False
    own = own_address.strip().casefold()
    quoted = QUOTED_FROM.search(body[:3000])
    if quoted is None or bare_address(quoted.group(1)) != own:
        return False
    return all(_SEPARATOR.match(line) for line in body[: quoted.start()].splitlines())
