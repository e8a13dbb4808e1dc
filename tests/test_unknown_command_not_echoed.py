"""A line read as an unknown command is not echoed back: it may be the password of a login gone wrong.

After a 501 in AUTH LOGIN or AUTH PLAIN a client sends its password all the same; the line was read
as a command and answered `500 5.5.1 Error: command "MYS3CRETPLAIN2" not recognized`, which mail
clients keep in their protocol logs (on the relay port in clear text). The reply names no word of
the client's now, except a verb some SMTP server knows (`XCLIENT`: a real extension asked for).
Real daemon, smtplib over STARTTLS on the submission port and on the relay port.
"""

from __future__ import annotations

import base64
import smtplib
from pathlib import Path
from typing import Any

import pytest

from tests.certs import make_cert_pair
from tests.conftest import make_config, running_gateway
from tests.test_session_limits import blocking
from tests.test_submission import secure, submission_config

SECRET = "Mys3cretPlain2"
NOT_RECOGNIZED = "500 5.5.1 Error: command not recognized"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def reply(answer: tuple[int, bytes]) -> str:
    return f"{answer[0]} {answer[1].decode()}"


async def test_a_password_after_a_failed_auth_is_not_echoed(tmp_path: Path, tls_pair: Any) -> None:
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.daemon.submission_port

        def session() -> list[str]:
            with secure(port, tls_pair) as c:
                said = [reply(c.docmd("AUTH", "LOGIN")), reply(c.docmd("!!!"))]  # a user name not base64
                said.append(reply(c.docmd(SECRET)))  # the password, sent all the same
                said.append(reply(c.docmd("AUTH", "PLAIN !!!")))
                said.append(reply(c.docmd(base64.b64encode(SECRET.encode()).decode())))
                said.append(reply(c.docmd("XCLIENT", "NAME=x")))
            return said

        said = await blocking(session)
    assert said[0].startswith("334") and said[1].startswith("501") and said[3].startswith("501"), said
    assert said[2] == said[4] == NOT_RECOGNIZED, said
    assert said[5] == '500 5.5.1 Error: command "XCLIENT" not recognized'
    assert not any(SECRET.upper() in line or "TXLZM2" in line for line in said), said


async def test_the_relay_port_echoes_no_unknown_word_either(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:

        def session() -> list[str]:
            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
                c.ehlo("mx.acme.example")
                return [reply(c.docmd(SECRET)), reply(c.docmd("AUTH", "LOGIN")), reply(c.docmd(SECRET))]

        said = await blocking(session)
    assert said[0] == said[2] == NOT_RECOGNIZED, said
