"""The late rest of a long answer follows its first parts: their thread, their account, or the fallback
once that account's user is gone (R-3.1, R-3.3, R-3.4, R-5.2).

The phone sends part 1 of 2; the timeout mails it to the user who texted the phone. The user texts
the phone again (moved to another company's account, or the address given to a successor, or not at
all changed), then part 2 comes. It was found by the conversation row as it is now: threaded under
and quoting the newer SMS, billed to the new account, mailed to another company's user or the
successor. It goes on in the first parts' thread, quoting what they answered, on their account;
or to the fallback address when their user is gone.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
daemon's own housekeeping joining the parts on an injected clock, the SQLite file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.reassembly import TIMEOUT_SECONDS
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK, OURS, PHONE, own_config
from tests.test_two_way import parsed

T0 = 1_800_000_000.0
TEXT = "Zgoda na warunki umowy numer 77, " * 5 + "podpisze jutro rano w biurze"


async def texts(gw: Any, body: str, subject: str, message_id: str) -> None:
    core = gw.daemon.simulator.core
    sent = len(core.records)
    msg = mail(f"601222222@{DOMAIN}", body=body, subject=subject, Message_ID=message_id)
    assert (await gw.send(msg)).error is None
    await gw.until(lambda: len(core.records) == sent + 1)
    await gw.until(lambda: "submitted" not in gw.states() and "queued" not in gw.states())


async def part(gw: Any, seq: int) -> None:
    """Part `seq` of the phone's 2-part answer, as the SMSC delivers it."""
    core = gw.daemon.simulator.core
    await gw.until(lambda: core._pick("smpp") is not None)
    session = core._pick("smpp")
    esm, dc, sm = mo_parts(TEXT, ref=0x22, parts=2)[seq - 1]
    fields = dict(address_fields(PHONE, OURS), esm_class=esm, data_coding=dc, short_message=sm)
    await session.send_part(tuple(fields.items()))


def segments(gw: Any) -> int:
    return int(gw.store.db.conn.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0])


def answers(sink: Any) -> list[tuple[list[str], Any]]:
    return [
        (rcpts, parsed(raw))
        for _, rcpts, raw in sink.messages
        if parsed(raw)["From"].addresses[0].addr_spec == f"{PHONE}@{DOMAIN}"
    ]


def account_id(gw: Any, name: str) -> int:
    return int(gw.store.db.conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()[0])


@pytest.mark.parametrize("change", ["other-company", "successor", "none"])
async def test_the_late_rest_follows_its_first_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        await texts(gw, "Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        now[0] += 60
        await part(gw, 1)
        await gw.until(lambda: segments(gw) == 1)
        now[0] += TIMEOUT_SECONDS + 1
        await gw.until(lambda: len(answers(sink)) == 1)
        [(rcpts, first)] = answers(sink)
        assert rcpts == [STAFF] and first["In-Reply-To"] == "<first@acme.example>"

        now[0] += 60
        if change != "none":
            await readd(gw, STAFF, "other" if change == "other-company" else "acme")
        await texts(gw, "Demo hello", "Demo", "<second@acme.example>")
        now[0] += 60
        await part(gw, 2)
        await gw.until(lambda: segments(gw) == 1)
        now[0] += TIMEOUT_SECONDS + 1
        await gw.until(lambda: len(answers(sink)) == 2)
        rcpts, late = answers(sink)[1]
        body = late.get_content()
        assert "podpisze jutro rano" in body and "Demo hello" not in body, body
        state, note, billed = gw.store.db.conn.execute(
            "SELECT state, note, account_id FROM mo ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert billed == account_id(gw, "acme")  # the first parts' account, whoever holds the address
        if change == "none":
            assert rcpts == [STAFF]
            assert late["In-Reply-To"] == "<first@acme.example>"  # the first parts' thread
            assert "Umowa 77 do podpisu" in body
            assert state == "mailed"
            return
        assert rcpts == [FALLBACK], body
        assert state == "fallback"
        assert note.startswith(
            f"it answers {STAFF}, who belongs to another account since"
            if change == "other-company"
            else f"it answers an SMS {STAFF} sent before the address was added again as a user"
        ), note
