"""The [gateway] section: the mail domains, the SMS's limits and defaults, and the state directory.

Part of the configuration schema (gateway/config.py, which checks across sections). Its bounds
(`MAX_VALIDITY_HOURS`, `MAX_PARTS`) are read by the CLI and the conversations as well, and the
sender rule (`_sendable`) by the [[account]] seeds; the premium one (`premium_sender_refusal`) reads
`[premium]` too, so the whole config's check asks it. `MAX_VALIDITY_HOURS` and the default sender
are `gateway.adminrules`'s: the CLI's parsers say them without importing the config's schema.
"""

from __future__ import annotations

import codecs
import math
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from gateway.accountrules import SHORTEST_VALIDITY_SECONDS
from gateway.adminrules import DEMO_SENDER, MAX_VALIDITY_HOURS, end_marker_problem
from gateway.configbase import _Section, at, is_hostname, quoted
from gateway.optoutwords import word_problem
from gateway.senderrules import sender_problem
from gateway.wording import Language

if TYPE_CHECKING:
    from gateway.config import Config

MAX_PARTS = 10
# The shortest validity, in hours as they are typed, rounded up to what is said: the shortest an SMSC can
# be told (`gateway.smtp.mailexpiry.SHORTEST_VALIDITY`, made of the same constant). 1e-9 hours was
# taken, in the config and by --validity-hours, and every SMS expired the moment it was accepted.
MIN_VALIDITY_HOURS = math.ceil(SHORTEST_VALIDITY_SECONDS / 3600 * 10_000) / 10_000
# The kinds of number (gateway.smtp.addressing.number_kind) served by default: phones, mobile or
# not. Premium-rate, shared-cost, toll-free, UAN and voicemail numbers, and satellite phones and
# international networks (GLOBAL: +870, +881, +882, +883), cost many times a mobile's SMS or reach
# nobody; mail to +48 701… or +870… was sent like any other.
SERVED_NUMBER_TYPES = ("MOBILE", "FIXED_LINE_OR_MOBILE", "FIXED_LINE", "VOIP", "PAGER", "PERSONAL_NUMBER")


class GatewaySection(_Section):
    domains: list[str] = Field(default_factory=lambda: ["sms.example.com"], min_length=1)
    default_region: str = "PL"
    number_types: list[str] = Field(default_factory=lambda: list(SERVED_NUMBER_TYPES), min_length=1)
    state_dir: Path = Field(Path("var"), strict=False)
    billing_dir: Path | None = Field(
        None, strict=False
    )  # R-5.1's configured directory; unset: <state_dir>/billing
    hostname: str = "sms.example.com"  # our name in SMTP banners and Message-IDs
    subject_max: int = Field(30, ge=0, le=160)
    subject_separator: str = ": "
    end_marker: str = "END"
    charset_fallbacks: list[str] = Field(default_factory=lambda: ["utf-8", "windows-1250", "iso-8859-2"])
    # a message is at most 10 parts. Up to 255 was taken before 0.2.4: such a config still
    # starts (a refusal would leave the service down after an upgrade), `parts_cap` is what is used,
    # and check-config and run say so (`gateway.configdoubts`).
    max_parts: int = Field(10, ge=1, le=255)
    validity_hours: float = 24  # `validity_problem`'s range, as --validity-hours
    queue_high_water: int = Field(200_000, ge=1)  # parts waiting; shared out, see gateway.queuedepth
    retry_base_seconds: float = Field(5.0, gt=0)  # first retry after a temporary SMSC fault; doubles
    timezone: str = "Europe/Warsaw"
    language: Language = "en"  # of the mails people read (gateway.wording); "pl" for a Polish office
    default_sender: str = DEMO_SENDER  # originating address for accounts without their own
    # Not "NIE": it is Polish for "no", the commonest answer to a question sent by SMS, and an
    # opt-out is for every account. Matched without case or diacritics (REZYGNUJĘ = REZYGNUJE).
    optout_words: list[str] = Field(default_factory=lambda: ["STOP", "REZYGNUJE"])
    # A phone that answered an opt-out word itself takes it back with one of these (matched the same
    # way); a number an admin put on the list stays there.
    optin_words: list[str] = Field(default_factory=lambda: ["START"])
    identical_per_day: int = Field(3, ge=1)  # more identical SMS to one number in a day are refused
    suspend_after: int = Field(500, ge=1)  # failed-delivery share is judged over this many messages
    suspend_failed_share: float = Field(0.10, gt=0, le=1)
    # A short retention (privacy) is fine: the purge never deletes a month not billed yet.
    retention_days: float = Field(90, gt=0, allow_inf_nan=False)
    early_dlr_max_age_minutes: float = Field(10, gt=0)  # a receipt older than this never matches a new part

    @property
    def parts_cap(self) -> int:
        """The most parts one message may become: `max_parts`, within R-1.4's 10."""
        return min(self.max_parts, MAX_PARTS)

    @field_validator("domains")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        domains = [d.lower().strip() for d in v]
        for d in domains:
            if not is_hostname(d):
                raise ValueError(f'{d!r} is not a domain name (use a name such as "sms.example.com")')
        return domains

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, v: str) -> str:
        # It goes into SMTP banners, Message-IDs and the self-signed certificate's name.
        if not is_hostname(v):
            raise ValueError(f'{v!r} is not a host name (use a name such as "sms.example.com")')
        return v

    @field_validator("billing_dir", mode="before")
    @classmethod
    def _billing_dir(cls, v: object) -> object:
        # Read as a Path, "" is "." (the config's own directory): the months would land among the
        # config files, unasked. Leaving the key out is how the default is said.
        if isinstance(v, str) and not v.strip():
            raise ValueError(
                'give a directory (e.g. billing_dir = "/srv/smsgw/billing"), or leave the key out'
            )
        return v

    @field_validator("end_marker")
    @classmethod
    def _end_marker(cls, v: str) -> str:
        # The CLI's and the panel's rule: "A\nB" passed and never matched a line of any mail.
        problem = end_marker_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_validator("optout_words", "optin_words")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        for word in v:
            if (problem := word_problem(word)) is not None:
                raise ValueError(problem)
        return v

    @field_validator("validity_hours")
    @classmethod
    def _validity(cls, v: float) -> float:
        if (problem := validity_problem(v)) is not None:
            raise ValueError(f"{problem}, got {v:g}")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone {v!r} (use an IANA name such as "Europe/Warsaw")') from None
        return v

    @field_validator("charset_fallbacks")
    @classmethod
    def _codecs(cls, v: list[str]) -> list[str]:
        for name in v:
            try:
                codecs.lookup(name)
            except LookupError:
                raise ValueError(
                    f'unknown character set {name!r} (use codec names such as "utf-8", "windows-1250")'
                ) from None
        return v

    @field_validator("default_sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('give the number or name SMS are sent from, such as "+48100200300"')
        return _sendable(v)

    @field_validator("number_types")
    @classmethod
    def _number_types(cls, v: list[str]) -> list[str]:
        from gateway.smtp.addressing import NUMBER_KINDS

        kinds = [k.strip().upper() for k in v]
        for kind in kinds:
            if kind not in NUMBER_KINDS:
                raise ValueError(f"unknown number type {kind!r} (one of {', '.join(NUMBER_KINDS)})")
        return list(dict.fromkeys(kinds))

    @field_validator("default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        import phonenumbers

        if v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {v!r} (use an ISO 3166 code such as PL)")
        return v.upper()


def _sendable(sender: str) -> str:
    """The CLI's and the panel's rule (senderrules): every SMS from a sender an SMSC cannot send
    fails at submit, and those failures suspend the account."""
    problem = sender_problem(sender)
    if problem is not None:
        raise ValueError(problem)
    return sender


def premium_sender_refusal(cfg: Config) -> str | None:
    """`[gateway] default_sender` or an `[[account]]` sender that is one of `[premium] numbers`
    (`gateway.premium.senders`), named as the file writes it; None when none is. Asked across the
    sections (the senders are read before `[premium]`), by the config's own check."""
    if not cfg.premium.tariffs:
        return None
    from gateway.premium.senders import premium_sender_problem

    places = [(at("[gateway]", "default_sender"), cfg.gateway.default_sender)]
    places += [(at(f"[[account]] {quoted(seed.name)}", "sender"), seed.sender or "") for seed in cfg.account]
    for place, sender in places:
        if (problem := premium_sender_problem(cfg, sender)) is not None:
            return f"{place}: {problem}"
    return None


def validity_problem(hours: float) -> str | None:
    """Why `hours` is no validity, stating the range, or None: one rule for `[gateway] validity_hours`
    and an account's `--validity-hours` (`gateway.cli.accountvalues`). Within a month (an SMS not sent
    by then is stale, and 1e9 hours made a date no clock holds), and at least 5 minutes: less expires
    every SMS before it can go, and the failures may suspend the account."""
    if math.isfinite(hours) and hours <= MAX_VALIDITY_HOURS and hours * 3600 >= SHORTEST_VALIDITY_SECONDS:
        return None
    return (
        f"must be at most {MAX_VALIDITY_HOURS} hours (30 days; an SMS not sent within a month is stale, and"
        f" SMSCs usually keep it for days) and at least {MIN_VALIDITY_HOURS:g} (5 minutes, the shortest"
        " validity an SMSC can be told)"
    )
