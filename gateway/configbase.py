"""What every config section shares: strict sections, address parsing, secret files, the error.

Split from gateway.config so that feature sections ([replies], [premium]) can live in modules of
their own without importing the whole config.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """A config problem, worded for the admin who has to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def _host_port(value: str, what: str, example: str = "127.0.0.1:2525") -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    v6 = f"[::1]:{example.rpartition(':')[2]}"
    usage = f'{what} must be HOST:PORT such as "{example}" or "{v6}", got {value!r}'
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(usage)
    if host:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if bracketed or not _HOSTNAME.match(host):
                raise ValueError(usage) from None
        else:
            if ip.version == 6 and not bracketed:
                raise ValueError(f"{usage} (an IPv6 address goes in brackets)")
    return host or "127.0.0.1", int(port)


def credential_path(path: Path | None, base_dir: Path | None = None) -> Path | None:
    """A secret's file: a bare name is looked up in systemd's credentials directory first
    (`LoadCredential=`, readable by the service alone), else beside the config."""
    if path is None or path.is_absolute():
        return path
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / path).exists():
        return Path(creds) / path
    return base_dir / path if base_dir is not None else path
