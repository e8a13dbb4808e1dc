"""Configs that `check-config` passed and the daemon then stopped on (or ran wrongly with): the
file's encoding, listeners sharing a port, bounds, addresses and names; and the helpers other test
modules import. Files the daemon reads, mail that would loop back, and the service commands' own
checks have modules of their own: test_config_checks_files.py, _loops.py, _commands.py.

Where the behaviour is the CLI's, `smsgw` runs as a real process on real files in tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from tests.conftest import config_text, free_port

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
