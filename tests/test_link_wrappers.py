"""Links rewritten by mail filters (R-1.3): Microsoft's Safe Links, Proofpoint's URL Defense (v2, v3)
and Google's "google.com/url?q=". A bare Safe Links URL went out whole (some 400 characters: three parts
instead of one, and the staff's address and the tenant's id with them); "formularz" linked to one, in
Outlook's plain text or an HTML href, went out as "Wypełnij formularz do piątku.", its target too
long to show though the real one is short. The target is read from the wrapper's own parameter (never
from the network); what is no wrapper, or carries no web address, stays as written. Through a running
daemon whose built-in simulator records what each phone got."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textlinks import unwrapped
from tests.test_intake import mail
from tests.test_subject_cut_numbers import phone_texts

TARGET = "https://acme.pl/z/12345"
SAFE = (
    "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Facme.pl%2Fz%2F12345{query}&data=05%7C02"
    "%7Cjan%40acme.pl%7C0f1e2d3c4b5a69788796a5b4c3d2e1f0%7C72f988bf86f141af91ab2d7cd011db47%7C0%7C0%7C638682"
    "345678901234%7CUnknown%7CTWFpbGZsb3d8eyJWIjoiMC4wLjAwMDAiLCJQIjoiV2luMzIiLCJBTiI6Ik1haWwiLCJXVCI6Mn0%3D"
    "%7C0%7C%7C%7C&sdata=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2BabcdE%3D&reserved=0"
)
SAFELINK = SAFE.format(query="")
SAFELINK_Q = SAFE.format(query="%3Fa%3D1%26b%3D2")
V3 = "https://urldefense.com/v3/__https://acme.pl/z/12345__;!!ABCdefGHI!jklMNOpqrSTUvwxYZ0123456789abcdefghijkl$"
V2 = (
    "https://urldefense.proofpoint.com/v2/url?u=https-3A__acme.pl_z_12345&d=DwMFaQ&c=abc&r=def&m=ghi&s=jkl&e="
)
GOOGLE = (
    "https://www.google.com/url?q=https://acme.pl/z/12345&sa=D&source=editors&ust=1700000000000000&usg=AOv"
)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (SAFELINK, TARGET),
        (SAFELINK_Q, f"{TARGET}?a=1&b=2"),
        (V3, TARGET),
        ("https://urldefense.com/v3/__https://acme.pl/?a=1*b=2__;Jg!!ABC!def$", "https://acme.pl/?a=1&b=2"),
        ("https://urldefense.com/v3/__https://acme.pl/p**Az__;Pz0!!x$", "https://acme.pl/p?=z"),
        (V2, TARGET),
        (GOOGLE, TARGET),
        # No wrapper, or one that carries no web address: as written.
        ("https://eur01.safelinks.protection.outlook.com.evil.example/?url=https%3A%2F%2Fx.pl", None),
        ("https://eur01.safelinks.protection.outlook.com/?url=javascript%3Aalert(1)", None),
        ("https://www.google.com/search?q=https://x.pl", None),
        ("https://urldefense.com/v3/__https://acme.pl/**Z__;AA!!x$", None),  # a run past its characters
        ("https://protect-eu.mimecast.com/s/AbCdEfGh?domain=acme.pl", None),  # no target in it
    ],
)
def test_a_wrappers_target_is_read_from_its_own_parameter(url: str, target: str | None) -> None:
    assert unwrapped(url) == (target or url)


HTML = "text/html; charset=utf-8"
FILL = f"Wypełnij formularz ({TARGET}) do piątku."
SHOWN = f"{TARGET}?a=1&amp;b=2"
# (body, MIME type, what the phone gets after "Link: ")
CASES = [
    (f"Formularz: {SAFELINK_Q}\n", "text/plain", f"Formularz: {TARGET}?a=1&b=2"),
    (f"Formularz ({SAFELINK}).\n", "text/plain", f"Formularz ({TARGET})."),
    (f'<p>Formularz: <a href="{SAFELINK_Q}">{SHOWN}</a></p>', HTML, f"Formularz: {TARGET}?a=1&b=2"),
    (f"<p>Formularz: {SAFELINK}</p>", HTML, f"Formularz: {TARGET}"),
    (f"Formularz: {TARGET}<{SAFELINK}>\n", "text/plain", f"Formularz: {TARGET}"),
    (f"Wypełnij formularz<{SAFELINK}> do piątku.\n", "text/plain", FILL),
    (f'<p>Wypełnij <a href="{SAFELINK}">formularz</a> do piątku.</p>', HTML, FILL),
    (f"Formularz: {V3} \n", "text/plain", f"Formularz: {TARGET}"),
    (f"Formularz: {V2}\n", "text/plain", f"Formularz: {TARGET}"),
    (f"Formularz: {GOOGLE}\n", "text/plain", f"Formularz: {TARGET}"),
    ("Szukaj: https://www.google.com/search?q=acme\n", "text/plain", "Szukaj: https://www.google.com/search?q=acme"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "ctype", "sent"), CASES)
def test_the_intake_sends_the_wrapped_target(body: str, ctype: str, sent: str) -> None:
    assert read_mail(mail(body, subject="Link", ctype=ctype)).text == f"Link: {sent}"


async def test_through_smtp_the_phone_gets_the_target_not_the_wrapper(tmp_path: Path) -> None:
    got = await phone_texts(tmp_path, [mail(body, subject="Link", ctype=ctype) for body, ctype, _ in CASES])
    assert got == [f"Link: {sent}" for _, _, sent in CASES]
