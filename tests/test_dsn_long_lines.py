"""A bounce's lines stay within RFC 5322's 998 characters whatever the SMS text quoted in it.

A text of one long word (a URL of 1,319 characters) went out on one line of a 7bit part; a relay
splits such a line at 998 (Postfix `smtp_line_length_limit`), and the next hop got the URL broken
in two. The part that quotes it is quoted-printable instead, and decodes to the text whole. A real
SMTP client mails the running gateway, a fake SMSC over TCP reports the SMS undelivered, and the
bounce is caught at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_dsn_format import UNDELIVERED
from tests.test_two_way import parsed

URL = "https://example.com/" + "a" * 1299  # 1,319 characters, no space to fold at


async def test_a_long_word_in_a_bounce_is_quoted_printable_and_arrives_whole(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as fake, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=fake.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            res = await gw.send(mail([UNDELIVERED], URL, "longline"), [UNDELIVERED])
            assert res.error is None and res.refused == {}
            await sink.wait(1)
            await gw.until(lambda: gw.states() == ["failed"])
    ((_from, _rcpts, content),) = sink.messages
    assert max(len(line) for line in content.splitlines()) <= 998
    report = parsed(content)
    human = report.get_payload()[0]  # the part a person reads, first in a report (RFC 3462)
    assert human.get_content_type() == "text/plain"
    assert human["Content-Transfer-Encoding"] == "quoted-printable"
    assert URL in human.get_content()
