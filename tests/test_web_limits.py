"""The panel within limits: its connections (how many, how slow) and what its pages cost the daemon.

Connections go through the real server (uvicorn with the panel's protocol, bound to 127.0.0.1) on
asyncio's loop and on uvloop's (the daemon's), with raw sockets for the slow clients: a client
that holds a connection without finishing its request must not hold it for long, and enough of
them must not use up the daemon's descriptors. The pages' queries are checked on a fresh store,
as installations have it: the store never runs ANALYZE, so SQLite plans without statistics.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from structlog.testing import capture_logs

from gateway.web.app import WebContext
from gateway.web.gate import ConnectionLimits
from gateway.web.server import WebServer
from tests.certs import make_cert_pair
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    OTHER_ADMIN,
    PASSWORD,
    add_mail,
    as_user,
    csrf_of,
    panel_store,
    web_context,
)
from tests.web_helpers import web as web  # the fixture

LIMITS = ConnectionLimits(total=8, per_address=3, request_seconds=1.5)
HALF_A_POST = (
    b"POST /login HTTP/1.1\r\nHost: panel\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\ncsrf="
)
HALF_A_HEAD = b"GET / HTTP/1.1\r\nHost: panel\r\n"
CLIENT_HELLO_START = b"\x16\x03\x01\x00\xc8\x01\x00"  # a TLS record of 200 bytes, its first 2
LOOPS: list[Callable[[Coroutine[Any, Any, None]], None]] = [asyncio.run, uvloop.run]


@asynccontextmanager
async def panel(
    tmp_path: Path, extra: str = "", limits: ConnectionLimits = LIMITS
) -> AsyncIterator[tuple[WebServer, int]]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n' + extra)
    server = WebServer(web, limits)
    port = await server.start()
    try:
        yield server, port
    finally:
        await server.stop()
        web.counts.close()
        store.close()


def dial(port: int, source: str, data: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    if data:
        s.sendall(data)
    return s


def seconds_until_closed(s: socket.socket, since: float | None = None) -> float:
    """Blocks until the server closes the connection (EOF or reset): the seconds from `since` (or
    from now). 10 s at most: then the socket's timeout raises, and the test fails naming it."""
    start = time.monotonic() if since is None else since
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    finally:
        s.close()
    return time.monotonic() - start


def open_now(s: socket.socket) -> bool:
    """Still open: nothing to read and no EOF."""
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def log_in(base: str, verify: Any = True, pages: int = 0) -> httpx.Response:
    """The admin's login; then `pages` pages on the same connection, spread over more than the
    deadline: each answer gives the next request on the connection its own time."""
    with httpx.Client(base_url=base, verify=verify) as c:
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": token})
        assert r.status_code == 303, r.text
        for _ in range(pages):
            time.sleep(LIMITS.request_seconds * 0.6)
            assert c.get("/").status_code == 200
        return r


async def released(server: WebServer) -> None:
    """Every connection let go, once the server has heard the last client's close."""
    for _ in range(100):
        if not server.gate.open:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still counted: {list(server.gate.open.values())}")


def bites(logs: list[dict[str, Any]]) -> set[str]:
    return {e["limit"] for e in logs if e["event"] == "web.limit_hit"}


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_slow_clients_are_closed_after_the_deadline_and_an_admin_still_logs_in(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # 4,066 sockets with half a POST each held every descriptor of the daemon for as long as they
    # liked, and SMTP intake stopped. Now one address holds `per_address` at most (the next is
    # closed at once) and none of them longer than the deadline.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):

                def clients() -> tuple[float, list[bool], int, list[float]]:
                    opened = time.monotonic()
                    held = [dial(port, "127.0.0.2", data) for data in (HALF_A_POST, HALF_A_HEAD, b"")]
                    over = seconds_until_closed(dial(port, "127.0.0.2", HALF_A_POST))
                    alive, counted = [open_now(s) for s in held], len(server.gate.open)
                    log_in(f"http://127.0.0.1:{port}")  # from another address, while they wait
                    closed = [seconds_until_closed(s, opened) for s in held]
                    log_in(f"http://127.0.0.1:{port}", pages=3)
                    return over, alive, counted, closed

                over, alive, counted, closed = await asyncio.to_thread(clients)
                await released(server)
        assert over < LIMITS.request_seconds / 2, over
        assert alive == [True, True, True] and counted == LIMITS.per_address, (alive, counted)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        assert {"per_address", "request_time"} <= bites(logs)

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_slow_clients_from_many_addresses_stay_under_the_total_and_make_room(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # One each from more addresses than the total: the panel holds the total at most, the oldest
    # waiting one making room for a newcomer, so that an admin still gets in.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):

                def clients() -> tuple[int, list[bool]]:
                    held = []
                    for i in range(LIMITS.total + 4):
                        held.append(dial(port, f"127.0.0.{10 + i}", HALF_A_POST))
                        # Its bytes read before the next comes: a connection not heard from yet goes
                        # first (a browser's spare one), whatever its age.
                        time.sleep(0.03)
                    time.sleep(0.2)
                    counted = len(server.gate.open)
                    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
                        token = csrf_of(c.get("/login").text)
                        r = c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": token})
                        assert r.status_code == 303, r.text
                    alive = [open_now(s) for s in held]
                    for s in held:
                        seconds_until_closed(s)
                    return counted, alive

                counted, alive = await asyncio.to_thread(clients)
        assert counted == LIMITS.total
        assert alive[:4] == [False] * 4  # the oldest made room
        assert "connections" in bites(logs)
        made_room = [e for e in logs if e.get("limit") == "connections"]
        assert made_room[0]["made_room"] is True

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_tls_handshake_that_never_comes_is_counted_and_timed(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Under uvicorn's own TLS a connection that never sent its ClientHello was not the panel's to
    # count until the handshake ended (asyncio's default: 60 s): a flood of them was uncounted.
    cert, key = make_cert_pair(tmp_path / "tls")
    extra = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'

    async def body() -> None:
        async with panel(tmp_path, extra) as (server, port):

            def clients() -> tuple[float, list[bool], list[float]]:
                opened = time.monotonic()
                held = [dial(port, "127.0.0.2") for _ in range(LIMITS.per_address)]
                over = seconds_until_closed(dial(port, "127.0.0.2"))
                alive = [open_now(s) for s in held]
                log_in(f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=str(cert)))
                return over, alive, [seconds_until_closed(s, opened) for s in held]

            over, alive, closed = await asyncio.to_thread(clients)
            await released(server)
        assert over < LIMITS.request_seconds / 2, over
        assert alive == [True] * LIMITS.per_address
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed

    run(body())


# ---- what a page costs: the account's opt-outs and searches -------------------------------------


@contextmanager
def statements(web: WebContext) -> Iterator[list[str]]:
    """The SQL run on the loop's connection and on the panel's reader (its thread's own)."""
    seen: list[str] = []
    conn = web.store.db.conn
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


async def trace_reader(web: WebContext, on: bool, seen: list[str]) -> None:
    await web.counts.run(lambda conn: conn.set_trace_callback(seen.append if on else None))


def plan(web: WebContext, sql: str) -> str:
    return " | ".join(str(r[3]) for r in web.store.db.conn.execute("EXPLAIN QUERY PLAN " + sql))


async def page_plans(
    web: WebContext, email: str, requests: list[tuple[str, str, dict[str, str]]]
) -> list[str]:
    """Each statement about messages that the pages ran, wherever they ran it, with its plan."""
    with statements(web) as seen:
        await trace_reader(web, True, seen)
        try:
            async with as_user(web, email) as c:
                for method, path, data in requests:
                    if method == "GET":
                        assert (await c.get(path)).status_code == 200, path
                    else:
                        data = {**data, "csrf": csrf_of((await c.get("/account")).text)}
                        await c.post(path, data=data)
        finally:
            await trace_reader(web, False, seen)
    return [f"{sql}\n  -> {plan(web, sql)}" for sql in seen if "FROM messages" in sql and "SELECT" in sql]


def test_the_store_has_no_statistics() -> None:
    """What the plan tests below assume: a store as the daemon makes it (it never runs ANALYZE)."""
    import tempfile

    from gateway.store.db import Store

    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "fresh.db")
        try:
            found = store.db.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")
            assert found.fetchall() == []
        finally:
            store.close()


async def test_account_opt_outs_are_found_by_the_recipient_index(web: WebContext) -> None:
    # Each opt-out on a company admin's page looked for the account's SMS to its number through
    # messages_billing (account_id, ...): every message of the account, once per opt-out (11 s at
    # 100k messages and 3,000 opt-outs, the whole daemon stopped). So did the check before an add.
    store = web.store
    await store.write(lambda: add_mail(store, "acme", ADMIN, "+48601555666", "hello"))
    await store.write(lambda: store.policy.add_optout("+48601555666", word="STOP", source="mo"))
    plans = await page_plans(
        web,
        ADMIN,
        [("GET", "/account", {}), ("POST", "/optouts", {"action": "add", "number": "+48601555667"})],
    )
    optouts = [p for p in plans if "optouts" in p]
    adds = [p for p in plans if "optouts" not in p and "recipient = '+48601555667'" in p]
    assert optouts and adds, plans
    for p in optouts + adds:
        assert "USING INDEX messages_recipient_id (recipient=?)" in p, p
        assert "messages_billing" not in p and "messages_account" not in p, p


async def test_an_accounts_searches_and_dashboard_use_the_narrowest_index(web: WebContext) -> None:
    # A company admin's dashboard (held and expired) and searches by number or user walked the
    # account's index, filtering every message the account had; the operator's took the narrow one.
    requests = [
        ("GET", "/", {}),
        ("GET", "/messages?number=%2B48601000001", {}),
        ("GET", "/messages?user=nobody%40acme.example", {}),
        ("GET", "/messages?state=failed", {}),
    ]
    plans = await page_plans(web, ADMIN, requests)
    expected = {
        "m.state = 'hold'": "messages_state (state=?)",
        "m.state = 'expired'": "messages_state (state=?)",
        "m.state = 'failed'": "messages_state (state=?)",
        "m.recipient = '+48601000001'": "messages_recipient_id (recipient=?)",
        "mail_from = 'nobody@acme.example'": "emails_sender (mail_from=?)",
    }
    for clause, index in expected.items():
        [found] = [p for p in plans if clause in p]
        assert index in found, found
        assert "account_id = " in found.split("->")[0], found  # still the account's only
    # A search by nothing narrower than the account: the account's own index, newest first.
    [whole] = await page_plans(web, ADMIN, [("GET", "/messages", {})])
    assert "messages_account (account_id=?)" in whole, whole


async def test_a_search_by_user_and_state_is_driven_by_the_users_mails(web: WebContext) -> None:
    # Given a state too, SQLite drove the search by messages_state and tried each message's sender:
    # for a user with no such message, every message ever delivered (1-3 s on a year of traffic).
    for email in (OPERATOR, ADMIN):
        plans = await page_plans(
            web, email, [("GET", "/messages?user=nobody%40acme.example&state=delivered", {})]
        )
        [found] = [p for p in plans if "mail_from = 'nobody@acme.example'" in p]
        assert "emails_sender (mail_from=?)" in found, found
        assert "messages_state" not in found.split("->")[1], found
        assert "m.state = 'delivered'" in found.split("->")[0], found  # still only that state


async def test_the_account_page_lists_opt_outs_a_page_at_a_time_off_the_loop(web: WebContext) -> None:
    # The operator's page listed all 3,000 opt-outs (1.5 MB of HTML), read on the loop.
    store = web.store
    numbers = [f"+48601{n:06d}" for n in range(250)]

    def seed() -> None:
        for n in numbers:
            store.policy.add_optout(n, word="STOP", source="mo")

    await store.write(seed)
    async with as_user(web, OPERATOR) as c:
        shown: list[str] = []
        path = "/account"
        with statements(web) as on_loop:
            while path:
                page = (await c.get(path)).text
                table = re.search(r'<table id="optouts">.*?</table>', page, re.S)
                assert table is not None
                rows = re.findall(r"<tr><td>(\+\d+)</td>", table.group(0))
                assert len(rows) <= 100
                shown += rows
                older = re.search(r'href="([^"]*)" id="optouts-older"', page)
                path = older.group(1).replace("&amp;", "&") if older else ""
        assert not [sql for sql in on_loop if "FROM optouts" in sql], on_loop
        # The newest first, each once, the one listed before (rival's customer) among them.
        assert shown == [*sorted(numbers, reverse=True), "+48602000002"]
        found = (await c.get("/account", params={"optout": "601 000 123"})).text
        table = re.search(r'<table id="optouts">.*?</table>', found, re.S)
        assert table and re.findall(r"<tr><td>(\+\d+)</td>", table.group(0)) == ["+48601000123"]
        r = await c.get("/account", params={"optouts_before": "x"})
        assert r.status_code == 400 and "is not a position in the opt-out list" in r.text
    async with as_user(web, OTHER_ADMIN) as c:  # an admin's pages hold their account's only
        page = (await c.get("/account")).text
        assert "+48601000123" not in page and "+48602000002" in page


# ---- a connection that never sent a byte is no slow client -------------------------------------


def quiet_and_bitten(logs: list[dict[str, Any]], quiet: list[str]) -> tuple[list[str], set[str]]:
    """What was said above DEBUG of the `quiet` addresses, and the addresses `request_time` named."""
    loud = [
        f"{e['event']} {e.get('limit', '')}"
        for e in logs
        if e.get("address") in quiet and e.get("log_level") != "debug"
    ]
    return loud, {e["address"] for e in logs if e.get("limit") == "request_time"}


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_a_spare_connection_is_closed_quietly_and_a_stalled_request_is_logged(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # Browsers open a spare connection and never send on it: closed at the deadline, it was logged
    # as a slow client (`web.limit_hit request_time`), as was a keep-alive connection after its
    # answer. One that sent part of its request and stalled is still a limit hit.
    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path) as (server, port):

                def clients() -> list[float]:
                    opened = time.monotonic()
                    spare = dial(port, "127.0.0.5")
                    answered = dial(port, "127.0.0.6", b"GET /login HTTP/1.1\r\nHost: panel\r\n\r\n")
                    stalled = dial(port, "127.0.0.7", HALF_A_HEAD)
                    return [seconds_until_closed(s, opened) for s in (spare, answered, stalled)]

                closed = await asyncio.to_thread(clients)
                await released(server)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        loud, bitten = quiet_and_bitten(logs, ["127.0.0.5", "127.0.0.6"])
        assert loud == [] and bitten == {"127.0.0.7"}, (loud, bitten)

    run(body())


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])
def test_on_tls_a_preconnection_is_closed_quietly_and_a_stalled_handshake_is_logged(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    # A browser's spare HTTPS connection has its handshake done and sends nothing after it; one that
    # sends nothing at all is no slow client either. Part of a ClientHello, then nothing, is.
    cert, key = make_cert_pair(tmp_path / "tls")
    extra = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
    trusted = ssl.create_default_context(cafile=str(cert))

    async def body() -> None:
        with capture_logs() as logs:
            async with panel(tmp_path, extra) as (server, port):

                def clients() -> list[float]:
                    opened = time.monotonic()
                    silent = dial(port, "127.0.0.5")
                    spare = trusted.wrap_socket(dial(port, "127.0.0.6"), server_hostname="127.0.0.1")
                    stalled = dial(port, "127.0.0.7", CLIENT_HELLO_START)
                    return [seconds_until_closed(s, opened) for s in (silent, spare, stalled)]

                closed = await asyncio.to_thread(clients)
                await released(server)
        assert all(LIMITS.request_seconds * 0.9 < c < LIMITS.request_seconds * 3 for c in closed), closed
        loud, bitten = quiet_and_bitten(logs, ["127.0.0.5", "127.0.0.6"])
        assert loud == [] and bitten == {"127.0.0.7"}, (loud, bitten)

    run(body())
