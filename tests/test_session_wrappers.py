"""The wrappers a session puts in its command table (`protocol.LeanSMTP._grouped`,
`guard.GuardedSMTP._watched`) carry what `functools.update_wrapper` would give them: HELP reads
aiosmtpd's syntax attributes from the table, and `sessioninit.wrapped` copies them without
`update_wrapper`'s walk. Each is held to a twin made by `update_wrapper` itself, for the servers of
both ports and for callables the fast copy cannot take (it must hand those to `update_wrapper`).
"""

from __future__ import annotations

import functools
import types
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, parse_config
from gateway.smtp import sessioninit
from gateway.smtp.gate import Gate
from gateway.smtp.listener import smtp_factory
from gateway.smtp.submission import SubmissionHandler, SubmissionSMTP
from gateway.store.db import Store
from tests.conftest import config_text


def what_wraps_gives(f: Any) -> tuple[Any, ...]:
    return (f.__module__, f.__name__, f.__qualname__, f.__doc__, f.__annotations__, list(vars(f).items()))


def twin(run: types.FunctionType) -> types.FunctionType:
    """A new function of `run`'s code and closure, as `run` was before it was given attributes."""
    code = run.__code__
    return types.FunctionType(code, run.__globals__, code.co_name, run.__defaults__, run.__closure__)


def assert_as_update_wrapper(made: Any, method: Any, fresh: Any = None) -> None:
    """`fresh`: the wrapper as it was made, before its attributes were given (by default `made`'s code
    and closure: its annotations are then lost, which only counts where `method` has none)."""
    fresh = twin(made) if fresh is None else fresh
    assert what_wraps_gives(made) == what_wraps_gives(functools.update_wrapper(fresh, method))
    assert made.__wrapped__ is method


def closure() -> types.FunctionType:
    async def run(arg: str | None) -> None:
        return None

    return run


async def _documented(self: Any, arg: str) -> None:
    """Said by HELP, were it a command."""


_documented.__smtp_syntax__ = "X <arg>"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "method",
    [
        types.MethodType(_documented, object()),  # a bound method, its attributes its function's
        _documented,
        functools.update_wrapper(closure(), types.MethodType(_documented, object())),  # a wrapper's wrapper
        functools.partial(_documented, None),  # no __name__: taken by update_wrapper
        len,  # a builtin: no __dict__, no __annotations__
    ],
    ids=["bound", "function", "wrapper", "partial", "builtin"],
)
def test_wrapped_gives_what_update_wrapper_gives(method: Any) -> None:
    assert_as_update_wrapper(sessioninit.wrapped(closure(), method), method, closure())


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return parse_config(config_text(tmp_path, smsc_port=1), source="test config", base_dir=tmp_path)


async def test_the_command_tables_wrappers(cfg: Config) -> None:
    """Every wrapper in a relay and a submission session's table, the ones wrapping another too."""
    store = Store.open(cfg.db_path)
    try:
        gate = Gate(cfg, store)
        relay = smtp_factory(gate, tls_context=None)()
        submission = SubmissionSMTP(
            SubmissionHandler(gate), auth_guard=gate.auth, guard=gate.sessions, data_size_limit=1000
        )
        for server in (relay, submission):
            wrappers = 0
            for command, method in server._smtp_methods.items():
                while isinstance(method, types.FunctionType):  # a wrapper; the wrapped may be one too
                    assert_as_update_wrapper(method, method.__wrapped__)
                    method, wrappers = method.__wrapped__, wrappers + 1
                assert isinstance(method, types.MethodType), command
            assert wrappers >= 10  # MAIL and RCPT twice, EHLO, HELO, STARTTLS, AUTH, RSET, NOOP
            help_text = server._smtp_methods["MAIL"].__smtp_syntax__
            assert help_text == type(server).smtp_MAIL.__smtp_syntax__
    finally:
        store.close()
