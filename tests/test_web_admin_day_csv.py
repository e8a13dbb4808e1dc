# ruff: noqa: F811  (the tests take test_web_admin_day's `web` fixture, imported by name)
"""The panel's files: the CSV export (in batches off the loop, with a BOM, a name and a cut line; cells
from outside never starting a formula; split by semicolons for a Polish office's Excel) and billing
files named after the account. Through the real app on a real SQLite file, as in
test_web_admin_day.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import file_name, month_dir, write_month
from gateway.web import messages
from gateway.web.app import WebContext
from tests.test_web_admin_day import web  # noqa: F401  (the fixture)
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    add_mail,
    as_user,
    panel_store,
    web_context,
)

# ---- 6: the CSV export ----------------------------------------------------------------------------


async def test_csv_export_in_batches_off_the_loop_with_bom_name_and_a_cut_line(
    web: WebContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = web.store
    for i in range(12):
        await store.write(lambda i=i: add_mail(store, "acme", "łucja@acme.example", "+48601000009", f"t{i}"))
    monkeypatch.setattr(messages, "CSV_BATCH", 5, raising=False)
    on_loop: list[str] = []
    store.db.conn.set_trace_callback(on_loop.append)
    try:
        async with as_user(web, ADMIN) as c:
            chunks = []
            url = "/messages.csv?number=601000009&from=2020-01-01&state=queued"
            async with c.stream("GET", url) as r:
                assert r.status_code == 200
                disposition = r.headers["content-disposition"]
                async for chunk in r.aiter_raw():
                    chunks.append(chunk)
    finally:
        store.db.conn.set_trace_callback(None)
    assert not [sql for sql in on_loop if "FROM messages m JOIN emails" in sql]  # read off the loop
    body = b"".join(chunks)
    assert body.startswith(b"\xef\xbb\xbfid,created,")  # a BOM: Excel then reads UTF-8
    text = body.decode("utf-8-sig")
    assert "łucja@acme.example" in text and len(text.strip().splitlines()) == 13
    assert "cut at" not in text
    assert disposition == 'attachment; filename="messages-2020-01-01_to_now-queued-601000009.csv"'

    monkeypatch.setattr(messages, "CSV_MAX", 7, raising=False)
    async with as_user(web, ADMIN) as c:
        text = (await c.get("/messages.csv?number=601000009")).text
    lines = text.strip().splitlines()
    assert len(lines) == 1 + 7 + 1 and lines[-1].startswith("# cut at 7 rows: narrow the search")


async def test_csv_cells_from_outside_never_start_a_formula(web: WebContext) -> None:
    # A listed sender `=cmd|'/C calc'!A0@…` (a valid address) went into the CSV as it was: Excel,
    # opening the operator's export, ran it as a formula. Such cells now start with an apostrophe.
    store = web.store
    sender = "=cmd|'/C calc'!A0@acme.example"
    await store.write(lambda: add_mail(store, "acme", sender, "+48601000007", "hi"))
    async with as_user(web, ADMIN) as c:
        text = (await c.get("/messages.csv?number=601000007")).text
    (row,) = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1:]
    assert row[3] == "'" + sender and row[4] == "+48601000007"  # the number stays as written


# ---- 14: billing file names -----------------------------------------------------------------------


async def test_billing_files_are_named_after_the_account(web: WebContext, tmp_path: Path) -> None:
    name = "Łódź Sp. z o.o."
    long = "Spółka Akcyjna " + "ż" * 49  # its file name is cut and ends in a hash

    def lodz() -> None:
        web.store.accounts.add_account(name)
        add_mail(web.store, name, "biuro@lodz.example", "+48601000003", "x")
        web.store.accounts.add_account(long)
        add_mail(web.store, long, "biuro@zz.example", "+48601000004", "x")

    await web.store.write(lodz)
    month: Month = web.store.month  # type: ignore[attr-defined]
    write_month(web.store.db.path, tmp_path, month, ZoneInfo(web.config.gateway.timezone))
    stored = file_name(name)
    assert (month_dir(tmp_path, month) / stored).exists() and stored.startswith("%C5%81")
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/billing")).text
        assert f">{name}</a>" in page and ">%C5%81" not in page
        assert "~" in file_name(long) and f">{long}</a>" in page
        r = await c.get(f"/billing/{month}/{stored.replace('%', '%25')}")
        assert r.status_code == 200
        assert r.headers["content-disposition"] == (
            f'attachment; filename="{month}-__d_ Sp. z o.o..txt"; '
            f"filename*=UTF-8''{month}-%C5%81%C3%B3d%C5%BA%20Sp.%20z%20o.o..txt"
        )


async def test_a_polish_offices_csv_is_split_by_semicolons_as_its_excel_reads_it(tmp_path: Path) -> None:
    # `[gateway] language = "pl"`: Excel under Polish regional settings splits a double-clicked CSV
    # at `;`; comma-separated, every row came up as one cell.
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    polish = web.config.gateway.model_copy(update={"language": "pl"})
    web.config = web.config.model_copy(update={"gateway": polish})
    try:
        await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601000007", "Cześć, jutro o 9"))
        async with as_user(web, ADMIN) as c:
            body = (await c.get("/messages.csv?number=601000007")).content
        assert body.startswith(b"\xef\xbb\xbfid;created;account;from;recipient;state;parts;reason")
        (row,) = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))[1:]
        assert row[4] == "+48601000007" and row[5] == "queued"
    finally:
        web.counts.close()
        store.close()
