"""The service commands' own checks (install-service names, tls-selfsigned's state directory and key
names), the trusted proxy, the submission port turned off, a certificate with another's key, SMPP
logins and link errors, and opt-out words that would misbehave. Split from test_config_checks.py by
subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from tests.certs import make_cert_pair
from tests.conftest import unwritable
from tests.test_config_checks import EXIT_CONFIG, EXIT_USAGE, SHIPPED, config_file, refused, shipped, smsgw

# ---- the service commands ------------------------------------------------------------------------


def test_install_service_refuses_names_that_would_break_the_config_or_the_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    res = smsgw(
        "install-service", "--root", str(root), "--domain", 'sms".example.com', "--hostname", "gw.example"
    )
    assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr
    assert "--domain 'sms\".example.com' is not a host name" in res.stderr
    assert not (root / "etc/smsgw/config.toml").exists()
    res = smsgw("install-service", "--root", str(root), "--hostname", "gw.example", "--user", "gw\nUser=root")
    assert res.returncode == EXIT_USAGE and "--user" in res.stderr
    assert not (root / "etc/systemd/system/smsgw.service").exists()


def test_tls_selfsigned_says_why_the_state_dir_cannot_be_used(tmp_path: Path) -> None:
    # It printed a FileExistsError traceback.
    state = tmp_path / "state"
    state.write_text("a file where the state directory should be\n")
    res = smsgw("--config", str(config_file(tmp_path)), "tls", "selfsigned")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr
    assert f"[gateway] state_dir: {state} is a file, not a directory" in res.stderr


def test_tls_selfsigned_in_a_state_dir_it_may_not_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with unwritable(state):
        res = smsgw("--config", str(config_file(tmp_path)), "tls", "selfsigned")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr
    assert f"[gateway] state_dir: {state} is not writable by this user" in res.stderr


def test_tls_selfsigned_names_the_keys_as_the_config_writes_them(tmp_path: Path) -> None:
    # It said `smtp.tls_cert_file`, where check-config and the README write `[smtp] tls_cert_file`.
    res = smsgw("--config", str(config_file(tmp_path)), "tls", "selfsigned")
    assert res.returncode == 0, res.stderr
    assert "set [smtp] tls_cert_file and tls_key_file" in res.stdout and "smtp.tls" not in res.stdout
    cert = tmp_path / "state" / "selfsigned-cert.pem"
    key = tmp_path / "state" / "selfsigned-key.pem"
    assert cert.exists() and key.exists()
    config = config_file(
        tmp_path,
        (
            'submission_listen = "127.0.0.1:0"\n',
            f'submission_listen = "127.0.0.1:0"\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n',
        ),
    )
    res = smsgw("--config", str(config), "tls", "selfsigned")
    assert res.returncode == 0, res.stderr
    assert "note: [smtp] tls_cert_file is set, so the daemon uses that file" in res.stdout, res.stdout


def test_a_trusted_proxy_must_be_an_ip_address(tmp_path: Path) -> None:
    base = '[gateway]\ndomains = ["sms.example.com"]\n[web]\nenabled = true\n'
    with pytest.raises(ConfigError, match=r"\[web\] trusted_proxies: 'proxy\.local' is not an IP address"):
        parse_config(
            base + 'trusted_proxies = ["proxy.local"]\n', source="t", base_dir=tmp_path, links_required=False
        )
    cfg = parse_config(
        base + 'trusted_proxies = ["127.0.0.1", "::1"]\n', source="t", base_dir=tmp_path, links_required=False
    )
    assert cfg.web.trusted_proxies == ["127.0.0.1", "::1"]


def test_an_empty_submission_listen_turns_the_port_off(tmp_path: Path) -> None:
    # The reference said "unset: off", but unset is 127.0.0.1:2587, and TOML has no null: there was
    # no way to turn the port off ("" was refused as a malformed address).
    text = SHIPPED.replace('submission_listen = "127.0.0.1:2587"', 'submission_listen = ""')
    assert 'submission_listen = ""' in text
    assert parse_config(text, source="config.toml", base_dir=tmp_path).smtp.submission_addr is None
    assert parse_config(SHIPPED, source="config.toml", base_dir=tmp_path).smtp.submission_addr is not None


def test_check_config_refuses_a_certificate_with_another_certificates_key(tmp_path: Path) -> None:
    # Both files readable, so check-config said "config OK"; `run` then refused them.
    cert, _ = make_cert_pair(tmp_path / "a")
    _, key = make_cert_pair(tmp_path / "b")
    config = config_file(
        tmp_path, ("[smtp]\n", f'[smtp]\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n')
    )
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode != 0 and "config OK" not in res.stdout and "Traceback" not in res.stderr
    assert f"[smtp] tls_cert_file, tls_key_file: cannot load the TLS certificate {cert}" in res.stderr


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('password = "secret"', 'password = "hasło"', "password"),
        ('system_id = "smsgw"', 'system_id = "bramka\\u00e9"', "system_id"),
        ('system_id = "smsgw"', 'system_id = "smsgw"\nsystem_type = "a\\tb"', "system_type"),
    ],
)  # fmt: skip
def test_an_smpp_login_that_cannot_be_sent_is_refused_without_repeating_it(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    # "hasło" passed check-config; the link then failed every bind, logging the exception's words,
    # which quoted the password's offending character and its position.
    message = refused(shipped((old, new)), tmp_path)
    assert f'[[smsc]] "simulator" {key}: must be printable ASCII' in message
    assert "hasło" not in message and "ł" not in message


def test_link_errors_name_the_smsc_entry_not_its_index() -> None:
    # pydantic says `smsc.1.port`; an admin with several links would count tables to find which.
    second = '[[smsc]]\nname = "orange"\ntype = "smpp"\nhost = "127.0.0.1"\nport = "x"\nprot = 3\n'
    third = '[[smsc]]\nname = ""\ntype = "smpp"\nhost = "127.0.0.1"\nport = 2775\n'
    with pytest.raises(ConfigError) as err:
        parse_config(SHIPPED + "\n" + second + "\n" + third, source="t")
    message = str(err.value)
    assert '[[smsc]] "orange" port: give a whole number without quotes, not the text "x"' in message, message
    assert '[[smsc]] "orange" prot: unknown key (did you mean port?)' in message, message
    assert "[[smsc]] #3 name:" in message, message  # no usable name: its place in the file
    assert "smsc.1" not in message and "smsc.2" not in message, message


# ---- opt-out and opt-in words ---------------------------------------------------------------------


def test_opt_out_words_that_would_misbehave_are_refused_naming_them(tmp_path: Path) -> None:
    # check-config said OK to an empty word (a 👍 answer then put the phone on the opt-out list) and
    # to words no answer can ever equal ("STOP!": an answer is compared without what is around it).
    config = config_file(tmp_path, ("[gateway]\n", '[gateway]\noptout_words = ["STOP", ""]\n'))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "optout_words" in res.stderr and "would match an answer of only those (a 👍)" in res.stderr
    msg = refused(shipped(("[gateway]\n", '[gateway]\noptin_words = ["START!"]\n')), tmp_path)
    assert "optin_words" in msg and "'START!' can never match" in msg and "write 'START'" in msg, msg
    msg = refused(shipped(("[gateway]\n", '[gateway]\noptout_words = ["🛑"]\n')), tmp_path)
    assert "'🛑' can never match" in msg, msg
    # What phones send, as the README lists it, still loads.
    words = '[gateway]\noptout_words = ["STOP", "REZYGNUJĘ", "stop all"]\noptin_words = ["START"]\n'
    assert (
        smsgw("--config", str(config_file(tmp_path, ("[gateway]\n", words))), "check-config").returncode == 0
    )
