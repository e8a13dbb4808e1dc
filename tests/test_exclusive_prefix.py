"""A prefix link marked `exclusive`: its numbers never leave by a default link.

Only that operator may carry them (its own SMSC, a contract, a sender ID the other operator
rewrites): with the prefix link down, its SMS went by the default link all the same, and the admin
had no way to forbid it. Now they wait for it, `status`, /healthz and `queue show` say so, and they
go by it once it is up. A real daemon against two SMPP servers over TCP; `smsgw` as a separate
process on the same files; /healthz through a real HTTP client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gateway.config import ConfigError, load_config, parse_config
from gateway.housekeeping import read_status
from gateway.routing import OTHER_NUMBERS, Router, unserved
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_web_browser import WEB

EXIT_CONFIG = 3


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


# ---- the router ----------------------------------------------------------------------------------


def test_an_exclusive_prefix_gets_no_default_links() -> None:
    r = Router([("own", ["+4860"], True), ("other", [])])
    assert r.candidates("+48601123456") == ["own"]
    assert r.candidates("+48511123456") == ["other"]  # outside the prefix: the default link as before
    assert r.serves("+48601123456")  # RCPT takes it: it waits for its link


def test_without_exclusive_a_prefix_still_falls_back_to_the_default_links() -> None:
    assert Router([("own", ["+4860"], False), ("other", [])]).candidates("+48601123456") == ["own", "other"]
    assert Router([("own", ["+4860"]), ("other", [])]).candidates("+48601123456") == ["own", "other"]


def test_an_exclusive_longer_prefix_cuts_off_the_shorter_prefixes_links() -> None:
    # "+4860" exclusive on A, "+48" plain on B: +48601… goes by A alone; +48511… by B, then the default.
    r = Router([("b", ["+48"]), ("a", ["+4860"], True), ("d", [])])
    assert r.candidates("+48601123456") == ["a"]
    assert r.candidates("+48511123456") == ["b", "d"]


def test_a_longer_plain_prefix_under_an_exclusive_one_keeps_its_link_but_no_default() -> None:
    # "+48" exclusive on A, "+4860" plain on B: B first (the admin's choice for +4860), then A, never D.
    r = Router([("a", ["+48"], True), ("b", ["+4860"]), ("d", [])])
    assert r.candidates("+48601123456") == ["b", "a"]
    assert r.candidates("+48511123456") == ["a"]
    assert r.candidates("+4915112345678") == ["d"]


def test_every_link_listing_an_exclusive_prefix_may_take_its_numbers() -> None:
    # Two binds (or two operators) of one prefix, one of them marked: both carry it, in config order.
    r = Router([("a1", ["+4860"], True), ("a2", ["+4860"]), ("d", [])])
    assert r.candidates("+48601123456") == ["a1", "a2"]


def test_an_exclusive_prefix_whose_links_are_down_is_unserved_though_a_default_link_is_up() -> None:
    routes = [("own", ["+4860"], True), ("other", [])]
    assert unserved(routes, {"other"}.__contains__) == ["+4860"]
    assert unserved([("own", ["+4860"]), ("other", [])], {"other"}.__contains__) == []
    assert unserved(routes, {"own"}.__contains__) == [OTHER_NUMBERS]


# ---- the config ----------------------------------------------------------------------------------


def test_exclusive_on_a_link_without_prefixes_is_refused_naming_the_key(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra="exclusive = true")
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="config.toml", base_dir=tmp_path)
    assert '[[smsc]] "main" exclusive: needs the link\'s prefixes' in str(err.value)
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    res = smsgw(path, "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr
    assert '[[smsc]] "main" exclusive: needs the link\'s prefixes' in res.stderr


def test_exclusive_with_prefixes_is_taken(tmp_path: Path) -> None:
    extra = 'prefixes = ["+4860"]\nexclusive = true'
    cfg = parse_config(config_text(tmp_path, smsc_port=free_port(), smsc_extra=extra), base_dir=tmp_path)
    assert cfg.smsc[0].exclusive and cfg.routes() == [("main", ["+4860"], True)]


# ---- a real daemon -------------------------------------------------------------------------------


def two_links(tmp_path: Path, port_own: int, port_default: int, exclusive: bool) -> Path:
    """The prefix link "main" (+4860), exclusive or not, and the default link "backup"; the panel on."""
    extra = 'prefixes = ["+4860"]' + ("\nexclusive = true" if exclusive else "")
    text = config_text(tmp_path, smsc_port=port_own, smsc_extra=extra, extra=WEB)
    text += smsc_link("backup", port_default, "max_per_second = 1000")
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


async def test_an_exclusive_prefix_waits_for_its_link_and_never_leaves_by_the_default(tmp_path: Path) -> None:
    port_own = free_port()  # nothing listens there yet: the prefix link is down
    async with HappySMSC() as backup:
        path = two_links(tmp_path, port_own, backup.port, exclusive=True)
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            # Accepted at RCPT (250): the number has its link, down for now.
            assert (await gw.send(mail(to("601123456"), "Only by our SMSC"))).error is None
            message_id = gw.store.db.conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
            assert (await gw.send(mail(to("511123456"), "Anyone's"))).error is None
            await backup.wait_for(1)  # the other number goes by the default link, which is up
            await asyncio.sleep(1.5)  # retries every 0.2 s: time enough to have spilled, before
            assert [s.destination[-9:] for s in backup.received] == ["511123456"]

            def backup_up() -> bool:
                status = read_status(cfg.state_dir) or {}
                return status.get("links", {}).get("backup", {}).get("state") == "active"

            await gw.until(backup_up)
            status = await asyncio.to_thread(smsgw, path, "status")
            shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(message_id))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
                health = await c.get("/healthz")
            assert "routes    no link up for +4860: their SMS wait" in status.stdout, status.stdout
            assert status.returncode == 1
            assert health.status_code == 503 and health.text == "no link is bound for +4860\n"
            assert "no link up for +48601123456 (link main " in shown.stdout, shown.stdout

            # The prefix link comes up: the SMS goes by it, still not by the default link.
            async with HappySMSC(port=port_own) as own:
                await own.wait_for(1, timeout=20)
                assert own.received[0].destination.endswith("48601123456")
                await gw.until(lambda: sorted(gw.states()) == ["delivered", "delivered"])
            assert [s.destination[-9:] for s in backup.received] == ["511123456"]


async def test_without_exclusive_the_prefix_falls_back_to_the_default_link(tmp_path: Path) -> None:
    # The old behaviour kept: a prefix link down, its numbers go by the default link.
    async with HappySMSC() as backup:
        cfg = load_config(two_links(tmp_path, free_port(), backup.port, exclusive=False))
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "Via backup"))).error is None
            await backup.wait_for(1)
            assert backup.received[0].destination.endswith("48601123456")
            await gw.until(lambda: gw.states() == ["delivered"])
