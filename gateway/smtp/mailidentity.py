"""Which deliveries are one mail (R-1.8) and the Message-ID a mail without one is given (R-3.5).

Its own module because both name a mail across deliveries and notices, apart from what the mail
says: a retry is told apart from a new mail by these alone.
"""

from __future__ import annotations

import hashlib
from email.utils import make_msgid

from gateway.config import Config
from gateway.smtp.relayqueueid import queue_identity


def own_message_id(cfg: Config) -> str:
    """R-3.5: a mail that came without a Message-ID (scripts, printers, monitoring systems) is
    given one of ours, so that its confirmation, bounce and the phone's answers name the same id
    and thread with each other. Never used to tell retries apart: it is new on every delivery."""
    return make_msgid(idstring="in", domain=cfg.mail.from_address.rpartition("@")[2])[1:-1]


def dedup_key(message_id: str | None, mail_from: str, text: str, raw: bytes = b"") -> str | None:
    """R-1.8: what makes two deliveries the same mail. Without a Message-ID, the queue entry the
    relaying server's top Received: line names (`relayqueueid`): its retry of a mail whose 250 was
    lost carries the same line. A mail with neither has none: every delivery of it is a new mail."""
    identity = message_id or None
    if identity is None:
        queued = queue_identity(raw)
        if queued is None:
            return None
        identity = f"\0received\0{queued}"  # never equal to a Message-ID, which holds no NUL
    digest = hashlib.sha256()
    for piece in (identity, mail_from, text):
        digest.update(piece.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()
