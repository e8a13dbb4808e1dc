"""Password hashes (acl.passwords) and the admin command that sets them (`smsgw user passwd`)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acl import passwords
from acl.passwords import hash_password, is_password_hash, verify_password
from gateway.cli.acl import add_user_commands, cmd_user_passwd
from gateway.config import Config
from gateway.store.accounts import NotFound
from gateway.store.db import Store
from tests.conftest import STAFF, make_config

# ---- hashing ----------------------------------------------------------------------------------


def test_hash_is_self_describing_salted_scrypt() -> None:
    # The stored string names the scheme and costs, and carries a 16-byte salt and the digest.
    stored = hash_password("correct horse battery")
    scheme, params, salt, digest = stored.split("$")
    assert (scheme, params) == ("scrypt", "n=16384,r=8,p=1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert "correct horse" not in stored
    assert verify_password("correct horse battery", stored)
    assert is_password_hash(stored)


def test_same_password_hashes_differently_each_time() -> None:
    # A random salt per hash: equal passwords cannot be spotted in the users table.
    a, b = hash_password("same-password"), hash_password("same-password")
    assert a != b and verify_password("same-password", a) and verify_password("same-password", b)


def test_wrong_password_fails() -> None:
    # Near misses (case, whitespace, a prefix) are all wrong.
    stored = hash_password("Secret-123")
    for attempt in ("secret-123", "Secret-123 ", "Secret-12", "", "Secret-1234"):
        assert not verify_password(attempt, stored)


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "hunter2hunter2",  # a clear-text password left in the column must never match itself
        "scrypt$n=16384,r=8,p=1$!!notbase64$AAAA",
        "scrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==",
        "bcrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "scrypt$n=16385,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "scrypt$n=1099511627776,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "scrypt$n=16384,r=9999,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "scrypt$r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
    ],
)
def test_missing_or_garbled_hash_fails_after_a_full_scrypt(stored: str | None, monkeypatch: Any) -> None:
    # No password and a damaged row verify False, after the same scrypt work as a real check,
    # so the reply time does not tell which users exist; absurd costs from the row are not used.
    calls: list[dict[str, Any]] = []
    real = hashlib.scrypt

    def spy(password: bytes, **kw: Any) -> bytes:
        calls.append(kw)
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    assert verify_password("hunter2hunter2", stored) is False
    assert [(c["n"], c["r"], c["p"]) for c in calls] == [(passwords.N, passwords.R, passwords.P)]
    assert not is_password_hash(stored)


def test_composed_and_decomposed_accents_match() -> None:
    # Clients may send "é" as one code point or as "e" + combining accent (SASLprep normalises).
    stored = hash_password("caf\u00e9-latte")
    assert verify_password("cafe\u0301-latte", stored)


def test_undecodable_network_bytes_do_not_crash() -> None:
    # Bytes that are not UTF-8 arrive surrogate-escaped; they are compared, never raised on.
    raw = b"\xff\xfepass\x80word".decode("utf-8", "surrogateescape")
    stored = hash_password(raw)
    assert verify_password(raw, stored)
    assert not verify_password("pass word", stored)


@pytest.mark.parametrize("stored", [None, "hunter2hunter2", "real"])
def test_a_lone_surrogate_costs_one_scrypt_and_fails_on_every_path(
    stored: str | None, monkeypatch: Any
) -> None:
    # "\ud800" (a form decoded with its own odd charset) raised before the dummy check: an unknown
    # login then crashed where a known one got a plain False, which told which logins exist.
    real_hash = hash_password("\ud800x") if stored == "real" else stored
    calls: list[int] = []
    real = hashlib.scrypt

    def spy(password: bytes, **kw: Any) -> bytes:
        calls.append(kw["n"])
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    assert verify_password("\ud800", real_hash) is False
    assert calls == [passwords.N]
    if real_hash is not None and is_password_hash(real_hash):
        assert verify_password("\ud800x", real_hash)  # such a password, once set, still matches


@settings(max_examples=8, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_text_password_round_trips(pw: str) -> None:
    # Whatever an admin types, the hash made from it accepts it again.
    assert verify_password(pw, hash_password(pw))


# ---- smsgw user passwd ------------------------------------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[Config]:
    config = make_config(tmp_path, smsc_port=1)
    store = Store.open(config.db_path)
    store.accounts.add_account("acme")
    store.accounts.add_user(STAFF, "acme")
    store.close()
    yield config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsgw")
    sub = p.add_subparsers(dest="command", required=True)
    add_user_commands(sub.add_parser("user").add_subparsers(dest="sub", required=True))
    return p


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(cfg: Config, argv: list[str], stdin: io.StringIO, monkeypatch: Any) -> int:
    monkeypatch.setattr(sys, "stdin", stdin)
    args = parser().parse_args(argv)
    try:
        return args.func(cfg, args)
    except NotFound as exc:  # as gateway.cli.main.main reports it
        print(f"smsgw: {exc}", file=sys.stderr)
        return 1


def stored_hash(cfg: Config, email: str = STAFF) -> str | None:
    store = Store.open(cfg.db_path)
    try:
        user = store.accounts.find_user(email)
        assert user is not None
        return user.password_hash
    finally:
        store.close()


def test_passwd_reads_one_line_from_stdin(cfg: Config, monkeypatch: Any, capsys: Any) -> None:
    # Scripts pipe the password in; only the first line counts and only a hash is stored.
    code = run(cfg, ["user", "passwd", STAFF], io.StringIO("long enough pw\nsecond line\n"), monkeypatch)
    assert code == 0
    stored = stored_hash(cfg)
    assert stored and "long enough" not in stored and verify_password("long enough pw", stored)
    assert "long enough" not in capsys.readouterr().out
    assert parser().parse_args(["user", "passwd", STAFF]).func is cmd_user_passwd


def test_passwd_accepts_the_login_in_any_case(cfg: Config, monkeypatch: Any) -> None:
    # Email addresses are case-insensitive for the admin as for the login.
    assert run(cfg, ["user", "passwd", STAFF.upper()], io.StringIO("Another-pw-1\n"), monkeypatch) == 0
    assert verify_password("Another-pw-1", stored_hash(cfg))


@pytest.mark.parametrize("given_pw", ["", "\n", "short7!\n"])
def test_passwd_refuses_empty_and_short(cfg: Config, given_pw: str, monkeypatch: Any, capsys: Any) -> None:
    # Fewer than 8 characters is refused with a usage error, and the old state is kept.
    assert run(cfg, ["user", "passwd", STAFF], io.StringIO(given_pw), monkeypatch) == 2
    assert stored_hash(cfg) is None
    assert "nothing changed" in capsys.readouterr().err


def test_passwd_for_unknown_user_fails_before_reading(cfg: Config, monkeypatch: Any, capsys: Any) -> None:
    # A typo in the address exits non-zero and consumes no password.
    stdin = io.StringIO("long enough pw\n")
    assert run(cfg, ["user", "passwd", "nobody@acme.example"], stdin, monkeypatch) == 1
    assert stdin.tell() == 0
    assert "no user" in capsys.readouterr().err


def test_passwd_on_a_terminal_asks_twice_without_echo(cfg: Config, monkeypatch: Any) -> None:
    # On a TTY the password comes from getpass (no echo), twice; a mismatch changes nothing.
    answers = iter(["first-password", "other-password", "same-password", "same-password"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert run(cfg, ["user", "passwd", STAFF], FakeTty(), monkeypatch) == 2
    assert stored_hash(cfg) is None
    assert run(cfg, ["user", "passwd", STAFF], FakeTty(), monkeypatch) == 0
    assert verify_password("same-password", stored_hash(cfg))
    assert len(prompts) == 4


ARGV_WITH_PASSWORD = [["user", "passwd", STAFF, "secret-pw"], ["user", "passwd", STAFF, "--password=x"]]


@pytest.mark.parametrize("argv", ARGV_WITH_PASSWORD)
def test_password_cannot_be_given_on_the_command_line(argv: list[str], capsys: Any) -> None:
    # Arguments end up in `ps` and shell history, so there is no way to pass the password as one.
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    assert exc.value.code == 2
