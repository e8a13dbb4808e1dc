"""The form to write for a routing prefix or a `[replies] pool` number written as people write numbers:
"+48-60", "+48.60", "+48(60)", "0048", "4860", a national "60" or "500100300..500100399".

Each was refused as "must look like +48 or +4860" (or "must be an E.164 number") without the form the
check wanted, which the admin had to work out; a spaced one already got it. A national form is read
by `[gateway] default_region`, which `parse_config` hands the sections' checks (`region_of`).
"""

from __future__ import annotations

import re

from pydantic import ValidationInfo

_WRITTEN = re.compile(r"[+0-9 .()\-]+")  # how people write a number: digits and their separators
_TRUNK_ZERO = re.compile(r"^(\s*\+[\s.\-]*\d+)[\s.\-]*\(0\)")  # "+48 (0) 60": the trunk 0 after +CC


def region_of(info: ValidationInfo) -> str | None:
    """`[gateway] default_region` as the config gives it, when the check runs inside `parse_config`."""
    region = (info.context or {}).get("region")
    return region.upper() if isinstance(region, str) else None


def _country_code(region: str | None) -> int:
    import phonenumbers

    return phonenumbers.country_code_for_region(region) if region else 0


def prefix_problem(typed: str, region: str | None) -> str:
    """Why a prefix not in the +digits form is refused, with the form to write when it is a number."""
    if (joined := "".join(typed.split())) != typed and joined[:1] == "+" and joined[1:].isdigit():
        return f"prefix {typed!r} must be written without spaces: {joined!r}"  # no number read has spaces
    forms = prefix_forms(typed, region)
    return f"prefix {typed!r} must look like +48 or +4860" + (f": write {forms}" if forms else "")


def prefix_forms(typed: str, region: str | None) -> str | None:
    """What to write instead of `typed`, a prefix not in the +digits form, or None when it is no number."""
    if not _WRITTEN.fullmatch(typed) or not (digits := re.sub(r"\D", "", typed)):
        return None
    if typed.lstrip().startswith("+"):
        # '+48 (0) 60': the trunk 0 is not dialled from abroad and no E.164 number has it ('+48060'
        # matched no number: a dead route).
        digits = re.sub(r"\D", "", _TRUNK_ZERO.sub(r"\1", typed, count=1))
        return f"{'+' + digits!r}" if digits[:1] not in ("", "0") else None
    if digits.startswith("00"):
        return f"{'+' + digits[2:]!r}" if digits[2:3] not in ("", "0") else None
    # Digits with a trunk 0 are national: '+060' or '+0' would be forms this check refuses.
    own = f"{'+' + digits!r} if it begins with its country code" if digits[0] != "0" else ""
    if not (cc := _country_code(region)):
        return own or None
    national = f"{'+' + str(cc) + digits.lstrip('0')!r} if it is national ([gateway] default_region {region})"
    return f"{own}, {national}" if own else national


def pool_form(typed: str, region: str | None) -> str | None:
    """The E.164 form of a pool number written in the national form or after 00, or None."""
    v = typed.strip()
    if not (v.isascii() and v.isdigit()):
        return None
    if v.startswith("00"):
        candidate, read_in = "+" + v[2:], "ZZ"
    elif region:
        candidate, read_in = v, region
    else:
        return None
    from gateway.smtp.addressing import valid_e164

    return valid_e164(candidate, read_in)
