"""CSV exports at once, and where their text is made (gateway/web/csvexport.py).

Each 1,000-row batch was turned into CSV on the event loop (about 5 ms a batch), and nothing bounded
how many exports ran: four side by side by one admin took the operator's dashboard from 40 ms to
200 ms and the submission port's EHLO to 100 ms. Now the text is made on the reader's thread, in the
call that reads the batch, and a third export while two run is answered 503 with Retry-After. The
file itself stays byte for byte what it was. The limit through the real server and real sockets (an
answer held open needs a client that stops reading); the file through the app's ASGI client.
"""

from __future__ import annotations

import asyncio
import csv
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from gateway.store.db import Store
from gateway.web import messages
from gateway.web.app import WebContext
from gateway.web.gate import ConnectionLimits
from tests.test_web_limits import LOOPS, log_in, panel
from tests.test_web_slow_download import seed_export
from tests.web_helpers import ADMIN, OPERATOR, as_user, panel_store, web_context

AT = 1_780_000_000.0  # 2026-05-28 22:26:40 in Warsaw
ROWS = [  # account, sender, number, state, parts, reason
    ("acme", "łucja@acme.example", "+48601000009", "delivered", 1, None),
    ("acme", "=cmd|'/C calc'!A0@acme.example", "+48601000008", "failed", 2, "the link said no"),
    ("rival", "boss@rival.example", "+420601000007", "queued", 1, None),
    ("acme", "anna@acme.example", "+48601000006", "failed", 1, "=HYPERLINK(x)"),
    ("acme", "anna@acme.example", "+48601000005", "expired", 3, None),
    ("acme", 'cytat "w" ; środku@acme.example', "+48601000004", "cancelled", 1, "a, b; c"),
]


def seed(store: Store) -> None:
    """`ROWS`, a minute apart, as messages of their accounts, written straight to the tables."""
    conn = store.db.conn
    with store.db.transaction():
        for i, (account, sender, number, state, parts, reason) in enumerate(ROWS):
            acc = store.accounts.get_account(account)
            at = AT + 60 * i
            email = conn.execute(
                "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?, ?, 't', ?)",
                (acc.id, sender, at),
            ).lastrowid
            conn.execute(
                "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
                " state, created_at, expires_at, reason)"
                " VALUES (?, ?, ?, '+48100200300', 't', 0, ?, ?, ?, ?, ?)",
                (email, acc.id, number, parts, state, at, at + 3600, reason),
            )


# The file as the export wrote it before its text moved to the reader's thread, newest first (the
# panel store's own two messages are of today, outside `DAY`).
WHOLE = (
    "\ufeffid,created,account,from,recipient,state,parts,reason\r\n"
    '8,2026-05-28T22:31:40+02:00,acme,"cytat ""w"" ; środku@acme.example",+48601000004,cancelled,1,'
    '"a, b; c"\r\n'
    "7,2026-05-28T22:30:40+02:00,acme,anna@acme.example,+48601000005,expired,3,\r\n"
    "6,2026-05-28T22:29:40+02:00,acme,anna@acme.example,+48601000006,failed,1,'=HYPERLINK(x)\r\n"
    "5,2026-05-28T22:28:40+02:00,rival,boss@rival.example,+420601000007,queued,1,\r\n"
    "4,2026-05-28T22:27:40+02:00,acme,'=cmd|'/C calc'!A0@acme.example,+48601000008,failed,2,"
    "the link said no\r\n"
    "3,2026-05-28T22:26:40+02:00,acme,łucja@acme.example,+48601000009,delivered,1,\r\n"
)
DAY = "from=2026-05-28&to=2026-05-28"
CUT = "# cut at 4 rows: narrow the search (dates or state or number) for the rest\r\n"


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    await store.write(lambda: seed(store))
    web = web_context(tmp_path, store)
    try:
        yield web
    finally:
        web.counts.close()
        store.close()


async def test_the_file_is_byte_for_byte_what_it_was(
    web: WebContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = WHOLE.splitlines(keepends=True)
    # Batches of 4 (a short last one ends it), of 2 (a last one found empty), and a cut file.
    for batch, most, expected in ((4, 100, WHOLE), (2, 100, WHOLE), (2, 4, "".join(lines[:5]) + CUT)):
        monkeypatch.setattr(messages, "CSV_BATCH", batch)
        monkeypatch.setattr(messages, "CSV_MAX", most)
        async with as_user(web, OPERATOR) as c:
            r = await c.get(f"/messages.csv?{DAY}")
        assert r.status_code == 200 and r.content == expected.encode("utf-8"), (batch, most)
    # Semicolons for a Polish office, the same rows.
    polish = web.config.gateway.model_copy(update={"language": "pl"})
    web.config = web.config.model_copy(update={"gateway": polish})
    async with as_user(web, ADMIN) as c:
        body = (await c.get(f"/messages.csv?{DAY}&state=failed")).content
    failed = (
        "\ufeffid;created;account;from;recipient;state;parts;reason\r\n"
        "6;2026-05-28T22:29:40+02:00;acme;anna@acme.example;+48601000006;failed;1;'=HYPERLINK(x)\r\n"
        "4;2026-05-28T22:27:40+02:00;acme;'=cmd|'/C calc'!A0@acme.example;+48601000008;failed;2;"
        "the link said no\r\n"
    )
    assert body == failed.encode()


async def test_the_csv_text_is_made_on_the_readers_thread(
    web: WebContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every row written as CSV is written on the reader's thread (named "metrics"), none on the loop's.
    threads: list[str] = []
    writer = csv.writer

    class Watched:
        def __init__(self, out: Any, **kwargs: Any) -> None:
            self._writer = writer(out, **kwargs)

        def writerow(self, row: Any) -> Any:
            threads.append(threading.current_thread().name)
            return self._writer.writerow(row)

    monkeypatch.setattr(csv, "writer", Watched)
    monkeypatch.setattr(messages, "CSV_BATCH", 2)
    async with as_user(web, OPERATOR) as c:
        r = await c.get(f"/messages.csv?{DAY}")
    assert r.status_code == 200 and r.text.count("\r\n") == 1 + len(ROWS)
    assert len(threads) >= len(ROWS) and all(name.startswith("metrics") for name in threads), threads


EXPORT = b"GET /messages.csv?number=601000055 HTTP/1.1\r\nHost: panel\r\nCookie: %s\r\n\r\n"


def start_export(port: int, cookie: str, source: str) -> tuple[socket.socket, bytes]:
    """An export asked for by a client that reads its answer's head and then stops reading: with a
    small receive window, the panel cannot finish sending five megabytes, and the export runs on."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(EXPORT % cookie.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1024)
        assert chunk, head
        head += chunk
    return s, head


def whole_answer(port: int, cookie: str, source: str) -> bytes:
    """An export read to its end."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    try:  # HTTP/1.0: not chunked, and closed at its end
        s.sendall(EXPORT.replace(b"HTTP/1.1", b"HTTP/1.0") % cookie.encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer
    finally:
        s.close()


@pytest.mark.parametrize("run", LOOPS, ids=["asyncio", "uvloop"])  # uvloop: the daemon's loop
def test_a_third_export_at_once_is_refused_until_one_ends(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(exports_at_once(tmp_path))


async def exports_at_once(tmp_path: Path) -> None:
    limits = ConnectionLimits(total=8, per_address=3, request_seconds=60)  # no deadline meanwhile
    async with panel(tmp_path, "", limits) as (server, port):
        store = server.web.store
        for _ in range(5):  # 5,000 rows of a kilobyte each
            await store.write(lambda: seed_export(store))
        response = await asyncio.to_thread(log_in, f"http://127.0.0.1:{port}")
        cookie = "; ".join(f"{k}={v}" for k, v in response.cookies.items())
        held = []
        try:
            for source in ("127.0.0.2", "127.0.0.3"):
                s, head = await asyncio.to_thread(start_export, port, cookie, source)
                held.append(s)
                assert head.startswith(b"HTTP/1.1 200 "), head
            busy = await asyncio.to_thread(whole_answer, port, cookie, "127.0.0.4")
            head, _, page = busy.partition(b"\r\n\r\n")
            assert head.split(b" ")[1] == b"503", head
            assert b"\r\nretry-after: 30\r\n" in head.lower() + b"\r\n"
            assert b"2 CSV exports are being made right now, the most the panel makes at once" in page
            assert b"try again in 30 seconds" in page  # the wait Retry-After names
            # One client hangs up: its slot comes back, and the next export is made.
            held.pop().close()
            for _ in range(500):
                if server.web.exports.running < 2:
                    break
                await asyncio.sleep(0.02)
            answer = await asyncio.to_thread(whole_answer, port, cookie, "127.0.0.4")
            assert answer.split(b" ")[1] == b"200" and answer.count(b"rrrrrrrrrr\r\n") == 5000
        finally:
            for s in held:
                s.close()
        for _ in range(500):
            if server.web.exports.running == 0:
                break
            await asyncio.sleep(0.02)
        assert server.web.exports.running == 0  # every slot given back
