"""aiosmtpd's `SMTP.__init__` for each connection, without looking its classes over at every one.

aiosmtpd (1.4.6) builds a session's tables at each connection: the AUTH mechanisms by
`inspect.getmembers` of the server and of the handler (every attribute of each read, properties
run), the handler's hooks and the server's commands by `dir()` of each, and the EHLO hook's kind
from its signature. That was some 1.7 M instructions a connection, more than a mail's whole reading
and composing; a relay's MTA often brings one mail a connection. What those walks find is given by
the two classes alone: their names are found once per pair of classes, and each connection binds
them as aiosmtpd would (same keys, same order, same bound methods).

Whatever the classes cannot tell takes aiosmtpd's own `__init__`: another aiosmtpd version (its
`__init__` may set other things), a class with a `__dir__` of its own, or an instance that holds an
attribute named like a command, hook or mechanism before the tables are made. Classes are not changed
at run time in the gateway: a method added to one after its first connection is not seen here.
`tests/test_session_init.py` holds each server class of the gateway to what aiosmtpd's `__init__` makes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import ssl
from collections.abc import Callable
from typing import Any, TypeVar
from warnings import warn

import aiosmtpd
import aiosmtpd.smtp as _aiosmtpd
from aiosmtpd.smtp import SMTP

_F = TypeVar("_F", bound=Callable[..., Any])
WRITTEN_FOR = "1.4.6"  # the aiosmtpd whose `SMTP.__init__` `init` does the work of
_PREFIXES = ("smtp_", "auth_", "handle_")


class _Names:
    """The attribute names aiosmtpd's walks find on a server class and a handler class, sorted as
    `dir()` sorts them; and the EHLO hooks' kinds, by function."""

    __slots__ = ("auth", "commands", "handler_auth", "hooks")

    def __init__(self, cls: type, handler_cls: type) -> None:
        server, handler = dir(cls), dir(handler_cls)
        self.auth = [name for name in server if name.startswith("auth_")]
        self.handler_auth = [name for name in handler if name.startswith("auth_")]
        self.hooks = [(name.replace("handle_", ""), name) for name in handler if name.startswith("handle_")]
        self.commands = [(name.replace("smtp_", ""), name) for name in server if name.startswith("smtp_")]


_names: dict[tuple[type, type], _Names] = {}
_ehlo_kinds: dict[Any, str | None] = {}


# Whether a set of attribute names, in their order, holds none named like what the walks look for.
# A server's own attributes when `init` runs are the same names at every connection of its class, and
# the handler's too: looking each name over cost some 21 k instructions a connection. Bounded, for
# objects whose attributes change.
_PLAIN_KEPT_MAX = 64
_plain_names: dict[tuple[str, ...], bool] = {}


def _plain(obj: Any) -> bool:
    """Whether `dir(obj)` is its class's names and those of its own attributes alone, and none of
    these is named like what the walks look for."""
    if type(obj).__dir__ is not object.__dir__:
        return False
    names = tuple(getattr(obj, "__dict__", ()))
    plain = _plain_names.get(names)
    if plain is None:
        plain = not any(name.startswith(_PREFIXES) for name in names)
        if len(_plain_names) < _PLAIN_KEPT_MAX:
            _plain_names[names] = plain
    return plain


def _members(obj: Any, names: list[str], builtin: bool, into: dict[str, Any]) -> None:
    """The AUTH mechanisms of `obj` as aiosmtpd's `inspect.getmembers` walk adds them (a name whose
    attribute cannot be read is left out, as `getmembers` leaves it)."""
    for mname in names:
        try:
            mfunc = getattr(obj, mname)
        except AttributeError:
            continue
        key = getattr(mfunc, "__auth_mechanism_name__", mname.replace("auth_", "").replace("__", "-"))
        into[key] = _aiosmtpd._AuthMechAttr(mfunc, builtin)


def _ehlo_kind(hook: Any) -> str | None:
    params = inspect.signature(hook).parameters
    if len(params) == 4:
        return "old"
    if len(params) == 5:
        return "new"
    raise RuntimeError("Unsupported EHLO Hook")


def init(
    self: SMTP,
    handler: Any,
    *,
    data_size_limit: int | None = _aiosmtpd.DATA_SIZE_DEFAULT,
    enable_SMTPUTF8: bool = False,
    decode_data: bool = False,
    hostname: str | None = None,
    ident: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    timeout: float = 300,
    auth_required: bool = False,
    auth_require_tls: bool = True,
    auth_exclude_mechanism: Any = None,
    auth_callback: Any = None,
    command_call_limit: int | dict[str, int] | None = None,
    authenticator: Any = None,
    proxy_protocol_timeout: float | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """What aiosmtpd 1.4.6's `SMTP.__init__(self, handler, ...)` does, step for step, with its
    tables bound from `_Names`; aiosmtpd's own `__init__` where those cannot be trusted."""
    if aiosmtpd.__version__ != WRITTEN_FOR or not (_plain(self) and _plain(handler)):
        SMTP.__init__(
            self,
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=enable_SMTPUTF8,
            decode_data=decode_data,
            hostname=hostname,
            ident=ident,
            tls_context=tls_context,
            require_starttls=require_starttls,
            timeout=timeout,
            auth_required=auth_required,
            auth_require_tls=auth_require_tls,
            auth_exclude_mechanism=auth_exclude_mechanism,
            auth_callback=auth_callback,
            command_call_limit=command_call_limit,
            authenticator=authenticator,
            proxy_protocol_timeout=proxy_protocol_timeout,
            loop=loop,
        )
        return
    log = _aiosmtpd.log
    self.__ident__ = ident or _aiosmtpd.__ident__
    self.loop = loop if loop else _aiosmtpd.make_loop()
    asyncio.StreamReaderProtocol.__init__(
        self,
        asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit),
        client_connected_cb=self._cb_client_connected,
        loop=self.loop,
    )
    self.event_handler = handler
    assert data_size_limit is None or isinstance(data_size_limit, int)
    self.data_size_limit = data_size_limit
    self.enable_SMTPUTF8 = enable_SMTPUTF8
    self._decode_data = decode_data
    self.command_size_limits.clear()
    self.hostname = hostname if hostname else _aiosmtpd.socket.getfqdn()
    self.tls_context = tls_context
    if tls_context:
        if tls_context.verify_mode not in {ssl.CERT_NONE, ssl.CERT_OPTIONAL}:
            log.warning(
                "tls_context.verify_mode not in {CERT_NONE, CERT_OPTIONAL}; this might cause client "
                "connection problems"
            )
        elif tls_context.check_hostname:
            log.warning("tls_context.check_hostname == True; this might cause client connection problems")
    self.require_starttls = tls_context and require_starttls
    self._timeout_duration = timeout
    self._timeout_handle = None
    self._tls_handshake_okay = True
    self._tls_protocol = None
    self._original_transport = None
    self.session = None
    self.envelope = None
    self.transport = None
    self._handler_coroutine = None
    if not auth_require_tls and auth_required:
        warn("Requiring AUTH while not requiring TLS can lead to security vulnerabilities!", stacklevel=1)
        log.warning("auth_required == True but auth_require_tls == False")
    self._auth_require_tls = auth_require_tls
    if proxy_protocol_timeout is not None:
        if proxy_protocol_timeout <= 0:
            raise ValueError("proxy_protocol_timeout must be > 0")
        elif proxy_protocol_timeout < 3.0:
            log.warning("proxy_protocol_timeout < 3.0")
    self._proxy_timeout = proxy_protocol_timeout
    if authenticator is not None:
        self._authenticator = authenticator
        self._auth_callback = None
    else:
        self._auth_callback = auth_callback or _aiosmtpd.login_always_fail
        self._authenticator = None
    self._auth_required = auth_required

    key = (type(self), type(handler))
    names = _names.get(key)
    if names is None:
        names = _names[key] = _Names(*key)
    self._auth_methods = {}
    _members(self, names.auth, True, self._auth_methods)
    _members(handler, names.handler_auth, False, self._auth_methods)
    for m in auth_exclude_mechanism or []:
        self._auth_methods.pop(m, None)
    if log.isEnabledFor(logging.INFO):  # the line is made for nothing at the daemon's WARNING: ~10 k
        log.info(
            "Available AUTH mechanisms: "
            + " ".join(
                m + "(builtin)" if impl.is_builtin else m for m, impl in sorted(self._auth_methods.items())
            )
        )
    self._handle_hooks = {hook: getattr(handler, name) for hook, name in names.hooks}
    ehlo_hook = self._handle_hooks.get("EHLO")
    if ehlo_hook is None:
        self._ehlo_hook_ver = None
    else:
        # The signature of a bound method is its function's, less the first parameter.
        func = getattr(ehlo_hook, "__func__", None)
        kind = _ehlo_kinds.get(func) if func is not None else None
        if kind is None:
            kind = _ehlo_kind(ehlo_hook)
            if func is not None:
                _ehlo_kinds[func] = kind
        if kind == "old":
            warn(
                "Use the 5-argument handle_EHLO() hook instead of the 4-argument handle_EHLO() hook;"
                " support for the 4-argument handle_EHLO() hook will be removed in version 2.0",
                DeprecationWarning,
                stacklevel=1,  # where aiosmtpd's own warns: in the __init__
            )
        self._ehlo_hook_ver = kind
    self._smtp_methods = {command: getattr(self, name) for command, name in names.commands}
    if command_call_limit is None:
        self._enforce_call_limit = False
    else:
        self._enforce_call_limit = True
        if isinstance(command_call_limit, int):
            self._call_limit_base = {}
            self._call_limit_default = command_call_limit
        elif isinstance(command_call_limit, dict):
            if not all(map(_aiosmtpd.is_int, command_call_limit.values())):
                raise TypeError("All command_call_limit values must be int")
            self._call_limit_base = command_call_limit
            self._call_limit_default = command_call_limit.get("*", _aiosmtpd.CALL_LIMIT_DEFAULT)
        else:
            raise TypeError("command_call_limit must be int or Dict[str, int]")


_ASSIGNED = ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__")
_ASSIGNED_ALL = functools.WRAPPER_ASSIGNMENTS == _ASSIGNED and functools.WRAPPER_UPDATES == ("__dict__",)


def wrapped(run: _F, method: Any) -> _F:
    """`functools.update_wrapper(run, method)` for the wrappers put in a session's command table at
    each connection (HELP reads aiosmtpd's syntax attributes from them). `update_wrapper` walks its
    attribute names through `getattr`/`setattr` with a try for each, about 12.8 k instructions a
    wrapper against 5 k here, and a session is given ten: a relay's MTA that brings one mail a
    connection pays them at every mail. The same attributes, `__dict__` and `__wrapped__` result;
    whatever lacks one of them, or a Python whose `update_wrapper` copies more, takes `update_wrapper`."""
    if not _ASSIGNED_ALL:
        return functools.update_wrapper(run, method)
    try:
        run.__module__ = method.__module__
        run.__name__ = method.__name__
        run.__qualname__ = method.__qualname__
        run.__doc__ = method.__doc__
        run.__annotations__ = method.__annotations__
        run.__dict__.update(method.__dict__)
    except AttributeError:
        return functools.update_wrapper(run, method)
    run.__wrapped__ = method  # type: ignore[attr-defined]
    return run
