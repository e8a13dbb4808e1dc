"""The form an account's sender is stored in, as the CLI (`account add/set --sender`) and the web panel
(an account's page, the operator's new account) take it alike.

A phone number typed in the national form (500100201) or with the international call prefix
(0048500100201) is stored in E.164 (+48500100201): as typed, it matched no CIMD2 `sender_prefix`
(compared after a "+" or "00"; the panel's form went out with no originator, and the phones' answers
to the bare interface number were lost to the fallback), nor the number phones answer to, and SMPP
sent "0048…" as a national number (TON 2) with an international prefix. The CLI converted the national
form alone and the panel stored what was typed: the same sender reached the phones two ways. Short
codes (up to `SHORT_CODE_DIGITS`, as the SMPP link counts them) are national by nature and stay as
typed, unless they are a phone number of the region; a name is not a number. A '+' number E.164 has
not (a digit missing) is stored as typed, and said: phones cannot answer it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.senderrules import typed_number
from smsc.settings import SHORT_CODE_DIGITS


@dataclass(frozen=True, slots=True)
class StoredSender:
    value: str  # what is stored
    note: str | None  # what the admin is told of its form, or None: stored as typed


def stored_sender(typed: str, region: str) -> StoredSender:
    """`typed` in the form to store: spaces and dashes out of a number ("+48 500 100 200"), a national
    or 00-prefixed phone number of `region` in E.164, each conversion said."""
    from gateway.smtp.addressing import valid_e164

    sender = typed_number(typed.strip())
    if sender[:1] == "+" and sender[1:].isascii() and sender[1:].isdigit():
        if valid_e164(sender, region) is not None:
            return StoredSender(sender, None)
        return StoredSender(
            sender,
            f"{sender} is no valid phone number (no number of its country code has these digits): kept"
            " as typed; check it, or phones cannot answer it",
        )
    if not (sender.isascii() and sender.isdigit()):
        return StoredSender(sender, None)
    if len(sender) <= SHORT_CODE_DIGITS and not sender.startswith("00"):
        # A short code stays as typed; a national number this short (some regions have them) goes E.164.
        if (e164 := valid_e164(sender, region)) is None:
            return StoredSender(sender, None)
        return StoredSender(e164, _national(sender, e164, region))
    if sender.startswith("00"):
        e164 = valid_e164(f"+{sender[2:]}", region)
        if e164 is None:
            return StoredSender(
                sender,
                f"{sender} is kept as typed: after the international prefix 00 it is no phone number;"
                " a phone number is written with + and its country code",
            )
        return StoredSender(e164, f"{sender} is taken as {e164}, its international form (00 is +)")
    if (e164 := valid_e164(sender, region)) is None:
        return StoredSender(
            sender,
            f"{sender} is kept as typed: it is no phone number of [gateway] default_region {region} in"
            " the national form; a phone number is written with + and its country code",
        )
    return StoredSender(e164, _national(sender, e164, region))


def _national(sender: str, e164: str, region: str) -> str:
    return f"{sender} is taken as {e164}, its international form ([gateway] default_region {region})"
