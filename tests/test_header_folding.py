"""Polish subjects keep every space through the header folder (issue: answers read "pilnąpilną").

CPython 3.11's `policy.default` folded two encoded words onto separate lines and left the space
between them outside both, where RFC 2047 6.2 tells every reader to drop it: 3 % of Polish answer
subjects and the limit notice of an account "Zażółć Gęślą" read wrong in the user's mail client.
The same folder wrote an Outlook Message-ID (about 80 characters) in In-Reply-To and References as
an encoded word, which no mail client threads by. Each builder's mail is parsed back as a mail
client would, over subjects made from Polish words, and end to end: real SMTP into the running
gateway, the mail it sends caught by a real sink.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway import bounce, forwarded, notify
from gateway import mailheaders as h
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_dsn_format import report_of
from tests.test_notice_headers import outbound
from tests.test_two_way import BOB, parsed, two_way_config

_WORDS = [
    *"zapłata odpowiedź pilną pilną środę proszę ok Zażółć Gęślą jaźń źdźbło łódź Łódź spotkanie jutro"
    " faktura umowa KP123 +48 601 123 456 10:00 — – „cytat” … (pilne) ąę ó ż 😀 a i w z x".split(),
    "Wniosek-nr-2024/11/30",
    "ś" * 40,
    "x" * 70,  # a word longer than fits beside a header's name (a link, a file name)
]
_UNTIL = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
_STAMP = dict(sender="gateway@sms.example.com", rcpt="anna@acme.example", domain=DOMAIN)
_PHONE = "+48 601 123 456"
_SUFFIX = f" (SMS from {_PHONE})"


def _subjects(n: int = 250, seed: int = 20261202) -> list[str]:
    """Random Polish subjects, from one word to longer than any cap, always the same ones."""
    rng = random.Random(seed)
    made = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 45))) for _ in range(n)]
    # The two that failed first, as the user wrote them and as the account is named.
    return ["zapłata odpowiedź odpowiedź pilną pilną środę proszę ok", "Zażółć Gęślą", *made]


SUBJECTS = _subjects()


def _reply_title(subject: str) -> str:
    """The Subject `sms_reply` is to show for a user's subject that names no phone (R-3.1)."""
    return f"Re: {h.text(subject, limit=h.SUBJECT_MAX - len(_SUFFIX) - 4)}{_SUFFIX}"


def _sms_reply(subject: str) -> bytes:
    return forwarded.sms_reply(
        phone="+48601123456",
        phone_display=_PHONE,
        domain=DOMAIN,
        rcpt="anna@acme.example",
        subject=subject,
        text="Tak, będę",
        quoted="Czy 10:00 pasuje?",
        quoted_at=_UNTIL,
        in_reply_to="<m1@acme.example>",
    )


def _dsn(subject: str) -> bytes:
    info = dict(
        recipient="+48601123456",
        state="failed",
        reason="UNDELIV err:001",
        parts_total=1,
        text="Tekst",
        created_at=1_700_000_000.0,
        mail_from="anna@acme.example",
        header_message_id="<m1@acme.example>",
        subject=subject,
    )
    return bounce.dsn(info, **_STAMP, reporting_mta="sms.example.com")


# Each builder with the headers a mail client must read back: {header: value as given}.
Build = Callable[[str], bytes]
Expect = Callable[[str], dict[str, str]]
BUILDERS: dict[str, tuple[Build, Expect]] = {
    "sms_reply": (
        _sms_reply,
        lambda s: {
            "Subject": _reply_title(s),
            "Thread-Topic": h.text(s, limit=forwarded.TOPIC_MAX),
            "From display name": _PHONE,
        },
    ),
    "sms_reply of a reply": (
        lambda s: _sms_reply(f"Odp: {s}"),
        lambda s: {"Subject": f"{h.text(f'Odp: {s}', limit=h.SUBJECT_MAX - len(_SUFFIX) - 4)}{_SUFFIX}"},
    ),
    "notice": (
        lambda s: notify.notice(**_STAMP, subject=f"SMS limit too low for your email: {s}", content="x"),
        lambda s: {
            "Subject": h.text(f"SMS limit too low for your email: {s}"),
            "From display name": "SMS gateway",
        },
    ),
    "held_notice": (
        lambda s: notify.held_notice(**_STAMP, recipients=["+48601123456"], until=_UNTIL, subject=s),
        lambda s: {"Subject": h.text(f"SMS held until 08:00: {s}")},
    ),
    "truncation_notice": (
        lambda s: notify.truncation_notice(
            **_STAMP, cuts={"+48601123456": notify.Cut(10, "reszta")}, subject=s
        ),
        lambda s: {"Subject": h.text(f"SMS text was shortened: {s}")},
    ),
    "confirmation": (
        lambda s: notify.confirmation(
            **_STAMP,
            subject=s,
            sent={"+48601123456": notify.Shape(1, "UCS-2")},
            removed=[],
            transliterated=False,
            in_reply_to=None,
        ),
        lambda s: {"Subject": h.text(f"SMS accepted: {s}")},
    ),
    "suspended_notice": (
        lambda s: notify.suspended_notice(**_STAMP, account=s, reason="limit"),
        lambda s: {"Subject": h.text(f"SMS account {s} suspended")},
    ),
    "premium_mo": (
        lambda s: forwarded.premium_mo(
            **_STAMP,
            answer_address=None,
            password=s,
            number="7355",
            phone="+48601123456",
            text="głos",
            received_at=_UNTIL,
        ),
        lambda s: {"Subject": h.text(f"{s} · 7355 · +48601123456")},
    ),
    "premium_verification": (
        lambda s: notify.premium_verification(
            **_STAMP,
            confirm_address="confirm@sms.example.com",
            password=s,
            account="Zażółć Gęślą",
            numbers=["7355"],
            expires_at=_UNTIL,
        ),
        lambda s: {"Subject": h.text(f"Confirm premium SMS service {s}")},
    ),
    "premium_answer_cut": (
        lambda s: notify.premium_answer_cut(
            **_STAMP, phone=s, sent="ok", dropped="reszta", in_reply_to="<m1@acme.example>"
        ),
        lambda s: {"Subject": h.text(f"Your answer to {s} was shortened")},
    ),
    "billing_file": (
        lambda s: notify.billing_file(
            **_STAMP, subject=s, summary="Suma: 12,30 zł", filename="Zażółć.txt", content=b"a\tb\n"
        ),
        lambda s: {"Subject": h.text(s)},
    ),
    "bounce_forward": (
        lambda s: forwarded.bounce_forward(
            **_STAMP,
            subject=s,
            reason="bounce",
            mail_from="",
            client_ip="192.0.2.1",
            numbers=["+48601123456"],
            raw=b"Subject: x\n\nbody\n",
        ),
        lambda s: {"Subject": h.text(f"Bounce received by the SMS gateway: {s}")},
    ),
}

_ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _header_block(raw: bytes) -> list[bytes]:
    return raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n")


def _field_lines(raw: bytes, name: str) -> list[str]:
    """One header field as written: its first line and the continuation lines after it."""
    lines = [line.decode() for line in _header_block(raw)]
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "\t"))), len(lines))
    return lines[start:end]


def _read_back(msg: EmailMessage, name: str) -> str:
    if name == "From display name":
        return msg["From"].addresses[0].display_name
    return str(msg[name])


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_every_builder_keeps_the_spaces_of_polish_subjects(kind: str) -> None:
    build, expect = BUILDERS[kind]
    wrong, bad_lines = [], []
    for subject in SUBJECTS:
        raw = build(subject)
        msg = parsed(raw)
        for name, value in expect(subject).items():
            if _read_back(msg, name) != value:
                wrong.append((name, value, _read_back(msg, name)))
        for line in _header_block(raw):
            words = _ENCODED_WORD.findall(line)  # RFC 2047 2: at most 75 each, on lines of at most 76
            if not line.isascii() or len(line) > (76 if words else 998) or any(len(w) > 75 for w in words):
                bad_lines.append(line)
    assert not wrong, f"{len(wrong)} of {len(SUBJECTS)} read back wrong, e.g. {wrong[0]}"
    assert not bad_lines, bad_lines[:3]


def test_a_bounce_names_the_original_subject_whole_in_its_7bit_header_part() -> None:
    wrong = []
    for subject in SUBJECTS:
        whole = " ".join([subject] * 3)  # the part keeps up to 500 characters, not the 120 of a Subject
        raw = _dsn(whole)
        _per_recipient, original = report_of(raw)
        if str(original["Subject"]) != h.text(whole, limit=500):
            wrong.append((subject, str(original["Subject"])))
        assert raw.isascii()
        assert parsed(raw)["Subject"] == "Undelivered SMS to +48601123456"
    assert not wrong, f"{len(wrong)} of {len(SUBJECTS)} read back wrong, e.g. {wrong[0]}"


# Outlook's ids are about 80 characters: the folder wrote them as encoded words, `=?utf-8?q?=3CDB9…?=`,
# which no mail client reads as an id in In-Reply-To or References, so nothing threaded.
OUTLOOK_ID = "<DB9PR08MB6588E2C5A1F3F3B7A1C2D9E4C89A0@DB9PR08MB6588.eurprd08.prod.outlook.com>"


@pytest.mark.parametrize("kind", ["notice", "sms_reply"])
def test_a_long_message_id_is_answered_as_an_id_not_an_encoded_word(kind: str) -> None:
    if kind == "notice":
        raw = notify.notice(**_STAMP, subject="SMS limit reached", content="x", in_reply_to=OUTLOOK_ID)
    else:
        older = [f"<{n}.{'a' * 60}@mail.acme.example>" for n in range(12)]
        raw = forwarded.sms_reply(
            phone="+48601123456",
            phone_display=_PHONE,
            domain=DOMAIN,
            rcpt="anna@acme.example",
            subject="Spotkanie",
            text="Tak",
            quoted=None,
            quoted_at=None,
            in_reply_to=OUTLOOK_ID,
            references=" ".join(older),
        )
    assert _field_lines(raw, "In-Reply-To") == [f"In-Reply-To: {OUTLOOK_ID}"]
    references = _field_lines(raw, "References")
    assert all("=?" not in line and len(line) <= 998 for line in references), references
    ids = " ".join(references).split()[1:]
    assert ids[-1] == OUTLOOK_ID and all(i.startswith("<") and i.endswith(">") for i in ids), ids


async def test_an_answer_by_sms_keeps_the_spaces_of_the_users_polish_subject(tmp_path: Path) -> None:
    subject = "zapłata odpowiedź odpowiedź pilną pilną środę proszę ok"
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        first = mail(f"601123456@{DOMAIN}", "Czy 10:00 pasuje?", subject, Message_ID="<m1@acme.example>")
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
        answer = {"op": "mo", "reply_to_last": True, "text": "Tak, będę o 10:00"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, answer))["ok"]
        await sink.wait(1)
        (reply,) = outbound(sink)
        assert reply["Subject"] == f"Re: {subject}{_SUFFIX}"
        assert reply["Thread-Topic"] == subject
        assert reply["From"].addresses[0].display_name == _PHONE


async def test_the_limit_notice_of_a_polish_account_keeps_its_spaces(tmp_path: Path) -> None:
    sink_port = free_port()
    account = f'[[account]]\nname = "Zażółć Gęślą"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["{BOB}"]\n'
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, extra=account)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("Zażółć Gęślą", monthly_limit=1))
            two_parts = mail(f"601123456@{DOMAIN}", "Przypomnienie o spotkaniu " * 12, "Spotkanie")
            two_parts.replace_header("From", BOB)
            res = await gw.send(two_parts, sender=BOB)
            assert res.error is not None  # refused: the monthly limit is 1 part, the mail needs more
            await sink.wait(1)
            (notice,) = outbound(sink)
            limit = "SMS limit too low for your email: monthly limit of account Zażółć Gęślą"
            assert notice["Subject"] == limit
