"""The SMPP source address keys of an `[[smsc]]` block (`source_ton`, `source_npi`): the values SMPP
has, and a word when they are set where they do nothing.

A type of number outside SMPP 3.4's 0-6 (or a numbering plan it does not list) went out as written,
and the SMSC refused every SMS of the link (ESME_RINVSRCADR: the accounts suspended) or read the
sender as it liked. On a CIMD2 link the keys were taken and did nothing: CIMD2 sends a number sender
in 021 and an alphanumeric one in 027, with no type of number. An alphanumeric sender goes out as
TON 5 / NPI 0 whatever the keys say (`smsc.smpp.pdu.source_address`): they are for number senders.
Nor does a short code take a type of number or plan it cannot have (1/1, set for the link's numbers,
sent 7155 as an international number): it goes as TON 3 / NPI 0 then. `check-config` says so, where
the values set are overridden for either.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from gateway.configbase import link_place
from smsc.settings import SHORT_CODE_DIGITS, SHORT_CODE_TONS

if TYPE_CHECKING:
    from gateway.configlinks import SmscSection

TONS = (
    "0 unknown, 1 international, 2 national, 3 network specific, 4 subscriber number, 5 alphanumeric,"
    " 6 abbreviated"
)
NPIS = (0, 1, 3, 4, 6, 8, 9, 10, 14, 18)  # SMPP 3.4 5.2.6


def _ton(v: int | None) -> int | None:
    if v is not None and not 0 <= v <= 6:
        raise ValueError(f"{v} is no SMPP type of number: {TONS}")
    return v


def _npi(v: int | None) -> int | None:
    if v is not None and v not in NPIS:
        raise ValueError(f"{v} is no SMPP numbering plan: one of {', '.join(map(str, NPIS))} (1: E.164)")
    return v


SourceTon = Annotated[int | None, AfterValidator(_ton)]
SourceNpi = Annotated[int | None, AfterValidator(_npi)]


def warn_unused(name: str, kind: str, given: AbstractSet[str], ton: int | None, npi: int | None) -> None:
    """Warn of the keys set on a link whose protocol has no use for them (values some senders do not
    take: `warn_overridden`, which knows the senders). Kept, not refused: a config that ran runs."""
    if not (keys := [k for k in ("source_ton", "source_npi") if k in given]):
        return
    if kind != "smpp":
        warnings.warn(
            f'{link_place(name, ", ".join(keys))}: does nothing on a type = "{kind}" link (CIMD2 sends a'
            " number sender in 021, an alphanumeric one in 027, with no type of number): remove it",
            stacklevel=3,
        )


def warn_overridden(links: Iterable[SmscSection], senders: Iterable[str]) -> None:
    """Warn of SMPP keys that a short code or an alphanumeric sender the config names does not take.

    Said of every SMPP link with the common 1/1, though its senders were all phone numbers, the
    word was noise at each start; the senders an admin gives accounts in the store are not read
    here (a config check reads no database), so those of the config (the default sender, seeded
    accounts', premium numbers) decide."""
    odd = sorted({s for s in senders if not (s.startswith("+") and s[1:].isdigit()) and not _long_number(s)})
    if not odd:
        return
    for link in links:
        keys = [k for k in ("source_ton", "source_npi") if k in link.model_fields_set]
        ton, npi = link.source_ton, link.source_npi
        if link.type != "smpp" or not keys:
            continue
        if (ton is not None and ton not in SHORT_CODE_TONS) or npi not in (None, 0):
            warnings.warn(
                f"{link_place(link.name, ', '.join(keys))}: apply to phone-number senders only, not to"
                f" {', '.join(odd)}: an alphanumeric sender goes as TON 5 / NPI 0, and a short code (up to"
                f" {SHORT_CODE_DIGITS} digits) as TON 3 / NPI 0, whatever they say (a short code keeps a TON"
                " of 0, 3 or 6 and an NPI other than 1)",
                stacklevel=3,
            )


def _long_number(sender: str) -> bool:
    """A number longer than a short code: a phone number the keys apply to (`source_address`)."""
    return sender.isdigit() and len(sender) > SHORT_CODE_DIGITS
