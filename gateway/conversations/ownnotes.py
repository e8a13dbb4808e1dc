"""`check-config`'s notes on our own numbers that the numbering plan does not know: answers to them
are matched by their digits (`numbers.own_form`), in the forms an SMSC writes them in."""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers

from gateway.config import Config
from gateway.configbase import is_number_sender
from gateway.conversations.numbers import digit_forms
from gateway.smtp.addressing import BadNumber, to_e164
from smsc.settings import SHORT_CODE_DIGITS


def own_number_notes(cfg: Config, accounts: Sequence[tuple[str, str | None]] | None = None) -> list[str]:
    """Our sender and pool numbers that libphonenumber rejects, each as a note for `check-config`.

    `accounts`: (who, sender) of the accounts whose senders count; the config's `[[account]]` blocks
    when None (check-config gives the stored accounts too, `gateway.cli.sendernotes`).

    Not refused: a new range, or the shipped +48100200300, works with the SMSC all the same. But an
    answer names such a number as the SMSC writes it, which cannot be read into E.164: it is matched
    to the conversation by its digits (gateway/conversations/numbers.py `own_form`), in the forms
    listed; one written otherwise (another country's national form) would miss its user.
    """
    region = cfg.gateway.default_region
    unknown = f"is no number libphonenumber knows (region {region})"
    senders = [("[gateway] default_sender", cfg.gateway.default_sender)]
    if accounts is None:
        accounts = [(f"account {a.name}", a.sender) for a in cfg.account]
    senders += [(f"{who}: sender", sender) for who, sender in accounts if sender]
    # One note a number: accounts that send from the default sender's number add nothing to its note.
    first: dict[str, str] = {}
    for where, number in senders:
        first.setdefault(number, where)
    notes = [
        f"{where} {number!r} {unknown}: {_matched_by_digits(number, region)}"
        for number, where in first.items()
        if is_number_sender(number) and not _short_code(number) and not _known(number, region)
    ]
    # A range's ends stand for it: checking each of up to 100 000 numbers took seconds.
    ends = [n.strip() for entry in cfg.replies.pool for n in entry.split("..")]
    odd = [n for n in dict.fromkeys(ends) if not _known(n, region)]
    if odd:
        some = "is no number" if len(odd) == 1 else "are no numbers"
        notes.append(
            f"[replies] pool: {', '.join(map(repr, odd[:3]))}{' …' if len(odd) > 3 else ''} {some}"
            f" libphonenumber knows (region {region}): {_matched_by_digits(odd[0], region)}"
        )
    return notes


def _matched_by_digits(number: str, region: str) -> str:
    """What becomes of answers to `number`, naming the forms an SMSC may write it in."""
    code = str(phonenumbers.country_code_for_region(region))
    readings = digit_forms(number, region)
    digits = next((d for d in readings if d.startswith(code)), readings[0] if readings else number)
    forms = [f"+{digits}", f"00{digits}", digits]
    if code != "0" and digits.startswith(code) and len(digits) > len(code):
        forms.append(f"{digits[len(code) :]} (national)")
    written = f"{', '.join(forms[:-1])} or {forms[-1]}"
    return f"answers are matched by digits, in whichever of {written} the SMSC writes"


def _short_code(number: str) -> bool:
    return not number.startswith("+") and len(number) <= SHORT_CODE_DIGITS


def _known(number: str, region: str) -> bool:
    try:
        to_e164(number, region)
    except BadNumber:
        return False
    return True
