"""Where the copy of an answer mail goes should the relay refuse the mail for good, and what it is
written with: kept with the mail (`gateway.store.outbox.Fallback`), as the outbox worker that meets
the refusal has no config. Shared by the two kinds of answer mail, the phones' answers
(`gateway.conversations`) and the premium SMS mailed to their clients (`gateway.premium`).
"""

from __future__ import annotations

from gateway.config import Config
from gateway.store.outbox import Fallback, MailSettings


def mail_settings(cfg: Config) -> MailSettings:
    """What the gateway's answer mails are written with, kept with each one for a copy the outbox
    worker may have to write (`Fallback`): that worker has no config."""
    gw = cfg.gateway
    return MailSettings(cfg.mail.from_address, gw.hostname, gw.domains[0], gw.timezone, gw.language)


def fallback_for(cfg: Config, address: str | None, rcpt: str) -> Fallback | None:
    """Where the copy of a mail to `rcpt` goes if the relay refuses it for good: `address`, unless
    there is none or it is `rcpt` itself (the MO then records the refusal alone)."""
    if not address or address.casefold() == rcpt.casefold():
        return None
    return Fallback(address, mail_settings(cfg))
