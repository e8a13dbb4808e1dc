"""Which deliveries are one mail (R-1.8) and the Message-ID a mail without one is given (R-3.5).

Its own module because both name a mail across deliveries and notices, apart from what the mail
says: a retry is told apart from a new mail by these alone.
"""

from __future__ import annotations

import hashlib
from email.utils import make_msgid

from gateway.config import Config


def own_message_id(cfg: Config) -> str:
    """R-3.5: a mail that came without a Message-ID (scripts, printers, monitoring systems) is
    given one of ours, so that its confirmation, bounce and the phone's answers name the same id
    and thread with each other. Never used to tell retries apart: it is new on every delivery."""
    return make_msgid(idstring="in", domain=cfg.mail.from_address.rpartition("@")[2])[1:-1]


def dedup_key(message_id: str | None, mail_from: str, text: str) -> str | None:
    """R-1.8: what makes two deliveries the same mail; a mail without a Message-ID has none."""
    if not message_id:
        return None
    digest = hashlib.sha256()
    for piece in (message_id, mail_from, text):
        digest.update(piece.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()
