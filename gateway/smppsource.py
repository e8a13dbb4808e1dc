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
from collections.abc import Set as AbstractSet
from typing import Annotated

from pydantic import AfterValidator

from gateway.configbase import link_place
from smsc.settings import SHORT_CODE_DIGITS, SHORT_CODE_TONS

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
    """Warn of the keys set on a link whose protocol has no use for them, or set to values that some
    senders do not take. Kept, not refused: a config that ran keeps running."""
    if not (keys := [k for k in ("source_ton", "source_npi") if k in given]):
        return
    if kind != "smpp":
        warnings.warn(
            f'{link_place(name, ", ".join(keys))}: does nothing on a type = "{kind}" link (CIMD2 sends a'
            " number sender in 021, an alphanumeric one in 027, with no type of number): remove it",
            stacklevel=3,
        )
    elif (ton is not None and ton not in SHORT_CODE_TONS) or npi not in (None, 0):
        warnings.warn(
            f"{link_place(name, ', '.join(keys))}: apply to phone-number senders only: an alphanumeric"
            f" sender goes as TON 5 / NPI 0, and a short code (up to {SHORT_CODE_DIGITS} digits) as TON 3"
            " / NPI 0, whatever they say (a short code keeps a TON of 0, 3 or 6 and an NPI other than 1)",
            stacklevel=3,
        )
