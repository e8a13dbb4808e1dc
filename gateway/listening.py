"""The daemon's listeners, bound at its start: the relay port (or the socket its intake workers
share), submission and the panel. A listener that cannot bind raises `ListenError` naming the config
key, not asyncio's bind error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gateway.intake_workers import IntakeWorkers, bind_listeners
from gateway.smtp import unknownlog
from gateway.smtp.listener import serve, smtp_factory

if TYPE_CHECKING:
    from gateway.daemon import Daemon
    from gateway.dispatcher import Dispatcher
    from gateway.smtp.gate import Gate
    from smsc.simulator import Simulator


class ListenError(Exception):
    """A configured listener could not bind; `key` is the setting to change."""

    def __init__(self, key: str, host: str, port: int, cause: OSError) -> None:
        super().__init__(f"{key}: {cause}")
        self.key, self.host, self.port, self.cause = key, host, port, cause


async def _bind(key: str, host: str, port: int, start: Any) -> Any:
    try:
        return await start
    except OSError as exc:
        raise ListenError(key, host, port, exc) from exc


def simulator_bind_error(sim: Simulator, exc: OSError) -> ListenError:
    """The simulator binds three ports: the error names the setting whose port failed."""
    key = sim.binding
    return ListenError(f"simulator.{key}", sim.cfg.host, getattr(sim.cfg, key), exc)


async def open_listeners(daemon: Daemon, gate: Gate, dispatcher: Dispatcher, sub_why_off: str | None) -> None:
    """Bind every listener the config asks for; the ports and servers go on `daemon`."""
    cfg = daemon.config
    unknownlog.install()  # the relay port's and submission's sessions here; each worker installs its own
    host, port = cfg.smtp.listen_addr
    if cfg.smtp.intake_processes:
        try:
            listeners = bind_listeners(host, port)
        except OSError as exc:
            raise ListenError("smtp.listen", host, port, exc) from exc
        daemon.smtp_port = listeners[0].getsockname()[1]
        daemon.intake = IntakeWorkers(
            cfg,
            listeners,
            writes=gate.writes,
            backlog=lambda: dispatcher.queue,
            replies=gate.replies,
            log_level=daemon.log_level,
            json_logs=daemon.json_logs,
        )
    else:
        # Kept: a certificate had after the start is offered on it (`gateway.submissionretry`).
        daemon.relay_factory = factory = smtp_factory(gate)
        daemon.servers.append(await _bind("smtp.listen", host, port, serve(factory, host, port)))
        daemon.smtp_port = daemon.servers[0].sockets[0].getsockname()[1]
    if sub_why_off is None:
        await open_submission(daemon, gate)
    daemon.web = None
    if cfg.web.enabled:
        from gateway.web.server import start_web

        web_host, web_port = cfg.web.listen_addr
        daemon.web = await _bind(
            "web.listen", web_host, web_port, start_web(cfg, daemon.store, gate, dispatcher)
        )


async def open_submission(daemon: Daemon, gate: Gate) -> asyncio.Server | None:
    """Bind the submission port as `gate.config` has it (its certificate resolved), at the start or
    later (`gateway.submissionretry`); the server goes on `daemon` (None: not configured)."""
    from gateway.smtp import submission

    host, port = gate.config.smtp.submission_addr or ("", 0)
    sub = await _bind("smtp.submission_listen", host, port, submission.start(gate))
    if sub is not None:
        daemon.servers.append(sub)
        daemon.submission_port = sub.sockets[0].getsockname()[1]
    return sub
