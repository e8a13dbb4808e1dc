"""The golden corpus through a real SMTP session: what reaches the SMSC is the reviewed text.

Every corpus mail is sent twice (as stored and with CRLF line ends) to its own number; the parts
the fake SMSC receives must reassemble to the golden text (cut to 10 parts where it is longer),
machine mail must be answered 250 and produce no SMS, refusals must be 554 with the reason.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from smsc.encoding import parse_udh, plan
from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_golden import load_golden_cases, to_crlf


def send_raw(port: int, raw: bytes, rcpt: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        try:
            client.sendmail(STAFF, [rcpt], raw)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        return 250, ""


def reassemble(received: list) -> str:
    def seq(s: object) -> int:
        u = parse_udh(s.udh)  # type: ignore[attr-defined]
        return u.seq if u else 1

    return "".join(s.text for s in sorted(received, key=seq))


async def test_every_corpus_mail_through_smtp(tmp_path: Path) -> None:
    cases = load_golden_cases()
    assert len(cases) >= 50
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        expected_sms: dict[str, str] = {}
        problems: list[str] = []
        for i, (name, raw, expected) in enumerate(cases):
            for j, variant in enumerate((raw, to_crlf(raw))):
                number = f"+486011{i:02d}{j:03d}"
                code, text = await asyncio.to_thread(send_raw, gw.port, variant, f"{number}@{DOMAIN}")
                first = expected.split("\n", 1)[0]
                label = f"{name} ({'as-is' if j == 0 else 'crlf'})"
                if first.startswith("REFUSED: "):
                    if code != 554 or first.removeprefix("REFUSED: ") not in text:
                        problems.append(f"{label}: expected refusal, got {code} {text}")
                elif code != 250:
                    problems.append(f"{label}: expected 250, got {code} {text}")
                elif not first.startswith("AUTOMATIC: "):
                    expected_sms[number] = plan(expected).text
        # A last plain mail is the marker: an SMS from machine mail, queued before it, would arrive first.
        marker = "+48601999999"
        raw = f"From: {STAFF}\nTo: {marker}@{DOMAIN}\nSubject: Marker\n\nlast\n".encode()
        assert (await asyncio.to_thread(send_raw, gw.port, raw, f"{marker}@{DOMAIN}"))[0] == 250
        wanted = {*expected_sms, marker}
        await smsc.wait_until(lambda: {s.destination for s in smsc.received} >= wanted, timeout=60)
        by_number: dict[str, list] = {}
        for s in smsc.received:
            if s.destination == marker:
                continue
            by_number.setdefault(s.destination, []).append(s)
        for number, text in expected_sms.items():
            got = reassemble(by_number.get(number, []))
            if got != text:
                problems.append(f"{number}: SMS text {got!r} != golden {text!r}")
        extra = set(by_number) - set(expected_sms)
        assert not extra, f"SMS sent for mails that must not produce any: {sorted(extra)}"
        assert not problems, "\n".join(problems)
