"""A right password sent in the client's Windows code page is accepted, not counted towards a lockout.

Mail clients send AUTH credentials in the machine's code page when the server announces no UTF-8
(MailKit does; Polish Windows is cp1250), so a password set as UTF-8 with `smsgw user passwd`
arrived as other bytes. Real smtplib clients do STARTTLS and AUTH against the running gateway.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from acl import passwords
from acl.passwords import hash_password, verify_password
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, running_gateway
from tests.test_submission import auth_reply, b64, blocking, secure, submission_config, with_password

POLISH = "Zażółć-gęślą-jaźń"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def auth_plain(port: int, tls: tuple[Path, Path], password: bytes) -> str:
    with secure(port, tls) as c:
        return auth_reply(c.docmd("AUTH", "PLAIN " + b64(b"\0" + STAFF.encode() + b"\0" + password)))


def auth_login(port: int, tls: tuple[Path, Path], password: bytes) -> str:
    with secure(port, tls) as c:
        assert c.docmd("AUTH", "LOGIN " + b64(STAFF))[0] == 334
        return auth_reply(c.docmd(b64(password)))


@pytest.mark.parametrize("codepage", ["cp1250", "iso-8859-2"])
async def test_the_right_password_in_a_polish_code_page_logs_in(
    tmp_path: Path, tls_pair: Any, codepage: str
) -> None:
    # Set as UTF-8, sent by Outlook/MailKit on a Polish machine; both mechanisms.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw, STAFF, POLISH)
        port = gw.daemon.submission_port
        sent = POLISH.encode(codepage)
        assert sent != POLISH.encode()

        def sessions() -> list[str]:
            return [auth_plain(port, tls_pair, sent), auth_login(port, tls_pair, sent)]

        answers = await blocking(sessions)
        assert gw.daemon.gate.auth.locks() == []
    assert answers == [replies.AUTH_OK, replies.AUTH_OK]


async def test_a_wrong_password_in_cp1250_is_refused_and_counted_once(tmp_path: Path, tls_pair: Any) -> None:
    # Each reading is not a failure of its own: two wrong cp1250 guesses stay under the limit of
    # three, and the right password still gets in after them.
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        await with_password(gw, STAFF, POLISH)
        port = gw.daemon.submission_port
        assert gw.config.smtp.auth_max_failures == 3

        def sessions() -> list[str]:
            return [
                auth_plain(port, tls_pair, "Zażółć-gęślą-jaźń!".encode("cp1250")),
                auth_login(port, tls_pair, "Zazolc-gęślą-jaźń".encode("cp1250")),
                auth_plain(port, tls_pair, POLISH.encode("cp1250")),
            ]

        answers = await blocking(sessions)
    assert answers == [replies.AUTH_INVALID, replies.AUTH_INVALID, replies.AUTH_OK]


def count_scrypts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = hashlib.scrypt

    def spy(password: bytes, **kw: Any) -> bytes:
        calls.append(kw["n"])
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    return calls


@pytest.mark.parametrize(
    ("sent", "readings"),
    [
        ("Zażółć-gęślą-jaźń?".encode("cp1250"), 4),  # as sent, cp1250, ISO-8859-2, cp1252
        (b"caf\xe9", 2),  # é is 0xE9 in all three code pages: one reading besides the bytes
        (b"x\x81", 2),  # 0x81 is undefined in cp1250 and cp1252: only ISO-8859-2 reads it
        ("Zażółć-gęślą-jaźń?".encode(), 1),  # UTF-8, as every browser posts it: one scrypt as before
    ],
)
def test_an_unknown_user_costs_as_many_scrypts_as_a_known_one(
    sent: bytes, readings: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reply time must not tell which logins exist, also for a password that is not UTF-8.
    stored = hash_password(POLISH)
    pw = sent.decode("utf-8", "surrogateescape")
    calls = count_scrypts(monkeypatch)
    counts = []
    for hashed in (stored, None, "hunter2hunter2"):  # known user, unknown user, garbled row
        calls.clear()
        assert verify_password(pw, hashed) is False
        counts.append(len(calls))
        assert set(calls) == {passwords.N}
    assert counts == [readings] * 3


def test_a_match_costs_what_a_mismatch_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first reading matching does not cut the check short.
    stored = hash_password("café")
    calls = count_scrypts(monkeypatch)
    assert verify_password(b"caf\xe9".decode("utf-8", "surrogateescape"), stored) is True
    assert len(calls) == 2
