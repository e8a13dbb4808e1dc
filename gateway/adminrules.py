"""Rules an administrator's input must follow, said alike by the CLI, the web panel and the config.

Each lives once, here, so that a value one of them refuses is refused by the other in the same
words: the panel once took a sender the CLI refused, and every SMS of that account then failed.
What a suspension of a suspended account does (`suspend`) is here for the same reason: the CLI
kept the old reason while saying "suspended", and the panel must not do otherwise. The rules for
senders are `gateway.senderrules`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, NamedTuple

from gateway.printalike import BLANKS, unseen

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

SQLITE_INT_MAX = 2**63 - 1  # SQLite's INTEGER; a larger Python int raises OverflowError at the query
MIN_PASSWORD_LENGTH = 8
# A month: a part still undelivered after it is stale for any sender, and SMSCs usually keep one
# for days. The protocols allow more (CIMD2's relative validity, GSM 03.40's code table, reaches 63
# weeks; SMPP's time format, years), so the bound is ours. It also keeps every expiry a date the
# drivers can write: 1e9 hours overflowed datetime and put every SMS on hold.
MAX_VALIDITY_HOURS = 720
# The walkthrough's made-up number, [gateway] default_sender's default: no operator gives it to anyone.
DEMO_SENDER = "+48100200300"
# The states a message (not a part) can be in, for filters.
MESSAGE_STATES = ("queued", "hold", "submitted", "delivered", "failed", "expired", "cancelled", "unreported")


def password_problem(password: str) -> str | None:
    """Why `password` cannot be a login's (the panel's and SMTP AUTH's), or None: the CLI and the
    panel say it alike."""
    if not password:
        return "empty password refused"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password too short: at least {MIN_PASSWORD_LENGTH} characters"
    if not password.strip():  # eight spaces passed the length, as the login of panel and submission
        return "a password of spaces only is refused: give letters, digits or other characters too"
    # Twelve zero-width spaces (Cf) are not whitespace to strip() and passed: a password nobody can
    # see, type back or tell from another, pasted by mistake or planted as a "blank" one.
    if all(_invisible(c) for c in password):
        return (
            "a password of invisible characters only (zero-width or other spaces, control or format"
            " characters, blank fillers, lone combining marks) is refused: give letters, digits or other"
            " characters too"
        )
    return None


def _invisible(char: str) -> bool:
    """Shows nothing on its own: a space or separator (Z*), a control or format character, a blank, or
    a combining mark with nothing to sit on (Mn, Me: the grapheme joiner, a variation selector)."""
    category = unicodedata.category(char)
    return category[0] == "Z" or category in ("Cc", "Cf", "Mn", "Me") or char in BLANKS


def no_password_note(role: str, password_hash: str | None) -> str:
    """What to tell whoever gave a login the panel's role while it has no password ("" otherwise):
    "updated" alone sent the new admin to the login page, where they were told to wait."""
    if role not in ("admin", "operator") or password_hash:
        return ""
    return (
        "no password yet: they cannot log in until one is set"
        " (`smsgw user passwd EMAIL`, or the password field on the panel's users page)"
    )


def limit_value(option: str, value: str) -> int | None:
    """A limit in SMS parts, or None for `none` (no limit); ValueError naming `option` otherwise."""
    text = value.strip()
    if text.lower() in ("none", "off", "-"):
        return None
    # isdigit alone would pass "²", which int() refuses; past SQLite's INTEGER the write overflows;
    # past 4,300 digits int() itself raises, in Python's words: the length is bounded first.
    wanted = "a whole number of SMS parts, 0 or more, or 'none' for no limit"
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{option} {_cut(value)}: give {wanted}")
    # The bound is SQLite's, not a business rule: named as "too large", not as 2**63 - 1.
    if len(text) > 19 or int(text) > SQLITE_INT_MAX:
        raise ValueError(f"{option} {_cut(value)}: too large for a limit; give {wanted}")
    return int(text)


def limits_note(monthly: int | None, daily: int | None) -> str:
    """What to tell an admin whose daily limit is above the monthly one ("" when it is not): taken
    as typed (a month may be raised later), but the daily one can never be reached."""
    if monthly is None or daily is None or daily <= monthly:
        return ""
    return (
        f"the daily limit ({daily}) is above the monthly limit ({monthly}):"
        " only the monthly one can be reached"
    )


# The bidi embeddings, overrides (U+202A-202E) and isolates (U+2066-2069): one in an account's name
# showed the rest of its row of the operator's accounts page reversed.
BIDI_CONTROLS = frozenset(map(chr, (*range(0x202A, 0x202F), *range(0x2066, 0x206A))))
_CONTROL_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x1b": "an escape"}


def garbling(text: str) -> str | None:
    """The first character of `text` that would break the line it is shown on or reorder it, described,
    or None. A name, a reason or a marker is one line wherever it is shown (a listing, an SMTP reply, a
    table row): a line break in one forged lines of `account show`, an override reversed a row."""
    for ch in text:
        if ch in BIDI_CONTROLS:
            return f"U+{ord(ch):04X} (a bidi control, which shows the text after it reversed or moved)"
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"a control character ({_CONTROL_NAMES.get(ch, f'U+{ord(ch):04X}')})"
        if category in ("Zl", "Zp"):
            return f"U+{ord(ch):04X} (a line or paragraph separator)"
    return None


def _cut(text: str, shown: int = 24) -> str:
    """A long value named in a refusal: its start is enough to recognise it."""
    return f"{text!r}" if len(text) <= shown else f"{text[:shown]!r}..."


# An account's name is in every list, mail subject and billing file, and names its billing file:
# beyond a company's name it only makes them longer.
ACCOUNT_NAME_MAX = 64
# The monthly billing summary starts each account's line with its name, beside lines of its own that
# start with these (compared case aside): an account `total` had a line like the grand total, `end`
# like the checksum line. Names of accounts made before are escaped there (`billing_reports.writer`).
SUMMARY_LABELS = {
    "account": "its column header",
    "total": "its grand total line",
    "end": "its last line, with the checksum",
    "(premium mo without a service)": "its line for the premium SMS no service claimed",
}


# The names the monthly summary goes by (`billing_reports.writer.SUMMARY` on disk, `<month>-summary.txt`
# mailed and downloaded), case aside: an account `_summary`'s file downloaded under the summary's
# very name. Accounts made before get their id beside it (`billing_reports.attachments`, web/billing.py).
SUMMARY_FILE_NAMES = ("summary", "_summary")


def account_name_problem(name: str, *, unseen_too: bool = True) -> str | None:
    """Why `name`, trimmed as it is stored, cannot name an account, or None. Without `unseen_too`, a
    character that shows as nothing or as a space is let through: the config's [[account]] took one
    before, and `seed_accounts` refuses to make an account of it but keeps the one stored."""
    if not name:
        return "an account name cannot be empty"
    if len(name) > ACCOUNT_NAME_MAX:
        return (
            f"account name {name[:24]!r}... is {len(name)} characters long; an account name holds at most"
            f" {ACCOUNT_NAME_MAX}"
        )
    if (what := garbling(name) or (unseen(name) if unseen_too else None)) is not None:
        return f"account name {name!r} holds {what}: give a plain name"
    if name.startswith("#"):
        return (
            f"account name {name!r} starts with '#', which marks the header lines of the billing files"
            " (scripts reading them skip such lines): give a name that starts otherwise"
        )
    if name.casefold() in SUMMARY_FILE_NAMES:
        return (
            f"account name {name!r} is the name of the monthly billing summary of all accounts (its file"
            " _summary.txt, mailed and downloaded as <month>-summary.txt), and the account's billing"
            " file would go by the same name: give another name, e.g. the company's full name"
        )
    if (label := SUMMARY_LABELS.get(name.casefold())) is not None:
        return (
            f"account name {name!r} is a word of the monthly billing summary ({label}), and its line"
            " there would read as that one: give another name, e.g. the company's full name"
        )
    return None


# A line of the mail body is compared with the marker: a marker longer than a line people type as a
# signature's start never matches one, and a line break in it never matches any.
END_MARKER_MAX = 64


def end_marker_problem(marker: str) -> str | None:
    """Why `marker`, trimmed as it is stored, cannot end an SMS text, or None ("" is no marker)."""
    if len(marker) > END_MARKER_MAX:
        return (
            f"end marker {_cut(marker)} is {len(marker)} characters long; an end marker holds at most"
            f" {END_MARKER_MAX} (it is matched against one line of the mail)"
        )
    if (what := garbling(marker)) is not None:
        return (
            f"end marker {marker!r} holds {what}: it is matched against one line of the mail,"
            " so give it as one plain line"
        )
    return None


# An account's cut-from phrase (`account set --cut-from`): the text of a mail ends above the first line
# that starts with one. A short one ("Pozdrawiam", "Thanks") would start lines people write and cut
# their messages; a long one is more than the start of a clause needs, and is matched across lines.
CUT_FROM_MIN = 10
CUT_FROM_MAX = 200
CUT_FROM_COUNT_MAX = 20  # each is compared with every line of every mail of the account


def cut_from_phrase(phrase: str) -> str:
    """A phrase as it is stored and matched: every run of white space one space, ends trimmed."""
    return " ".join(phrase.split())


def cut_from_problem(phrase: str) -> str | None:
    """Why `phrase`, as `cut_from_phrase` stores it, cannot be a cut-from phrase, or None."""
    if (what := garbling(phrase)) is not None:
        return f"cut-from phrase {_cut(phrase)} holds {what}: give the start of the clause as one line"
    if (hidden := next((ch for ch in phrase if unicodedata.category(ch) == "Cf"), None)) is not None:
        # A zero-width space counted towards the length, showed nothing in `account show`, and a
        # phrase holding one never matched the clause it seemed to name.
        return (
            f"cut-from phrase {_cut(phrase)} holds U+{ord(hidden):04X}, an invisible character:"
            " type the start of the clause as it reads"
        )
    if len(phrase) < CUT_FROM_MIN:
        return (
            f"cut-from phrase {phrase!r} is {len(phrase)} characters long; give at least {CUT_FROM_MIN}"
            " (the text is cut from any line starting with it, so a short word would cut people's own"
            " messages): the start of the clause, e.g. 'Treść tej wiadomości'"
        )
    if len(phrase) > CUT_FROM_MAX:
        return (
            f"cut-from phrase {_cut(phrase)} is {len(phrase)} characters long; a cut-from phrase holds at"
            f" most {CUT_FROM_MAX} (the clause's first words are enough)"
        )
    return None


def cut_from_list(phrases: Iterable[str]) -> tuple[str, ...]:
    """The phrases to store, each once (compared as mail lines are: case and spacing aside); ValueError
    naming the first that cannot be one, or a list longer than CUT_FROM_COUNT_MAX."""
    kept: dict[str, str] = {}
    for raw in phrases:
        phrase = cut_from_phrase(raw)
        if (problem := cut_from_problem(phrase)) is not None:
            raise ValueError(problem)
        kept.setdefault(phrase.casefold(), phrase)
    if len(kept) > CUT_FROM_COUNT_MAX:
        raise ValueError(f"{len(kept)} cut-from phrases; an account holds at most {CUT_FROM_COUNT_MAX}")
    return tuple(kept.values())


# The reason is said in the SMTP refusal of every mail of the account (`550 5.7.1 Account <name> is
# suspended: <reason>`), whose line RFC 5321 4.5.3.1.5 bounds to 512 octets, and in every listing.
SUSPENSION_REASON_MAX = 200
SUSPENSION_REASON_DEFAULT = "suspended by admin"


def suspension_reason_problem(reason: str) -> str | None:
    """Why `reason`, trimmed as it is stored, cannot be a suspension's reason, or None. Refused rather
    than cut: a reason cut short may say something else than the admin meant."""
    if len(reason) > SUSPENSION_REASON_MAX:
        return (
            f"the reason {_cut(reason)} is {len(reason)} characters long; a suspension reason holds at"
            f" most {SUSPENSION_REASON_MAX} (it is said in the SMTP refusal of every mail of the account)"
        )
    if (what := garbling(reason)) is not None:
        return f"the reason {_cut(reason, 60)} holds {what}: give it as one plain line"
    return None


class Suspension(NamedTuple):
    """What `suspend` did: suspended the account and held its waiting SMS, or, on an account suspended
    already, kept or changed the reason."""

    held: int  # messages held now; 0 when it was suspended already
    since: float | None  # when the earlier suspension began, None when this one suspended it
    reason: str  # the reason now in force
    earlier_reason: str | None  # the reason before, when it was suspended already

    def said(self, name: str, when: Callable[[float], str]) -> str:
        """The CLI's and the panel's answer: "suspended" alone on a second suspension hid that
        nothing was held and that the reason given was dropped."""
        if self.since is None:
            return f"account {name} suspended; {self.held} waiting message(s) held until it is resumed"
        already = f"account {name} is already suspended since {when(self.since)}"
        if self.reason == self.earlier_reason:
            return f"{already}; reason kept: {self.reason}"
        return f"{already}; reason changed from {self.earlier_reason!r} to {self.reason!r}"


def suspend(store: Store, name: str, reason: str | None) -> Suspension:
    """Suspend the account, or give one suspended already the new `reason` (None: keep its reason).

    Changed in place rather than by resume and suspend: in between the held SMS would go, and the
    suspension's time (the dispatcher's mark of it) would change. Read and written in one
    transaction, so that an automatic suspension just before is answered as one."""
    with store.db.transaction():
        acc = store.accounts.get_account(name)
        if acc.suspended_at is None:
            given = reason or SUSPENSION_REASON_DEFAULT
            return Suspension(store.policy.suspend_account(acc.id, given), None, given, None)
        earlier = acc.suspended_reason or ""
        if reason is not None and reason != earlier:
            store.policy.suspend_account(acc.id, reason, new_reason=True)
            return Suspension(0, acc.suspended_at, reason, earlier)
        return Suspension(0, acc.suspended_at, earlier, earlier)


def mail_address_problem(cfg: Config, address: str) -> str | None:
    """Why the gateway's own mail (billing files, bounce and delivery notices) cannot go to
    `address`, or None; the CLI and the panel say it alike. One on the gateway's domains comes back
    to the gateway, which refuses it, and nobody reads it (`check-config` refuses the config's own
    `admin_address` the same way, and warns of such addresses stored before)."""
    from gateway.configloops import loop_reason  # here: the config's own checks import this module
    from gateway.mailheaders import is_plain_address

    if not is_plain_address(address):
        return f"{address!r} is not an email address"
    why = loop_reason(cfg, address)
    if why is not None:
        return (
            f"{address!r} would loop: {why}, so mail to it comes back to the gateway; use a mailbox elsewhere"
        )
    return None


# Each billing address is mailed the whole billing file every month, from the gateway's own
# address: 50,000 of them were one form away, queued ahead of every account's answers and bounces,
# and took 14 s of the event loop to check. A company's books are read by a handful of people.
BILLING_ADDRESSES_MAX = 10


def billing_addresses(cfg: Config, given: list[str]) -> list[str]:
    """The billing file's addresses from those typed (`none`: no billing mail); ValueError, in the
    words the CLI and the panel both say, otherwise. Counted before any is checked: a check costs
    the event loop a fraction of a millisecond each, and the count alone refuses a list too long."""
    addresses = [a for a in given if a.lower() != "none"]
    distinct = len({a.lower() for a in addresses})
    if distinct > BILLING_ADDRESSES_MAX:
        raise ValueError(
            f"{distinct} billing addresses given; an account has at most {BILLING_ADDRESSES_MAX}"
            " (each is mailed the whole billing file every month): give a shared mailbox instead"
        )
    for address in addresses:
        if (problem := mail_address_problem(cfg, address)) is not None:
            raise ValueError(f"{problem} (or 'none': no billing mail)")
    return addresses


def quiet_held(held_until: float | None, zone: tzinfo, now: float) -> str:
    """What a message held for quiet hours waits for (R-2.4), or "": the CLI and the panel say it
    alike. A window is shorter than a day, so the hour says when, on the wall clock the window is
    set in (`[gateway] timezone`); with the date where it is not today by `now` (the clock's)."""
    if held_until is None:
        return ""
    release = datetime.fromtimestamp(held_until, zone)
    today = release.date() == datetime.fromtimestamp(now, zone).date()
    return f"held for quiet hours until {release:{'%H:%M' if today else '%Y-%m-%d %H:%M'}}"


def seed_accounts(store: Store, cfg: Config) -> None:
    """Create the accounts the config declares, with their users, if missing: once made, the admin's.
    One that `account add` would refuse (`gateway.accountseed`) is not made, and the start goes on."""
    import structlog

    from gateway.accountseed import seed_refusal
    from gateway.store.accounts import Conflict  # the store imports these rules

    for seed in cfg.account:
        names = [a.name for a in store.accounts.list_accounts()]
        if seed.name in names:
            continue  # the admin's: the block changes nothing, whatever rules came since
        if (problem := seed_refusal(seed, names)) is not None:
            structlog.get_logger(__name__).error("account.not_seeded", account=seed.name, problem=problem)
            continue
        try:
            store.accounts.add_account(seed.name, networks=seed.relay_networks, sender=seed.sender)
            structlog.get_logger(__name__).info("account.seeded", account=seed.name)
        except Conflict:
            continue  # the admin's now: a user they removed must not come back at the next start
        for email in seed.users:
            with suppress(Conflict):
                store.accounts.add_user(email, seed.name)


def age(seconds: float) -> str:
    """A duration as a person reads it, in the CLI and the panel alike: 45 s, 12 min, 3.5 h, 2.0 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
