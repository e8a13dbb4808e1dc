"""`automail._recall` reads the header names once for the recall header and Outlook's own signs; it
says what the two passes over them said, over the corpus's mails and every mix of the names that
decide it."""

from __future__ import annotations

import itertools

import pytest

from gateway.smtp import automail, mimefast
from tests.test_golden import CORPUS


def by_two_passes(headers: dict[str, str], subject: str, body: str, tnef_class: str | None) -> bool:
    """The rule as it was written: the recall header first, then Outlook's origin in a pass of its own."""
    if tnef_class and tnef_class.lower().startswith(("ipm.outlook.recall", "ipm.recall.report")):
        return True
    if any(k.startswith("x-ms-exchange") and "recall" in k for k in headers):
        return True
    outlook = any(
        k.startswith(("x-ms-exchange", "x-ms-has-attach", "x-ms-tnef-correlator")) for k in headers
    ) or ("thread-index" in headers or "microsoft outlook" in headers.get("x-mailer", "").lower())
    if not (automail.RECALL_SUBJECT.match(subject) or outlook):
        return False
    return bool(automail._RECALL_BODY.search(body[:2000]))


SUBJECTS = ["Bench 1", "Recall: Spotkanie", "  RECALL : x", "Re: Recall: x", ""]
BODIES = ["", 'Jan Kowalski would like to recall the message, "Spotkanie".', "Meeting at 10:00, room 4."]
CLASSES = [None, "IPM.Note", "IPM.Outlook.Recall", "ipm.recall.report.success"]
NAMES = [
    "x-ms-exchange-organization-recallmessage",
    "x-ms-exchange-organization-scl",
    "x-ms-exchange-recall",
    "x-ms-has-attach",
    "x-ms-tnef-correlator",
    "x-ms-other",
    "x-recall",
    "thread-index",
    "from",
]
MAILERS = [None, "Microsoft Outlook 16.0", "Thunderbird"]


def check(headers: dict[str, str]) -> None:
    for subject, body, tnef in itertools.product(SUBJECTS, BODIES, CLASSES):
        expected = by_two_passes(headers, subject, body, tnef)
        assert automail._recall(headers, subject, body, tnef) == expected, (headers, subject, body, tnef)


@pytest.mark.parametrize("mailer", MAILERS)
def test_every_mix_of_the_names_that_decide(mailer: str | None) -> None:
    for count in range(4):
        for names in itertools.permutations(NAMES, count):
            headers = dict.fromkeys(names, "x")
            if mailer is not None:
                headers["x-mailer"] = mailer
            check(headers)


def test_the_corpus_mails() -> None:
    paths = sorted(CORPUS.glob("*.eml"))
    assert paths
    for path in paths:
        raw = path.read_bytes()
        msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
        headers = automail.first_headers(msg)
        text = raw.decode("utf-8", "replace")
        check(headers)
        subject = headers.get("subject", "")
        assert automail._recall(headers, subject, text, None) == by_two_passes(headers, subject, text, None)
