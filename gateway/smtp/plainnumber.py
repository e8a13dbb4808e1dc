"""phonenumbers' reading of a number written as plain digits, without its general-purpose parse.

A new recipient's number cost the intake worker about an eighth of its work per mail, twice that
for the national form (`addressing.international_too` reads "+" + the digits as well): `parse`
first looks for RFC 3966 parameters, extensions, vanity letters and Unicode digits, and
`number_type` then matches the number against a region's eleven descriptions, compiling each
pattern through `re.compile`'s cache on every call. What staff and SMSCs send is ASCII digits,
"+" first or not, and for such a string the steps of `parse` that apply are few: the country
code after "+" (or the region's), the national number after it, its leading zeros kept.

`read` takes those steps over phonenumbers' own metadata, with each pattern compiled once (a
trunk prefix is stripped by phonenumbers' own two functions for it), and answers `ASK` wherever
a step would need more of `parse` than that (digits that begin with the region's international
prefix, national digits that begin with the region's country code, anything but ASCII digits):
the caller then asks phonenumbers. The rules stay phonenumbers': tests compare `read` with
`parse` + `number_type` + `format_number` + `region_code_for_number` over many numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    SUPPORTED_REGIONS,
    PhoneMetadata,
    PhoneNumberType,
    ValidationResult,
    phonenumberutil,
)

NON_GEO = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY  # "001": +800, +870, +882…
_PLAIN = re.compile(r"\+?[0-9]{3,17}")  # what `to_e164` lets through, in ASCII digits
_MIN_NSN = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN: a shorter national number does not parse
_MAX_CC = 3  # phonenumbers' _MAX_LENGTH_COUNTRY_CODE


class Reading:
    """What phonenumbers makes of a candidate: its E.164 form and type when the numbering plan
    knows it (`e164` None otherwise), and the region `region_code_for_number` names.

    A plain slotted class, not a frozen dataclass: that one's __init__ sets each field through
    `object.__setattr__`, a third of the cost of reading a plain number whose region is known."""

    __slots__ = ("e164", "kind", "region")

    def __init__(self, e164: str | None, kind: int, region: str | None) -> None:
        self.e164 = e164
        self.kind = kind
        self.region = region

    def __repr__(self) -> str:
        return f"Reading({self.e164!r}, {self.kind!r}, {self.region!r})"


class Ask:
    """`read` cannot state phonenumbers' answer in its few steps: phonenumbers must be asked."""


ASK = Ask()
_INVALID = Reading(None, PhoneNumberType.UNKNOWN, None)
# A description as `_is_number_matching_desc` reads it: its possible lengths (empty: any) and its
# pattern compiled (None: it matches nothing).
_Desc = tuple[frozenset[int], "re.Pattern[str] | None"] | None
# `_number_type_helper`'s order: the first description a number matches names its type.
_SPECIAL = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A region's (or a non-geographic code's) metadata with its patterns compiled."""

    meta: Any  # PhoneMetadata
    general: _Desc
    special: tuple[tuple[_Desc, int], ...]
    fixed: _Desc
    mobile: _Desc
    same_mobile_and_fixed: bool
    leading_digits: re.Pattern[str] | None
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    # By a national number's length: its candidate descriptions in `_kind`'s order as one pattern
    # (a group a description), and each group's type; filled as lengths are met.
    by_length: dict[int, tuple[re.Pattern[str] | None, tuple[int, ...]]]


_FIXED = -1  # `_kind`'s group for the fixed-line description: the mobile one decides then

_PLANS: dict[str | int, _Plan | None] = {}
# parse's own steps for a national prefix (absent from some version: phonenumbers is asked then)
_strip_prefix = getattr(phonenumberutil, "_maybe_strip_national_prefix_carrier_code", None)
_test_length = getattr(phonenumberutil, "_test_number_length", None)
# Lengths after which parse keeps the national number with its prefix (as possibly a short number).
_KEPT_WHOLE = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)


def _desc(desc: Any) -> _Desc:
    if desc is None:
        return None
    pattern = desc.national_number_pattern
    return frozenset(desc.possible_length), re.compile(pattern) if pattern else None


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """phonenumbers compiles an empty international prefix or leading digits too (they match
    anything); only an empty national prefix counts as none (`_prefix`)."""
    return None if pattern is None else re.compile(pattern)


def _prefix(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _plan(key: str | int) -> _Plan | None:
    """The plan of a region code, or of a country code (an int) for the non-geographic ones."""
    if key in _PLANS:
        return _PLANS[key]
    if isinstance(key, int):
        meta = PhoneMetadata.metadata_for_nongeo_region(key, None)
    else:
        meta = PhoneMetadata.metadata_for_region(key, None)
    plan = None
    if meta is not None:
        plan = _Plan(
            meta,
            _desc(meta.general_desc),
            tuple((_desc(getattr(meta, name)), kind) for name, kind in _SPECIAL),
            _desc(meta.fixed_line),
            _desc(meta.mobile),
            bool(meta.same_mobile_and_fixed_line_pattern),
            _compiled(meta.leading_digits),
            _compiled(meta.international_prefix),
            _prefix(meta.national_prefix_for_parsing),
            {},
        )
    _PLANS[key] = plan
    return plan


def _matches(nsn: str, desc: _Desc) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    if lengths and len(nsn) not in lengths:
        return False
    return pattern is not None and pattern.fullmatch(nsn) is not None


def _kind(nsn: str, plan: _Plan) -> int:
    """phonenumbers' `_number_type_helper`: the first of the descriptions, in its order, that the
    number matches. Those of the number's length are tried as one pattern, an alternation in that
    order (a full match takes the first alternative that matches whole): a Polish mobile number
    went through eleven descriptions one call at a time, a fifth of reading it."""
    if not _matches(nsn, plan.general):
        return PhoneNumberType.UNKNOWN
    found = plan.by_length.get(len(nsn))
    if found is None:
        found = plan.by_length[len(nsn)] = _by_length(plan, len(nsn))
    if found is _IN_TURN:
        return _kind_in_turn(nsn, plan)
    pattern, kinds = found
    m = pattern.fullmatch(nsn) if pattern is not None else None
    if m is None:
        return PhoneNumberType.UNKNOWN
    kind = kinds[(m.lastindex or 1) - 1]
    if kind != _FIXED:
        return kind
    if plan.same_mobile_and_fixed or _matches(nsn, plan.mobile):
        return PhoneNumberType.FIXED_LINE_OR_MOBILE
    return PhoneNumberType.FIXED_LINE


def _kind_in_turn(nsn: str, plan: _Plan) -> int:
    """`_kind` one description after another (for patterns with groups of their own)."""
    for desc, kind in plan.special:
        if _matches(nsn, desc):
            return kind
    if _matches(nsn, plan.fixed):
        if plan.same_mobile_and_fixed or _matches(nsn, plan.mobile):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not plan.same_mobile_and_fixed and _matches(nsn, plan.mobile):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


# `_by_length`'s answer where a description's pattern has groups of its own (none of phonenumbers'
# has): the group that matched would not name the description, so they are tried in turn.
_IN_TURN: tuple[re.Pattern[str] | None, tuple[int, ...]] = (None, ())


def _by_length(plan: _Plan, length: int) -> tuple[re.Pattern[str] | None, tuple[int, ...]]:
    """`_kind`'s descriptions for numbers of `length` as one pattern, a group each: the group
    that matched is the description."""
    order = [*plan.special, (plan.fixed, _FIXED)]
    if not plan.same_mobile_and_fixed:
        order.append((plan.mobile, PhoneNumberType.MOBILE))
    parts: list[str] = []
    kinds: list[int] = []
    for desc, kind in order:
        if desc is None or desc[1] is None or (desc[0] and length not in desc[0]):
            continue
        if desc[1].groups:
            return _IN_TURN
        parts.append(f"({desc[1].pattern})")
        kinds.append(kind)
    return (re.compile("|".join(parts)) if parts else None), tuple(kinds)


def _region_of(code: int, nsn: str) -> str | None:
    """phonenumbers' `region_code_for_number`: of the regions sharing a country code, the first
    whose leading digits (or else whose numbering plan) the number fits."""
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    if len(regions) == 1:
        return regions[0]
    for region in regions:
        plan = _plan(region.upper())
        if plan is None:
            continue
        if plan.leading_digits is not None:
            if plan.leading_digits.match(nsn):
                return region
        elif _kind(nsn, plan) != PhoneNumberType.UNKNOWN:
            return region
    return None


def _country_code(digits: str) -> tuple[int, str] | None:
    """phonenumbers' `_extract_country_code` of digits after "+": None where it finds none."""
    if digits[0] == "0":
        return None
    for end in range(1, _MAX_CC + 1):
        if (code := int(digits[:end])) in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[end:]
    return None


def read(candidate: str, region: str) -> Reading | Ask:
    """What `parse(candidate, region)`, `number_type` and `format_number(…, E164)` make of
    `candidate`, or `ASK` where it takes more than plain digits' steps to tell."""
    if region not in SUPPORTED_REGIONS or _PLAIN.fullmatch(candidate) is None:
        return ASK
    if candidate[0] == "+":
        found = _country_code(candidate[1:])
        if found is None:
            # parse reads the digits again under `region`; with no country code at their start
            # they give one only after the region's international prefix ("+0048…").
            home_plan = _plan(region)
            if home_plan is None or home_plan.idd is None or home_plan.idd.match(candidate[1:]):
                return ASK
            return _INVALID  # parse: INVALID_COUNTRY_CODE
        code, national = found
        home = COUNTRY_CODE_TO_REGION_CODE[code][0]
        plan = _plan(code if home == NON_GEO else home)
    else:
        plan = _plan(region)
        if plan is None:
            return ASK
        code = plan.meta.country_code
        if (plan.idd is not None and plan.idd.match(candidate)) or candidate.startswith(str(code)):
            return ASK  # an international prefix, or the region's code without "+"
        national = candidate
    if plan is None:
        return ASK
    if len(national) < _MIN_NSN:
        return _INVALID  # parse: TOO_SHORT_NSN
    if plan.national_prefix is not None and plan.national_prefix.match(national):
        # A trunk prefix or a carrier code: parse strips it where what is left has a length the
        # region's numbers have, by phonenumbers' own two steps.
        if _strip_prefix is None or _test_length is None:
            return ASK
        stripped = _strip_prefix(national, plan.meta)[1]
        if _test_length(stripped, plan.meta) not in _KEPT_WHOLE:
            national = stripped
            if len(national) < _MIN_NSN:
                return _INVALID  # parse: TOO_SHORT_NSN
    # The national number as parsed; its leading zeros (Italy's) are kept by national_significant_number.
    where = _region_of(code, national)
    target = _plan(code if where == NON_GEO else where) if where is not None else None
    kind = PhoneNumberType.UNKNOWN if target is None else _kind(national, target)
    if kind == PhoneNumberType.UNKNOWN:
        return Reading(None, kind, where)
    return Reading(f"+{code}{national}", kind, where)
