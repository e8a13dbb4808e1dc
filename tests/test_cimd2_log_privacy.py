"""The SMSC's own words (901 ERROR_TEXT) name the destination as often as not ("Destination 48601123456
barred"). The part keeps them whole, as its reason (`queue show`), but no line the CIMD2 adapter logs
shows the number: not the submit's outcome (53 or 98), not a refused login, not a packet summary of
an unexpected answer. Against the real daemon and the link alone, each over TCP with a scripted SMSC
(the simulator answers only with our own texts for its codes, which quote no number).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog

from gateway.logging import _redact
from smsc.base import Outcome
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_cimd2_general_error import closed_by_client, daemon_to_first_submit, next_submit
from tests.test_cimd2_link import scripted, sms
from tests.test_cimd2_login_refusals import login_refused
from tests.test_two_way import two_way_config

NUMBER = "601123456"  # the national part of +48601123456: in no log line, in whatever form written


def adapter_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if str(e["event"]).startswith("cimd2.")]


def leaks(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines that show the number, written whole or spaced as a person writes it."""
    return [e for e in lines if NUMBER in "".join(ch for ch in str(e) if ch.isdigit())]


async def test_a_refusal_quoting_the_number_is_kept_by_the_part_and_masked_in_the_log(tmp_path: Path) -> None:
    # Through the daemon: the SMSC refuses the SMS (53, 900:300) in words that name the destination.
    # The part's reason keeps them; the cimd2.submit line says the code and the words, the number
    # masked. A stray 53 with such a text (answering nothing of ours) is logged by its summary, masked.
    async with daemon_to_first_submit(tmp_path, f"{NUMBER}@{DOMAIN}", "Hello, barred") as first:
        gw, _peer, conn, submit, _sink, logs = first
        conn.send(Packet.make(Op.SUBMIT_RESP, 201, (P.ERROR_CODE, 300),
                              (P.ERROR_TEXT, "Dest. +48 601 123 456 unknown")))  # fmt: skip
        barred = (P.ERROR_TEXT, "Destination 48601123456 barred")
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, "+48601123456"),
                              (P.ERROR_CODE, 300), barred))  # fmt: skip
        await gw.until(lambda: gw.states() == ["failed"])
        [(reason,)] = gw.store.db.conn.execute("SELECT error FROM parts")
    assert reason == "CIMD2 900:300 Destination 48601123456 barred"
    lines = adapter_lines(logs)
    assert leaks(lines) == []
    (submitted,) = [e for e in lines if e["event"] == "cimd2.submit"]
    assert submitted["outcome"] == "rejected"
    assert submitted["error"] == "CIMD2 900:300 Destination <11 chars> barred", submitted
    (stray,) = [e for e in lines if e["event"] == "cimd2.unexpected_response"]
    assert "901='Dest. <15 chars> unknown'" in stray["packet"], stray


async def test_a_general_error_text_quoting_the_number_is_masked_in_the_submit_line() -> None:
    # A 98 to the submit: TEMPORARY, the session ended. Its reason keeps the SMSC's words; neither the
    # submit's line nor the general error's shows the number.
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (link, _events, conn, peer):
            task = asyncio.create_task(link.submit(sms()))
            submit = await next_submit(conn)
            conn.send(Packet.make(Op.GENERAL_ERROR, submit.number, (P.ERROR_CODE, 2),
                                  (P.ERROR_TEXT, "no route to 0048601123456")))  # fmt: skip
            result = await asyncio.wait_for(task, 10)
            await closed_by_client(conn)
            await (await peer.accept()).login()
    assert result.outcome is Outcome.TEMPORARY
    assert result.error == "CIMD2 general error (98), 900:2 no route to 0048601123456"
    lines = adapter_lines(logs)
    assert leaks(lines) == []
    (submitted,) = [e for e in lines if e["event"] == "cimd2.submit"]
    assert submitted["error"] == "CIMD2 general error (98), 900:2 no route to <13 chars>", submitted


async def test_a_login_refusal_quoting_a_number_is_masked_in_the_log() -> None:
    # Some SMSCs name the account's own MSISDN when they refuse a login: the refusal's line keeps the
    # code and the words, not the number.
    async with login_refused(100, "account 48601123456 barred") as (_link, _events, _peer, logs):
        pass
    lines = adapter_lines(logs)
    assert leaks(lines) == []
    (refused,) = [e for e in lines if e["event"] == "cimd2.login_refused"]
    assert refused["code"] == 100 and refused["error"] == "account <11 chars> barred", refused


def test_only_digit_runs_that_could_be_a_number_are_masked() -> None:
    # Codes, counts and short codes stay readable; a number goes whole however it is written.
    from smsc.cimd2.packet import without_numbers

    assert without_numbers("error 300: max 160 characters to 7155") == "error 300: max 160 characters to 7155"
    assert without_numbers("+48 (601) 123-456 barred") == "<17 chars> barred"
    assert without_numbers("to 601.123.456 or 48601123456") == "to <11 chars> or <11 chars>"
    assert without_numbers("") == ""


async def test_a_receipts_message_id_is_logged_without_the_number(tmp_path: Path) -> None:
    """A CIMD2 SMSC's message id is its time stamp and the destination ("261205194652:48601123456"):
    `dlr.recorded` (and `dlr.unmatched`, `dlr.repeated`, `mt.possible_duplicate`) logged it whole, a
    number `smsgw phone forget` cannot erase. The log's redaction keeps the stamp and masks the rest;
    the stored part keeps the whole id, which receipts are matched by."""
    sink_port = free_port()
    cfg = two_way_config(tmp_path, "cimd2", relay_port=sink_port)  # the built-in simulator's CIMD2 side
    async with smtp_sink(sink_port):
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(f"{NUMBER}@{DOMAIN}", "Hello"))
                await gw.until(lambda: gw.states() == ["delivered"])
                [(smsc_id,)] = gw.store.db.conn.execute("SELECT smsc_id FROM parts")
    assert smsc_id.endswith(":48601123456")
    recorded = [e for e in logs if e["event"] == "dlr.recorded"]
    assert recorded and leaks(recorded)  # the number is in the event as the code logs it…
    written = [_redact(None, "", dict(e)) for e in recorded]
    assert leaks(written) == [], written  # …and not in the line the log writes
    assert written[0]["smsc_id"] == f"{smsc_id.split(':')[0]}:…"


def test_every_field_naming_a_receipts_id_is_masked() -> None:
    # `dlr.other_link` (a receipt come by another link: CIMD2 too) logs the id as `receipt_id`.
    for key in ("smsc_id", "message_id", "receipt_id"):
        assert _redact(None, "", {key: "261205194652:48601123456"})[key] == "261205194652:…"
    assert _redact(None, "", {"message_id": "<abc.123@x>"})["message_id"] == "<abc.123@x>"
    assert _redact(None, "", {"smsc_id": "0a1b2c3d"})["smsc_id"] == "0a1b2c3d"
