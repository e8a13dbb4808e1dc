"""Phone numbers as SMSCs send them, made comparable: everything becomes E.164 or stays as sent.

An SMSC may give the phone's number as `+48601123456`, as digits with TON 1 (international),
as `0048601123456` (CIMD2's usual form), as national digits `601123456` (TON 2 or 4), or with
TON unknown in either form; our own number arrives the same ways. Conversations are keyed by
E.164, so every form is read here, by `phonenumbers`' rules and never our own. What is not a
number (an alphanumeric sender, a short code, junk) is returned unchanged, and never matches.
"""

from __future__ import annotations

import re

import phonenumbers

from gateway.smtp.addressing import valid_e164

_DIGITS = re.compile(r"(?:\+[1-9])?[0-9]{3,20}")  # no country code starts with 0
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5


def to_e164(address: str, region: str, ton: int | str | None = None) -> str | None:
    """The E.164 form of an address an SMSC sent, or None when it is no phone number.

    Only digits with at most a leading `+` are read: an address with letters, spaces or other
    marks is junk from the network, not a number to guess at.
    """
    try:
        ton = int(ton) if ton is not None else None
    except ValueError:
        ton = None
    if ton == TON_ALPHANUMERIC:
        # A sender ID that happens to be digits ("601123456" as a name): taken for a phone, it was
        # mailed into that phone's conversation, and its STOP would have opted the phone out.
        return None
    if not _DIGITS.fullmatch(address):
        return None
    if address.startswith("+"):
        return valid_e164(address, region)
    if address.startswith("00"):
        return valid_e164("+" + address[2:], region)
    if ton == TON_INTERNATIONAL:
        return valid_e164("+" + address, region)
    # National TON, or TON unknown (0, or none given as in CIMD2): national first, then the digits
    # as carrying their country code (SMSCs that label an international number national exist).
    return valid_e164(address, region) or valid_e164("+" + address, region)


def normalise(address: str, region: str, ton: int | str | None = None) -> str:
    """E.164 when the address is a phone number, else the address as sent (kept for the record)."""
    return to_e164(address, region, ton) or address


def stored_phone(source: str, region: str) -> str | None:
    """The phone a stored MO came from, or None when it came from no phone.

    Whether a sender is a phone is decided once, when the MO is recorded (`normalise`, with the
    TON the SMSC gave): a phone is stored in E.164, anything else as it came. Only that stored
    form may be trusted afterwards; reading the stored digits again, without their TON, would
    take a sender ID of digits ("601123456", TON 5) for the national number it looks like: its
    SMS would be mailed into that phone's conversation, held back by that phone's hourly mail
    limit, or routed to a premium service as that phone's vote. Every reader of a stored source
    (the conversations, the premium routing, opt-out words) asks here, so that none disagrees.
    """
    return source if source.startswith("+") and valid_e164(source, region) == source else None


def display(e164: str) -> str:
    """`+48 601 123 456`: how a person writes the number; the E.164 string if it does not parse."""
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def reply_local_part(e164: str) -> str:
    """`48601123456`: the address part a reply mail comes from; mail back to it reaches that phone."""
    return e164.removeprefix("+")
