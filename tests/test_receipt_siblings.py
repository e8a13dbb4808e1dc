"""Two binds to one SMSC account: its receipts may come by either (gateway/configlinks.py's
`receipt_siblings`).

More binds to one operator is how a customer gets more throughput, and an SMSC sends a receipt on
any bind of the account: our simulator, like many, on the newest login. Receipts were matched only
to SMS of the link they came by, so those of the other bind's SMS stayed unmatched: the SMS waited
`submitted` for a day past its validity and a failed one was never reported to its sender.

A real SMPP SMSC (the simulator behind tests/fakes/smsc.py), the gateway in-process, a real SMTP
client and a real SMTP sink for the bounce.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.configlinks import receipt_siblings
from tests.conftest import config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_policy import to

SECOND_BIND = """
[[smsc]]
name = "second"
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "smsgw"
password = "secret"
window = 2
max_per_second = 1000
reconnect_min_seconds = 0.1
reconnect_max_seconds = 0.5
"""

NUMBERS = [f"60112345{i}" for i in range(10)]


async def test_receipts_by_the_other_bind_settle_every_sms_and_a_failure_bounces(tmp_path: Path) -> None:
    relay = free_port()
    async with HappySMSC(fail_suffixes=["9"]) as smsc, smtp_sink(relay) as sink:
        text = config_text(
            tmp_path, smsc_port=smsc.port, relay_port=relay, smsc_extra=SECOND_BIND.format(port=smsc.port)
        )
        text = text.replace("window = 10", "window = 2", 1)  # so that both binds take SMS
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await smsc.wait_until(lambda: len(smsc.sessions) == 2)
            assert (await gw.send(mail([to(n) for n in NUMBERS], "Two binds"))).error is None
            await gw.until(lambda: "submitted" not in gw.states() and "queued" not in gw.states())
            assert sorted(gw.states()) == ["delivered"] * 9 + ["failed"]
            links = gw.store.db.conn.execute("SELECT link, COUNT(*) FROM parts GROUP BY link").fetchall()
            unmatched = gw.store.db.conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()
            await sink.wait(1)
    assert len(links) == 2, links  # each bind sent some: the receipts of one came by the other
    assert unmatched == (0,)
    assert "+48601123459" in sink.messages[0][2].decode()


def test_binds_to_one_account_are_siblings_and_others_are_not() -> None:
    base = '[gateway]\ndomains = ["sms.example.com"]\n'
    link = '[[smsc]]\nname = "{}"\ntype = "{}"\nhost = "{}"\nport = {}\nsystem_id = "{}"\n'
    text = base + "".join(
        link.format(*fields)
        for fields in (
            ("a1", "smpp", "smsc.op.example", 2775, "acme"),
            ("a2", "smpp", "SMSC.op.example", 2775, "acme"),  # the same host, written otherwise
            ("other_login", "smpp", "smsc.op.example", 2775, "beta"),
            ("other_port", "smpp", "smsc.op.example", 2776, "acme"),
            ("cimd", "cimd2", "smsc.op.example", 2775, "acme"),
        )
    )
    cfg = parse_config(text, source="test")
    assert receipt_siblings(cfg.smsc) == {"a1": ("a2",), "a2": ("a1",)}


def test_binds_named_one_smsc_account_or_written_as_one_host_are_siblings() -> None:
    # Grouped by the host as written, `localhost` and `127.0.0.1` were two SMSCs; an operator whose
    # binds go to two hosts had no way to say they are one account (Kannel: smsc-admin-id).
    base = '[gateway]\ndomains = ["sms.example.com"]\n'
    link = '[[smsc]]\nname = "{}"\ntype = "smpp"\nhost = "{}"\nport = {}\nsystem_id = "acme"\n{}'
    text = base + "".join(
        link.format(*fields)
        for fields in (
            ("local1", "localhost", 2775, ""),
            ("local2", "127.0.0.1", 2775, ""),
            ("local3", "LOCALHOST.", 2775, ""),
            ("node1", "smsc1.op.example", 2775, 'smsc_account = "op"\n'),
            ("node2", "smsc2.op.example", 2776, 'smsc_account = "op"\n'),
            ("node1b", "smsc1.op.example", 2775, ""),  # a bind of node1's account, written plainly
            ("alone", "smsc3.op.example", 2775, 'smsc_account = "other"\n'),
        )
    )
    siblings = receipt_siblings(parse_config(text, source="test").smsc)
    assert siblings == {
        "local1": ("local2", "local3"),
        "local2": ("local1", "local3"),
        "local3": ("local1", "local2"),
        "node1": ("node2", "node1b"),
        "node2": ("node1", "node1b"),
        "node1b": ("node1", "node2"),
    }
