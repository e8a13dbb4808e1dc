"""What reached phones from three kinds of mail that mail programs really send.

- Decomposed text (NFD), as Apple Mail writes it: "ż" arrives as "z" + U+0307, so "Z poważaniem"
  was no signature, an account's cut-from phrase did not match, and a subject's accents counted
  twice against its length.
- UTF-8 under a Western single-byte label (iso-8859-1, windows-1252), in the body or an encoded-word
  subject: "Zażółć" went out as "ZaÅ¼Ã³Å‚Ä‡" in UCS-2. A text really written in those charsets,
  and Polish text under its own label, stay as they were.
- A calendar answer with a text (Google Calendar's "Accepted: …" with its "… has accepted this
  invitation. / Invitation from Google Calendar …", two parts) and a cancellation with one: the
  README says such a mail sends its subject alone.

Each mail goes through a running gateway's real SMTP listener, and the text is read back from the
store the SMSC link sends from; the read_mail() cases pin the rules' edges.
"""

from __future__ import annotations

import base64
import unicodedata
from pathlib import Path

from gateway.smtp.intake import IntakeOptions, read_mail
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

RCPT = f"601123456@{DOMAIN}"
POLISH = "Zażółć gęślą jaźń"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def raw_mail(n: int, body: bytes, ctype: str, subject: bytes | None = None, cte: str = "8bit") -> bytes:
    """A one-part mail; its subject is "Temat n" unless given (one subject per mail: the same one to the
    same phone again would be a conversation going on, sent without it)."""
    subject = subject if subject is not None else f"Temat {n}".encode()
    head = f"From: {STAFF}\r\nTo: {RCPT}\r\nMessage-ID: <leftover-{n}@acme.example>\r\nMIME-Version: 1.0\r\n"
    head += f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n"
    return head.encode() + b"Subject: " + subject + b"\r\n\r\n" + body + b"\r\n"


async def sent_texts(tmp_path: Path, mails: list[bytes], cut_from: tuple[str, ...] = ()) -> list[str]:
    """The SMS texts the gateway stored for `mails`, sent one by one over SMTP, in order."""
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            if cut_from:  # set while the daemon runs, from another connection, as `smsgw account set` does
                admin = Store.open(cfg.db_path)
                try:
                    (account,) = [a.name for a in admin.accounts.list_accounts()]
                    admin.accounts.update_account(account, cut_from=cut_from)
                finally:
                    admin.close()
            for raw in mails:
                res = await gw.send(raw, [RCPT])
                assert res.error is None and not res.refused, res
            return [r[0] for r in gw.store.db.conn.execute("SELECT text FROM messages ORDER BY id")]


# 1. Decomposed text


async def test_decomposed_mail_loses_its_signature_and_the_accounts_clause(tmp_path: Path) -> None:
    signed = nfd("Proszę o raport.\r\n\r\nZ poważaniem\r\nJan Kowalski\r\nACME Sp. z o.o.\r\n")
    clause = nfd("Oddzwoń.\r\n\r\nTreść tej wiadomości jest poufna i prawnie chroniona.\r\n")
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(1, signed.encode(), "text/plain; charset=utf-8", subject=b"Raport"),
            raw_mail(2, clause.encode(), "text/plain; charset=utf-8", subject=b"Pilne"),
        ],
        cut_from=("Treść tej wiadomości",),
    )
    assert texts == ["Raport: Proszę o raport.", "Pilne: Oddzwoń."]


async def test_a_decomposed_subject_counts_each_letter_once(tmp_path: Path) -> None:
    subject = "Żółta łódź już w środę rano"  # 27 letters: the 30-character cut leaves it whole
    encoded = b"=?utf-8?B?" + base64.b64encode(nfd(subject).encode()) + b"?="
    texts = await sent_texts(tmp_path, [raw_mail(3, b"Potwierdzam.", "text/plain", subject=encoded)])
    assert texts == [f"{subject}: Potwierdzam."]


# 2. UTF-8 under a Western single-byte label


async def test_utf8_under_a_latin1_or_windows_1252_label_is_read_as_utf8(tmp_path: Path) -> None:
    word = b"=?iso-8859-1?Q?" + "".join(f"={b:02X}" for b in "Łódź".encode()).encode() + b"?="
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(4, POLISH.encode(), "text/plain; charset=iso-8859-1"),
            raw_mail(5, POLISH.encode(), "text/html; charset=windows-1252"),
            raw_mail(6, b"ok", "text/plain; charset=us-ascii", subject=word),
        ],
    )
    assert texts == [f"Temat 4: {POLISH}", f"Temat 5: {POLISH}", "Łódź: ok"]


async def test_text_really_in_its_labelled_charset_stays_as_written(tmp_path: Path) -> None:
    french = "Un café crème, s’il vous plaît — 5 €"
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(7, french.encode("cp1252"), "text/plain; charset=windows-1252"),
            raw_mail(8, "café".encode("latin-1"), "text/plain; charset=iso-8859-1"),
            raw_mail(9, POLISH.encode("iso-8859-2"), "text/plain; charset=iso-8859-2"),
            # Valid UTF-8 by chance ("ÓŁ" is D3 A3): a Central European label is believed.
            raw_mail(10, "PÓŁNOC".encode("iso-8859-2"), "text/plain; charset=iso-8859-2"),
            raw_mail(11, b"ok", "text/plain", subject=b"=?iso-8859-1?Q?Caf=E9?="),
        ],
    )
    assert texts == [
        f"Temat 7: {french}",
        "Temat 8: café",
        f"Temat 9: {POLISH}",
        "Temat 10: PÓŁNOC",
        "Café: ok",
    ]


# 3. Calendar answers and cancellations with a text

REPLY_ICS = (
    "BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nVERSION:2.0\r\n"
    "METHOD:{method}\r\nBEGIN:VEVENT\r\nDTSTART:20261207T090000Z\r\nDTEND:20261207T100000Z\r\n"
    "ATTENDEE;PARTSTAT=ACCEPTED;CN=Jan Kowalski:mailto:jan@example.com\r\n"
    "SUMMARY:Budget meeting\r\nLOCATION:Sala 204\r\nUID:abc123@google.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
GOOGLE_TEXT = (
    "Jan Kowalski has accepted this invitation.\r\n\r\nBudget meeting\r\nMonday Dec 7, 2026 10am - 11am (CET)"
    "\r\n\r\nInvitation from Google Calendar: https://calendar.google.com/calendar/\r\n\r\nYou are receiving"
    " this email because you are an attendee of the event.\r\n"
)
ACCEPTED = "Accepted: Budget meeting @ Mon Dec 7, 2026 10am - 11am (CET) (jan@example.com)"


def google_answer(n: int, method: str, text: str, subject: str | None) -> bytes:
    """multipart/mixed: an alternative of the text and the calendar, and the invite.ics file."""
    ics = REPLY_ICS.format(method=method)
    b64 = base64.encodebytes(ics.encode()).decode()
    body = (
        "--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
        f"--a\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}\r\n"
        f"--a\r\nContent-Type: text/calendar; charset=UTF-8; method={method}\r\n\r\n{ics}\r\n--a--\r\n"
        '--m\r\nContent-Type: application/ics; name="invite.ics"\r\n'
        'Content-Disposition: attachment; filename="invite.ics"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{b64}\r\n--m--\r\n"
    )
    head = f"From: {STAFF}\r\nTo: {RCPT}\r\nMessage-ID: <answer-{n}@acme.example>\r\nMIME-Version: 1.0\r\n"
    head += f"Subject: {subject}\r\n" if subject is not None else ""
    return (head + "Content-Type: multipart/mixed; boundary=m\r\n\r\n" + body).encode()


async def test_a_calendar_answer_or_cancellation_with_text_sends_its_subject_alone(tmp_path: Path) -> None:
    cancelled = "Spotkanie odwołane, przepraszam.\r\n\r\nZobacz w Kalendarzu Google.\r\n"
    texts = await sent_texts(
        tmp_path,
        [
            google_answer(1, "REPLY", GOOGLE_TEXT, ACCEPTED),
            google_answer(2, "CANCEL", cancelled, "Anulowano: Narada"),
            google_answer(3, "REQUEST", "Omówienie budżetu\r\n", "Zaproszenie: Narada"),
        ],
    )
    assert texts == [
        ACCEPTED,
        "Anulowano: Narada",
        "Zaproszenie: Narada: Omówienie budżetu\n2026-12-07 10:00, Sala 204",
    ]


def test_a_calendar_answer_says_the_text_was_not_sent_and_keeps_it_without_a_subject() -> None:
    m = read_mail(google_answer(4, "REPLY", GOOGLE_TEXT, ACCEPTED))
    assert m.text == ACCEPTED and "text of a meeting answer or cancellation not sent" in m.removed
    # No subject to send: the text is all there is, and is sent rather than the mail refused.
    m = read_mail(google_answer(5, "REPLY", GOOGLE_TEXT, None))
    assert m.text.startswith("Jan Kowalski has accepted this invitation.")
    # With the subject left out of SMS (subject_max 0) the text is sent too.
    m = read_mail(
        google_answer(6, "CANCEL", "Odwołane.\r\n", "Anulowano: Narada"), IntakeOptions(subject_max=0)
    )
    assert m.text == "Odwołane."


async def test_polish_text_under_a_western_label_is_read_as_polish(tmp_path: Path) -> None:
    # Old systems and scripts label windows-1250 or ISO-8859-2 text "windows-1252" / "iso-8859-1":
    # "Paweł będzie" went out as "Pawe³ bêdzie". Spanish, French and a lone "m³" keep their label.
    polish = "Paweł będzie o 15, zażółć gęślą jaźń"
    texts = await sent_texts(
        tmp_path,
        [
            raw_mail(12, polish.encode("cp1250"), "text/plain; charset=windows-1252"),
            raw_mail(13, polish.encode("iso-8859-2"), "text/plain; charset=iso-8859-1"),
            raw_mail(14, "Paweł był miły, może".encode("iso-8859-2"), "text/plain; charset=windows-1252"),
            raw_mail(15, "¿Qué tal? El año, señor".encode("cp1252"), "text/plain; charset=windows-1252"),
            raw_mail(16, "Un cœur, une sœur, crème".encode("cp1252"), "text/plain; charset=windows-1252"),
            raw_mail(17, "10 m³ i 20 m³".encode("cp1252"), "text/plain; charset=windows-1252"),
            # Two different symbols after letters, none between two: units and signs, not Polish.
            raw_mail(18, "flow 12.5m³/h, temp 21C±0.5".encode("latin-1"), "text/plain; charset=iso-8859-1"),
            raw_mail(19, "note¹ in JPY¥, 2cm±1 Größe".encode("cp1252"), "text/plain; charset=windows-1252"),
        ],
    )
    assert texts == [
        f"Temat 12: {polish}",
        f"Temat 13: {polish}",
        "Temat 14: Paweł był miły, może",
        "Temat 15: ¿Qué tal? El año, señor",
        "Temat 16: Un cœur, une sœur, crème",
        "Temat 17: 10 m³ i 20 m³",
        "Temat 18: flow 12.5m³/h, temp 21C±0.5",
        "Temat 19: note¹ in JPY¥, 2cm±1 Größe",
    ]
