"""What a browser sends back in an error, and an MO's note on the operator's list, show control and
bidi characters escaped, as every other field from outside does (`outside`, R-6).

`/messages?user=%E2%80%AE%00<x>` answered "give it in full, e.g. ‮\\x00<x>@acme.example" with the
U+202E and the NUL as sent (HTML-escaped only), so the rest of the line read backwards;
`/billing?before=%E2%80%AE2026-13` the same in its error; and the operator's "SMS received" table
printed an MO's note raw, where a bounce's Diagnostic-Code ends up. The panel's app over HTTP
(ASGI) on a real SQLite store.
"""

from __future__ import annotations

from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, OPERATOR, as_user
from tests.web_helpers import web as web  # the fixture

RLO = "\u202e"


async def test_an_error_echoing_what_was_sent_escapes_bidi_and_control_characters(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        found = await c.get("/messages", params={"user": f"{RLO}\x00<x>"})
        billing = await c.get("/billing", params={"before": f"{RLO}2026-13"})
    assert found.status_code == 400 and billing.status_code == 400
    for page in (found.text, billing.text):  # the form's field keeps what was typed, to be corrected
        said = page.split('id="error">', 1)[1].split("</p>", 1)[0]
        assert RLO not in said and "\x00" not in said, said
    assert "e.g. \\u202e\\x00&lt;x&gt;@" in found.text, found.text
    assert "before \\u202e2026-13: give YYYY-MM" in billing.text, billing.text


async def test_the_operators_list_of_sms_received_escapes_a_notes_bidi_characters(web: WebContext) -> None:
    store = web.store
    said = f"550 5.1.1 {RLO}gnp.exe"

    def refused() -> None:
        mo_id = store.mo.record_mo("main", "+48601999888", "+48100200300", "odp", 0, None)
        assert mo_id is not None
        store.mo.answer_refused(mo_id, "fallback", said)

    await store.write(refused)
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/conversations")).text
    table = page.split('<table id="mo">', 1)[1].split("</table>", 1)[0]
    assert RLO not in table and "550 5.1.1 \\u202egnp.exe" in table, table
