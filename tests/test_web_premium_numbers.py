"""A premium service bound to a short number `[premium]` no longer has is marked on the panel.

A tariff renumbered in the config (7355 -> 7356) left a service on the old number alone: every vote to
the new one went to the fallback address. `premium list` says "7355 (not configured)" and
check-config names the service; the panel's premium page listed the number as if nothing were wrong,
and the dashboard's "Needing attention" said "Nothing.". Through the panel's app (ASGI client) on a
real SQLite store, read on the panel's reader thread as the daemon reads it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.premium.repo import PremiumRepo
from gateway.web.app import WebContext
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, as_user, panel_store, web_context

# 7355 (the number the seeded votes came to) was renumbered to 7356.
PREMIUM = '[premium]\nnumbers = ["7155", "7356"]\nfallback_address = "premium-ops@example.com"\n'


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, PREMIUM)
    premium = PremiumRepo(store.db, store.clock)

    def bind() -> None:
        kp100 = premium.active_service("KP100")
        assert kp100 is not None
        premium.update_service(kp100.id, numbers="7355 7155")  # one number gone, one still there
        premium.add_service("KP200", kp100.account_id, ADMIN, ["7355"], [ADMIN])  # on no number left

    await store.write(bind)
    yield web
    web.counts.close()
    store.close()


def row(page: str, password: str) -> str:
    m = re.search(rf"<tr><td>{password}</td>.*?</tr>", page, re.S)
    assert m, password
    return m.group(0)


async def test_the_premium_page_marks_a_number_no_longer_configured(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/premium")).text
    kp100 = row(page, "KP100")
    assert '<span class="bad not-configured">7355 (not configured)</span> 7155</td>' in kp100, kp100
    assert '<span class="bad not-configured">7355 (not configured)</span></td>' in row(page, "KP200")
    assert "<td>all</td>" in row(page, "KP777") and "not configured" not in row(page, "KP777")
    hint = re.search(r'<p class="hint" id="not-configured">.*?</p>', page, re.S)
    assert hint and "7155, 7356" in hint.group(0) and "smsgw premium set PASSWORD" in hint.group(0)
    async with as_user(web, ADMIN) as c:  # the company's admin: marked, the mend is the operator's
        page = (await c.get("/premium")).text
    assert "7355 (not configured)" in row(page, "KP100") and "KP777" not in page
    assert "The gateway's operator sets the service's numbers." in page
    assert "smsgw premium set" not in page


async def test_the_dashboard_lists_the_service_needing_attention(web: WebContext) -> None:
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/")).text
        one = re.search(r'<p class="bad" id="premium-number-KP100">(.*?)</p>', page, re.S)
        assert one, page
        said = one.group(1)
        assert "number 7355 is no longer configured in <code>[premium]</code>" in said, said
        assert "it still runs on 7155; votes for it on any other number go to the fallback address" in said, (
            said
        )
        assert "<code>smsgw premium set KP100 --number …</code> (configured: 7155, 7356)" in said, said
        two = re.search(r'<p class="bad" id="premium-number-KP200">(.*?)</p>', page, re.S)
        assert two and "it runs on no configured number: every vote for it goes to the fallback" in two.group(
            1
        )
        assert 'id="premium-number-KP777"' not in page
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/")).text
        assert 'id="premium-number-KP100"' in page and 'id="premium-number-KP200"' in page
        assert "the gateway's operator sets the service's numbers" in page
        assert "smsgw premium set" not in page
    async with as_user(web, OTHER_ADMIN) as c:  # another account's services are not its business
        page = (await c.get("/")).text
        assert "premium-number-" not in page and "KP100" not in page

    # Bound anew to the numbers configured: nothing left to say.
    premium = PremiumRepo(web.store.db, web.store.clock)

    def mend() -> None:
        for password in ("KP100", "KP200"):
            service = premium.active_service(password)
            assert service is not None
            premium.update_service(service.id, numbers="7356")

    await web.store.write(mend)
    async with as_user(web, OPERATOR) as c:
        assert "premium-number-" not in (await c.get("/")).text
        assert "not configured" not in (await c.get("/premium")).text
