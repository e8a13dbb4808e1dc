"""Adding a user whose address cannot be one says why, alike in the panel and with `user add`: a Polish
letter before the @, a domain in Unicode (with its ASCII form to add instead), a local part over 64
characters or an address over 254 (RFC 5321). All three were "'…' is not an email address" before, and a
300-character address went in and widened every table of the panel.

The panel runs on a real SQLite store through its ASGI app; the CLI through its real entry point."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, as_user, csrf_of, web  # noqa: F401 (web: the fixture)

LONG_LOCAL = "a" * 65 + "@acme.example"
LONG_ADDRESS = "a" * 60 + "@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 60 + ".acme.example"
# What each must name; the same words in the panel and the CLI.
CAUSES = {
    "łukasz@acme.example": "letters outside ASCII before the @ (U+0142 LATIN SMALL LETTER L WITH STROKE)",
    # Named, not shown: the right-to-left override showed the rest of the message reversed.
    "jan\u202ekowalski\u200b@acme.example": (
        "letters outside ASCII before the @ (U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE)"
    ),
    "zofia@żółw.acme.example": "in its ASCII form, as DNS holds it: 'zofia@xn--w-uga1v8h.acme.example'",
    LONG_LOCAL: "the part before the @ has 65 characters, mail allows at most 64",
    LONG_ADDRESS: f"has {len(LONG_ADDRESS)} characters, mail allows an address of at most 254",
    "Łukasz <lukasz@acme.example>": "no display name",
}


def _error(page: str) -> str:
    m = re.search(r'id="error">([^<]*)<', page)
    return html.unescape(m.group(1)) if m else ""


@pytest.mark.parametrize("address", list(CAUSES))
def test_user_add_on_the_cli_names_the_cause(cli: Any, address: str) -> None:
    cli.ok("account", "add", "acme")
    code, _, err = cli("user", "add", address, "--account", "acme")
    assert code == 2 and CAUSES[address] in err, err
    assert "\u202e" not in err, err  # (the address quoted at the start escapes it too)


def test_the_longest_addresses_rfc_5321_allows_are_users(cli: Any) -> None:
    cli.ok("account", "add", "acme")
    local64 = "a" * 64 + "@acme.example"
    at254 = "a" * 64 + "@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 54 + ".acme.example"
    assert len(at254) == 254
    for address in (local64, at254):
        assert cli.ok("user", "add", address, "--account", "acme") == [
            f"user {address} added to account acme"
        ]


async def test_the_panel_names_the_cause_and_adds_nobody(web: WebContext) -> None:  # noqa: F811
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        for address, cause in CAUSES.items():
            r = await c.post("/users", data={"csrf": token, "action": "add", "email": address})
            assert r.status_code == 400 and cause in _error(r.text), (address, _error(r.text))
            assert "\u202e" not in _error(r.text), _error(r.text)
            assert web.store.accounts.find_user(address) is None
        # A 300-character local part is cut short in the error, which would otherwise span the page.
        r = await c.post(
            "/users", data={"csrf": token, "action": "add", "email": "a" * 300 + "@acme.example"}
        )
        said = _error(r.text)
        assert "has 300 characters, mail allows at most 64" in said and len(said) < 200, said
