"""The billing download's ASCII file name holds no slash or backslash of the account's name.

Account `Łódź/A B` was offered as `filename="2026-12-__d_/A B.txt"`: a browser reading only that
form was handed a folder in the name. A slash is written `_` there, as a quote and a backslash are;
the UTF-8 form (`filename*`) keeps the name exact, %-escaped.

The panel through an ASGI client on the seeded store, the month's files written by billing_reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import file_name, write_month
from gateway.web.app import WebContext
from tests.web_helpers import OPERATOR, add_mail, as_user, panel_store, web_context


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()
    store.close()


async def test_a_slash_in_the_accounts_name_is_no_folder_of_the_downloaded_file(
    web: WebContext, tmp_path: Path
) -> None:
    names = ("Łódź/A B", "A/B", "C\\D")

    def accounts() -> None:
        for i, name in enumerate(names):
            web.store.accounts.add_account(name)
            add_mail(web.store, name, f"biuro@{i}.example", f"+4860100001{i}", "x")

    await web.store.write(accounts)
    month: Month = web.store.month  # type: ignore[attr-defined]
    write_month(web.store.db.path, tmp_path, month, ZoneInfo(web.config.gateway.timezone))
    said = {}
    async with as_user(web, OPERATOR) as c:
        for name in names:
            r = await c.get(f"/billing/{month}/{file_name(name).replace('%', '%25')}")
            assert r.status_code == 200, name
            said[name] = r.headers["content-disposition"]
    assert said == {
        "Łódź/A B": f'attachment; filename="{month}-__d__A B.txt"; '
        f"filename*=UTF-8''{month}-%C5%81%C3%B3d%C5%BA%2FA%20B.txt",
        "A/B": f"attachment; filename=\"{month}-A_B.txt\"; filename*=UTF-8''{month}-A%2FB.txt",
        "C\\D": f"attachment; filename=\"{month}-C_D.txt\"; filename*=UTF-8''{month}-C%5CD.txt",
    }
