"""The submission listener (STARTTLS + AUTH), started when a certificate is configured."""

from __future__ import annotations

import asyncio

import structlog

from gateway.smtp import Gate

log = structlog.get_logger(__name__)


async def start(gate: Gate) -> asyncio.Server | None:
    smtp = gate.config.smtp
    if smtp.submission_addr is None:
        return None
    if smtp.tls_cert_file is None or smtp.tls_key_file is None:
        log.warning("submission.disabled", reason="smtp.tls_cert_file and smtp.tls_key_file are not set")
        return None
    log.warning("submission.disabled", reason="not available in this version")
    return None
