"""What a mail's To and Cc call each of its numbers, for the From of the phone's answers
(`gateway.conversations.opening`): `"Anna Nowak" <601123456@…>` makes answers from `Anna Nowak`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway import forwarded
from gateway.smtp.addressing import BadNumber, split_address, to_e164


def contact_names(
    named: Sequence[tuple[str, str]], numbers: Sequence[str], addresses: Mapping[str, str], region: str
) -> dict[str, str]:
    """What the mail's To and Cc call each number, made fit for an answer's From
    (`forwarded.contact_name`). Matched by the E.164 number each To address reads as, as RCPT reads
    it: `"601 123 471"@…`, `0048-601-123-471@…` and a RCPT of `601123471@…` are one phone, which
    comparing the written forms missed. A number RCPT took otherwise than its first reading (a
    conversation's, `international_too`) is named by the address RCPT had for it."""
    if not named:
        return {}
    wanted = set(numbers)
    by_rcpt: dict[str, str] = {}
    for number in numbers:
        if (read := _e164(addresses.get(number, ""), region, rcpt=True)) is not None:
            by_rcpt.setdefault(read, number)
    names: dict[str, str] = {}
    for local, name in named:
        read = _e164(local, region)
        number = read if read in wanted else by_rcpt.get(read or "")
        if number is None or number in names:
            continue
        if (shown := forwarded.contact_name(name)) is not None:
            names[number] = shown
    return names


def _e164(local: str, region: str, *, rcpt: bool = False) -> str | None:
    """The number a local part names (of an RCPT address as given, quotes and domain on it, with
    `rcpt`), or None for one that is no number (`biuro@…`)."""
    try:
        return to_e164(split_address(local)[0] if rcpt else local, region)
    except BadNumber:
        return None
