"""A listener that cannot bind, said in the admin's terms: the config key to change (as the README writes
it), the usual holder of a busy port of its kind, and the `[[smsc]]` links that must move with a busy
simulator port.

Apart from `gateway.cli.common` because only `smsgw run` and `smsgw simulator run` say it, and its words
are about ports and certificates, not the config or the store every command opens.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.cli.common import CliError
    from gateway.config import Config


SIMULATORS = "another smsgw's simulator (`smsgw run` starts one, as `smsgw simulator run` does)"
# Who else holds a port of each listener, most often: the hint of a busy port's message.
PORT_HOLDERS = {
    "smtp": "another smsgw, or a mail server such as Postfix or Exim?",
    "web": "another smsgw's panel, or another web server?",
    "simulator.control_port": SIMULATORS + "?",
    "simulator": SIMULATORS + ", or another SMSC or SMSC simulator?",
}


def setting(key: str) -> str:
    """A config key as the README and check-config write it: `[smtp] listen` for `smtp.listen`."""
    section, _, name = key.partition(".")
    return f"[{section}] {name}" if name else f"[{section}]"


def _links_on(cfg: Config | None, key: str, host: str, port: int) -> str:
    """For a busy simulator port: the `[[smsc]]` links that connect to it, which must move with it.

    The shipped link to the built-in simulator names its port again: an admin who moved only
    `[simulator] smpp_port` off a busy port left the link connecting to whatever holds the old one."""
    if cfg is None or key not in ("simulator.smpp_port", "simulator.cimd2_port"):
        return ""
    local = {host, "127.0.0.1", "localhost", "::1"}
    names = [f'[[smsc]] "{link.name}"' for link in cfg.smsc if link.port == port and link.host in local]
    if not names:
        return ""
    return (
        f"; {' and '.join(names)} connect{'s' if len(names) == 1 else ''} to this port (port = {port}):"
        f" give {'it' if len(names) == 1 else 'them'} the port you choose for {setting(key)} too"
    )


def bind_error(key: str, host: str, port: int, exc: OSError, cfg: Config | None = None) -> str:
    """A listener that cannot bind, said with the key to change (as the README writes it) and the
    usual cause of its kind of port; `cfg` names the links that connect to a busy simulator port."""
    section = key.partition(".")[0]
    # The simulator's ports are numbers on [simulator] host; the listeners are "host:port" strings.
    where = f"{setting(key)} = {port}" if section == "simulator" else f'{setting(key)} = "{host}:{port}"'
    if exc.errno == errno.EADDRINUSE:
        holders = PORT_HOLDERS.get(key) or PORT_HOLDERS.get(section, "another smsgw?")
        return (
            f"cannot listen on {where}: the port is already in use ({holders}); see `ss -ltnp 'sport ="
            f" :{port}'`{_links_on(cfg, key, host, port)}"
        )
    if exc.errno == errno.EACCES and port < 1024:
        return (
            f"cannot listen on {where}: ports below 1024 need the CAP_NET_BIND_SERVICE capability"
            " (the systemd drop-in systemd/smsgw-low-port.conf grants it) or use a port above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no network interface has address {host}"
    file_errors = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES)
    if section in ("smtp", "web") and (isinstance(exc, ssl.SSLError) or exc.errno in file_errors):
        # Binding a TCP socket never fails so (EACCES on a low port is handled above): the
        # listener's TLS files did, which the server only loads when it starts.
        return (
            f"cannot start the listener of {where}: its certificate or key cannot be read"
            f" ({exc.strerror or exc}); check [{section}] tls_cert_file and tls_key_file"
        )
    return f"cannot listen on {where}: {exc.strerror or exc}"


def _in_use(host: str, port: int) -> bool:
    """Whether a listener holds host:port now: a bind as asyncio's server makes it (SO_REUSEADDR, so
    a connection in TIME_WAIT is no obstacle), closed at once."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False  # a name that does not resolve is its own start error, not a busy port
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def also_in_use(cfg: Config, key: str) -> str:
    """The daemon's other listeners whose ports are taken too, said after the first one's message.

    The start stops at the first port it cannot bind: with the shipped ports held by another smsgw,
    an admin moved one port per start and needed six starts to learn all six. Probed once the daemon
    has closed its own listeners, so none of them is counted."""
    failed = setting(key)
    busy = [
        f"{name} = {port}" if name.startswith("[simulator]") else f'{name} = "{host}:{port}"'
        for name, host, port in cfg.listeners()
        if name != failed and port and _in_use(host, port)
    ]
    return f"; also in use: {', '.join(busy)}" if busy else ""


def busy_listeners(cfg: Config) -> list[str]:
    """check-config's words for each listener whose port another program holds, as `run` would stop
    on it: "config OK" was said while every configured port was taken. Only with no daemon on this
    state directory (the caller's to know): a running daemon holds its own ports."""
    return [
        bind_error(key, host, port, OSError(errno.EADDRINUSE, "in use"), cfg)
        for name, host, port in cfg.listeners()
        if port and _in_use(host, port)
        for key in [name.strip("[").replace("] ", ".")]  # `[smtp] listen` as bind_error's `smtp.listen`
    ]


def first_busy(cfg: Config) -> tuple[str, str, int] | None:
    """(key, host, port) of the first listener whose port another program holds, probed before the
    start makes anything: a second `smsgw run` (another state_dir, every port taken) created its
    database, seeded the demo account and wrote web-initial-password, then failed on the ports."""
    for name, host, port in cfg.listeners():
        if port and _in_use(host, port):
            return name.strip("[").replace("] ", "."), host, port  # `[smtp] listen` as `smtp.listen`
    return None


def cannot_bind(cfg: Config, key: str, host: str, port: int, cause: OSError) -> CliError:
    """`smsgw run`'s refusal of a listener it cannot bind (probed first, or at the bind itself)."""
    from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE, CliError, running_pid

    transient = cause.errno == errno.EADDRINUSE  # may free up; a restart can help
    if transient and (pid := running_pid(cfg)) is not None:
        return CliError(
            f"smsgw is already running (pid {pid}) with state_dir {cfg.state_dir};"
            " see `smsgw status`, stop it before starting another"
        )
    return CliError(
        bind_error(key, host, port, cause, cfg) + (also_in_use(cfg, key) if transient else ""),
        EXIT_FAILURE if transient else EXIT_CONFIG,
    )
