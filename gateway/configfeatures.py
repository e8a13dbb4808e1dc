"""The config sections of the two-way ([replies], SPEC R-3) and premium ([premium], SPEC R-4) features.

Numbers and money are checked here, at the edge: pool ranges expand to E.164 numbers, prices are
integer grosze derived from the operator's list or given as strings, never floats.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gateway.configbase import _Section, plain_address
from gateway.prefixform import pool_form, region_of

MAX_POOL = 100_000  # numbers in [replies] pool after expanding ranges


def _is_e164(v: str) -> bool:
    # ASCII digits: isdigit() alone took +٤٨…, a sender no SMSC can send from (malformed).
    return v.startswith("+") and v[1:].isascii() and v[1:].isdigit() and v[1] != "0" and 7 <= len(v) - 1 <= 15


def _e164(value: str, region: str | None = None) -> str:
    v = value.strip()
    if _is_e164(v):
        return v
    if (written := pool_form(v, region)) is not None:  # 500100300, 0048500100300
        raise ValueError(f"pool number {value!r} is not written in the international form: write {written}")
    # What an admin types for a range or a spaced number: said as such, with the form to write.
    ends = re.split(r"\s*[-–—]\s*", v)
    if len(ends) == 2 and all(_is_e164(end) for end in ends):
        raise ValueError(f"pool entry {value!r}: a range is written with two dots, {ends[0]}..{ends[1]}")
    if re.search(r"\s", v) and _is_e164(joined := re.sub(r"\s", "", v)):
        raise ValueError(f"pool number {value!r} must be written without spaces: {joined}")
    raise ValueError(
        f"pool number {value!r} must be an E.164 number such as +48500100200,"
        " or a range such as +48500100300..+48500100399"
    )


def expand_pool(entries: tuple[str, ...], region: str | None = None) -> tuple[str, ...]:
    """The pool's numbers in order: single numbers and inclusive ranges ("+48500100300..+48500100399").
    `region`: `[gateway] default_region`, to offer the E.164 form of a number written nationally."""
    out: dict[str, None] = {}
    for entry in entries:
        first, sep, last = entry.partition("..")
        if not sep:
            out[_e164(first, region)] = None
            continue
        if not (_is_e164(first.strip()) and _is_e164(last.strip())) and all(
            written := [pool_form(end, region) for end in (first, last)]
        ):
            said = f"write {written[0]}..{written[1]}"
            raise ValueError(f"pool range {entry!r} is not written in the international form: {said}")
        a, b = _e164(first, region), _e164(last, region)
        if len(a) != len(b) or int(a[1:]) > int(b[1:]):
            raise ValueError(f"pool range {entry!r} must go from a lower to a higher number, same length")
        if int(b[1:]) - int(a[1:]) >= MAX_POOL:
            raise ValueError(f"pool range {entry!r} has more than {MAX_POOL} numbers")
        width = len(a) - 1
        for n in range(int(a[1:]), int(b[1:]) + 1):
            out[f"+{n:0{width}d}"] = None
        if len(out) > MAX_POOL:
            raise ValueError(f"the pool has more than {MAX_POOL} numbers")
    return tuple(out)


class RepliesSection(_Section):
    """Two-way SMS (SPEC R-3): how long a phone may answer, the reply numbers, where strays go."""

    window_days: float = 7  # an answer within this of the last SMS reaches its sender (`window_problem`)
    pool: list[str] = Field(default_factory=list)  # "+48500100200" or "+48500100300..+48500100399"
    fallback_address: str | None = None  # answers with no conversation; none: recorded as unmatched
    # Answers one phone may have mailed in an hour; past it they are kept, not mailed (0: no limit).
    # A phone could otherwise fill a staff member's (or the fallback's) mailbox through the gateway.
    mails_per_phone_per_hour: int = Field(30, ge=0)
    # A long SMS from a phone some of whose parts have not come this long after the last one is
    # mailed with a gap marker for them (R-3.4; `gateway.reassembly.TIMEOUT_SECONDS` is the default).
    # Under 10 s a part an SMSC sends a moment late would split an SMS; over a day, the SMSC's
    # redelivery window (`reassembly.REDELIVERY_SECONDS`), a copy could no longer be told apart.
    reassembly_timeout_seconds: float = Field(300.0, ge=10, le=86400)

    @field_validator("window_days")
    @classmethod
    def _window(cls, v: float) -> float:
        if (problem := window_problem(v)) is not None:
            raise ValueError(f"{problem}, got {v:g}")
        return v

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: list[str], info: ValidationInfo) -> list[str]:
        expand_pool(tuple(v), region_of(info))  # raises with the entry named
        return v

    @field_validator("fallback_address")
    @classmethod
    def _fallback(cls, v: str | None) -> str | None:
        return None if v is None else plain_address(v)

    @property
    def pool_numbers(self) -> tuple[str, ...]:
        return expand_pool(tuple(self.pool))

    @property
    def window_seconds(self) -> float:
        return self.window_days * 86400


# ---- [premium] (SPEC R-4) ------------------------------------------------------------------------
# The operator's price list: first two digits of a premium number → (net price, client commission)
# in grosze. Money is integer grosze everywhere; config gives it as a string such as "3.00".
PREMIUM_PRICES: dict[str, tuple[int, int]] = {
    "71": (100, 32),
    "72": (200, 70),
    "73": (300, 110),
    "75": (500, 185),
    "76": (600, 210),
    "79": (900, 340),
}


def grosze(value: str, what: str) -> int:
    """`"3.00"` or `"3"` → 300; refuses fractions of a grosz, signs and anything that is not a number."""
    m = re.fullmatch(r"([0-9]{1,7})(?:\.([0-9]{1,2}))?", value.strip())
    if m is None:
        raise ValueError(f'{what} {value!r} must be an amount in PLN such as "3.00"')
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


class PremiumTariff(NamedTuple):
    price: int  # grosze, net, what the phone's owner pays per SMS part
    commission: int  # grosze, what the client gets per SMS part


class PremiumNumber(_Section):
    """`[[premium.number]]`: one premium number's price and commission where the list does not fit."""

    number: str = Field(pattern=r"^[0-9]{3,8}$")
    price: str | None = None  # "3.00": a string, never a float
    commission: str | None = None

    @field_validator("price", "commission", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(f'give money as a string such as "{v:.2f}" (a float cannot hold grosze exactly)')
        return v


class PremiumSection(_Section):
    """Premium-rate services (SPEC R-4): the numbers, their money, how many free answers an MO gets."""

    numbers: list[str] = Field(default_factory=list)  # "7355"; a [[premium.number]] also adds its number
    number: list[PremiumNumber] = Field(default_factory=list)
    answers_per_mo: int = Field(1, ge=0, le=10)  # free answer SMS per premium MO
    fallback_address: str | None = None  # unknown passwords; default: [replies] fallback_address
    verification_days: float = Field(7, gt=0)  # a confirmation token is good for this long

    @field_validator("fallback_address")
    @classmethod
    def _fallback(cls, v: str | None) -> str | None:
        return None if v is None else plain_address(v)

    @field_validator("numbers")
    @classmethod
    def _digits(cls, v: list[str]) -> list[str]:
        for n in v:
            if not (n.isascii() and n.isdigit() and 3 <= len(n) <= 8):
                raise ValueError(f'premium number {n!r} must be 3 to 8 digits such as "7355"')
        return v

    @field_validator("number")
    @classmethod
    def _once(cls, v: list[PremiumNumber]) -> list[PremiumNumber]:
        # Two tables for one number would leave one price silently unused: which is meant?
        numbers = [n.number for n in v]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise ValueError(
                f"number {', '.join(repeated)} is given more than once: keep one table per number, with"
                " its price and commission"
            )
        return v

    @model_validator(mode="after")
    def _priced(self) -> PremiumSection:
        self.tariffs  # noqa: B018 - raises with the number named when a price cannot be derived
        return self

    @property
    def tariffs(self) -> dict[str, PremiumTariff]:
        """Every configured premium number with its price and commission in grosze."""
        overrides = {n.number: n for n in self.number}
        out: dict[str, PremiumTariff] = {}
        for number in [*self.numbers, *overrides]:
            listed = PREMIUM_PRICES.get(number[:2]) if len(number) == 4 else None
            o = overrides.get(number)
            price = grosze(o.price, f"premium number {number}: price") if o and o.price else None
            commission = (
                grosze(o.commission, f"premium number {number}: commission") if o and o.commission else None
            )
            if price is None or commission is None:
                if listed is None:
                    raise ValueError(
                        f"premium number {number}: its price cannot be derived (the operator list covers"
                        " 71xx, 72xx, 73xx, 75xx, 76xx, 79xx); give price and commission in a"
                        " [[premium.number]] table"
                    )
                price = listed[0] if price is None else price
                commission = listed[1] if commission is None else commission
            if commission > price:
                raise ValueError(f"premium number {number}: commission is more than the price")
            out[number] = PremiumTariff(price, commission)
        return out


# The longest reply window, `[replies] window_days` and an account's --reply-window-days alike: a phone's
# answer a decade later is no answer. inf and 1e308 were taken by the config (the CLI refused them).
MAX_REPLY_WINDOW_DAYS = 3650


def window_problem(days: float) -> str | None:
    """Why `days` is no reply window, stating the range, or None: one rule for `[replies] window_days`
    and an account's `--reply-window-days` (`gateway.cli.accountvalues`)."""
    if math.isfinite(days) and 0 < days <= MAX_REPLY_WINDOW_DAYS:
        return None
    return f"must be more than 0 and at most {MAX_REPLY_WINDOW_DAYS} days (10 years)"
