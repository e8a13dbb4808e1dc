"""An answer to a premium SMS with no text in its body is refused with words true of an answer: its
subject is never sent (the phone gets the body alone), so "no subject" was false of "RE: KP123 · 7355",
and told the client that a subject would have done.

Against real peers, as tests/test_premium_answer_rules.py: the daemon with its built-in SMSC simulator,
the vote mailed to a real SMTP sink, the answers sent by a real SMTP client to the answer address.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from gateway.smtp import replies
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, reply_to, smtp

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def pdf_only(vote: EmailMessage) -> tuple[bytes, str]:
    """Reply with the results attached and nothing typed: a multipart/mixed of one PDF."""
    msg = EmailMessage()
    msg["From"] = CLIENT
    msg["To"] = vote["Reply-To"]
    msg["Subject"] = f"RE: {vote['Subject']}"
    msg["In-Reply-To"] = vote["Message-ID"]
    msg.make_mixed()
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="wyniki.pdf")
    return msg.as_bytes(), vote["Reply-To"].addresses[0].addr_spec


def refusal(result: object) -> str:
    error = getattr(result, "error", None)
    assert isinstance(error, smtplib.SMTPDataError), error
    assert error.smtp_code == 554
    return f"554 {error.smtp_error.decode()}"


async def test_an_answer_with_no_text_in_its_body_says_the_body_is_sent_alone(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote()
        assert "KP123 · 7355" in vote["Subject"]
        attached = refusal(await smtp(w.gw.port, *pdf_only(vote)))
        assert attached == (
            "554 5.6.0 Message has no text to send (an answer to a paid SMS sends its body only, and the"
            " body has no text; attachments are not sent as SMS): write the answer in the mail's body"
        )
        answer = EmailMessage()
        answer["From"] = CLIENT
        answer["To"] = vote["Reply-To"]
        answer["Subject"] = f"RE: {vote['Subject']}"
        answer.set_content("\n")
        empty = refusal(await smtp(w.gw.port, answer.as_bytes(), vote["Reply-To"].addresses[0].addr_spec))
        assert empty == replies.PREMIUM_NO_TEXT.format("")
        quoted = refusal(await smtp(w.gw.port, *reply_to(vote, "")))  # Reply, and Send at once
        assert quoted == (
            "554 5.6.0 Message has no text to send (an answer to a paid SMS sends its body only; the body"
            " held only quoted text or a signature)"
        )
        for reply in (attached, empty, quoted):
            assert "no subject" not in reply and "empty subject" not in reply
        # Recorded as refused, and none used up a free answer: the written answer goes out.
        assert [state for state, _reason in w.answers()] == ["refused"] * 3
        assert (await smtp(w.gw.port, *reply_to(vote, "Wygrana!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Wygrana!"
