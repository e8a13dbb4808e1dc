"""Reply and forward prefixes never reach a phone: they ate the subject's 30 characters.

"RE: Zamówienie 123: …" and "PD: Re: Przypomnienie o: …" reached phones as such, and a Reply to an
answer mail outside its conversation ("RE: Re: Spotkanie (SMS from +48 …)") named the phone to
itself. Nor does the tag a company's mail server puts before mail from outside ("[EXTERNAL]",
"RE: [EXTERNAL] …", "[ZEWNĘTRZNA]", "EXTERNAL:"), which cost the topic the same way. The tag alone
makes no mail a Reply: a new mail from outside keeps its own "> " lines (they were cut as a quote),
while "[EXTERNAL] RE: …" is a Reply to the reply rules too. Over real SMTP against the daemon with its
simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.conversations.answers import replies_to_mail
from gateway.smtp.intake import read_mail
from gateway.smtp.subjects import first_prefix, is_forward_subject, is_reply_subject, sms_subject
from tests import test_intake
from tests.conftest import DOMAIN, free_port, mail, running_gateway
from tests.test_two_way import two_way_config

CASES = [
    ("RE: Zamówienie 123: gotowe do odbioru", "Zamówienie 123: gotowe do: Zapraszamy jutro"),
    ("PD: Re: Przypomnienie o: wizycie", "Przypomnienie o: wizycie: Zapraszamy jutro"),
    ("Fwd: FW: Odp: AW: WG: TR: Oferta", "Oferta: Zapraszamy jutro"),
    ("re[2]: Re(3): odp : Faktura", "Faktura: Zapraszamy jutro"),
    ("RE: Re: Spotkanie (SMS from +48 601 123 456)", "Spotkanie: Zapraszamy jutro"),
    ("RE: SMS from +48601123432 to +48100200300 (no conversation)", "Zapraszamy jutro"),
    ("[EXTERNAL] Awaria serwera DB1 w serwerowni", "Awaria serwera DB1 w: Zapraszamy jutro"),
    ("RE: [EXTERNAL] Awaria zasilania budynku B", "Awaria zasilania budynku B: Zapraszamy jutro"),
    # Words that merely start so are the subject's.
    ("Return of goods", "Return of goods: Zapraszamy jutro"),
    ("Trasa: Kraków", "Trasa: Kraków: Zapraszamy jutro"),
    ("Awaria: pompa", "Awaria: pompa: Zapraszamy jutro"),
]


async def test_prefixes_are_taken_off_before_the_subject_is_cut(tmp_path: Path) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for i, (subject, _) in enumerate(CASES):
            msg = mail(f"6011234{i:02d}@{DOMAIN}", body="Zapraszamy jutro", subject=subject)
            assert (await gw.send(msg)).error is None
        await gw.until(lambda: len(core.records) == len(CASES))
        got = {str(r["destination"]): str(r["text"]) for r in core.records}
        assert [got[f"+486011234{i:02d}"] for i in range(len(CASES))] == [sms for _, sms in CASES]


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Re:", ""),
        ("FW:", ""),
        ("RE :Re: x", "x"),
        ("Fwd: PDF: plik", "PDF: plik"),
        ("SMS from Jan", "SMS from Jan"),
        ("[EXTERNAL] Awaria", "Awaria"),
        ("[External Email] RE: Awaria", "Awaria"),
        ("[EXT] Fwd: Awaria", "Awaria"),
        ("[ZEWNĘTRZNA] Awaria", "Awaria"),
        ("Odp: [Zewnętrzny] Awaria", "Awaria"),
        ("EXTERNAL: Awaria", "Awaria"),
        ("(External) *EXTERNAL* Awaria", "Awaria"),
        ("RE: [EXTERNAL] Re: Spotkanie (SMS from +48 601 123 456)", "Spotkanie"),
        # Other tags say something; words that merely start so are the subject's.
        ("[Ticket#123] Awaria", "[Ticket#123] Awaria"),
        ("[ACME] Awaria", "[ACME] Awaria"),
        ("Ext: 204", "Ext: 204"),
        ("Extension: 204", "Extension: 204"),
        ("External audit", "External audit"),
    ],
)
def test_subject_for_the_phone(subject: str, topic: str) -> None:
    assert sms_subject(subject) == topic


# A new mail from outside whose own lines start with "> " (a pasted log, a quoted figure).
ALERT = "Prosze sprawdzic:\n> Disk /var 95% full on db1\n> Load 12.5\nDzieki"


@pytest.mark.parametrize(
    "subject", ["[EXTERNAL] Disk alert", "[EXT] *EXTERNAL* Disk alert", "EXTERNAL: Disk alert"]
)
def test_a_new_mail_from_outside_keeps_its_own_quote_lines(subject: str) -> None:
    assert read_mail(test_intake.mail(ALERT, subject=subject)).text == f"Disk alert: {ALERT}"


@pytest.mark.parametrize("subject", ["[EXTERNAL] RE: Disk alert", "RE: [EXTERNAL] Disk alert"])
def test_a_reply_from_outside_still_loses_its_quote(subject: str) -> None:
    assert read_mail(test_intake.mail(ALERT, subject=subject)).text == "Disk alert: Prosze sprawdzic:\nDzieki"


@pytest.mark.parametrize(
    ("subject", "prefix"),
    [
        ("[EXTERNAL] RE: x", "re"),
        ("[ZEWNĘTRZNA] Odp: x", "odp"),
        ("(External) FW: x", "fw"),
        ("[EXTERNAL] x", None),
    ],
)
def test_the_prefix_behind_an_outside_tag_is_read(subject: str, prefix: str | None) -> None:
    assert first_prefix(subject) == prefix
    assert is_reply_subject(subject) == (prefix in ("re", "odp"))
    assert is_forward_subject(subject) == (prefix == "fw")
    assert replies_to_mail((), subject, ()) == (prefix in ("re", "odp"))


async def test_through_smtp_a_new_mail_from_outside_reaches_the_phone_with_its_quote_lines(
    tmp_path: Path,
) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    subjects = ["[EXTERNAL] Disk alert", "[EXTERNAL] RE: Disk alert"]
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for i, subject in enumerate(subjects):
            assert (await gw.send(mail(f"60112350{i}@{DOMAIN}", body=ALERT, subject=subject))).error is None
        await gw.until(lambda: len(core.records) == len(subjects))
        got = {str(r["destination"]): str(r["text"]) for r in core.records}
    assert [got[f"+4860112350{i}"] for i in range(len(subjects))] == [
        f"Disk alert: {ALERT}",
        "Disk alert: Prosze sprawdzic:\nDzieki",
    ]
