"""Whether a machine mail that reached the relay is worth a person's time (R-1.7): the bounce
forward's gate, apart from `gateway.forwarded`, which builds the forward.

Judging reads the bounce's own structure (its delivery-status parts and their Action values, who sent
it), which building the forward never does: the forward attaches the original bytes unread.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from gateway.forwarded import FORWARD_MARK
from gateway.smtp import automail

# RFC 3464 2.3.3: the per-recipient actions that tell of mail that has not arrived (yet).
_TROUBLE = frozenset({"failed", "delayed"})
_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ACTION = re.compile(rb"^action[ \t]*:[ \t]*([A-Za-z-]+)", re.IGNORECASE | re.MULTILINE)
# Who writes a bounce: MTAs send as MAILER-DAEMON or postmaster, under one of these display names.
_DAEMON = re.compile(r"(^|[\s<\"])(mailer-daemon|postmaster|mail delivery (subsystem|system))\b", re.I)


def worth_forwarding(reason: str, raw: bytes) -> bool:
    """R-1.7: whether a machine mail tells a person of mail that went astray (then it is forwarded).

    The fallback address is a person's mailbox: a report that everything arrived (a DSN whose
    recipients were all `delivered`, `relayed` or `expanded`) or a vacation responder's answer
    sent from <> would fill it with mail nobody has to act on. A DSN is judged by its actions
    alone; one whose actions cannot be read is forwarded, as a failure nobody else hears of.
    """
    if not automail.is_bounce(reason) or FORWARD_MARK.encode().lower() in raw.lower():
        return False
    msg = BytesParser(policy=compat32).parsebytes(raw)
    actions = _dsn_actions(msg)
    if actions:
        return bool(actions & _TROUBLE)
    # RFC 3834 responders send from <> with `auto-replied`, and so do some MTAs' plain-text
    # bounces (Exim): the sender of the bounce tells them apart.
    replied = str(msg.get("auto-submitted", "")).strip().lower().startswith("auto-replied")
    return not replied or bool(_DAEMON.search(str(msg.get("from", ""))))


def _dsn_actions(msg: Message, limit: int = 200) -> set[str]:
    """The Action values of the delivery-status parts of `msg`, lowered.

    Attached mails (message/rfc822) are not looked into: a bounce of a DSN carries the DSN it
    bounced, whose actions say nothing about this one."""
    actions: set[str] = set()
    stack, seen = [msg], 0
    while stack and seen < limit:  # a hostile mail may nest thousands of parts
        part, seen = stack.pop(), seen + 1
        payload = part.get_payload()
        if part.get_content_type() in _DSN_PARTS:
            if isinstance(payload, list):  # message/delivery-status: one Message per field block
                values = [str(v) for block in payload for v in block.get_all("action", [])]
            else:
                data = part.get_payload(decode=True)  # global (RFC 6533): one text, maybe encoded
                found = _ACTION.findall(data) if isinstance(data, bytes) else []
                values = [m.decode("ascii") for m in found]
            actions.update(v.split()[0].lower() for v in values if v.split())
        elif part.get_content_maintype() == "multipart" and isinstance(payload, list):
            stack.extend(payload)
    return actions
