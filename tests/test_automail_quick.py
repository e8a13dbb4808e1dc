"""`automail._quick_reason`, the verdict for a mail that carries none of the headers the machine-mail
rules read but From, says what every rule in turn says (`automail._full_reason`), or leaves the mail to
them: over the corpus's mails, and over crafted mails that carry each header name the rules' modules
name, with values, subjects, bodies, senders and MIME shapes that set each rule off. A rule whose
header the quick path forgot makes a crafted mail's two verdicts differ, and every reason the rules
give is asked of some crafted mail, so that none goes untried.
"""

from __future__ import annotations

import ast
import itertools
import re
from email.message import Message
from pathlib import Path

from gateway.smtp import automail, mimefast, ownnotice
from tests.test_golden import CORPUS

OWN = "sms@gw.example"


def verdicts(
    msg: Message, subject: str, body: str, tnef: str | None, own: str | None, headers: dict[str, str]
) -> tuple[str | None, bool]:
    """The rules' verdict, and whether the quick path gave it: asserted the same when it did."""
    full = automail._full_reason(msg, subject, body, tnef, own, headers)
    quick = automail._quick_reason(msg, subject, tnef, own, headers)
    assert quick is False or quick == full, (headers, subject, body[:60], tnef, own, msg.get_content_type())
    for empty in (False, True):
        said = automail.machine_reason(
            msg, subject, body=body, tnef_class=tnef, empty_sender=empty, own_address=own, headers=headers
        )
        if not empty:
            assert said == full
    return full, quick is not False


def names_in_the_rules() -> set[str]:
    """Every string of the rules' modules that may be a header name, lowered: the names the rules
    read are among them, whichever table or function they are in."""
    found: set[str] = set()
    for module in (automail, ownnotice):
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", node.value):
                    found.add(node.value.lower())
    return found


NAMES = sorted(
    names_in_the_rules() | {"x-ms-exchange-organization-recallmessage", "x-mailer", "x-ms-other", "x-loop"}
)
VALUES = [
    "yes",
    "no",
    "false",
    "true",
    "auto-replied",
    "auto-generated; x",
    "junk",
    "list",
    "bulk",
    "auto_reply",
    "reply",
    "autoresponder",
    "Microsoft Outlook 16.0",
    "<a1.sms-reply@gw.example>",
]
ANSWER_ID = "<a1.sms-reply@gw.example>"
SUBJECTS = [
    "Bench 1",
    "",
    "Recall: Spotkanie",
    "Automatic reply: Spotkanie",
    "Automatic reply: Re: Spotkanie (SMS from +48 601 123 456)",
    "Out of office: SMS from +48601123456",
    "Nieobecność jutro",
    "Re: Recall: x",
]
RECALL = 'Jan Kowalski would like to recall the message, "Spotkanie".'
FORWARDED_NOTICE = f"-----Original Message-----\nFrom: SMS Gateway <{OWN}>\nSent: Monday\n\nDelivered."
BODIES = ["Meeting at 10:00, room 4.", RECALL, FORWARDED_NOTICE]
FROMS = [
    "Staff Member <staff@acme.example>",
    "MAILER-DAEMON@mx.example",
    "Mail Delivery Subsystem <x@mx.example>",
    f"SMS Gateway <{OWN}>",
    "it-sms@gw.example",
]
# No class, an empty one, a person's, and one of each the rules name.
CLASSES = [None, "", "IPM.Note", *(f"{prefix.upper()}X" for prefix, _ in automail._TNEF_CLASSES)]

_PLAIN = "Content-Type: text/plain; charset=utf-8\n\nMeeting at 10:00.\n"
_REPORT = (
    'Content-Type: multipart/report; report-type={kind}; boundary="b"\n\n'
    "--b\nContent-Type: text/plain\n\nx\n"
    "--b\nContent-Type: message/delivery-status\n\nAction: failed\n--b--\n"
)
SHAPES = {
    "plain": _PLAIN,
    "alternative": (
        'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain\n\nx\n'
        "--b\nContent-Type: text/html\n\n<p>x</p>\n--b--\n"
    ),
    "dsn": _REPORT.format(kind="delivery-status"),
    "mdn": _REPORT.format(kind="disposition-notification"),
    "report of no type": _REPORT.format(kind='""'),
    "a report part in mixed": (
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nx\n'
        "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--b--\n"
    ),
    "a report alone": "Content-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; a@b\n",
    "a report type, one part": "Content-Type: multipart/report; report-type=delivery-status\n\nbroken\n",
}


MAILERS = ({}, {"x-mailer": "Microsoft Outlook 16.0"}, {"x-mailer": "Thunderbird"})


def parsed(shape: str) -> Message:
    raw = f"From: staff@acme.example\nTo: 601123456@sms.example.com\nMIME-Version: 1.0\n{SHAPES[shape]}"
    return mimefast.parse(raw.encode())


def headers_of(sender: str, extra: dict[str, str]) -> dict[str, str]:
    """A staff mail's first headers, as `first_headers` names them, with `extra` beside them."""
    base = {"from": sender, "to": "601123456@sms.example.com", "message-id": "<m1@acme.example>"}
    return {**base, "mime-version": "1.0", "content-type": "text/plain; charset=utf-8", **extra}


def test_the_corpus_mails() -> None:
    paths = sorted(CORPUS.glob("*.eml"))
    assert paths
    quick = 0
    for path, crlf in itertools.product(paths, (False, True)):
        raw = path.read_bytes()
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if crlf else raw
        msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
        headers = automail.first_headers(msg)
        text = raw.decode("utf-8", "replace")
        for subject, own in itertools.product([headers.get("subject", ""), *SUBJECTS], (None, OWN)):
            quick += verdicts(msg, subject, text, None, own, headers)[1]
    assert quick > 0  # the corpus's persons' mails take the quick path


def test_each_header_name_with_values_subjects_bodies_and_senders() -> None:
    """Each name with each value, alone and beside a Reply to an answer mail (whose id In-Reply-To
    names: a responder's mark decides it)."""
    msg = parsed("plain")
    seen: set[str | None] = set()
    quick = 0
    for name, value, thread in itertools.product(NAMES, VALUES, (False, True)):
        extra = {name: value, **({"in-reply-to": ANSWER_ID} if thread and name != "in-reply-to" else {})}
        for sender, subject, body in itertools.product(FROMS[:1] + FROMS[3:4], SUBJECTS, BODIES):
            reason, fast = verdicts(msg, subject, body, None, OWN, headers_of(sender, extra))
            seen.add(reason)
            quick += fast
    assert quick > 0
    for template in [t for _, _, t in automail._HEADER_RULES]:
        assert any(r and r.startswith(template.partition("{")[0]) for r in seen), template
    reasons = {
        "Outlook recall",
        "out-of-office reply",
        automail.OOF_GUESSED,
        automail.OOF_TO_ANSWER,
        automail.AUTO_TO_ANSWER,
        automail.OWN_NOTICE,
        None,
    }
    assert reasons <= seen, reasons - seen


def test_mime_shapes_senders_and_mapi_classes() -> None:
    seen: set[str | None] = set()
    quick = 0
    for shape in SHAPES:
        msg = parsed(shape)
        for sender, subject, tnef, extra in itertools.product(FROMS, SUBJECTS, CLASSES, MAILERS):
            for body in BODIES:
                reason, fast = verdicts(msg, subject, body, tnef, OWN, headers_of(sender, extra))
                seen.add(reason)
                quick += fast
    assert quick > 0
    every = {automail.DSN, "read receipt", "report (unknown type)", "abuse feedback report"}
    every |= {automail.MAILER_DAEMON, automail.OWN_NOTICE, "Outlook recall"}
    every |= {why for _, why in automail._TNEF_CLASSES}
    assert every <= seen, every - seen


def test_a_plain_staff_mail_takes_the_quick_path() -> None:
    """The mail the quick path is for: a client's plain text, and a Reply in a thread."""
    msg = parsed("plain")
    for extra in ({}, {"in-reply-to": "<m0@acme.example>", "references": "<m0@acme.example>"}):
        headers = headers_of(FROMS[0], {"x-mailer": "Thunderbird", **extra})
        assert automail._quick_reason(msg, "Bench 1", None, OWN, headers) is None
