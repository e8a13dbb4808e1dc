"""The start banner: the facts an operator checks first (config, database, listeners, links, queue),
as one line a person reads and, with the same fields, as the structured `daemon.ready` event.

The line goes to the terminal only when stderr is one; the event goes to the log either way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from gateway.configservices import WebSection
    from gateway.daemon import Daemon

log = structlog.get_logger(__name__)


def _processes(n: int) -> str:
    return "1 intake process" if n == 1 else f"{n} intake processes"


def _panel(web: WebSection) -> str:
    """The panel's address as a browser takes it: the listen address alone left admins guessing
    the scheme (https only with a certificate configured) and where the panel was at all."""
    host, port = web.listen_addr
    scheme = "https" if web.tls_cert_file and web.tls_key_file else "http"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}/"


def announce_ready(daemon: Daemon, submission_off: str | None) -> None:
    """One line a person reads at start, and the same facts as a structured event."""
    from gateway import __version__
    from gateway.store.schema import SCHEMA_VERSION

    cfg = daemon.config
    fields: dict[str, Any] = {
        "version": __version__,
        "config": str(daemon.config_path) if daemon.config_path else None,
        "database": str(cfg.db_path),
        "schema": SCHEMA_VERSION,  # which version upgraded the file shows here, whoever upgraded it
        "relay": f"{cfg.smtp.listen_addr[0]}:{daemon.smtp_port}"
        + (f" ({_processes(cfg.smtp.intake_processes)})" if daemon.intake else ""),
        "submission": (
            f"{cfg.smtp.submission_addr[0]}:{daemon.submission_port}"
            if submission_off is None and cfg.smtp.submission_addr
            else f"off ({submission_off})"
        ),
        "links": [f"{s.name} {s.type} {s.host}:{s.port}" for s in cfg.smsc],
        "simulator": (
            f"on, SMPP port {daemon.simulator.smpp_port}, log {cfg.path(cfg.simulator.log)}"
            if daemon.simulator is not None
            else "off"
        ),
        "panel": _panel(cfg.web) if cfg.web.enabled else "off",
        "queued": daemon.store.admin.waiting_parts(),
    }
    line = (
        f"smsgw {fields['version']} ready: config {fields['config'] or '-'},"
        f" database {fields['database']} (schema {fields['schema']}),"
        f" relay {fields['relay']}, submission {fields['submission']},"
        f" links {', '.join(fields['links']) or 'none'}, simulator {fields['simulator']},"
        f" panel {fields['panel']},"
        f" {fields['queued']} part(s) queued"
    )
    if sys.stderr.isatty():
        print(line, file=sys.stderr, flush=True)
    log.info("daemon.ready", summary=line, **fields)
