"""Reply and forward prefixes never reach a phone: they ate the subject's 30 characters.

"RE: Zamówienie 123: …" and "PD: Re: Przypomnienie o: …" reached phones as such, and a Reply to an
answer mail outside its conversation ("RE: Re: Spotkanie (SMS from +48 …)") named the phone to
itself. Nor does the tag a company's mail server puts before mail from outside ("[EXTERNAL]",
"RE: [EXTERNAL] …", "[ZEWNĘTRZNA]", "EXTERNAL:"), which cost the topic the same way. Over real SMTP
against the daemon with its simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.subjects import sms_subject
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
