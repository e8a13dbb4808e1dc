"""A STOP to a premium number from a phone on the opt-out list already is noted as such.

Its note said "answered with an opt-out word: it is on the opt-out list now", as if this STOP had put
it there, where the conversations' note of the same repeat says "already": the MO handler did not
tell the premium one whether the phone was listed before. The daemon with its built-in simulator
sending the phone's SMS, a real SMTP sink as the relay.
"""

from __future__ import annotations

from pathlib import Path

from smsc.simulator.control import send_command
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import PHONE

NOW = "+48 601 123 456 answered with an opt-out word: it is on the opt-out list now"
ALREADY = "+48 601 123 456 answered with an opt-out word: it is on the opt-out list already"


async def test_a_second_stop_to_a_premium_number_says_the_phone_was_listed_already(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        conn, port = w.gw.store.db.conn, w.gw.daemon.simulator.control_port
        notes = "SELECT note FROM mo WHERE destination = '7355' AND note IS NOT NULL ORDER BY id"
        for n, word in enumerate(["STOP", "stop"], 1):
            w.skew[0] += 60.0
            stop = {"op": "mo", "source": PHONE, "destination": "7355", "text": word, "protocol": "smpp"}
            assert (await send_command("127.0.0.1", port, stop))["ok"]
            await w.gw.until(lambda n=n: len(conn.execute(notes).fetchall()) == n)
        first, second = (str(note) for (note,) in conn.execute(notes).fetchall())
    assert NOW in first and ALREADY not in first, first
    assert ALREADY in second and NOW not in second, second
