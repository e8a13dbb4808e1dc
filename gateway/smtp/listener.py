"""The SMTP listener on the daemon's own loop: aiosmtpd's server for a `Gate`, in the daemon or in an
intake worker, with the same STARTTLS either way.

Its own module because both processes start it, apart from what the relay handler decides per command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gateway.peeraddr import server_address
from gateway.smtp.gate import Gate
from gateway.smtp.relay import RelayHandler
from gateway.smtp.servers import RelaySMTP, relay_tls_context


def smtp_factory(gate: Gate, handler: Any | None = None, **smtp_kwargs: Any) -> Callable[[], RelaySMTP]:
    """The protocol factory of the relay port's aiosmtpd server, for `create_server` or an intake
    worker's `FairServer`. Called on the loop that serves it.

    The same code runs in the daemon and in an intake worker, so both offer the same STARTTLS.
    """
    cfg = gate.config
    handler = handler or RelayHandler(gate)
    loop = asyncio.get_running_loop()
    if "tls_context" not in smtp_kwargs:
        smtp_kwargs["tls_context"] = relay_tls_context(cfg)

    def factory() -> RelaySMTP:
        return RelaySMTP(
            handler,
            hostname=cfg.gateway.hostname,  # without it every connection does a blocking DNS lookup
            ident="smsgw",
            data_size_limit=cfg.smtp.max_message_bytes,
            timeout=cfg.smtp.timeout_seconds,
            guard=gate.sessions,
            loop=loop,
            **smtp_kwargs,
        )

    return factory


async def start_smtp_server(
    gate: Gate, host: str, port: int, handler: Any | None = None, **smtp_kwargs: Any
) -> asyncio.Server:
    """aiosmtpd on the daemon's own loop (not its threaded Controller), as aiosmtpd's main does.

    The relay port in the daemon (`intake_processes = 0`); an intake worker accepts on the daemon's
    socket with `gateway.smtp.fairaccept.FairServer` and the same `smtp_factory`.
    """
    factory = smtp_factory(gate, handler, **smtp_kwargs)
    hosts, port = server_address(host, port)  # "::" takes both stacks, IPv4 clients as IPv4
    return await asyncio.get_running_loop().create_server(factory, host=hosts, port=port)
