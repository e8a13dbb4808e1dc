"""A CIMD2 link's reasons in words, as an SMPP link's are: the status report's 061/062 and the submit's
900, the codes after the words.

A Polish bounce of an SMS to a number the operator's network did not know said `Przyczyna: CIMD2 061:3
delivery failed 062:1 unknown subscriber`, the link's English as it was, and `smsgw queue list` showed
the same: only SMPP's reasons were put in words. Through the built-in simulator's CIMD2 port, which
reports a number ending in 13 failed with 062:1 and refuses one ending in 0000 with 900:300.
"""

from __future__ import annotations

import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.reasons import human_reason
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = f"601123413@{DOMAIN}"  # the simulator's fail_suffixes "13": 061:3 062:1
REFUSED = f"601120000@{DOMAIN}"  # its reject_suffixes "0000": 900:300 at submit


def cimd2_config(tmp_path: Path, *, relay_port: int, language: str) -> Path:
    """A config file (the CLI reads it too) with one CIMD2 link to the built-in simulator."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=cimd2, relay_port=relay_port, language=language)
    text = text.replace('type = "smpp"', 'type = "cimd2"').replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


async def bounces(tmp_path: Path, rcpt: str, language: str) -> tuple[str, str]:
    """The words of the bounce of one mail to `rcpt`, and `smsgw queue list` run as its own process."""
    sink_port = free_port()
    path = cimd2_config(tmp_path, relay_port=sink_port, language=language)
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    async with smtp_sink(sink_port) as sink:
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(rcpt, "Wizyta jutro o 10:00", "Wizyta"))).error is None
            await sink.wait(1)
    listed = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "-c", str(path), "queue", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    text = parsed(sink.messages[0][2]).get_payload()[0]
    assert isinstance(text, EmailMessage) and text.get_content_type() == "text/plain"
    return str(text.get_content()), listed.stdout


async def test_a_polish_bounce_of_an_unknown_subscriber_says_it_in_polish(tmp_path: Path) -> None:
    text, listed = await bounces(tmp_path, UNKNOWN, "pl")
    assert "Przyczyna: sieć operatora nie zna takiego abonenta (CIMD2 061:3, 062:1)\n" in text
    assert "delivery failed" not in text and "unknown subscriber" not in text
    # The administrator's list is in English, the words before the codes as well.
    assert "the operator's network knows no such subscriber (CIMD2 061:3, 062:1)" in listed


async def test_a_refusal_at_submit_is_worded_with_its_code(tmp_path: Path) -> None:
    text, listed = await bounces(tmp_path, REFUSED, "pl")
    assert "Przyczyna: operator odrzucił numer jako nieprawidłowy (CIMD2 900:300)\n" in text
    assert "incorrect destination address" not in text
    assert "the operator refused the number as invalid (CIMD2 900:300)" in listed


async def test_an_english_bounce_words_the_report_too(tmp_path: Path) -> None:
    text, _listed = await bounces(tmp_path, UNKNOWN, "en")
    assert "Reason: the operator's network knows no such subscriber (CIMD2 061:3, 062:1)\n" in text


@pytest.mark.parametrize(
    ("stored", "en", "pl"),
    [
        # No 062: its 061 says what became of the SMS.
        (
            "CIMD2 061:2 validity period expired",
            "not delivered before it expired (phone off or out of reach, or the operator's delay)"
            " (CIMD2 061:2)",
            "nie doręczono przed upływem ważności (telefon wyłączony lub poza zasięgiem albo opóźnienie"
            " operatora) (CIMD2 061:2)",
        ),
        # A 062 the table does not know: its 061 again, the unknown code kept for the operator.
        (
            "part 2 of 3: CIMD2 061:3 delivery failed 062:999 reason 999",
            "part 2 of 3: the operator could not deliver it to the phone (CIMD2 061:3, 062:999)",
            "część 2 z 3: operator nie zdołał doręczyć wiadomości do telefonu (CIMD2 061:3, 062:999)",
        ),
        (
            "CIMD2 061:3 delivery failed 062:22 memory capacity exceeded",
            "the phone's memory is full (CIMD2 061:3, 062:22)",
            "pamięć telefonu jest pełna (CIMD2 061:3, 062:22)",
        ),
        # The SMSC's own 901 text, when it is not the code's standard one, says more: it stays.
        (
            "CIMD2 900:300 Destination 48601123456 barred",
            'the operator refused the number as invalid (CIMD2 900:300 "Destination 48601123456 barred")',
            'operator odrzucił numer jako nieprawidłowy (CIMD2 900:300 "Destination 48601123456 barred")',
        ),
        # A 3xx the table does not name is still a refusal of the message; a general error (98) no verdict.
        (
            "all 4 parts: CIMD2 900:317 error 317",
            "all 4 parts: the operator refused the message (CIMD2 900:317)",
            "wszystkie 4 części: operator odrzucił wiadomość (CIMD2 900:317)",
        ),
        (
            "CIMD2 general error (98), 900:2 syntax error",
            "the operator could not take the message (CIMD2 98, 900:2)",
            "operator nie mógł przyjąć wiadomości (CIMD2 98, 900:2)",
        ),
    ],
)
def test_each_form_of_a_cimd2_reason_in_both_languages(stored: str, en: str, pl: str) -> None:
    assert human_reason(stored) == en
    assert human_reason(stored, "pl") == pl
