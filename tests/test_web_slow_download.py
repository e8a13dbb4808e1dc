"""A panel answer the kernel holds while its client reads it slowly, and the kernel's view of a
connection the panel has just closed.

Once the panel has written a whole answer (a CSV export of a megabyte) the kernel holds most of it,
and the gate sees a connection waiting for its next request: at the cap it may close it, and its
deadline does. That is the cheapest connection to close (gateway/web/connections.py relies on it
when it spares only a browser between two requests, `PanelConnection.in_use`): the kernel goes on
sending what it holds after the close, and the client, however slow, gets every byte. Real sockets
against the real server on uvloop's loop (the daemon's; the kernel's part does not depend on the
loop, and the slow read takes ten seconds); the helpers are tests/test_web_limits.py's.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path

import uvloop

from gateway.store.db import Store
from gateway.web import tcpinfo
from gateway.web.connections import PanelConnection
from gateway.web.gate import ConnectionLimits
from tests.test_web_limits import LIMITS, dial, log_in, panel
from tests.test_web_stalled import next_page, tls_extra

ROWS = 1000
REASON = "r" * 1000  # a long reason per row: a megabyte of CSV from a thousand rows
EXPORT = b"GET /messages.csv?number=601000055 HTTP/1.1\r\nHost: panel\r\nCookie: %s\r\n\r\n"
END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked answer


def seed_export(store: Store) -> None:
    """`ROWS` failed messages to +48601000055 for acme, in one transaction (add_mail takes one each)."""
    conn, now = store.db.conn, store.clock()
    acc = store.accounts.get_account("acme")
    with store.db.transaction():
        email = conn.execute(
            "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?, ?, 't', ?)",
            (acc.id, "anna@acme.example", now),
        ).lastrowid
        conn.executemany(
            "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
            " state, created_at, expires_at, reason)"
            " VALUES (?, ?, '+48601000055', '+48100200300', 't', 0, 1, 'failed', ?, ?, ?)",
            [(email, acc.id, now, now + 3600, REASON)] * ROWS,
        )


def download_slowly(port: int, cookie: str, rate: int) -> tuple[bytes, str]:
    """The export through a small receive window, read at about `rate` bytes a second: (what came,
    how it ended)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", port))
    s.sendall(EXPORT % cookie.encode())
    answer = b""
    try:
        while not answer.endswith(END):
            chunk = s.recv(4096)
            if not chunk:
                return answer, "closed"
            answer += chunk
            time.sleep(len(chunk) / rate)
    except OSError as exc:
        return answer, repr(exc)
    finally:
        s.close()
    return answer, "whole"


def test_a_slow_download_closed_at_the_cap_still_arrives_whole(tmp_path: Path) -> None:
    # The export read at 100 KB/s: the panel has written it in a fraction of a second, the kernel
    # holds it, and the client reads it for several deadlines more. Connections from elsewhere at
    # the cap close it meanwhile (it counts as waiting for its next request), or its deadline does;
    # nothing is cut.
    limits = ConnectionLimits(total=4, per_address=3, request_seconds=LIMITS.request_seconds)

    async def body() -> None:
        async with panel(tmp_path, "", limits) as (server, port):
            store = server.web.store
            await store.write(lambda: seed_export(store))
            cookie = "; ".join(
                f"{k}={v}"
                for k, v in (await asyncio.to_thread(log_in, f"http://127.0.0.1:{port}")).cookies.items()
            )
            while server.gate.open:  # the login's connection gone
                await asyncio.sleep(0.01)
            started = time.monotonic()
            reading = asyncio.create_task(asyncio.to_thread(download_slowly, port, cookie, 100_000))
            while not server.gate.open:
                await asyncio.sleep(0.01)
            (download,) = server.gate.open
            while download.cycle is None or not download.cycle.response_complete:  # the panel's part done
                await asyncio.sleep(0.05)
            written = time.monotonic() - started
            await asyncio.sleep(0.5)
            silent = [await asyncio.to_thread(dial, port, f"127.0.1.{i + 1}") for i in range(limits.total)]
            try:
                await asyncio.sleep(0.2)
                released = download not in server.gate.open
                answer, ending = await reading
            finally:
                for s in silent:
                    s.close()
        took = time.monotonic() - started
        assert ending == "whole", f"{ending} after {len(answer)} bytes, {took:.1f} s"
        assert answer.count(REASON.encode()) == ROWS
        # The premise: the gate let go of it, and the client went on reading for several deadlines.
        assert released
        assert took - written > 3 * limits.request_seconds, (written, took)

    uvloop.run(body())


def test_the_kernels_view_of_a_socket_uvloop_has_just_closed_is_none(tmp_path: Path) -> None:
    # On TLS under uvloop the descriptor is closed (-1) a loop iteration before the panel's
    # connection hears of its loss (asyncio's TLS layer passes it on with call_soon), and the gate
    # still counts it meanwhile: a newcomer at a cap asked the kernel about it and got a ValueError
    # in its connection_made, which refused it.
    extra, tls = tls_extra(tmp_path)

    async def body() -> None:
        async with panel(tmp_path, extra) as (server, port):

            def keep_alive() -> ssl.SSLSocket:
                s = tls.wrap_socket(dial(port, "127.0.0.2"), server_hostname="127.0.0.1")
                assert next_page(s) == "ok"  # answered, waiting for the next request
                return s

            s = await asyncio.to_thread(keep_alive)
            try:
                (conn,) = server.gate.open
                assert isinstance(conn, PanelConnection)
                conn.abort()
                await asyncio.sleep(0)  # the socket's loss, then this; the panel's hears of it next
                counted = conn in server.gate.open
                views = (
                    tcpinfo.quiet_ms(conn._socket()),
                    tcpinfo.unsent_bytes(conn._socket()),
                    tcpinfo.bytes_acked(conn._socket()),
                    conn.idle_for(1.0),
                    conn.in_use(1.0),
                )
            finally:
                s.close()
        assert counted  # the window
        assert views == (None, None, None, False, False)

    uvloop.run(body())
