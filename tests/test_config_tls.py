"""The [[smsc]] and [simulator] TLS keys as an admin meets them: refused at load when they could not do
what they say, files named by `check-config` (and `run`) when they cannot be used, and tls_verify = false
warned of at every check."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.configbase import ConfigError
from gateway.configdoubts import setup_doubts
from tests.certs import make_cert_pair
from tests.conftest import config_text
from tests.test_first_day_cli import run


def config(tmp_path: Path, link: str, simulator: str = "") -> str:
    text = config_text(tmp_path, smsc_port=2775, smsc_extra=link)
    enabled = "true" if simulator else "false"
    section = (
        f"[simulator]\nenabled = {enabled}\nsmpp_port = 0\ncimd2_port = 0\ncontrol_port = 0\n{simulator}"
    )
    return text.replace("[simulator]\nenabled = false", section)


@pytest.mark.parametrize(
    ("link", "said"),
    [
        ('tls_ca_file = "ca.pem"', '[[smsc]] "main" tls_ca_file: does nothing while tls = false'),
        (
            'tls_verify = false\ntls_server_name = "smsc.example"',
            '[[smsc]] "main" tls_verify, tls_server_name: do nothing while tls = false',
        ),
        (
            'tls = true\ntls_key_file = "key.pem"',
            '[[smsc]] "main" tls_key_file: is the key of a client certificate: give tls_cert_file too',
        ),
        (
            'tls = true\ntls_verify = false\ntls_ca_file = "ca.pem"',
            '[[smsc]] "main" tls_ca_file, tls_verify: tls_verify = false checks no certificate, so'
            " tls_ca_file pins nothing",
        ),
    ],
)
def test_tls_keys_that_could_not_do_what_they_say_are_refused(tmp_path: Path, link: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(tmp_path, link), source="config.toml", base_dir=tmp_path)
    assert said in str(caught.value), caught.value


def test_half_a_simulator_tls_setup_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[simulator\]: give both tls_cert_file and tls_key_file"):
        parse_config(config(tmp_path, "", 'tls_cert_file = "cert.pem"'), source="t", base_dir=tmp_path)


def test_check_config_names_the_tls_files_it_cannot_use(tmp_path: Path) -> None:
    cert, _ = make_cert_pair(tmp_path / "certs")
    (tmp_path / "not-pem.pem").write_text("not a certificate\n")
    link = 'tls = true\ntls_ca_file = "not-pem.pem"'
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path, link, f'tls_cert_file = "{cert}"\ntls_key_file = "missing-key.pem"'))
    res = run("--config", str(path), "check-config")
    assert res.returncode != 0, res.stderr
    assert f'[[smsc]] "main" tls_ca_file: {tmp_path / "not-pem.pem"} holds no PEM certificate' in res.stderr
    missing = tmp_path / "missing-key.pem"
    assert f"[simulator] tls_key_file: cannot read the key {missing}: No such file or directory" in res.stderr
    # `run` builds the link with the same check: it stops on the file instead of failing each connect.
    cfg = parse_config(config(tmp_path, link), source="t", base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"tls_ca_file: .*not-pem\.pem holds no PEM certificate"):
        cfg.smsc[0].driver(tmp_path)


def test_tls_verify_false_is_warned_of_by_check_config_and_at_start(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path, "tls = true\ntls_verify = false"))
    res = run("--config", str(path), "check-config")
    said = (
        '[[smsc]] "main" tls_verify: false: the SMSC\'s certificate is not checked, so anyone on the path can'
        " pose as it and read every SMS and the password; pin it instead: tls_ca_file = its certificate"
    )
    assert said in res.stderr, res.stderr
    cfg = parse_config(path.read_text(), source="t", base_dir=tmp_path)
    assert [event for event, doubt in setup_doubts(cfg) if said in doubt] == ["config.smsc_tls_unverified"]


def encrypted_copy(key: Path, to: Path) -> Path:
    """The key with a passphrase, as an operator's portal may hand one out."""
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    to.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"portal passphrase"),
        )
    )
    return to


def test_an_encrypted_client_key_is_refused_and_never_prompted_for(tmp_path: Path) -> None:
    # OpenSSL asked for the passphrase on the terminal, in the event loop, at every connect (the
    # daemon stood still while it waited); with no terminal check-config failed "Invalid argument".
    cert, key = make_cert_pair(tmp_path / "client")
    encrypted = encrypted_copy(key, tmp_path / "client" / "encrypted.pem")
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path, f'tls = true\ntls_cert_file = "{cert}"\ntls_key_file = "{encrypted}"'))
    res = run("--config", str(path), "check-config")
    assert res.returncode != 0, res.stderr
    said = f'[[smsc]] "main" tls_key_file: the key {encrypted} is encrypted (it has a passphrase)'
    assert said in res.stderr, res.stderr
    assert "PEM pass phrase" not in res.stdout + res.stderr and "Invalid argument" not in res.stderr


def test_a_client_key_readable_by_every_user_is_warned_of(tmp_path: Path) -> None:
    cert, key = make_cert_pair(tmp_path / "client")
    key.chmod(0o644)
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path, f'tls = true\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"'))
    path.chmod(0o640)
    res = run("--config", str(path), "check-config")
    said = f'{key} holds a private key ([[smsc]] "main" tls_key_file) and is readable by every user'
    assert said in res.stdout + res.stderr, res.stdout + res.stderr
    assert f"chmod 600 {key}" in res.stdout + res.stderr
