"""Which senders an SMSC can send from, and whether phones can answer them: the CLI, the web panel
and the config say it alike.

One of the administrator's input rules (`gateway.adminrules`), kept apart because it is the one
that reads the GSM alphabet and the SMSC's address fields: a sender refused here would make every
SMS of its account fail at submit, and those failures suspend the account.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gateway.configbase import is_number_sender
from smsc.gsmalphabet import GSM_BASIC_TABLE

if TYPE_CHECKING:
    from gateway.config import Config


def unanswerable_note(sender: str | None) -> str | None:
    """R-1.11, said where a sender is set: phones cannot answer an alphanumeric one."""
    if sender and not is_number_sender(sender):
        return f"sender {sender!r} is alphanumeric: phones cannot answer it, replies are impossible"
    return None


ALPHANUMERIC_SENDER_MAX = 11  # septets in the TP-OA of GSM 03.40: 10 octets of packed 7-bit characters
NUMBER_SENDER_MAX = 20  # digits an SMPP source_addr (21 octets with its NUL) or a CIMD2 originator holds
# SMPP's source_addr and CIMD2's alphanumeric originator are octet strings the SMSC reads as ASCII and
# recodes into the 7-bit TP-OA: only characters that are both ASCII and in GSM 03.38's basic table mean
# the same at both ends. € and Δ..Ξ cannot be written at all (every SMS of the account failed as
# malformed), é goes out as an octet each SMSC reads its own way, [ ] { } need a GSM escape.
SENDER_CHARS = frozenset(ch for ch in map(chr, range(0x20, 0x7F)) if ch in GSM_BASIC_TABLE)
_SENDER_PUNCTUATION = "".join(sorted(ch for ch in SENDER_CHARS if not ch.isalnum() and ch != " "))


# A number with the spaces, dashes, dots or brackets people write numbers with ("+48 100-200").
_NUMBER_TYPED_SPACED = re.compile(r"\+?[0-9(][0-9 ().-]*[0-9]")
# The fewest digits of a phone number written without its country code ("601 123 456", "22 123 45 67"):
# fewer, dashed or spaced, is a name an admin chose ("2026-12", "24-7 365"), not a mistyped number.
_NATIONAL_DIGITS = 7
# A date or a month as people write one (2026-12-31, 31.12.2026, 12/2026): digits and separators too,
# and as many digits as a national number, but a name; a phone number is not written so.
_YEAR, _MONTH, _DAY = r"(?:19|20)[0-9]{2}", r"(?:0?[1-9]|1[0-2])", r"(?:0?[1-9]|[12][0-9]|3[01])"
_DATE = re.compile(
    rf"{_YEAR}[-./]{_MONTH}(?:[-./]{_DAY})?|{_DAY}[-./]{_MONTH}[-./]{_YEAR}|{_MONTH}[-./]{_YEAR}"
)


def _written_number(sender: str) -> str | None:
    """`sender` in digits only (with its "+") where it is a phone number as people write one, else
    None: with its country code ("+48 100-200") or an area code in brackets ("(22) 123-45-67"), or
    with the digits of a national number ("601 123 456") that are not a date. Any digits with dashes
    counted as one, and "2026-12", typed as a sender name, went out as the number 202612 (the CLI and
    the panel stored it so; the config refused it as a mistyped number)."""
    if not _NUMBER_TYPED_SPACED.fullmatch(sender) or is_number_sender(sender):
        return None
    digits = sum(ch.isdigit() for ch in sender)
    dialled = sender.startswith("+") or "(" in sender
    if digits < 5 or (not dialled and (digits < _NATIONAL_DIGITS or _DATE.fullmatch(sender))):
        return None
    plain = "+" * sender.startswith("+") + "".join(ch for ch in sender if ch.isdigit())
    return plain if is_number_sender(plain) else None


def typed_number(sender: str) -> str:
    """`sender` in digits only (with its "+") where it is a number as people write one ("+48 500 100
    200", "+48-500-100-200"), as `send`, the queue and RCPT read a phone number; else as given (a
    name such as "2026-12" stays one). The CLI told to quote "+48 500 100 200" then refused the
    quoted form: "write it in digits only"."""
    return _written_number(sender) or sender


def sender_problem(sender: str) -> str | None:
    """Why an SMSC cannot send from `sender` as given, or None; the CLI, the web panel and the config
    say it alike.

    An SMSC cuts what does not fit rather than refusing it, so a long name would go out cut short.
    `default` and `none` are the words every other option takes for the gateway's setting: stored
    as a name, every SMS of the account went out from it and no phone could answer.
    """
    if sender.strip().lower() in ("default", "none"):
        return (
            f"sender {sender!r} would be sent as a name: leave the sender empty (`--sender default`)"
            " to send from [gateway] default_sender"
        )
    if odd := "".join(dict.fromkeys(ch for ch in sender if ch.isdigit() and not ch.isascii())):
        return _odd_digits(sender, odd)
    if (plain := _written_number(sender)) is not None:
        # A name to the SMSC: phones could not answer it, and the number would go out as typed.
        return f"sender {sender!r} looks like a number: write it in digits only ({plain!r})"
    if is_number_sender(sender):
        digits = len(sender.removeprefix("+"))
        if digits > NUMBER_SENDER_MAX:
            return f"sender {sender!r} has {digits} digits; a number sender holds at most {NUMBER_SENDER_MAX}"
        return None
    bad = "".join(dict.fromkeys(ch for ch in sender if ch not in SENDER_CHARS))
    if bad:
        return (
            f"sender {sender!r} holds {bad!r}: an alphanumeric sender takes only letters A-Z a-z, digits,"
            f" spaces and {_SENDER_PUNCTUATION} (the GSM 03.38 characters every SMSC reads alike: no Polish"
            f" or Greek letters, no €), at most {ALPHANUMERIC_SENDER_MAX} of them"
        )
    if len(sender) > ALPHANUMERIC_SENDER_MAX:  # one septet each: every character left is in the basic table
        return (
            f"sender {sender!r} is {len(sender)} characters long; an alphanumeric sender holds at most"
            f" {ALPHANUMERIC_SENDER_MAX} (GSM 03.40): use a shorter name, or a number"
        )
    return None


def sender_refusal(cfg: Config, sender: str) -> str | None:
    """`sender_problem`, and a sender that is one of the gateway's premium numbers: an SMSC sends from
    it well, but every phone answering pays a premium SMS that reaches nobody of the account
    (`gateway.premium.senders`). The CLI and the panel ask this; the config asks the premium rule
    across its sections (`gateway.configgateway.premium_sender_refusal`)."""
    from gateway.premium.senders import premium_sender_problem

    return sender_problem(sender) or premium_sender_problem(cfg, sender)


def _odd_digits(sender: str, odd: str) -> str:
    """Digits of another script (٦٠١, ６０１) or superscripts (¹²³): an SMSC's address fields hold
    ASCII only, so every SMS of the account failed as malformed. Refused rather than read as 0-9,
    since the config and `install-service` must say the same as the CLI and the panel; the 0-9 form
    is offered where the digits are decimal ones, read by phonenumbers as `optout add` reads them."""
    why = f"sender {sender!r} holds digits other than 0-9 ({odd}), which an SMSC cannot send"
    if not all(ch.isdecimal() for ch in odd):  # ¹ or ① is no digit anyone means in a number
        return f"{why}: write the sender with 0-9"
    from phonenumbers import normalize_digits_only

    plain = "".join(normalize_digits_only(ch) if ch.isdecimal() else ch for ch in sender)
    if _NUMBER_TYPED_SPACED.fullmatch(plain):  # as the number check would then ask: digits only
        plain = "+" * plain.startswith("+") + normalize_digits_only(plain)
    return f"{why}: write {plain!r}"
