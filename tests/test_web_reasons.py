"""A failed SMS on the panel: its reason in words with the SMSC's code after them (the bounce's own
wording), Retry only where sending again can help (as `smsgw queue retry`), no stale times on a
message queued again, and a queue action's notice that does not claim it again on a reload.

The failures are real: the daemon sends to the SMSC simulator, which refuses one number at submit
(ESME_RINVDSTADR) and reports another undelivered (UNDELIV err:001); the panel then reads the
daemon's database through the real app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.store.db import Store
from gateway.web.app import WebContext, when
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_account_show import CLI
from tests.web_helpers import OPERATOR, as_user, csrf_of, password_hash, web_context

REFUSED = "601120000"  # the simulator refuses it at submit: ESME_RINVDSTADR (0x0B)
UNREACHABLE = "601123413"  # taken, then reported UNDELIV err:001


@dataclass
class Failed:
    web: WebContext
    config: Path
    refused: int
    unreachable: int


@pytest.fixture
async def failed(tmp_path: Path) -> AsyncIterator[Failed]:
    sink_port = free_port()
    async with (
        HappySMSC(reject_suffixes=["0000"], fail_suffixes=["13"]) as smsc,
        smtp_sink(sink_port) as sink,
    ):
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        path = tmp_path / "config.toml"
        path.write_text(text)
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(f"{REFUSED}@{DOMAIN}", "To a number that is none"))
            await gw.send(mail(f"{UNREACHABLE}@{DOMAIN}", "To a phone that is off"))
            await sink.wait(2)  # both bounces
    store = Store.open(cfg.db_path)
    store.accounts.add_user(OPERATOR, "acme", password_hash=password_hash())
    store.accounts.set_user(OPERATOR, role="operator")
    ids = dict(store.db.conn.execute("SELECT recipient, id FROM messages").fetchall())
    store.db.serve()
    web = web_context(tmp_path, store)
    yield Failed(web, path, ids[f"+48{REFUSED}"], ids[f"+48{UNREACHABLE}"])
    web.counts.close()
    store.close()


def bounces(web: WebContext) -> int:
    return web.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'dsn'").fetchone()[0]


def parts_table(page: str) -> str:
    found = re.search(r'<table id="parts">.*?</table>', page, re.S)
    assert found, page
    return found.group(0)


async def test_reasons_read_in_words_with_the_smsc_code_after_them(failed: Failed) -> None:
    async with as_user(failed.web, OPERATOR) as c:
        listing = (await c.get("/messages")).text
        refused = (await c.get(f"/messages/{failed.refused}")).text
        unreachable = (await c.get(f"/messages/{failed.unreachable}")).text
    invalid = "the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)"
    off = "the operator could not deliver it to the phone (UNDELIV err:001)"
    assert f"<td>{invalid}</td>" in listing and f"<td>{off}</td>" in listing
    assert f'<dd id="reason">{invalid}</dd>' in refused and invalid in parts_table(refused)
    assert f'<dd id="reason">{off}</dd>' in unreachable
    for page in (listing, refused, unreachable):  # the raw code no longer comes first
        assert ">ESME_RINVDSTADR (0x0B)" not in page and ">UNDELIV err:001" not in page


async def test_no_retry_for_a_number_the_smsc_refused_for_good(
    failed: Failed, capsys: pytest.CaptureFixture[str]
) -> None:
    web, mid = failed.web, failed.refused
    before = bounces(web)
    async with as_user(web, OPERATOR) as c:
        page = (await c.get(f"/messages/{mid}")).text
        assert 'id="retry"' not in page
        r = await c.post(f"/messages/{mid}/retry", data={"csrf": csrf_of(page)})  # a form shown before
    assert r.status_code == 409 and "refused it for good" in r.text and "ESME_RINVDSTADR" in r.text
    assert web.store.admin.message_info(mid)["state"] == "failed" and bounces(web) == before
    assert not [e for e in web.repo.audit_log(None) if e["action"] == "message.retry"]
    # The CLI's retry follows the same rule.
    code, _out, err = CLI(failed.config, capsys)("queue", "retry", str(mid))
    assert code == 1 and "refused it for good" in err and "it would be refused again" in err
    assert web.store.admin.message_info(mid)["state"] == "failed"


async def test_a_retry_shows_no_stale_done_time_and_a_reload_says_when_it_was_asked(failed: Failed) -> None:
    web, mid = failed.web, failed.unreachable
    (done_at,) = web.store.db.conn.execute(
        "SELECT done_at FROM parts WHERE message_id = ?", (mid,)
    ).fetchone()
    stale = when(done_at, web.tz)
    async with as_user(web, OPERATOR) as c:
        page = (await c.get(f"/messages/{mid}")).text
        assert 'id="retry"' in page and stale in parts_table(page)  # the part ended then
        r = await c.post(f"/messages/{mid}/retry", data={"csrf": csrf_of(page)})
        assert r.status_code == 303
        after = (await c.get(r.headers["location"])).text
        reload = (await c.get(r.headers["location"])).text
        forged = (await c.get(f"/messages/{failed.refused}?did=retry&parts=1")).text
    assert web.store.admin.message_info(mid)["state"] == "queued"
    assert stale not in parts_table(after)  # queued again: the old attempt's end is not this one's
    for shown in (after, reload):
        notice = re.search(r'<p class="done"[^>]* id="done">([^<]*)</p>', shown)
        assert notice, shown
        asked = r"retry asked at \d{4}-\d\d-\d\d \d\d:\d\d"
        assert re.fullmatch(rf"{asked}: 1 part\(s\) queued again then", notice.group(1)), notice.group(1)
    assert 'id="done"' not in forged  # no retry was asked for that message: nothing is claimed


async def test_the_csv_says_the_reason_in_words_and_an_ended_message_expects_no_report(
    failed: Failed,
) -> None:
    # The export's reason column held the bare code ("ESME_RINVDSTADR (0x0B)") where the page says it
    # in words; and a submit the SMSC refused, final, said "Delivery reports: None yet." for ever.
    async with as_user(failed.web, OPERATOR) as c:
        text = (await c.get("/messages.csv")).text
        refused = (await c.get(f"/messages/{failed.refused}")).text
        unreachable = (await c.get(f"/messages/{failed.unreachable}")).text
    rows = {row.split(",", 1)[0]: row for row in text.removeprefix("\ufeff").splitlines()[1:]}
    assert "the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)" in rows[str(failed.refused)]
    assert "the operator could not deliver it to the phone (UNDELIV err:001)" in rows[str(failed.unreachable)]
    dlrs = re.search(r'<table id="dlrs">.*?</table>', refused, re.S)
    assert dlrs and "None: every part has ended, so none will come." in dlrs.group(0)
    assert "None yet." not in dlrs.group(0)
    assert "UNDELIV" in re.search(r'<table id="dlrs">.*?</table>', unreachable, re.S).group(0)  # type: ignore[union-attr]
