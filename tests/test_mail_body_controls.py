"""A phone's control and bidi characters stay out of the mail its answer becomes: `Hi bell\\x07` was
mailed as `Hi bell=07`, and U+202E turned the answer and the user's quote below it around in a mail
client. The SMS go from the built-in SMSC, the reply mails land in the maildir relay."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, mail, running_gateway
from tests.test_two_way import parsed, two_way_config

BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}

ANSWERS = [
    ("Hi bell\x07 vt\x0b esc\x1b del\x7f", "Hi bell vt esc del"),
    ("Tak\u202e.enif si 00:01\u202c ok \u2067x\u2069 \u200fmark", "Tak.enif si 00:01 ok x \u200fmark"),
]


def unwanted(text: str) -> set[str]:
    return {c for c in text if c in BIDI or (unicodedata.category(c) == "Cc" and c not in "\t\n")}


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_a_phones_controls_and_bidi_overrides_do_not_reach_the_reply_mail(
    tmp_path: Path, protocol: str
) -> None:
    cfg = two_way_config(tmp_path, protocol, relay_port=1)
    cfg = cfg.model_copy(update={"mail": cfg.mail.model_copy(update={"relay": "maildir:mail"})})
    maildir = tmp_path / "mail"
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        sent = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Spotkanie")
        assert (await gw.send(sent)).error is None
        await gw.until(lambda: len(core.records) == 1)
        for i, (answer, _) in enumerate(ANSWERS, 1):
            command = {"op": "mo", "reply_to_last": True, "text": answer}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
            await gw.until(lambda i=i: maildir.exists() and len(list(maildir.glob("*.eml"))) == i)
    mails = [parsed(p.read_bytes()) for p in sorted(maildir.glob("*.eml"))]
    bodies = sorted(str(m.get_content()) for m in mails)
    for (_, shown), content in zip(sorted(ANSWERS, key=lambda a: a[1]), bodies, strict=True):
        assert content.startswith(shown + "\n\n"), content
        assert "> Spotkanie: Czy 10:00 pasuje?" in content  # the quote is still there, unturned
        assert unwanted(content) == set(), content
    for path in maildir.glob("*.eml"):
        raw = path.read_bytes()
        for qp in (b"=07", b"=0B", b"=1B", b"=7F", b"=E2=80=AE", b"=E2=80=AC", b"=E2=81=A7", b"=E2=81=A9"):
            assert qp not in raw, (qp, raw)
