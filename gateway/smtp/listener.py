"""The SMTP listener on the daemon's own loop: aiosmtpd's server for a `Gate`, in the daemon or in an
intake worker, with the same STARTTLS either way.

Its own module because both processes start it, apart from what the relay handler decides per command.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from gateway.peeraddr import server_address
from gateway.smtp.gate import Gate
from gateway.smtp.relay import RelayHandler
from gateway.smtp.servers import RelaySMTP, relay_tls_context


class RelayFactory:
    """The protocol factory of the relay port's aiosmtpd server, for `create_server` or an intake
    worker's `FairServer`. Made on the loop that serves it.

    The same code runs in the daemon and in an intake worker, so both offer the same STARTTLS. Its
    `tls_context` is read at each connection: a certificate had only after the start (the submission
    port bound late, `gateway.submissionretry`) is offered from the next connection on.
    """

    def __init__(self, gate: Gate, handler: Any | None, smtp_kwargs: dict[str, Any]) -> None:
        self.gate, self.cfg, self.handler = gate, gate.config, handler or RelayHandler(gate)
        self.loop = asyncio.get_running_loop()
        self.tls_context: ssl.SSLContext | None = smtp_kwargs.pop("tls_context", None)
        self.smtp_kwargs = smtp_kwargs

    def __call__(self) -> RelaySMTP:
        cfg = self.cfg
        return RelaySMTP(
            self.handler,
            hostname=cfg.gateway.hostname,  # without it every connection does a blocking DNS lookup
            ident="smsgw",
            data_size_limit=cfg.smtp.max_message_bytes,
            timeout=cfg.smtp.timeout_seconds,
            guard=self.gate.sessions,
            loop=self.loop,
            tls_context=self.tls_context,
            **self.smtp_kwargs,
        )


def smtp_factory(gate: Gate, handler: Any | None = None, **smtp_kwargs: Any) -> RelayFactory:
    """The relay port's factory; its STARTTLS from the config unless `tls_context` is given."""
    if "tls_context" not in smtp_kwargs:
        smtp_kwargs["tls_context"] = relay_tls_context(gate.config)
    return RelayFactory(gate, handler, smtp_kwargs)


async def start_smtp_server(
    gate: Gate, host: str, port: int, handler: Any | None = None, **smtp_kwargs: Any
) -> asyncio.Server:
    """aiosmtpd on the daemon's own loop (not its threaded Controller), as aiosmtpd's main does.

    The relay port in the daemon (`intake_processes = 0`); an intake worker accepts on the daemon's
    socket with `gateway.smtp.fairaccept.FairServer` and the same `smtp_factory`.
    """
    return await serve(smtp_factory(gate, handler, **smtp_kwargs), host, port)


async def serve(factory: RelayFactory, host: str, port: int) -> asyncio.Server:
    """`factory` served on `host`:`port` (the daemon keeps it to offer STARTTLS later)."""
    hosts, port = server_address(host, port)  # "::" takes both stacks, IPv4 clients as IPv4
    return await asyncio.get_running_loop().create_server(factory, host=hosts, port=port)
