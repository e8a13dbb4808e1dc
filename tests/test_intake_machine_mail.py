"""read_mail() and machine mail (R-1.7, F15, F16): auto-reply headers, bounces by envelope sender, DSNs
and multipart reports, mailer daemons, Outlook recalls and TNEF receipts are flagged (never an SMS),
while human mail with harmless headers is not. Split from test_intake.py by subject (it was over 400
lines)."""

from __future__ import annotations

import pytest

from gateway.smtp.intake import (
    read_mail,
)
from tests.test_intake import CORPUS, mail, multipart, part, tnef_blob, winmail

# --- machine mail (R-1.7, F15, F16) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated (vacation)\n", "Auto-Submitted: auto-generated"),
        ("Precedence: junk\n", "Precedence: junk"),
        ("Precedence: list\n", "Precedence: list"),
        ("Precedence: auto_reply\n", "Precedence: auto_reply"),
        ("X-Autoreply: yes\n", "X-Autoreply: yes"),
        ("X-Autorespond: on\n", "X-Autorespond: on"),
    ],
)
def test_machine_headers(headers: str, reason: str) -> None:
    # RFC 3834 and de-facto auto-reply headers mark machine mail.
    m = read_mail(mail(headers=headers))
    assert m.automatic == reason


@pytest.mark.parametrize(
    "headers",
    ["Auto-Submitted: no\n", "X-Auto-Response-Suppress: All\n", "Precedence: bulk\n", "X-Autoreply: no\n"],
)
def test_human_mail_with_harmless_headers(headers: str) -> None:
    # Auto-Submitted "no", Outlook's suppress header alone and a bulk send are still human mail.
    assert read_mail(mail(headers=headers)).automatic is None


def test_precedence_bulk_is_flagged_not_automatic() -> None:
    # A staff bulk send still goes out; intake only marks it.
    m = read_mail(mail(headers="Precedence: bulk\n"))
    assert (m.bulk, m.automatic) == (True, None)


@pytest.mark.parametrize(
    ("subject", "headers", "automatic"),
    [
        ("Automatic reply: Offer", "Auto-Submitted: auto-generated\n", "out-of-office reply"),
        ("Odpowiedź automatyczna: Oferta", "X-Auto-Response-Suppress: All\n", "out-of-office reply"),
        ("Out of Office: Offer", "X-Autoreply: yes\n", "out-of-office reply"),
        ("Out of office tomorrow", "", None),
        ("Automatic reply: Offer", "X-Auto-Response-Suppress: DR, OOF, AutoReply\n", "out-of-office reply"),
        # Words a person writes, with only the header ordinary Outlook mails carry too: a guess.
        ("Nieobecność jutro", "X-Auto-Response-Suppress: All\n", "out-of-office reply (by its subject)"),
        ("Out of office Friday", "X-Auto-Response-Suppress: All\n", "out-of-office reply (by its subject)"),
        ("Poza biurem", "X-MS-Exchange-Inbox-Rules-Loop: anna@acme.example\n", "out-of-office reply"),
    ],
    ids=["en-outlook", "pl-outlook", "xautoreply", "subject-alone-is-human", "suppress-with-subject",
         "pl-words-with-suppress", "en-words-with-suppress", "words-with-rules-loop"],
)  # fmt: skip
def test_out_of_office(subject: str, headers: str, automatic: str | None) -> None:
    # An out-of-office subject needs a second machine sign; the subject alone is a person's words.
    assert read_mail(mail("I am away", subject=subject, headers=headers)).automatic == automatic


def test_empty_envelope_sender_is_a_bounce() -> None:
    # MAIL FROM:<> marks a bounce whatever the content says.
    assert read_mail(mail(), empty_sender=True).automatic == "bounce (empty envelope sender)"


def test_dsn_with_empty_sender_names_both() -> None:
    # The specific reason is kept and the bounce routing hint is added.
    raw = multipart(
        "report", part("text/plain", "Delivery failed"), part("message/delivery-status", "Action: failed\n"),
        params="; report-type=delivery-status",
    )  # fmt: skip
    m = read_mail(raw, empty_sender=True)
    assert m.automatic == "delivery status notification; bounce (empty envelope sender)"


@pytest.mark.parametrize(
    ("report_type", "reason"),
    [("delivery-status", "delivery status notification"), ("disposition-notification", "read receipt"),
     ("feedback-report", "report (feedback-report)")],
)  # fmt: skip
def test_multipart_report(report_type: str, reason: str) -> None:
    # DSN and MDN reports never become SMS (F16).
    raw = multipart("report", part("text/plain", "Report"), params=f"; report-type={report_type}")
    assert read_mail(raw).automatic == reason


def test_delivery_status_inside_mixed() -> None:
    # Some MTAs send the DSN part inside multipart/mixed.
    raw = multipart(
        "mixed", part("text/plain", "Failed"), part("message/delivery-status", "Action: failed\n")
    )
    assert read_mail(raw).automatic == "delivery status notification"


def test_mailer_daemon_sender() -> None:
    # A bounce relayed with a real envelope sender still comes From: MAILER-DAEMON.
    raw = mail().replace(
        b"From: Jan <jan@example.com>", b"From: MAILER-DAEMON@mx.example.com (Mail Delivery System)"
    )
    assert read_mail(raw).automatic == "bounce (From: MAILER-DAEMON)"


def test_machine_mail_is_never_refused_for_being_empty() -> None:
    # An empty auto-reply is recorded as machine mail, not refused.
    m = read_mail(mail("", subject=None, headers="Auto-Submitted: auto-replied\n"))
    assert (m.automatic, m.text) == ("Auto-Submitted: auto-replied", "")


def test_outlook_recall_with_tnef_class() -> None:
    # F15: Subject "Recall: ..." with MAPI class IPM.Outlook.Recall is machine mail.
    raw = multipart(
        "mixed",
        part("text/plain", 'Jan Kowalski would like to recall the message, "Offer".'),
        winmail(tnef_blob("IPM.Outlook.Recall")),
        subject="Recall: Offer",
    )
    assert read_mail(raw).automatic == "Outlook recall"


def test_outlook_recall_by_text_and_exchange_headers() -> None:
    # An Exchange recall converted for SMTP: its wording plus Outlook headers, without TNEF.
    raw = mail('Jan would like to recall the message, "Offer".', subject="Recall: Offer",
               headers="Thread-Index: AQHTXFWT3T6z7C8m9k2GE+t0ZVEeeQ==\n")  # fmt: skip
    assert read_mail(raw).automatic == "Outlook recall"


def test_recall_subject_alone_is_human() -> None:
    # A person may title a message "Recall: meeting"; without another sign it is sent.
    raw = mail(
        "Please remember the meeting at 10.", subject="Recall: meeting", headers="User-Agent: Thunderbird\n"
    )
    assert read_mail(raw).automatic is None


def test_tnef_read_receipt_class() -> None:
    # A read receipt that exists only as a MAPI class inside winmail.dat.
    raw = multipart("mixed", winmail(tnef_blob("IPM.Microsoft Mail.Read Receipt")), subject=None)
    assert read_mail(raw).automatic == "read receipt"


def test_corpus_ndr_is_machine_mail_even_with_real_sender() -> None:
    # F16 with the Office 365 NDR from the corpus: no SMS whether or not the envelope sender was empty.
    raw = (CORPUS / "bounce_flanker_office365_ndr.eml").read_bytes()
    assert read_mail(raw).automatic == "delivery status notification"
