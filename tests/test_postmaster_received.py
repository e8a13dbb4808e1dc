"""Mail to postmaster reaches the admin with our Received: line on the original (RFC 5321 4.4).

The forward attached the original as the sender wrote it: nothing said which client had connected,
under which HELO, over TLS or not, and when; a relaying server MUST prepend that line. Real smtplib
clients send to the running gateway (the relay port plain and over STARTTLS, HELO instead of EHLO,
the submission port logged in), and the forwards are read from the maildir capture relay as the
admin's mail program would get them.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, parse_config
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, running_gateway
from tests.test_submission import PASSWORD, client_tls, submission_config_text, with_password

ADMIN = "admin@acme.example"
POSTMASTER = f"postmaster@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def config(tmp_path: Path, tls: tuple[Path, Path], maildir: Path) -> Config:
    """The tests' config with a certificate (STARTTLS on the relay port, the submission port), the
    admin address, and the outgoing relay a capture directory (the `relay =` line after it left out)."""
    text = submission_config_text(tmp_path, 1, tls)
    text = text.replace("[mail]\n", f'[mail]\nadmin_address = "{ADMIN}"\nrelay = "maildir:{maildir}"\n#', 1)
    return parse_config(text, source="test config", base_dir=tmp_path)


def letter(n: int) -> bytes:
    return (
        f"From: {STAFF}\r\nTo: {POSTMASTER}\r\nSubject: Refused mail {n}\r\n"
        f"Message-ID: <pm-{n}@acme.example>\r\nReceived: from forged.example by mx.forged.example\r\n"
        "\r\nHello, our mail to you is refused. Anna\r\n"
    ).encode()


def send(port: int, n: int, *, helo: str = "mx.acme.example", ehlo: bool = True, tls: Any = None) -> str:
    """One mail to postmaster; `tls` a client context: STARTTLS first (and, on the submission port,
    a login)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        if ehlo:
            c.ehlo(helo)
        else:
            c.helo(helo)
        if tls is not None:
            c.starttls(context=tls)
            c.ehlo(helo)
            if "auth" in c.esmtp_features:
                c.login(STAFF, PASSWORD)
        code, said = c.sendmail(STAFF, [POSTMASTER], letter(n)), ""
        assert code == {}, code
        return said


def captured(maildir: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(maildir.glob("*.eml"))]


async def forwards(maildir: Path, n: int) -> dict[str, Message]:
    """The forwards captured, by the original's Subject, once `n` are there; each the original as
    attached (message/rfc822), our line on top."""
    for _ in range(600):
        files = await asyncio.to_thread(captured, maildir)
        if len(files) >= n:
            break
        await asyncio.sleep(0.05)
    found: dict[str, Message] = {}
    for content in files:
        outer = message_from_bytes(content, policy=policy.default)
        (attached,) = [p for p in outer.walk() if p.get_content_type() == "message/rfc822"]
        original = attached.get_payload(0)
        found[str(original["Subject"])] = original
    assert len(found) == n, sorted(found)
    return found


def ours(original: Message) -> str:
    """Our Received: the first of the original's (above the sender's own), unfolded."""
    lines = original.get_all("Received")
    assert lines is not None and len(lines) == 2, lines  # ours, then the one the sender wrote
    assert "forged.example" in str(lines[1])
    return " ".join(str(lines[0]).split())


async def test_a_forward_carries_our_received_line_naming_client_helo_and_protocol(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    maildir = tmp_path / "captured"
    cfg = config(tmp_path, tls_pair, maildir)
    context = client_tls(tls_pair)
    async with running_gateway(cfg) as gw:
        await with_password(gw)

        def clients() -> None:
            send(gw.port, 1)
            send(gw.port, 2, tls=context)
            send(gw.port, 3, ehlo=False, helo="evil (x); by forged.example with ESMTPSA")
            assert gw.daemon.submission_port
            send(gw.daemon.submission_port, 4, helo="laptop.acme.example", tls=context)

        await asyncio.wait_for(asyncio.to_thread(clients), 120)
        got = await forwards(maildir, 4)
    host, date = cfg.gateway.hostname, r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000$"
    plain = ours(got["Refused mail 1"])
    assert re.fullmatch(
        rf"from mx\.acme\.example \(\[127\.0\.0\.1\]\) by {re.escape(host)} with ESMTP id [0-9a-f]{{16}}"
        rf" for <{re.escape(POSTMASTER)}>{date}",
        plain,
    ), plain
    tls = ours(got["Refused mail 2"])
    assert re.fullmatch(
        r"from mx\.acme\.example \(\[127\.0\.0\.1\]\) \(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)"
        rf" by {re.escape(host)} with ESMTPS id [0-9a-f]{{16}} for <{re.escape(POSTMASTER)}>{date}",
        tls,
    ), tls
    # A HELO cannot write clauses of its own: what would close the from clause is "?", the name kept.
    helo = ours(got["Refused mail 3"])
    assert helo.startswith(
        f"from evil??x???by?forged.example?with?ESMTPSA ([127.0.0.1]) by {host} with SMTP id "
    ), helo
    assert helo.count(";") == 1 and helo.count(" with ") == 1, helo
    submitted = ours(got["Refused mail 4"])
    assert submitted.startswith("from laptop.acme.example ([127.0.0.1]) (using TLSv1."), submitted
    assert f" by {host} with ESMTPSA id " in submitted, submitted
