"""EHLO's reply with its continuation lines kept per server class (`ehloreply`) is aiosmtpd's, line by line.

Each listener, before and after STARTTLS, is talked to over real connections three ways: through
aiosmtpd's own `smtp_EHLO` (the path taken for another aiosmtpd version), and twice through
`ehloreply` (the lines made, then taken as kept). The bytes each session receives must be the same,
the commands after EHLO included (their line limits follow what EHLO advertised).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import ehloreply
from tests.certs import make_cert_pair
from tests.conftest import running_gateway
from tests.test_session_limits import blocking, dial
from tests.test_submission import client_tls, submission_config

# MAIL's parameters make its line longer than RFC 5321's 512 octets: taken only when EHLO advertised
# SIZE and SMTPUTF8 (`linelimits`), as aiosmtpd counts them.
LONG_MAIL = b"MAIL FROM:<" + b"a" * 460 + b"@example.com> SIZE=100 SMTPUTF8"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def reply(s: socket.socket | ssl.SSLSocket) -> bytes:
    """One whole reply, every line of it, as the bytes received."""
    data = b""
    while True:
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = s.recv(1)
            if not chunk:
                return data + line
            line += chunk
        data += line
        if line[3:4] != b"-":
            return data


def transcript(port: int, tls: tuple[Path, Path]) -> list[bytes]:
    """A session's replies: EHLO twice, commands, STARTTLS, EHLO again, a long MAIL, QUIT."""
    said: list[bytes] = []
    with dial(port) as plain:
        said.append(reply(plain))
        for line in (b"EHLO mx.client.test", b"NOOP", b"EHLO mx.client.test", b"STARTTLS"):
            plain.sendall(line + b"\r\n")
            said.append(reply(plain))
        s = client_tls(tls).wrap_socket(plain, server_hostname="localhost")
        for line in (b"EHLO mx.client.test", LONG_MAIL, b"RSET", b"EHLO other.client.test", b"QUIT"):
            s.sendall(line + b"\r\n")
            said.append(reply(s))
        s.close()
    return said


async def test_ehlo_replies_as_aiosmtpd_writes_them(
    tmp_path: Path, tls_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        ports = (gw.port, gw.daemon.submission_port)

        def sessions() -> list[list[bytes]]:
            return [transcript(port, tls_pair) for port in ports]

        monkeypatch.setattr(ehloreply, "WRITTEN_FOR", "0")  # aiosmtpd's own smtp_EHLO
        ehloreply._kept.clear()
        aiosmtpds = await blocking(sessions)
        assert not ehloreply._kept
        monkeypatch.undo()
        made = await blocking(sessions)
        assert len(ehloreply._kept) == 4  # per port, before and after TLS
        kept = await blocking(sessions)
    for port_said in aiosmtpds:
        assert b"250-PIPELINING\r\n" in port_said[1] and port_said[1].endswith(b"250 HELP\r\n")
        assert port_said[-1].startswith(b"221 ")
    assert made == aiosmtpds
    assert kept == aiosmtpds
