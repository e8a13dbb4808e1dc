"""Configs that `check-config` passed and the daemon then stopped on (or ran wrongly with): the
file's encoding, files it names, listeners sharing a port, bounds, addresses and names.

Where the behaviour is the CLI's, `smsgw` runs as a real process on real files in tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli.servicefiles import CREDENTIALS_DROPIN, render_unit
from gateway.config import ConfigError, parse_config
from gateway.store.db import Store
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.conftest import config_text, free_port, unwritable
from tests.web_helpers import web_context

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
EXIT_USAGE, EXIT_CONFIG = 2, 3
SHIPPED = (ROOT / "config.toml").read_text()
WEB_ON = 'enabled = true\nlisten = "127.0.0.1:8080"'  # the shipped config's panel


def smsgw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SMSGW_CONFIG", "CREDENTIALS_DIRECTORY")}
    clean.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=clean, timeout=60)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


def config_file(tmp_path: Path, *changes: tuple[str, str], extra: str = "") -> Path:
    """The tests' usual config (simulator off, free ports) with `(old, new)` changes, written."""
    text = config_text(tmp_path, smsc_port=free_port(), extra=extra)
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return write(tmp_path, text)


def shipped(*changes: tuple[str, str]) -> str:
    text = SHIPPED
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def refused(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml", base_dir=tmp_path)
    return str(caught.value)


# ---- 1. the file's encoding ----------------------------------------------------------------------


def test_a_config_saved_in_windows_1250_is_named_with_the_byte_and_line(tmp_path: Path) -> None:
    # A Polish comment saved by a Windows editor: a UnicodeDecodeError traceback before.
    text = "# bramka SMS: zażółć gęślą jaźń\n" + config_text(tmp_path, smsc_port=free_port())
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode("cp1250"))
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "Traceback" not in res.stderr
    # 'ż' is 0xbf in cp1250, after the 16 characters "# bramka SMS: za".
    assert f"{path} is not UTF-8: byte 0xbf at line 1, column 17" in res.stderr


def test_a_utf8_config_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    # Notepad writes one; TOML alone refuses it ("Invalid statement at line 1").
    path = tmp_path / "config.toml"
    text = "# zażółć\n" + config_text(tmp_path, smsc_port=free_port())
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == 0, res.stderr
    assert "config OK" in res.stdout


# ---- 2. files the daemon reads -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("[smtp] tls_cert_file", "[smtp]\n",
         '[smtp]\ntls_cert_file = "{missing}"\ntls_key_file = "{there}"\n'),
        ("[smtp] tls_key_file", "[smtp]\n",
         '[smtp]\ntls_cert_file = "{there}"\ntls_key_file = "{missing}"\n'),
        ('[[smsc]] "main" password_file', 'password = "secret"\n', 'password_file = "{missing}"\n'),
        ("[mail] relay_password_file", "[mail]\n",
         '[mail]\nrelay_username = "a"\nrelay_password_file = "{missing}"\n'),
        ("[mail] relay_tls_ca_file", "[mail]\n",
         '[mail]\nrelay_starttls = true\nrelay_tls_ca_file = "{missing}"\n'),
    ],
)  # fmt: skip
def test_check_config_refuses_a_file_the_daemon_cannot_open_naming_it(
    tmp_path: Path, key: str, old: str, new: str
) -> None:
    there = tmp_path / "there.pem"
    there.write_text("x")
    missing = tmp_path / "private" / "missing"  # with a directory: never a systemd credential
    config = config_file(tmp_path, (old, new.format(missing=missing, there=there)))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode != 0 and "config OK" not in res.stdout
    assert "Traceback" not in res.stderr
    assert f"{key}: cannot read {missing}: No such file or directory" in res.stderr


def test_check_config_refuses_a_password_file_it_cannot_read(tmp_path: Path) -> None:
    # A directory where the password file should be: it exists, yet nothing can be read from it.
    secret = tmp_path / "smsc-password"
    secret.mkdir()
    config = config_file(tmp_path, ('password = "secret"', f'password_file = "{secret}"'))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f'[[smsc]] "main" password_file: cannot read {secret}: Is a directory' in res.stderr


def test_web_tls_files_are_checked_when_the_panel_runs(tmp_path: Path) -> None:
    web = (
        '\n[web]\nenabled = {on}\nlisten = "127.0.0.1:0"\n'
        f'tls_cert_file = "{tmp_path / "web.crt"}"\ntls_key_file = "web.key"\n'
    )
    res = smsgw("--config", str(config_file(tmp_path, extra=web.format(on="true"))), "check-config")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"[web] tls_cert_file: cannot read {tmp_path / 'web.crt'}" in res.stderr
    assert f"[web] tls_key_file: cannot read {tmp_path / 'web.key'}" in res.stderr  # beside the config
    # With the panel off the daemon never reads them.
    res = smsgw("--config", str(config_file(tmp_path, extra=web.format(on="false"))), "check-config")
    assert res.returncode == 0, res.stderr


def test_bare_names_are_looked_up_in_the_credentials_directory_as_the_daemon_does(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    config = config_file(tmp_path, ('password = "secret"', 'password_file = "smsc-password"'))
    under_systemd = {"CREDENTIALS_DIRECTORY": str(creds)}
    # Neither in $CREDENTIALS_DIRECTORY nor beside the config: `run` would stop on it.
    res = smsgw("--config", str(config), "check-config", env=under_systemd)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f'password_file: no file "smsc-password" in $CREDENTIALS_DIRECTORY ({creds})' in res.stderr
    assert "LoadCredential=smsc-password:" in res.stderr
    (creds / "smsc-password").write_text("secret\n")
    (creds / "smsc-password").chmod(0o600)
    res = smsgw("--config", str(config), "check-config", env=under_systemd)
    assert res.returncode == 0, res.stderr
    # By hand, without systemd's directory, a credential cannot be seen: check-config says what the
    # unit must hand over instead of refusing a config that is right under systemd.
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    [line] = [line for line in res.stderr.splitlines() if "smsc-password" in line]
    assert line.startswith("smsgw: warning: ") and str(tmp_path / "smsc-password") in line
    assert "LoadCredential=smsc-password:/etc/smsgw/private/smsc-password" in line


async def test_the_panel_names_the_tls_file_it_cannot_load(tmp_path: Path) -> None:
    # It said "cannot listen on web.listen ...: No such file or directory", naming no file.
    cert, key = make_cert_pair(tmp_path / "tls")
    missing, garbage = tmp_path / "missing-key.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    store = Store.open(tmp_path / "panel.db")
    try:
        tls = f'listen = "127.0.0.1:0"\ntls_cert_file = "{cert}"\ntls_key_file = "{missing}"\n'
        with pytest.raises(
            ConfigError, match=rf"\[web\] tls_key_file: cannot read the TLS key file {missing}: No such file"
        ):
            await WebServer(web_context(tmp_path, store, tls)).start()
        tls = f'listen = "127.0.0.1:0"\ntls_cert_file = "{garbage}"\ntls_key_file = "{key}"\n'
        with pytest.raises(
            ConfigError,
            match=rf"\[web\] tls_cert_file, tls_key_file: cannot load the TLS certificate {garbage} with",
        ):
            await WebServer(web_context(tmp_path, store, tls)).start()
    finally:
        store.close()


# ---- 3. the credentials drop-in ------------------------------------------------------------------


def test_the_credentials_dropin_hands_over_the_relay_password() -> None:
    # README's systemd section names relay_password_file as a credential; the drop-in had no line.
    assert "LoadCredential=relay-password:/etc/smsgw/private/relay-password\n" in CREDENTIALS_DROPIN
    assert 'relay_password_file = "relay-password"' in CREDENTIALS_DROPIN
    assert (ROOT / "systemd/smsgw-credentials.conf").read_text() == CREDENTIALS_DROPIN
    assert "(password_file, relay_password_file, tls_cert_file, tls_key_file)" in render_unit()
    assert 'relay_password_file = "relay-password"' in (ROOT / "README.md").read_text()


# ---- 4. listeners and ports ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "first", "second"),
    [
        ('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:2587"', "[web] listen",
         "[smtp] submission_listen"),
        ("control_port = 2776", "control_port = 2525", "[simulator] control_port", "[smtp] listen"),
        ("cimd2_port = 9971", "cimd2_port = 2775", "[simulator] cimd2_port", "[simulator] smpp_port"),
        ('listen = "127.0.0.1:8080"', 'listen = "0.0.0.0:2776"', "[web] listen", "[simulator] control_port"),
        ('listen = "127.0.0.1:8080"', 'listen = "[::]:2525"', "[web] listen", "[smtp] listen"),
        ('submission_listen = "127.0.0.1:2587"', 'submission_listen = "127.0.0.1:2525"',
         "[smtp] submission_listen", "[smtp] listen"),
    ],
)  # fmt: skip
def test_two_listeners_on_one_port_are_refused_naming_both(
    tmp_path: Path, old: str, new: str, first: str, second: str
) -> None:
    message = refused(shipped((old, new)), tmp_path)
    assert f"{first} (" in message and f"{second} (" in message and "same port" in message


def test_only_listeners_that_would_collide_are_refused(tmp_path: Path) -> None:
    assert "same port" in refused(shipped((WEB_ON, 'enabled = true\nlisten = "127.0.0.1:2525"')), tmp_path)
    fine = [
        shipped((WEB_ON, 'enabled = true\nlisten = "127.0.0.2:2525"')),  # another address
        shipped((WEB_ON, 'enabled = false\nlisten = "127.0.0.1:2525"')),  # the panel is off
        # Port 0: a free port chosen at start (how the tests run daemons), never a collision.
        shipped(
            ('listen = "127.0.0.1:2525"', 'listen = "127.0.0.1:0"'),
            (WEB_ON, 'enabled = true\nlisten = "127.0.0.1:0"'),
        ),
    ]
    for text in fine:
        parse_config(text, source="config.toml", base_dir=tmp_path)


def test_check_config_refuses_the_panel_on_the_submission_port(tmp_path: Path) -> None:
    # check-config passed it, then `run` exited 1 and systemd restarted it for ever.
    port = free_port()
    config = config_file(
        tmp_path,
        ('submission_listen = "127.0.0.1:0"', f'submission_listen = "127.0.0.1:{port}"'),
        extra=f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n',
    )
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "[web] listen (127.0.0.1:" in res.stderr and "[smtp] submission_listen (127.0.0.1:" in res.stderr


def test_the_relay_needs_a_port_that_can_be_reached(tmp_path: Path) -> None:
    message = refused(shipped(('relay = "maildir:var/mail"', 'relay = "127.0.0.1:0"')), tmp_path)
    assert "[mail] relay: " in message and "1 to 65535" in message


# ---- 5. the submission port's pair ---------------------------------------------------------------


@pytest.mark.parametrize("only", ["tls_cert_file", "tls_key_file"])
def test_one_smtp_tls_file_without_the_other_is_refused(tmp_path: Path, only: str) -> None:
    # It left the submission port silently off (tlscert.with_certificate).
    message = refused(shipped(("[smtp]\n", f'[smtp]\n{only} = "/etc/smsgw/tls.pem"\n')), tmp_path)
    assert message.startswith("config.toml: [smtp]: give both tls_cert_file and tls_key_file")


# ---- 6. bounds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hours", ["inf", "nan", "1e9", "721"])
def test_validity_is_at_most_a_month(tmp_path: Path, hours: str) -> None:
    # 1e9 or inf put every SMS on hold with an internal error (datetime.fromtimestamp out of range).
    message = refused(shipped(("validity_hours = 24 ", f"validity_hours = {hours} ")), tmp_path)
    finite = "[gateway] validity_hours: Input should be a finite number"
    assert "[gateway] validity_hours: must be at most 720 hours" in message or finite in message
    parse_config(shipped(("validity_hours = 24 ", "validity_hours = 720 ")), source="c", base_dir=tmp_path)


def test_retention_is_a_finite_number_of_days(tmp_path: Path) -> None:
    # A short one is fine (the purge keeps a month until it is billed: test_billing.py).
    retention = ("validity_hours = 24 ", "retention_days = inf\nvalidity_hours = 24 ")
    said = "[gateway] retention_days: Input should be a finite number"
    assert said in refused(shipped(retention), tmp_path)
    kept = ("validity_hours = 24 ", "retention_days = 14\nvalidity_hours = 24 ")
    parse_config(shipped(kept), source="c", base_dir=tmp_path)


# ---- 7. addresses and names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('admin_address = "postmaster@example.com"', 'admin_address = ""', "[mail] admin_address"),
        ('from_address = "smsgw@sms.example.com"', 'from_address = "smsgw at example"',
         "[mail] from_address"),
        ('# fallback_address = "sms-replies@example.com"', 'fallback_address = "replies"',
         "[replies] fallback_address"),
        ('# fallback_address = "premium@example.com"', 'fallback_address = "Ops <ops@example.com>"',
         "[premium] fallback_address"),
        ('users = ["demo@example.com"]', 'users = ["demo@example.com", ""]', '[[account]] "demo" users'),
    ],
)  # fmt: skip
def test_mail_addresses_are_checked(tmp_path: Path, old: str, new: str, key: str) -> None:
    # An empty admin_address passed check-config, and billing --send then went to an empty RCPT.
    message = refused(shipped((old, new)), tmp_path)
    assert f"{key}: " in message and "is not a mail address" in message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('domains = ["sms.example.com"]', 'domains = [""]', "[gateway] domains"),
        (
            'domains = ["sms.example.com"]',
            'domains = ["sms.example.com", "sms_a.example"]',
            "[gateway] domains",
        ),
        ('domains = ["sms.example.com"]', 'domains = ["sms\\".example.com"]', "[gateway] domains"),
        ('hostname = "sms.example.com"', 'hostname = "sms gw"', "[gateway] hostname"),
    ],
)
def test_domains_and_the_hostname_are_host_names(tmp_path: Path, old: str, new: str, key: str) -> None:
    message = refused(shipped((old, new)), tmp_path)
    assert f"{key}: " in message and "is not a" in message
    cfg = parse_config(
        shipped(('domains = ["sms.example.com"]', 'domains = [" SMS.Example.com"]')), source="c"
    )
    assert cfg.gateway.domains == ["sms.example.com"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('default_sender = "+48100200300"', 'default_sender = "Łódź"',
         "[gateway] default_sender: sender 'Łódź' holds 'Łóź': an alphanumeric sender takes only"),
        ('default_sender = "+48100200300"', 'default_sender = "ThisIsTooLongAlphaSender"',
         "[gateway] default_sender: sender 'ThisIsTooLongAlphaSender' is 24 characters long"),
        ('default_sender = "+48100200300"', 'default_sender = "+48 601 123 456"',
         "[gateway] default_sender: sender '+48 601 123 456' looks like a number: write it in digits only"),
        ('default_sender = "+48100200300"', 'default_sender = ""',
         "[gateway] default_sender: give the number"),
        ('name = "demo"', 'name = "demo"\nsender = "Łódź"',
         "[[account]] \"demo\" sender: sender 'Łódź' holds 'Łóź'"),
        ('name = "demo"', 'name = "demo"\nsender = "+481002003001234567890"',
         "[[account]] \"demo\" sender: sender '+481002003001234567890' has 21 digits"),
    ],
)  # fmt: skip
def test_senders_are_checked_by_the_rule_of_the_cli_and_the_panel(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    # Every SMS from such a sender failed at submit (a latin-1 encode error for "Łódź"), and the
    # failures suspended the account; `account add --sender` refused it all along.
    assert message in refused(shipped((old, new)), tmp_path)


def test_check_config_and_run_refuse_a_sender_no_smsc_can_send(tmp_path: Path) -> None:
    config = write(tmp_path, shipped(('default_sender = "+48100200300"', 'default_sender = "Łódź"')))
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert "[gateway] default_sender: sender 'Łódź'" in res.stderr


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ('name = "  "', "[[account]] #1 name: an account name cannot be empty"),
        (f'name = "{"Spółka " * 10}"', "an account name holds at most 64"),
        ('name = "demo\tcorp"', "holds a control character"),
        (
            'name = "demo"\n[[account]]\nname = "demo "',
            '[[account]] name: each account needs a name of its own, repeated: "demo"',
        ),
    ],
)
def test_seeded_account_names_follow_the_cli_rule(tmp_path: Path, accounts: str, message: str) -> None:
    # A blank name seeded a blank-named account, and "demo " a second one looking like "demo".
    assert message in refused(shipped(('name = "demo"', accounts)), tmp_path)
    cfg = parse_config(shipped(('name = "demo"', 'name = " demo "')), source="c")
    assert [a.name for a in cfg.account] == ["demo"]


def test_check_config_and_run_refuse_a_simulator_log_under_a_file(tmp_path: Path) -> None:
    # `run` stopped with an unnamed "[Errno 17] File exists" (exit 1) on what check-config passed.
    (tmp_path / "afile").write_text("")
    config = config_file(
        tmp_path,
        ("[simulator]\nenabled = false", f'[simulator]\nenabled = true\nlog = "{tmp_path}/afile/sim.jsonl"'),
    )
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert (
            f"[simulator] log: {tmp_path}/afile/sim.jsonl cannot be written: {tmp_path}/afile is a file"
            in res.stderr
        )
    (tmp_path / "afile").unlink()
    (tmp_path / "afile").mkdir()
    (tmp_path / "afile" / "sim.jsonl").mkdir()
    res = smsgw("--config", str(config), "check-config")
    assert (
        res.returncode == EXIT_CONFIG
        and f"[simulator] log: {tmp_path}/afile/sim.jsonl is a directory" in res.stderr
    )


def test_check_config_refuses_a_maildir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    config = config_file(tmp_path, ("[mail]\n", f'[mail]\nrelay = "maildir:{tmp_path}/afile/mail"\n#'))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr
    said = f"[mail] relay: the maildir {tmp_path}/afile/mail cannot be created: {tmp_path}/afile is a file"
    assert said in res.stderr, res.stderr
    ok = config_file(tmp_path, ("[mail]\n", f'[mail]\nrelay = "maildir:{tmp_path}/var/mail"\n#'))
    assert smsgw("--config", str(ok), "check-config").returncode == 0


# ---- 8. mail that would loop back into the gateway -------------------------------------------------

LISTEN, SUBMISSION = 'listen = "127.0.0.1:0"', 'submission_listen = "127.0.0.1:0"'


def relay(to: str) -> tuple[str, str]:
    return ("[mail]\n", f'[mail]\nrelay = "{to}"\n#')


@pytest.mark.parametrize(
    ("listen", "to", "key"),
    [
        ("127.0.0.1", "127.0.0.1", "[smtp] listen"),
        ("127.0.0.1", "localhost", "[smtp] listen"),
        ("0.0.0.0", "localhost", "[smtp] listen"),
        ("0.0.0.0", "127.0.0.1", "[smtp] listen"),
        ("[::]", "127.0.0.1", "[smtp] listen"),
        ("localhost", "[::1]", "[smtp] listen"),
        ("127.0.0.1", "0.0.0.0", "[smtp] listen"),
    ],
)
def test_check_config_refuses_a_relay_that_is_the_gateway_itself(
    tmp_path: Path, listen: str, to: str, key: str
) -> None:
    # Every bounce, notice and answer went into the gateway's own relay port instead of out.
    port = free_port()
    config = config_file(tmp_path, (LISTEN, f'listen = "{listen}:{port}"'), relay(f"{to}:{port}"))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert f'[mail] relay: "{to}:{port}" is the gateway\'s own {key} ("{listen}:{port}")' in res.stderr


def test_run_refuses_a_relay_at_its_own_submission_port(tmp_path: Path) -> None:
    port = free_port()
    config = config_file(
        tmp_path, (SUBMISSION, f'submission_listen = "127.0.0.1:{port}"'), relay(f"localhost:{port}")
    )
    res = smsgw("--config", str(config), "run")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert "[mail] relay: " in res.stderr and "own [smtp] submission_listen" in res.stderr


@pytest.mark.parametrize(
    ("section", "address"),
    [
        ("replies", "ops@sms.example.com"),
        ("premium", "48601123456@SMS.Example.com"),
        ("replies", "x@sms2.example"),
    ],
)
def test_check_config_and_run_refuse_a_fallback_address_on_the_gateways_domains(
    tmp_path: Path, section: str, address: str
) -> None:
    # A forward to it came back through the relay port: a bounce again, or an SMS to the number.
    extra = f'\n[{section}]\nfallback_address = "{address}"\n'
    config = config_file(
        tmp_path,
        ('domains = ["sms.example.com"]', 'domains = ["sms.example.com", "sms2.example"]'),
        extra=extra,
    )
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert f'[{section}] fallback_address: "{address}" would loop' in res.stderr, res.stderr


def test_a_fallback_at_the_gateways_host_name_is_refused_when_it_takes_port_25(tmp_path: Path) -> None:
    extra = '\n[replies]\nfallback_address = "root@gw.example"\n'
    named = ('domains = ["sms.example.com"]', 'domains = ["sms.example.com"]\nhostname = "gw.example"')
    config = config_file(tmp_path, named, (LISTEN, 'listen = "0.0.0.0:25"'), extra=extra)
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "gw.example is [gateway] hostname" in res.stderr, res.stderr
    # On port 2525 the host's own mail server (port 25) takes that mail: no loop.
    config = config_file(tmp_path, named, (LISTEN, 'listen = "0.0.0.0:2525"'), extra=extra)
    assert smsgw("--config", str(config), "check-config").returncode == 0


def test_relays_and_fallbacks_that_leave_the_gateway_pass(tmp_path: Path) -> None:
    port = free_port()
    fine: list[Callable[[], Path]] = [
        lambda: config_file(tmp_path, (LISTEN, f'listen = "127.0.0.1:{port}"'), relay(f"127.0.0.2:{port}")),
        lambda: config_file(tmp_path, (LISTEN, f'listen = "127.0.0.1:{port}"'), relay(f"[::1]:{port}")),
        lambda: config_file(tmp_path, (LISTEN, 'listen = "0.0.0.0:25"'), relay("mail.example.com:25")),
        lambda: config_file(tmp_path, extra='\n[replies]\nfallback_address = "ops@example.com"\n'),
        lambda: write(tmp_path, SHIPPED),  # the shipped config: its relay is a maildir
    ]
    for written in fine:
        config = written()  # each over the last: one config.toml
        res = smsgw("--config", str(config), "check-config")
        assert res.returncode == 0, (config.read_text(), res.stderr)


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
