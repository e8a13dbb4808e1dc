"""The panel's HTTP server: uvicorn's `Server.serve()` as a task on the daemon's own event loop.

Run on the daemon's loop because the store belongs to it; uvicorn's signal handlers are left off
(the daemon owns SIGTERM) and its access log too (structlog events `web.*` say what matters).
Its connections are uvicorn's h11 protocol within the panel's limits (gateway/web/connections.py),
which also does the TLS handshake, so that a handshake is counted and timed like a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import socket
import sqlite3
import ssl
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from acl.passwords import hash_password
from gateway.config import Config
from gateway.filemodes import write_new_private
from gateway.linkstatus import LinkView
from gateway.peeraddr import TrustedProxies, bind_all, is_ipv6_any, unmapped
from gateway.store.db import Store
from gateway.tlscert import tls_context
from gateway.web.app import WebContext, build_app
from gateway.web.connections import PanelConnection
from gateway.web.gate import ConnectionLimits, Gate
from gateway.web.hosts import panel_names
from gateway.web.initialpassword import INITIAL_PASSWORD_FILE, forget_stale

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the daemon owns SIGTERM and SIGINT.

    uvicorn (0.29 on) takes them in `capture_signals` around `serve()`, where the old
    `install_signal_handlers` hook is no longer called: a SIGTERM ended the panel by itself, racing
    the daemon's own stop, and uvicorn raised the signal again once its handlers were put back.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn before 0.29
        pass


class WebServer:
    def __init__(self, web: WebContext, limits: ConnectionLimits | None = None) -> None:
        self.web = web
        cfg = web.config.web
        host, port = cfg.listen_addr
        self.limits = limits or ConnectionLimits()
        self.gate = Gate(self.limits, cfg.trusted_proxies)
        self.tls_files = (
            (str(web.config.path(cfg.tls_cert_file)), str(web.config.path(cfg.tls_key_file)))
            if cfg.tls_cert_file and cfg.tls_key_file
            else None
        )
        self.config = uvicorn.Config(
            _peers(build_app(web), self.gate.trusted),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=functools.partial(  # type: ignore[arg-type]
                PanelConnection, gate=self.gate, names=panel_names(host, cfg.hostnames)
            ),
            ws="none",  # the panel has no websockets (an upgraded connection would leave the gate)
            # The gate caps connections, and each runs one request at a time, pipelined or not
            # (PanelConnection.on_response_complete); this (uvicorn answers 503, logged through
            # the gate's throttle) caps the requests still running on connections that have gone.
            # Above the gate's cap, which uvicorn's count of connections passes for a moment when
            # the gate closes one to make room for another.
            limit_concurrency=2 * self.limits.total,
            # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: anything on this machine (an
            # SSH tunnel, a proxy passing the header on) could then pick its address, get past the
            # login lockout per address and lock a victim's office out (the guard is SMTP AUTH's too).
            # Only the proxies the config names are believed, compared as addresses (`_peers`).
            proxy_headers=False,
        )
        self.server = _Server(self.config)
        self.task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        """Serve in the background; returns the bound port (0 in the config picks a free one).

        The socket is bound here rather than by uvicorn, which answers a busy port with
        `sys.exit`: an OSError lets the daemon name the key and the port in one clear line.
        """
        self.gate.tls = self._tls_context()
        # "::" as two sockets, 0.0.0.0 and :: (IPv6 only), as the SMTP ports: a proxy on 127.0.0.1
        # arrives as 127.0.0.1, not as ::ffff:127.0.0.1. Any other host as the one socket it was.
        host, port = self.config.host, self.config.port
        sockets = (
            bind_all(host, port, self.config.backlog)
            if is_ipv6_any(host)
            else [_bound(host, port, self.config.backlog)]
        )
        for sock in sockets:
            sock.setblocking(False)
        # Not a supervised worker: serve() closes the listening sockets on its way out, so a restart in
        # place would bind the port again, which another process may hold by then. The daemon watches
        # it as a vital task (`gateway.vital`): its end is logged and stops the daemon for systemd.
        self.task = asyncio.create_task(self.server.serve(sockets=sockets), name="web")
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises why it could not start (port in use...)
                raise RuntimeError("web server stopped during start-up")
            await asyncio.sleep(0.01)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def _tls_context(self) -> ssl.SSLContext | None:
        """The pair loaded here rather than in uvicorn's task, where an OSError read as "cannot listen
        on web.listen: No such file or directory": say which file instead, as the submission port does."""
        if self.tls_files is None:
            return None
        cert, key = self.tls_files
        return tls_context(Path(cert), Path(key), section="web")

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        with suppress(Exception):
            await asyncio.wait_for(self.task, 10)
        for listening in getattr(self.server, "servers", ()):
            listening.close()  # a serve() ended by an error skipped its shutdown: its ports still listened
        self.gate.close_all()
        await asyncio.to_thread(self.web.counts.close)


def _bound(host: str, port: int, backlog: int) -> socket.socket:
    """One listening socket (uvicorn listens on it), for the address or name as it is written."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _peers(app: ASGIApp, trusted: TrustedProxies) -> ASGIApp:
    """The app behind the edge: the peer's address unmapped (::ffff:a.b.c.d is a.b.c.d), then, from a
    trusted proxy, X-Forwarded-For and -Proto believed, and what they name unmapped too. uvicorn's own
    step compares its `forwarded_allow_ips` with the peer as it came, so a proxy reaching a dual-stack
    socket was not believed, and every failed login counted against it."""
    inner: ASGIApp = _Unmapped(app)
    if trusted:
        inner = ProxyHeadersMiddleware(inner, trusted_hosts=trusted.entries())  # type: ignore[arg-type]
    return _Unmapped(inner)


class _Unmapped:
    """ASGI middleware: the scope's client address as `gateway.peeraddr.unmapped` says it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client:
            scope["client"] = (unmapped(str(client[0])), client[1])
        await self.app(scope, receive, send)


def first_operator(store: Store, cfg: Config) -> tuple[str, Path] | None:
    """On a fresh install, make the first seeded user the operator with a random password.

    Only when no operator exists and that user has no password yet, so an admin's own choices are
    never overwritten. The password goes to a file only its owner may read, never to the log: a new
    one, so that no earlier file's mode, owner or symbolic link decides who reads it. Written before
    the password is set, so that a file that cannot be written leaves no operator whose password
    no one knows (the next start tries again). A file left from before whose password no operator
    logs in with any more is removed (`gateway.web.initialpassword`).
    """
    if (stale := forget_stale(store, cfg.state_dir)) is not None:
        log.info("web.initial_password_removed", path=str(stale), why="no operator's password any more")
    conn = store.db.conn
    if store.accounts.has_role("operator"):
        if not _had_operator(conn):  # an install from before the mark: it has had one
            _mark_operator(store, "found")
        # An operator nobody can log in as (`user set --role operator` without `user passwd`) is no
        # operator of the panel's: the start said nothing of a login page nobody could pass.
        sql = "SELECT 1 FROM users WHERE role = 'operator' AND COALESCE(password_hash, '') != '' LIMIT 1"
        if conn.execute(sql).fetchone() is None:
            _no_operator(conn, passwordless=True)
        return None
    if _had_operator(conn):
        # Once there has been an operator, none is made at a start: the last one removed or demoted,
        # the first seeded address (re-added for a new employee, a client's user) became operator
        # over every account as soon as the admin gave it a mail password.
        _no_operator(conn)
        return None
    seeded = [email for acc in cfg.account for email in acc.users]
    user = store.accounts.find_user(seeded[0]) if seeded else None
    if user is None or user.password_hash:
        # No [[account]] user to make the first operator of (the config install-service writes has
        # none), or the admin gave it a password already: the panel then had no operator login and
        # the start said nothing of it.
        _no_operator(conn)
        return None
    password = secrets.token_urlsafe(12)
    path = cfg.state_dir / INITIAL_PASSWORD_FILE
    write_new_private(path, password + "\n")
    store.accounts.set_user(user.email, role="operator", password_hash=hash_password(password))
    _mark_operator(store, user.email)
    return user.email, path


def _no_operator(conn: sqlite3.Connection, *, passwordless: bool = False) -> None:
    """Says at a start that nobody can use the panel's operator pages, with the commands that make
    an operator: with no user at all, the account and the user first; with operators but none with
    a password, the password."""
    make = "`smsgw user set EMAIL --role operator` makes one"
    make += " (with `smsgw user passwd EMAIL` if it has no password)"
    if passwordless:
        make = "no operator has a password: `smsgw user passwd EMAIL` gives one"
    elif conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is None:
        make = (
            "there is no user yet: `smsgw account add NAME`, `smsgw user add EMAIL --account NAME`,"
            " `smsgw user set EMAIL --role operator` and `smsgw user passwd EMAIL` make one"
        )
    log.warning("web.no_operator", note=f"nobody can use the panel's operator pages; {make}")


# The store's key/value table (`billing_state`; billing reads only its own keys): set once the
# installation has an operator, made here or found.
HAD_OPERATOR_KEY = "web.had_operator"


def _had_operator(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM billing_state WHERE key = ?", (HAD_OPERATOR_KEY,)).fetchone() is not None
    )


def _mark_operator(store: Store, how: str) -> None:
    with store.db.transaction():
        store.db.conn.execute(
            "INSERT OR IGNORE INTO billing_state (key, value) VALUES (?, ?)", (HAD_OPERATOR_KEY, how)
        )


async def start_web(cfg: Config, store: Store, gate: Any, dispatcher: Any) -> WebServer:
    """Called by the daemon once links and listeners run; logins share the SMTP AUTH lockout."""
    web = WebContext(cfg, store, gate.auth, LinkView(dispatcher), dispatcher.wake, lambda: dict(gate.replies))
    server = WebServer(web)
    port = await server.start()
    scheme = "https" if cfg.web.tls_cert_file else "http"
    log.info("web.started", url=f"{scheme}://{server.config.host}:{port}/")
    server.port = port
    return server
