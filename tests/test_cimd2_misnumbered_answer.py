"""An SMSC whose count of our packets is off answers each submit (53) under a number we did not send,
and takes it. Dropped as answering nothing, the submit timed out and the SMS went to the phone again
and again, each copy taken. With one request alone on the wire, such an answer naming its phone
(021) is now taken as its answer, and logged; one that names no phone (a stray refusal), another
phone, or repeats the last answer taken still answers nothing. Against a scripted SMSC over TCP.
"""

from __future__ import annotations

import asyncio

import structlog

from smsc.base import Outcome
from smsc.cimd2.packet import Op, P, Packet
from tests.test_cimd2_general_error import next_submit
from tests.test_cimd2_link import scripted, sms

STAMP = "261207032102"


def accepted(number: int, destination: str = "+48601123456", stamp: str = STAMP) -> Packet:
    return Packet.make(Op.SUBMIT_RESP, number, (P.DESTINATION, destination), (P.SCTS, stamp))


async def test_an_answer_under_another_number_is_taken_for_the_submit_alone_on_the_wire() -> None:
    with structlog.testing.capture_logs() as logs:
        async with scripted(response_timeout_seconds=30) as (link, _events, conn, _peer):
            pending = asyncio.create_task(link.submit(sms()))
            submit = await next_submit(conn)
            conn.send(accepted((submit.number + 2) % 256))
            result = await asyncio.wait_for(pending, 10)
            assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, f"{STAMP}:48601123456")
            # The next submit, answered as the SMSC counts again: taken too, once.
            pending = asyncio.create_task(link.submit(sms(part_id=2)))
            again = await next_submit(conn)
            conn.send(accepted((again.number + 2) % 256, stamp="261207032104"))
            assert (await asyncio.wait_for(pending, 10)).message_id == "261207032104:48601123456"
            assert link.stats().extra["unexpected"] == "0" and link.stats().extra["timeouts"] == "0"
    taken = [e for e in logs if e["event"] == "cimd2.misnumbered_response"]
    assert taken and taken[0]["taken_for"] == submit.header, taken


async def test_an_answer_under_another_number_that_names_another_phone_or_none_answers_nothing() -> None:
    async with scripted(response_timeout_seconds=30) as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        first = await next_submit(conn)
        conn.send(accepted(first.number))
        await asyncio.wait_for(pending, 10)
        pending = asyncio.create_task(link.submit(sms(part_id=2)))
        submit = await next_submit(conn)
        conn.send(accepted(first.number))  # the last answer again
        conn.send(accepted((submit.number + 2) % 256, destination="+48601999888"))  # another phone
        refused = Packet.make(Op.SUBMIT_RESP, (submit.number + 4) % 256, (P.ERROR_CODE, 300))  # no 021
        conn.send(refused)
        conn.send(accepted(submit.number, stamp="261207032109"))  # its own answer
        result = await asyncio.wait_for(pending, 10)
        assert result.message_id == "261207032109:48601123456"
        assert link.stats().extra["unexpected"] == "3"


async def test_a_late_copy_of_an_older_answer_answers_nothing() -> None:
    # A long SMS's parts to one phone go one at a time: p1 answered, p2 answered, and while p3 waits
    # alone a late copy of p1's answer comes. Taken for p3, p1 and p3 shared a report key (one got the
    # other's receipt) and p3's own answer was dropped.
    async with scripted(response_timeout_seconds=30) as (link, _events, conn, _peer):
        answered = []
        for part_id, stamp in ((1, "261207032101"), (2, "261207032103")):
            pending = asyncio.create_task(link.submit(sms(part_id=part_id)))
            submit = await next_submit(conn)
            conn.send(accepted(submit.number, stamp=stamp))
            await asyncio.wait_for(pending, 10)
            answered.append(submit.number)
        pending = asyncio.create_task(link.submit(sms(part_id=3)))
        third = await next_submit(conn)
        conn.send(accepted(answered[0], stamp="261207032101"))  # p1's answer again
        conn.send(accepted(third.number, stamp="261207032105"))  # its own
        assert (await asyncio.wait_for(pending, 10)).message_id == "261207032105:48601123456"
        assert link.stats().extra["unexpected"] == "1"
