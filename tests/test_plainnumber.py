"""`plainnumber.read` says what phonenumbers' parse, number_type and format_number say of plain digits.

The reading of a recipient's number skips phonenumbers' general parse for digits with at most a
"+" first; nothing may change by it. Each test compares the fast reading with phonenumbers' own
over many numbers: every region's example numbers of every type (as written nationally, with
"+", with a digit more or less, with a leading 0, with the country code without "+"), Polish
numbers in the forms staff write (+48, 0048, 48, national), short codes, and random digit strings
under the regions whose rules differ most (trunk prefixes, shared country codes, Italy's zero).
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from gateway.conversations import numbers
from gateway.smtp import addressing, plainnumber

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
# Trunk prefixes that are not "0" (RU 8, HU 06, US 1), national prefixes with carrier codes (BR,
# CO, AR), shared country codes (+1, +7, +44, +262), leading zeros kept (IT, GA), no trunk at all.
TRICKY = ["PL", "DE", "US", "CA", "GB", "GG", "IT", "FR", "RU", "KZ", "AU", "BR", "AR", "MX", "CO"]
TRICKY += ["HU", "IN", "CN", "JP", "KR", "GA", "RE", "YT", "CZ", "UA", "AT", "NL", "SE", "FI", "AX"]


def reference(candidate: str, region: str) -> tuple[str, int, str | None] | None:
    """phonenumbers' answer: (E.164, type, region_code_for_number) of a valid number, else None."""
    try:
        num = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    return e164, kind, phonenumbers.region_code_for_number(num)


def fast(candidate: str, region: str) -> tuple[str, int, str | None] | plainnumber.Ask | None:
    got = plainnumber.read(candidate, region)
    if isinstance(got, plainnumber.Ask):
        return got
    return None if got.e164 is None else (got.e164, got.kind, got.region)


def compare(pairs: list[tuple[str, str]]) -> int:
    """Asserts that every fast reading is phonenumbers'; the number of pairs read fast."""
    taken = 0
    wrong: list[tuple[str, str, object, object]] = []
    for candidate, region in pairs:
        got = fast(candidate, region)
        if got is plainnumber.ASK:
            continue
        taken += 1
        if got != (want := reference(candidate, region)):
            wrong.append((candidate, region, got, want))
    assert not wrong, wrong[:10]
    return taken


def example_forms() -> list[str]:
    rng = random.Random(7)
    forms: list[str] = []
    entities = [(r, None) for r in REGIONS] + [
        ("001", code) for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
    ]
    for region, code in entities:
        for kind in range(12):
            if code is not None:
                ex = phonenumbers.example_number_for_non_geo_entity(code) if kind == 0 else None
            else:
                ex = phonenumbers.example_number_for_type(region, kind)
            if ex is None:
                continue
            nsn = phonenumbers.national_significant_number(ex)
            cc = str(ex.country_code)
            for n in {nsn, nsn[:-1], nsn + str(rng.randrange(10)), cc + nsn}:
                forms += ["+" + cc + n, n, "0" + n]
            national = phonenumbers.format_number(ex, PhoneNumberFormat.NATIONAL)
            digits = "".join(ch for ch in national if ch.isdigit())
            forms += [digits, "+" + cc + digits]
    return forms


def test_every_regions_example_numbers_read_as_phonenumbers_reads_them() -> None:
    forms = example_forms()
    rng = random.Random(11)
    pairs = [(f, r) for f in forms for r in ("PL", rng.choice(TRICKY), rng.choice(REGIONS))]
    assert compare(pairs) > len(pairs) * 0.8  # most are read fast


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


@pytest.mark.parametrize("seed", [1, 2])
def test_random_digits_under_many_regions(seed: int) -> None:
    rng = random.Random(seed)
    pairs = []
    for _ in range(6000):
        text = digits(rng, rng.randrange(3, 18))
        for candidate in (text, "+" + text):
            pairs += [(candidate, "PL"), (candidate, rng.choice(TRICKY)), (candidate, rng.choice(REGIONS))]
    assert compare(pairs) > len(pairs) * 0.9


def test_polish_numbers_in_every_form_staff_write() -> None:
    rng = random.Random(3)
    pairs = []
    for _ in range(4000):
        national = rng.choice("1234567890") + digits(rng, rng.choice([6, 7, 8, 8, 8, 9]))
        for form in (national, "+48" + national, "0048" + national, "48" + national, "+" + national):
            pairs.append((form, "PL"))
    for length in range(3, 9):  # short codes and service numbers
        pairs += [(digits(rng, length), "PL") for _ in range(200)]
    compare(pairs)
    # the forms the gateway sees most are all read fast
    for form in ("601123456", "+48601123456", "+601123456", "221234567", "+48500123456"):
        assert fast(form, "PL") is not plainnumber.ASK, form


def test_what_plain_digits_do_not_cover_is_left_to_phonenumbers() -> None:
    for candidate, region in [
        ("٦٠١١٢٣٤٥٦", "PL"),  # Arabic-Indic digits: phonenumbers reads them
        ("601 123 456", "PL"),
        ("+0048601123456", "PL"),  # "+" then the international prefix
        ("48601123456", "PL"),  # the region's country code without "+"
        ("601123456", "pl"),  # a region phonenumbers does not take as written
        ("601123456", "ZZ"),
        ("+12", "PL"),
        ("1" * 18, "PL"),
    ]:
        assert plainnumber.read(candidate, region) is plainnumber.ASK, candidate


def test_valid_e164_and_number_kind_are_phonenumbers() -> None:
    """`valid_e164` as before (phonenumbers' parse alone), and `number_kind` of what it read the
    same as of the number parsed again from its E.164 form."""
    rng = random.Random(5)
    candidates = ["601123456", "+48601123456", "+4915112345678", "015112345678", "8800", "+8823123456"]
    candidates += ["+80012345678", "+390612345678", "+12025550123", "+447700900123", "+79161234567"]
    candidates += [rng.choice("5678") + digits(rng, 8) for _ in range(300)]
    candidates += ["+" + c for c in candidates[-300:]]
    for region in ("PL", "DE", "IT", "US"):
        for candidate in candidates:
            want = reference(candidate, region)
            assert addressing.valid_e164.__wrapped__(candidate, region) == (want[0] if want else None)
            if want is not None:
                kind = addressing.number_kind.__wrapped__(want[0])  # from what valid_e164 kept
                addressing._READ.clear()
                assert addressing.number_kind.__wrapped__(want[0]) == kind, candidate


def test_smsc_addresses_read_as_before() -> None:
    """`conversations.numbers.to_e164` (every TON) reads through the same path."""
    rng = random.Random(9)
    for _ in range(300):
        national = rng.choice("5678") + digits(rng, 8)
        for address, ton in ((national, 2), ("48" + national, 1), ("0048" + national, 0), (national, 0)):
            got = numbers.to_e164(address, "PL", ton)
            if ton == 1:
                want = reference("+" + address, "PL")
            elif address.startswith("00"):
                want = reference("+" + address[2:], "PL")
            else:
                want = reference(address, "PL") or reference("+" + address, "PL")
            assert got == (want[0] if want else None), (address, ton)


def test_a_numbers_type_as_its_descriptions_in_turn_give_it() -> None:
    """`_kind` tries the descriptions of a number's length as one alternation: the type is the one
    phonenumbers' order of single matches gives, for every region's and global service's plan,
    over their example numbers and random national numbers of every length they have."""
    rng = random.Random(13)
    keys: list[str | int] = [*REGIONS, *sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    checked = 0
    for key in keys:
        plan = plainnumber._plan(key)
        if plan is None:
            continue
        nsns = [f for f in example_forms_of(key) if f.isdigit()]
        for length in range(2, 18):
            nsns += [digits(rng, length) for _ in range(40)]
        for nsn in nsns:
            in_turn = (
                plainnumber._kind_in_turn(nsn, plan)
                if plainnumber._matches(nsn, plan.general)
                else PhoneNumberType.UNKNOWN
            )
            assert plainnumber._kind(nsn, plan) == in_turn, (key, nsn)
            checked += 1
    assert checked > 100_000


def example_forms_of(key: str | int) -> list[str]:
    """The national numbers of a plan's examples, each type's."""
    out = []
    for kind in range(12):
        if isinstance(key, int):
            ex = phonenumbers.example_number_for_non_geo_entity(key) if kind == 0 else None
        else:
            ex = phonenumbers.example_number_for_type(key, kind)
        if ex is not None:
            out.append(phonenumbers.national_significant_number(ex))
    return out


def test_a_polish_mobile_numbers_descriptions_are_one_match() -> None:
    plan = plainnumber._plan("PL")
    assert plan is not None
    assert plainnumber._kind("601123456", plan) == PhoneNumberType.MOBILE
    pattern, kinds = plan.by_length[9]
    assert pattern is not None and kinds[-1] == PhoneNumberType.MOBILE
    assert plainnumber._kind("221234567", plan) == PhoneNumberType.FIXED_LINE
    assert plainnumber._kind("800123456", plan) == PhoneNumberType.TOLL_FREE
