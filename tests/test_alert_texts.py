"""Mail as monitoring systems and phones' mail apps send it.

A subject-only alert (a UPS or NAS appliance, Zabbix with an empty body) lost most of its text: the
subject was cut to [gateway] subject_max characters, as it is before a body, so "UPS01: On battery
power in response to an input power problem." reached the phone as "UPS01: On battery power in".
With no body the subject is the message and goes whole. And the signatures that phones' mail apps
add (Samsung, Outlook mobile in Polish, GMX and K-9 on Android) were sent as SMS text.

read_mail() directly, then a real SMTP client to a running daemon's listener, its built-in
simulator's records being what the phone got.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.smtp.intake import EMPTY_REPLY, IntakeOptions, IntakeRefused, read_mail
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway, smtp_sink
from tests.test_cut_from import daemon_config
from tests.test_intake import mail

UPS = "UPS01: On battery power in response to an input power problem."


@pytest.mark.parametrize("body", ["", "\n\n", " \n"], ids=["empty", "blank-lines", "spaces"])
def test_a_subject_only_alert_is_sent_whole(body: str) -> None:
    m = read_mail(mail(body, subject=UPS))
    assert m.text == UPS and not any("subject cut" in r for r in m.removed)


def test_a_body_left_empty_by_cleaning_leaves_the_subject_whole() -> None:
    # Only a phone's signature below the alert: nothing is left of the body once it is cut.
    m = read_mail(mail("\nSent from my iPhone\n", subject=UPS))
    assert m.text == UPS and m.removed == ["signature"]


def test_the_subject_is_still_cut_before_a_body() -> None:
    m = read_mail(mail("Runtime 12 min.", subject=UPS))
    assert m.text == "UPS01: On battery power in: Runtime 12 min."
    assert "subject cut to 30 characters" in m.removed


def test_subject_max_zero_still_leaves_the_subject_out() -> None:
    """0 means no subject (premium answers read mail so): an alert with no body has nothing to send."""
    with pytest.raises(IntakeRefused) as refused:
        read_mail(mail("", subject=UPS), IntakeOptions(subject_max=0))
    assert refused.value.reply == EMPTY_REPLY


SIGNED = [
    ("samsung", "Dobrze, będę o 15.\n\nWysłane z mojego Galaxy"),
    ("samsung-smartfon", "Dobrze, będę o 15.\n\nWysłane z mojego smartfona Galaxy"),
    ("outlook-ios-pl", "Dobrze, będę o 15.\n\nWysłane z aplikacji Outlook dla systemu iOS"),
    ("outlook-android-pl", "Dobrze, będę o 15.\n\nPobierz program Outlook dla systemu Android"),
    (
        "outlook-android-link",
        "Dobrze, będę o 15.\n\nPobierz program Outlook dla systemu Android<https://aka.ms/x>",
    ),
    ("gmx", "Dobrze, będę o 15.\n\nSent from my Android phone with GMX Mail. Please excuse my brevity."),
    ("k9", "Dobrze, będę o 15.\n\nSent from my Android device with K-9 Mail. Please excuse my brevity."),
    (
        "samsung-under-reply",
        "Dobrze, będę o 15.\n\nWysłane z mojego Galaxy\n\n\n-------- Oryginalna wiadomość --------\n"
        "Od: Anna <anna@acme.example>\nData: 03.12.2026 09:12 (GMT+01:00)\nDo: 601123456@sms.example.com\n"
        "Temat: Spotkanie\n\nCzy możesz o 15?",
    ),
]


@pytest.mark.parametrize("body", [b for _, b in SIGNED], ids=[n for n, _ in SIGNED])
def test_a_phone_apps_signature_is_not_sent(body: str) -> None:
    m = read_mail(mail(body, subject=None))
    assert m.text == "Dobrze, będę o 15." and "signature" in m.removed


@pytest.mark.parametrize(
    "own",
    [
        "Wysłane z mojego Galaxy, bo laptop został w biurze razem z ładowarką.",
        "Wysłane z aplikacji Outlook, bo tak jest wygodniej w podróży.",
        "Sent from my Android phone with love, because the laptop died on the train.",
    ],
)
def test_a_persons_sentence_that_starts_like_a_signature_is_kept(own: str) -> None:
    m = read_mail(mail(f"Dobrze.\n\n{own}", subject=None))
    assert m.text == f"Dobrze.\n\n{own}" and "signature" not in m.removed


def raw_alert(subject: str, body: str = "", *, n: int) -> bytes:
    """As a UPS's or NAS's mailer sends it: plain headers, the subject, an empty or short body."""
    return (
        f"From: ups@acme.example\r\nTo: 601123456@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <alert{n}@ups01.acme.example>\r\n\r\n{body}"
    ).encode()


async def test_the_phone_gets_the_whole_alert_and_no_signature(tmp_path: Path) -> None:
    relay = free_port()
    cfg, _ = daemon_config(tmp_path, relay)
    to = [f"601123456@{DOMAIN}"]
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(raw_alert(UPS, n=1), to, sender=STAFF)).error is None
        await gw.until(lambda: len(core.records) >= 1)
        await asyncio.sleep(0.3)  # a second part would have come by now
        assert [(r["data_coding"], r["text"]) for r in core.records] == [(0, UPS)]

        # Longer than one SMS: split as any text, into concatenated parts.
        long = "Zabbix: Problem: " + "Free disk space is less than 5% on volume /srv/backup " * 3
        assert (await gw.send(raw_alert(long.strip(), n=2), to, sender=STAFF)).error is None
        await gw.until(lambda: len(core.records) >= 3)
        parts = core.records[1:3]
        assert "".join(str(r["text"]) for r in parts) == long.strip()
        assert [r["concat"]["total"] for r in parts] == [2, 2]  # type: ignore[index]

        # A body below the subject: the subject is cut as before, the Galaxy signature not sent.
        signed = raw_alert(UPS, "Runtime 12 min.\r\n\r\nWysłane z mojego Galaxy\r\n", n=3)
        signed = signed.replace(b"\r\n\r\n", b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", 1)
        assert (await gw.send(signed, to, sender=STAFF)).error is None
        await gw.until(lambda: len(core.records) >= 4)
        assert core.records[3]["text"] == "UPS01: On battery power in: Runtime 12 min."
