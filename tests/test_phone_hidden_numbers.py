"""`phone show|forget` find the mails that name the phone however a mail hides its number (a base64
part, a quoted-printable soft line break inside it, encoded words, a folded header), and read no
other mail through the email package: at 224,000 not-sent notices and bounce forwards that reading
took 12 s of a `phone show`. The mails are the gateway's own (`bounce_forward`, a notice in Polish),
queued in a real SQLite database as the gateway queues them.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import notify, wording
from gateway.forwarded import bounce_forward
from gateway.privacy import naming
from gateway.privacy.mailsearch import NumberDigits
from gateway.privacy.naming import Forms
from gateway.privacy.repo import PhoneRepo
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF

PHONE = "+48601123456"
FALLBACK = "ops@acme.example"


def forward(original: str | bytes, numbers: tuple[str, ...] = ()) -> bytes:
    """A bounce handed to the fallback address as the gateway writes it, the original attached."""
    raw = original.encode() if isinstance(original, str) else original
    return bounce_forward(
        sender=f"smsgw@{DOMAIN}",
        rcpt=FALLBACK,
        domain=DOMAIN,
        subject="Zwrot",
        reason="DSN (multipart/report)",
        mail_from="",
        client_ip="192.0.2.1",
        numbers=list(numbers),
        raw=raw,
        lang="pl",
    )


def original(subject: str, body: str = "Delivery failed.", cte: str = "7bit") -> str:
    return (
        f"From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@{DOMAIN}\r\nSubject: {subject}\r\n"
        "Message-ID: <b@mx.acme.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n"
    )


def long_line(number: str) -> bytes:
    """An 8-bit bounce with a line too long for mail: forwarded as a base64 file."""
    return original(
        "Delivery failure", f"Odpowiedź SMS od {number} nie dotarła.\r\n" + "żółw " * 300, "8bit"
    ).encode()


def b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def notice(blocked: str) -> bytes:
    """The not-sent notice of a group mail that left a number out, in Polish (QP body, encoded subject)."""
    return notify.notice(
        sender=f"smsgw@{DOMAIN}",
        rcpt=STAFF,
        domain=DOMAIN,
        subject=wording.NOT_SENT_IDENTICAL_SUBJECT("pl", blocked=blocked, subject="Przypomnienie o wizycie"),
        content=wording.NOT_SENT_IDENTICAL_TEXT("pl", sent="+48501234567", blocked=blocked, limit=1),
    )


# Each form that hides the phone's digits from a search of the stored bytes.
HIDDEN = {
    "base64 part": forward(long_line(PHONE)),
    "soft line break": forward(
        original("Returned mail", "Odpowied=C5=BA od +486011=\r\n23456 nie dotar=C5=82a", "quoted-printable")
    ),
    "base64 encoded word": forward(original(b_word(f"SMS od {PHONE}: Dziękuję, będę"))),
    # Split between two words, its last digits escaped.
    "Q encoded words": forward(
        original("=?utf-8?q?SMS_od_+4860112?=\r\n =?utf-8?q?=33=34=35=36_Dzi=C4=99kuj=C4=99?=")
    ),
    "folded header": forward(original("Re: Zebranie bardzo dlugi temat (SMS from +48 601\r\n 123 456)")),
    "notice in Polish": notice(PHONE),
}
# Mails that come near it and do not name it.
NEAR = {
    "another number": forward(long_line("+48601123457")),
    "a longer number": forward(original("Zamowienie 486011234567")),
    "a mailbox ending in its digits": forward(original("Undeliverable: jan.601123456@acme.example")),
    "another number in words": forward(original(b_word("SMS od +48601123457: Dziękuję"))),
}
# The rest, as a gateway's outbox holds them: about other numbers.
OTHERS = [
    shape
    for n in range(12)
    for number in [f"+4850{n}98765{n}"]
    for shape in (
        forward(long_line(number)),
        forward(original(b_word(f"SMS od {number}: Dziękuję")), (number,)),
        forward(original(f"SMS from {number}")),
        notice(number),
    )
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "smsgw.db")
    yield store
    store.close()


def queued(store: Store, mails: list[bytes]) -> list[int]:
    kinds = ["not-sent" if b"X-Smsgw-Bounce-Forward" not in m else "bounce-forward" for m in mails]
    return [store.outbox.enqueue_mail(k, "", FALLBACK, m) for k, m in zip(kinds, mails, strict=True)]


def test_each_form_hides_the_number_from_a_search_of_the_bytes() -> None:
    for name, content in HIDDEN.items():
        if name != "notice in Polish":
            assert PHONE[1:].encode() not in content and b"601123456" not in content, name
        assert Forms(PHONE).in_mail(content), name


def test_a_number_hidden_by_an_encoding_is_found_and_no_other_mail_is_decoded(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = dict(zip([*HIDDEN, *NEAR], queued(store, [*HIDDEN.values(), *NEAR.values()]), strict=True))
    others = queued(store, OTHERS)
    read: list[bytes] = []
    in_mail = Forms.in_mail

    def reading(forms: Forms, content: bytes) -> bool:
        read.append(content)
        return in_mail(forms, content)

    monkeypatch.setattr(naming.Forms, "in_mail", reading)
    repo = PhoneRepo(store.db.conn, PHONE)
    found = {m.id for m in repo.named()}
    held = repo.holdings(50)["mails"]
    assert found == {ids[name] for name in HIDDEN}
    assert held["count"] == len(HIDDEN)
    assert {r["id"] for r in held["rows"]} == found
    # Only the mails whose digits hold its number's were read through the email package.
    assert len(read) == len(HIDDEN) + 2
    assert not set(read) & set(OTHERS)
    assert len(others) == len(OTHERS) == 48


def test_the_mails_are_read_in_the_order_of_their_index_not_sorted_through_a_temporary_table(
    store: Store,
) -> None:
    queued(store, [HIDDEN["base64 part"], NEAR["another number"]])
    conn = store.db.conn
    run: list[str] = []
    conn.set_trace_callback(run.append)
    try:
        PhoneRepo(conn, PHONE).named()
    finally:
        conn.set_trace_callback(None)
    (sql,) = [s for s in run if "content FROM outbox" in s]
    plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "outbox_naming" in plan and "TEMP B-TREE" not in plan, plan


def test_the_digits_search_lets_through_every_mail_the_full_reading_finds() -> None:
    """The search's own cases: what it cannot read itself (a charset whose ASCII bytes may stand for
    other characters, a base64 word it cannot decode) goes to the full reading."""
    cases = [
        *HIDDEN.values(),
        forward(original("=?utf-16?b?" + base64.b64encode(PHONE.encode("utf-16")).decode() + "?=")),
        forward(original("=?iso-8859-2?q?SMS_od_=2B48=20601=20123=20456?=")),
        forward(original("=?us-ascii?q?SMS_od_+48_601?= =?utf-8?q?_123_456_Dzi=C4=99kuj=C4=99?=")),
        forward(original("plain", "Tel. +48 601-123-456, prosze oddzwonic")),
        forward(original("plain", f"+4860{'=' + chr(13) + chr(10)}1123456 w tekscie bez QP")),
        forward(original("plain", "601123456@sms.example.com")),
    ]
    digits, forms = NumberDigits(PHONE), Forms(PHONE)
    for content in cases:
        assert forms.in_mail(content), content
        assert digits.may_name(content), content
    for content in [*OTHERS, NEAR["another number"], NEAR["another number in words"]]:
        assert not digits.may_name(content), content


def test_a_mail_erased_to_the_marker_names_nothing(store: Store) -> None:
    (id_,) = queued(store, [HIDDEN["base64 part"]])
    conn: sqlite3.Connection = store.db.conn
    conn.execute("UPDATE outbox SET content = ? WHERE id = ?", (naming.ERASED.encode(), id_))
    assert PhoneRepo(conn, PHONE).named() == []
