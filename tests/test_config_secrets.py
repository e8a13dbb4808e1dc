"""A config error never repeats a secret: `check-config` and `run` print it to the terminal and, under
systemd, into the journal. `password = 48151623` (digit-only SMSC passwords are common, and TOML
reads them as a number) was refused with `..., not the number 48151623`, and a relay written as a URL
with its login was refused quoting its password."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, get_args

import pytest
from pydantic import BaseModel, SecretStr, ValidationError, field_validator, model_validator

from gateway.config import Config, parse_config
from gateway.configbase import SECRET, ConfigError, _Section
from gateway.configerrors import describe
from tests.conftest import free_port

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
SECRET_TEXT = "48151623"


def config(smtp_port: int, smsc_port: int, **sections: str) -> str:
    """A config good but for the lines given per section (`mail=...`, `smsc=...`)."""
    smsc_lines = sections.get("smsc", 'password = "secret"')
    return f"""
[gateway]
domains = ["sms.example.com"]
state_dir = "var"
[smtp]
listen = "127.0.0.1:{smtp_port}"
submission_listen = ""
[mail]
relay = "127.0.0.1:{free_port()}"
relay_username = "relayuser"
{sections.get("mail", "")}
[web]
enabled = false
{sections.get("web", "")}
[[smsc]]
name = "operator"
type = "smpp"
port = {smsc_port}
system_id = "smsgw"
{smsc_lines}
[simulator]
smpp_port = {smsc_port}
{sections.get("simulator", "")}
"""


def refused(tmp_path: Path, text: str) -> list[str]:
    """What `check-config` and `run` print of the config, each refusing it."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    said = []
    for command in ("check-config", "run"):
        done = subprocess.run(
            [*CLI, "--config", str(path), command], capture_output=True, text=True, cwd=ROOT, timeout=60
        )
        assert done.returncode != 0, (command, done.stdout, done.stderr)
        said.append(done.stdout + done.stderr)
    return said


@pytest.mark.parametrize(
    ("section", "line", "place"),
    [
        ("smsc", f"password = {SECRET_TEXT}", '[[smsc]] "operator" password'),
        ("mail", f"relay_password = {SECRET_TEXT}", "[mail] relay_password"),
        ("web", f"metrics_token = {SECRET_TEXT}", "[web] metrics_token"),
        ("simulator", f"password = {SECRET_TEXT}", "[simulator] password"),
    ],
)
def test_a_secret_written_as_a_number_is_refused_without_repeating_it(
    tmp_path: Path, section: str, line: str, place: str
) -> None:
    for output in refused(tmp_path, config(free_port(), free_port(), **{section: line})):
        assert SECRET_TEXT not in output
        # Still what to do: the key, that it wants quotes, and what was given instead.
        key = place.rpartition(" ")[2]
        assert (
            f'{place}: give a text in quotes, not a number of 8 digits (the same in quotes: {key} = "...")'
            in output
        )


def test_a_relay_written_as_a_url_with_its_login_is_refused_without_its_password(tmp_path: Path) -> None:
    for relay, shown in [
        ("smtp://relayuser:UrlPwRomeo50@mail.example.com:587", "smtp://relayuser:***@mail.example.com:587"),
        ("relayuser:UrlPwRomeo50@mail.example.com:587", "relayuser:***@mail.example.com:587"),
        (
            "smtps://relayuser:Url@PwRomeo50@mail.example.com:465",
            "smtps://relayuser:***@mail.example.com:465",
        ),
    ]:
        text = re.sub(r'(?m)^relay = ".*"$', f'relay = "{relay}"', config(free_port(), free_port()))
        for output in refused(tmp_path, text):
            assert "UrlPwRomeo50" not in output and "PwRomeo50" not in output
            assert f"got '{shown}'" in output
            assert "the host and port alone, not a URL, its login in keys of its own" in output


@pytest.mark.parametrize(
    ("line", "given"),
    [
        (f"password = {SECRET_TEXT}.5", "not a number"),  # a float: its digits are the secret's
        (f"password = -{SECRET_TEXT}", "not a number of 8 digits"),
        ("password = 4815_1623", "not a number of 8 digits"),  # TOML's digit groups
    ],
)
def test_a_secret_of_another_wrong_kind_is_said_by_its_kind(line: str, given: str) -> None:
    text = config(free_port(), free_port(), smsc=line)
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert SECRET_TEXT not in str(caught.value)
    assert f'[[smsc]] "operator" password: give a text in quotes, {given}' in str(caught.value)


class _Vault(_Section):
    """A section whose own check repeats the values it refuses, as a validator's message may."""

    api_token: Annotated[str, SECRET] = ""
    pin: Annotated[int, SECRET] = 0
    note: str = ""

    @field_validator("api_token", "pin", "note")
    @classmethod
    def _short(cls, v: Any) -> Any:
        if len(str(v)) < 20:
            raise ValueError(f"{v!r} is too short; {v} has {len(str(v))} characters")
        return v


class _Root(BaseModel):
    vault: _Vault


def test_a_validators_message_holding_a_secret_has_it_masked() -> None:
    data = {"vault": {"api_token": "Tok3nSierra", "pin": 4711, "note": "a plain note"}}
    with pytest.raises(ValidationError) as caught:
        _Root.model_validate(data)
    said = describe(caught.value, _Root, data)
    assert "Tok3nSierra" not in said and "4711" not in said
    assert "[vault] api_token: '***' is too short; *** has 11 characters" in said
    assert "[vault] pin: *** is too short; *** has 4 characters" in said
    assert "'a plain note' is too short" in said  # not a secret: said as given


class _Login(_Section):
    """A section whose check of the whole table repeats a secret of it."""

    user: str = ""
    password: Annotated[str, SECRET] = ""

    @model_validator(mode="after")
    def _apart(self) -> _Login:
        if self.password.startswith(self.user):
            raise ValueError(f"password {self.password} starts with the user name {self.user}")
        return self


class _Site(BaseModel):
    login: list[_Login]


def test_a_sections_check_holding_a_secret_has_it_masked() -> None:
    data = {"login": [{"user": "anna", "password": "annaSecret7"}]}
    with pytest.raises(ValidationError) as caught:
        _Site.model_validate(data)
    said = describe(caught.value, _Site, data)
    assert said == "[[login]] #1: password *** starts with the user name anna"


def test_every_secret_named_key_is_marked_so_in_its_model() -> None:
    """The models say which keys are secrets; a key named as one (a new `*_token`) must be marked,
    so that the mark, not the name, stays the rule that other code reads."""
    named = re.compile(r"(?:^|_)(?:password|passwd|passphrase|secret|token)s?$")
    found, todo = [], [("", Config)]
    while todo:
        prefix, model = todo.pop()
        for key, field in model.model_fields.items():
            kinds, stack = set(), [field.annotation]
            while stack:
                t = stack.pop()
                kinds.add(t)
                stack.extend(get_args(t))
                if isinstance(t, type) and issubclass(t, BaseModel):
                    todo.append((f"{prefix}{key}.", t))
            marked = SecretStr in kinds or any(m is SECRET for m in field.metadata)
            if named.search(key):
                assert marked, f"{prefix}{key} is named as a secret but not marked SECRET"
                found.append(f"{prefix}{key}")
    assert sorted(found) == [
        "mail.relay_password",
        "simulator.password",
        "smsc.password",
        "web.metrics_token",
    ]
