"""A session's server made by `sessioninit.init` is the one aiosmtpd's own `SMTP.__init__` makes.

Each server class of the gateway, with its handler and the settings its listener passes, is built
twice on a real loop, once through the names found per class and once through aiosmtpd's `__init__`
(the path taken for another aiosmtpd version); every attribute must be the same: same keys in the
same order, the same functions bound to the instance made, the same tables down to the order of their
keys, the same log lines and warnings. Crafted handlers and settings cover what the listeners do not
use (AUTH mechanisms of the handler, a named mechanism, an old-style EHLO hook, call limits, a
handler holding a hook as an attribute of its own).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import types
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, auth_mechanism

from gateway.config import Config, parse_config
from gateway.smtp import sessioninit, submission
from gateway.smtp.gate import Gate
from gateway.smtp.listener import smtp_factory
from gateway.smtp.protocol import LeanSMTP
from gateway.smtp.relay import RelayHandler
from gateway.smtp.servers import GatewaySMTP, RelaySMTP
from gateway.smtp.submission import SubmissionHandler, SubmissionSMTP
from gateway.store.db import Store
from tests.certs import make_cert_pair
from tests.conftest import config_text

RANDOM = {"_digest_key"}  # a submission session's key for its failed logins' digests: new each time


def shape(value: Any, made: object, depth: int = 0) -> Any:
    """What two servers built from the same arguments must share, with `made` standing for each."""
    if depth > 6:
        return ("deep", type(value))
    if value is made:
        return "the server"
    if isinstance(value, types.MethodType):
        return ("bound", value.__func__, shape(value.__self__, made, depth + 1))
    if isinstance(value, types.FunctionType) and hasattr(value, "__wrapped__"):
        # the per-connection wrappers of `protocol` and `guard`: their closure holds the server
        attrs = {k: shape(v, made, depth + 1) for k, v in vars(value).items()}
        cells = [shape(c.cell_contents, made, depth + 1) for c in value.__closure__ or ()]
        return ("wrapper", value.__code__, attrs, cells)
    if isinstance(value, dict):
        return (type(value), [(k, shape(v, made, depth + 1)) for k, v in value.items()])
    if isinstance(value, (list, tuple, collections.deque)):
        return (type(value), [shape(v, made, depth + 1) for v in value])
    if isinstance(value, weakref.ref):
        return ("weakref", shape(value(), made, depth + 1))
    if isinstance(value, asyncio.StreamReader):
        return ("reader", value._limit, value._loop, bytes(value._buffer), value._eof)  # type: ignore[attr-defined]
    if isinstance(value, asyncio.Future):
        return ("future", value.get_loop(), value.done())
    if isinstance(value, (str, bytes, int, float, bool, type(None), type, types.FunctionType)):
        return value
    if hasattr(value, "__dict__") and type(value).__module__.startswith("gateway"):
        return (type(value), shape(vars(value), made, depth + 1))
    return value  # the same object given to both (the handler, the guard, the TLS context, the loop)


def both(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, make: Any) -> None:
    """`make()` through `sessioninit.init` and through aiosmtpd's `__init__`: the same server."""
    made = []
    for version in (sessioninit.WRITTEN_FOR, "0"):  # "0": no aiosmtpd of that version, its own __init__
        caplog.clear()
        SMTP.command_size_limits["EHLO"] = 999  # aiosmtpd's class-wide table, which each __init__ empties
        monkeypatch.setattr(sessioninit, "WRITTEN_FOR", version)
        try:
            with warnings.catch_warnings(record=True) as warned, caplog.at_level(logging.INFO, "mail.log"):
                warnings.simplefilter("always")
                server = make()
        finally:
            monkeypatch.undo()
        said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "mail.log"]
        said.append(("class-wide limits", str(dict(SMTP.command_size_limits))))
        made.append((server, said, [(w.category, str(w.message)) for w in warned]))
    (fast, fast_said, fast_warned), (slow, slow_said, slow_warned) = made
    assert list(vars(fast)) == list(vars(slow))
    for name in vars(slow):
        if name in RANDOM:
            assert len(vars(fast)[name]) == len(vars(slow)[name])
            continue
        assert shape(vars(fast)[name], fast) == shape(vars(slow)[name], slow), name
    assert (fast_said, fast_warned) == (slow_said, slow_warned)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    cert, key = make_cert_pair(tmp_path / "tls")
    text = config_text(tmp_path, smsc_port=1)
    anchor = 'submission_listen = "127.0.0.1:0"\n'
    text = text.replace(anchor, anchor + f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n', 1)
    return parse_config(text, source="test config", base_dir=tmp_path)


@pytest.fixture
def gate(cfg: Config) -> Any:
    store = Store.open(cfg.db_path)
    yield Gate(cfg, store)
    store.close()


async def test_relay_servers_as_the_listener_makes_them(
    gate: Gate, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay port's server from its factory, with and without STARTTLS, two handlers of one class
    (the names found for the first serve the second)."""
    for tls in (True, False):
        factory = smtp_factory(gate) if tls else smtp_factory(gate, tls_context=None)
        assert isinstance(factory(), RelaySMTP)
        both(monkeypatch, caplog, factory)
        other = smtp_factory(gate, RelayHandler(gate), tls_context=factory.tls_context)
        both(monkeypatch, caplog, other)


async def test_submission_servers_as_the_listener_makes_them(
    gate: Gate, cfg: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The submission port's server with the settings `submission` gives it: AUTH required, its own
    mechanisms with the unwanted ones excluded, a synchronous authenticator."""
    context = submission.tls_context(cfg.path(cfg.smtp.tls_cert_file), cfg.path(cfg.smtp.tls_key_file))
    named = {m.replace("auth_", "").replace("__", "-") for m in dir(SubmissionSMTP) if m.startswith("auth_")}
    handler = SubmissionHandler(gate)

    def make() -> SubmissionSMTP:
        return SubmissionSMTP(
            handler,
            auth_guard=gate.auth,
            guard=gate.sessions,
            hostname=cfg.gateway.hostname,
            ident="smsgw",
            data_size_limit=cfg.smtp.max_message_bytes,
            timeout=cfg.smtp.timeout_seconds,
            loop=asyncio.get_running_loop(),
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=submission._refuse_sync,
            auth_exclude_mechanism=sorted(named - set(submission.MECHANISMS)),
        )

    assert make()._auth_methods  # the case in which the mechanisms' table is kept
    both(monkeypatch, caplog, make)


def fqdn_known(make: Any) -> Any:
    """`make()` with the host's name known without a lookup (aiosmtpd asks for it without a hostname)."""
    asked = socket.getfqdn
    socket.getfqdn = lambda *_: "fqdn.test"  # type: ignore[assignment]
    try:
        return make()
    finally:
        socket.getfqdn = asked  # type: ignore[assignment]


class CraftedHandler:
    """Mechanisms of the handler's own beside the server's, one named by `auth_mechanism`."""

    def __init__(self) -> None:
        self.seen = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: Any
    ) -> Any:
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"

    async def auth_CRAM__MD5(self, server: Any, args: Any) -> Any:
        return None

    @auth_mechanism("X-OWN")
    async def auth_whatever(self, server: Any, args: Any) -> Any:
        return None

    async def auth_PLAIN(self, server: Any, args: Any) -> Any:  # the server's PLAIN, overridden
        return None


class OldEhloHandler:
    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        return "250 old"


class NoHooks:
    pass


class PlainGateway(GatewaySMTP):
    """A server class of its own, so that its names are found afresh."""


@pytest.mark.parametrize(
    "handler, settings",
    [
        (CraftedHandler(), {}),
        (CraftedHandler(), {"auth_exclude_mechanism": ["LOGIN", "X-OWN"], "auth_callback": lambda *a: True}),
        (OldEhloHandler(), {"command_call_limit": 5}),
        (NoHooks(), {"command_call_limit": {"*": 7, "NOOP": 3}, "proxy_protocol_timeout": 1.5}),
        (NoHooks(), {"auth_required": True, "auth_require_tls": False, "decode_data": True}),
        (NoHooks(), {"hostname": None, "ident": None, "timeout": 9}),
    ],
    ids=["handler-mechanisms", "excluded", "old-ehlo", "call-limits", "auth-without-tls", "fqdn"],
)
async def test_crafted_handlers_and_settings(
    gate: Gate, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, handler: Any, settings: Any
) -> None:
    settings = {"hostname": "gw.test", "guard": gate.sessions, "data_size_limit": 1000, **settings}
    for cls in (PlainGateway, RelaySMTP):
        both(monkeypatch, caplog, lambda cls=cls: fqdn_known(lambda: cls(handler, **settings)))


async def test_a_handler_holding_a_hook_of_its_own_is_seen(
    gate: Gate, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook set on the handler itself is no name of its class: such a server takes aiosmtpd's walk."""
    handler = NoHooks()

    def make() -> PlainGateway:
        return PlainGateway(handler, hostname="gw.test", guard=gate.sessions, data_size_limit=99)

    both(monkeypatch, caplog, make)

    async def handle_NOOP(server: Any, session: Any, envelope: Any, arg: str) -> str:
        return "250 mine"

    handler.handle_NOOP = handle_NOOP  # type: ignore[attr-defined]
    assert make()._handle_hooks == {"NOOP": handle_NOOP}
    both(monkeypatch, caplog, make)


async def test_another_aiosmtpd_runs_its_own_init(monkeypatch: pytest.MonkeyPatch, gate: Gate) -> None:
    """`init` does the work of aiosmtpd 1.4.6's `__init__` alone (`sessioninit.WRITTEN_FOR`): under another
    version, which pip may install (`aiosmtpd>=1.4.6`), aiosmtpd's own runs, whatever it does now."""
    import aiosmtpd

    assert LeanSMTP.__mro__[1] is SMTP
    calls = []
    own = SMTP.__init__

    def counted(self: SMTP, *args: Any, **kwargs: Any) -> None:
        calls.append(type(self))
        own(self, *args, **kwargs)

    monkeypatch.setattr(SMTP, "__init__", counted)
    monkeypatch.setattr(aiosmtpd, "__version__", "1.4.6.post1")
    smtp_factory(gate)()
    assert calls == [RelaySMTP]
