"""Who gives up a number when the reply pool has run out for a phone, and what the tools say of an
account's sender while a pool sends (R-3.2).

Only the newest conversation on a (phone, number) holds the number: an answer on it goes to that
conversation's user. The older ones were displaced already; counted as holders, the oldest of them
gave "its" number up again and again, so each new user took the number the previous one had just
been given (their answers of a second ago went to the next user) while the holders of the other
numbers were never moved. A displaced conversation listed as "open, shared" seemed to await answers
it no longer gets. With a pool, an account's number `--sender` is not what its SMS go out from:
`account set`, `account show` and `check-config` say so.

A real daemon with its SMPP simulator, real SMTP in and a real relay sink out, MOs injected through
the simulator's control port, and the CLI as a process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from smsc.simulator.control import send_command
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answers_context import OPS, PHONE, answers_config, texted
from tests.test_pool_exhausted import listed_states
from tests.test_process import smsgw
from tests.test_two_way import parsed

POOL = ("+48500100200", "+48500100201")
REPLIES = f'pool = ["{POOL[0]}", "{POOL[1]}"]\nfallback_address = "{OPS}"'
B0, B1, B2, B3 = (f"b{i}@beta.example" for i in range(4))
BETA = (
    f'\n[[account]]\nname = "beta"\nrelay_networks = ["127.0.0.0/8"]\n'
    f'users = ["{B0}", "{B1}", "{B2}", "{B3}"]\n'
)
DISPLACED = (
    "displaced: a newer SMS from this number takes its answers"
    " (to that SMS's sender, to the fallback address once its window has passed)"
)


def displaced_users(logs: list[dict[str, object]]) -> list[object]:
    return [e["displaced_user"] for e in logs if e["event"] == "conversation.displaced"]


async def answer(gw: object, number: str, text: str) -> None:
    port = gw.daemon.simulator.control_port  # type: ignore[attr-defined]
    command = {"op": "mo", "source": PHONE, "destination": number, "text": text}
    assert (await send_command("127.0.0.1", port, command))["ok"]


async def test_the_holder_with_the_oldest_sms_gives_up_its_number_not_the_newest(tmp_path: Path) -> None:
    # b2 took b0's number; then b3 took it AGAIN (b0, displaced already, counted as its holder and
    # was the oldest): b2's answers of a moment ago went to b3, and b1 kept its number throughout.
    relay = free_port()
    cfg = answers_config(tmp_path, relay, REPLIES, BETA)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        to_b0 = await texted(gw, "Oferta 0", B0)
        to_b1 = await texted(gw, "Oferta 1", B1)
        assert {to_b0, to_b1} == set(POOL)
        with capture_logs() as logs:
            assert await texted(gw, "Oferta 2", B2) == to_b0  # the pool ran out: the oldest gives it up
            assert await texted(gw, "Oferta 3", B3) == to_b1  # b1's is the oldest SMS on a number now
            assert await texted(gw, "Oferta 2 again", B2) == to_b0  # b2 keeps the number it took
        assert displaced_users(logs) == [B0, B1]

        listing = await asyncio.to_thread(smsgw, tmp_path / "config.toml", "conversation", "list")
        assert listing.returncode == 0, listing.stderr
        assert listed_states(listing.stdout) == {B0: DISPLACED, B1: DISPLACED, B2: "open", B3: "open"}

        await answer(gw, to_b0, "Dla b2")
        await sink.wait(1)
        await answer(gw, to_b1, "Dla b3")
        await sink.wait(2)
        got = {
            parsed(raw).get_body(("plain",)).get_content().splitlines()[0]: rcpts
            for _, rcpts, raw in sink.messages
        }
        assert got == {"Dla b2": [B2], "Dla b3": [B3]}


async def test_a_conversation_a_colleague_displaced_is_listed_displaced_not_shared(tmp_path: Path) -> None:
    # One number: Beta's b0 took it from ACME's staff (shared by two companies now), then b1 of Beta
    # took it from b0. b0 no longer gets any answer (b1's SMS is newer), yet was listed "open, shared
    # with another account's conversation", as if an answer might be meant for it.
    relay = free_port()
    replies = f'pool = ["{POOL[0]}"]\nfallback_address = "{OPS}"'
    cfg = answers_config(tmp_path, relay, replies, BETA)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        for user in (STAFF, B0, B1):
            assert await texted(gw, f"Oferta {user}", user) == POOL[0]
        listing = await asyncio.to_thread(smsgw, tmp_path / "config.toml", "conversation", "list")
        assert listing.returncode == 0, listing.stderr
        shared = "open, shared with another account's conversation (reply pool ran out): answers to the"
        assert listed_states(listing.stdout) == {
            STAFF: f"{shared} fallback address",
            B0: DISPLACED,
            B1: f"{shared} fallback address",
        }
        await answer(gw, POOL[0], "Tak")  # to ACME's SMS or to Beta's? It cannot be told: the operator's
        await sink.wait(1)
        assert [rcpts for _, rcpts, _ in sink.messages] == [[OPS]]


async def test_with_a_pool_the_tools_say_an_accounts_sender_is_not_what_its_sms_go_from(
    tmp_path: Path,
) -> None:
    # `account set --sender` said "account acme updated", `account show` listed the sender and
    # check-config said the account "sends from" it, while every SMS went from a pool number.
    relay = free_port()
    cfg = answers_config(tmp_path, relay, REPLIES)
    path = tmp_path / "config.toml"
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        done = await asyncio.to_thread(smsgw, path, "account", "set", "acme", "--sender", "+48500200200")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "account acme updated",
            "note: [replies] pool is set: the account's SMS go out from the pool's numbers, not from"
            " +48500200200 (each conversation with a phone from its own number, so that its answers"
            " reach their user)",
        ]
        assert await texted(gw, "Oferta", STAFF) in POOL  # the pool, not +48500200200
        added = await asyncio.to_thread(smsgw, path, "account", "add", "beta2", "--sender", "+48500200201")
        assert added.returncode == 0, added.stderr
        assert (
            "note: [replies] pool is set: the account's SMS go out from the pool's numbers, not from"
            " +48500200201 (each conversation with a phone from its own number, so that its answers"
            " reach their user)" in added.stdout.splitlines()
        ), added.stdout

    unused = "not used to send while [replies] pool is set: each conversation goes from its own pool number"
    shown = smsgw(path, "account", "show", "acme")
    assert shown.returncode == 0, shown.stderr
    assert f"sender: +48500200200 ({unused})" in shown.stdout.splitlines()
    listed = smsgw(path, "account", "list")
    assert "acme: sender +48500200200 (unused: [replies] pool sends)," in listed.stdout
    checked = smsgw(path, "check-config")
    assert (
        '[[account]] "acme" names sender +48100200300, but the account has sender +48500200200,'
        f" {unused} (the block only creates a missing account)" in checked.stderr
    ), checked.stderr
    assert "sends from +48500200200" not in checked.stderr


def test_without_a_pool_an_accounts_sender_is_told_as_before(tmp_path: Path) -> None:
    from gateway.adminrules import seed_accounts
    from gateway.cli.common import open_store

    cfg_path = tmp_path / "config.toml"
    cfg = answers_config(tmp_path, free_port(), f'fallback_address = "{OPS}"')
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(cfg)
    seed_accounts(store, cfg)  # what the daemon's first start does
    store.close()
    assert smsgw(cfg_path, "account", "set", "acme", "--sender", "+48500200200").returncode == 0
    done = smsgw(cfg_path, "account", "set", "acme", "--sender", "+48500200201")
    assert "pool" not in done.stdout, done.stdout
    assert "sender: +48500200201" in smsgw(cfg_path, "account", "show", "acme").stdout.splitlines()
