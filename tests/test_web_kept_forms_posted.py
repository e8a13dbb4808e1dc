"""A kept form comes back as it was posted: unticked boxes unticked, without a Referer, only its own.

An unticked checkbox is never posted, so the refilled form left it as the page rendered it: the
stored tick was back, and saving the form again silently undid the untick. A browser or extension
that strips the Referer lost the form though the login page said it was kept (the login went to the
dashboard). And a page of another port of the panel's host could send the lapsed cookie with forms
of its own and push the user's own form out of the four kept per user. Through the real server on
127.0.0.1 with a real HTTP client, as tests/test_web_kept_forms.py is.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.web import keptforms
from gateway.web.refill import refill
from tests.test_web_kept_forms import LUNCH, TYPED, fill_settings, form_of, log_in, served, shown
from tests.web_helpers import ADMIN, OPERATOR

CHECKBOXES = ("transliterate", "confirm", "bulk")


async def _all_ticked(c: httpx.AsyncClient) -> None:
    form = form_of((await c.get("/account")).text, {"id": "settings"})
    for name in CHECKBOXES:
        form.inputs[name].checked = True
    assert (await c.post("/account", data=dict(form.form_values()))).status_code == 303


async def test_a_box_unticked_before_the_session_ended_comes_back_unticked(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        await _all_ticked(c)
        acc = web.store.accounts.get_account("acme")
        assert (acc.transliterate, acc.confirm, acc.bulk) == (1, 1, 1)
        form = form_of((await c.get("/account")).text, {"id": "settings"})
        form.fields["end_marker"] = TYPED
        form.inputs["transliterate"].checked = False  # the admin unticks two of them
        form.inputs["confirm"].checked = False
        typed = dict(form.form_values())
        assert "transliterate" not in typed and "confirm" not in typed  # as a browser posts it
        clock.advance(LUNCH)
        r = await c.post("/account", data=typed, headers={"referer": base + "/account"})
        assert r.status_code == 401 and 'name="kept"' in r.text
        assert (await log_in(c, ADMIN, r.text)).status_code == 303
        page = (await c.get("/account")).text
        assert 'id="restored"' in page
        again = shown(page)
        assert again["end_marker"] == TYPED and again.get("bulk") == "on"
        assert "transliterate" not in again and "confirm" not in again  # still unticked
        assert (await c.post("/account", data=again)).status_code == 303  # Save, as shown
        acc = web.store.accounts.get_account("acme")
        assert (acc.end_marker, acc.transliterate, acc.confirm, acc.bulk) == (TYPED, 0, 0, 1)


def test_a_group_of_boxes_all_unticked_comes_back_all_unticked() -> None:
    """The premium page's numbers, none ticked ("all numbers"), on a page that renders some ticked."""
    page = (
        '<main><form method="post" action="/premium"><input type="hidden" name="csrf" value="t">'
        '<input name="password" value="">'
        '<input type="checkbox" name="number" value="7155" checked>'
        '<input type="checkbox" name="number" value="7255" checked>'
        '<input type="radio" name="kind" value="a" checked><input type="radio" name="kind" value="b">'
        '<input type="checkbox" name="locked" checked disabled></form></main>'
    )
    filled = refill(page, "/premium", (("password", "KP1"), ("kind", "b")))
    assert filled is not None
    assert filled.count(" checked") == 2, filled  # the radio posted, and the disabled box left alone
    assert 'value="b" checked' in filled and 'name="locked" checked disabled' in filled


async def test_a_form_posted_without_a_referer_comes_back_on_its_own_page(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base):
        # No Referer at all (stripped), and one of another address (a proxy passing its own Host).
        other = {"referer": "https://panel.example/account?account=acme"}
        for who, path, headers in ((ADMIN, "/account", {}), (OPERATOR, "/account?account=acme", other)):
            async with httpx.AsyncClient(base_url=base) as c:
                assert (await log_in(c, who)).status_code == 303
                typed = fill_settings((await c.get(path)).text)
                clock.advance(LUNCH)
                r = await c.post(path, data=typed, headers=headers)
                assert r.status_code == 401 and 'id="kept"' in r.text, headers
                back = await log_in(c, who, r.text)
                assert back.headers["location"] == path, headers
                page = (await c.get(path)).text
                assert 'id="restored"' in page and shown(page)["end_marker"] == TYPED, headers
        # A form posted to an address that is no page (a message's Cancel): not kept, and the
        # login page does not say it is.
        async with httpx.AsyncClient(base_url=base) as c:
            assert (await log_in(c, ADMIN)).status_code == 303
            csrf = shown((await c.get("/account")).text)["csrf"]
            clock.advance(LUNCH)
            r = await c.post(f"/messages/{web.store.mine}/cancel", data={"csrf": csrf, "confirm": "yes"})
            assert r.status_code == 401 and 'id="kept"' not in r.text and 'name="kept"' not in r.text
            assert len(web.sessions.kept) == 0


async def test_only_a_form_with_the_lapsed_sessions_token_is_kept(tmp_path: Path) -> None:
    async with served(tmp_path) as (web, clock, base), httpx.AsyncClient(base_url=base) as c:
        assert (await log_in(c, ADMIN)).status_code == 303
        typed = fill_settings((await c.get("/account")).text)
        clock.advance(LUNCH)
        own = await c.post("/account", data=typed, headers={"referer": base + "/account"})
        assert 'name="kept"' in own.text
        # Another port's page sends the lapsed cookie (the browser's, for the host) with its own
        # forms: no token, a wrong one. None is kept, and the user's own stays.
        planted = {**typed, "end_marker": "planted"}
        for csrf in [None, "x" * 43] * keptforms.MAX_PER_USER:
            data = {k: v for k, v in planted.items() if k != "csrf"} | ({"csrf": csrf} if csrf else {})
            r = await c.post("/account", data=data, headers={"referer": base + "/account"})
            assert r.status_code == 401 and 'name="kept"' not in r.text and 'id="kept"' not in r.text
        assert len(web.sessions.kept) == 1
        assert (await log_in(c, ADMIN, own.text)).status_code == 303
        page = (await c.get("/account")).text
        assert 'id="restored"' in page and shown(page)["end_marker"] == TYPED
