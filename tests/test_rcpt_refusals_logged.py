"""A recipient refused at RCPT leaves a line in the log with its sender (the operator's side of
"my SMS to 601… never arrived"): the client alone had the reply, and neither the log, `queue
recorded` nor the panel knew of a mail to a mistyped number or domain. Real SMTP client against the
real relay listener of a daemon on a real SMSC peer over TCP."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from tests.conftest import DOMAIN, STAFF, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC


async def test_each_refused_recipient_is_logged_with_sender_address_number_and_reply(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        cfg = parse_config(config_text(tmp_path, smsc_port=smsc.port), source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.policy.add_optout("+48601123457", word="STOP", source="mo"))
            rcpts = [
                f"60112345@{DOMAIN}",  # a digit short
                "601123456@sms.exmaple.com",  # a mistyped domain
                f"601123457@{DOMAIN}",  # opted out
                f"601123458@{DOMAIN}",  # taken
            ]
            with capture_logs() as logs:
                res = await gw.send(mail(", ".join(rcpts), "Czy 10:00?", "Spotkanie"), rcpts)
            assert set(res.refused) == set(rcpts[:3]), res
            await smsc.wait_for(1)
    refused = {e["rcpt"]: e for e in logs if e["event"] == "smtp.rcpt_refused"}
    assert set(refused) == set(rcpts[:3]), logs
    assert all(e["sender"] == STAFF for e in refused.values())
    assert refused[rcpts[0]]["reply"].startswith("550 5.1.1") and "9 digits" in refused[rcpts[0]]["reply"]
    assert refused[rcpts[1]]["reply"].startswith("550 5.7.1")
    assert refused[rcpts[2]]["number"] == "+48601123457" and "opted out" in refused[rcpts[2]]["reply"]


async def test_a_strangers_refused_recipients_are_debug_lines_only(tmp_path: Path) -> None:
    # With premium numbers MAIL lets anyone through (their answers come from anywhere): an
    # open-relay probe's every RCPT would be an INFO line; the operator looks for the users'.
    premium = '\n[premium]\nnumbers = ["7355"]\n'
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, extra=premium)
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            rcpt = "victim@example.org"
            with capture_logs() as logs:
                res = await gw.send(mail(rcpt, "x", "y"), [rcpt], sender="spammer@example.net")
            assert res.refused or res.error is not None
    refused = [e for e in logs if e["event"] == "smtp.rcpt_refused"]
    assert [e["log_level"] for e in refused] == ["debug"], refused
