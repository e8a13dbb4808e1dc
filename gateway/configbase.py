"""What every config section shares: strict sections, address parsing, secret files, the error.

Split from gateway.config so that feature sections ([replies], [premium]) can live in modules of
their own without importing the whole config.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic.fields import FieldInfo

from gateway.mailheaders import is_plain_address


class ConfigError(Exception):
    """A config problem, worded for the admin who has to fix it."""


class KeyProblem(ValueError):
    """A section's check that is about some of its keys, not the whole table (`system_id` of a link):
    the error names them after the table, as a wrong value of a key is named."""

    def __init__(self, keys: str, message: str) -> None:
        super().__init__(message)
        self.keys = keys


def quoted(text: str) -> str:
    """A name or value as TOML writes it in double quotes (`"orange"`, `"żółw"`)."""
    return json.dumps(text, ensure_ascii=False)


def at(table: str, key: str = "") -> str:
    """A config place as every message names it, the table as the file writes it and the key below
    it: `[gateway] state_dir`, `[[smsc]] "orange" port`; a key above every table alone."""
    return f"{table} {key}" if table and key else table or key


def link_place(name: str, key: str = "") -> str:
    """An `[[smsc]]` link's place, named by its `name` (`[[smsc]] "orange" password_file`)."""
    return at(f"[[smsc]] {quoted(name)}", key)


class _Secret:
    """The mark of a key whose value is a secret (`metrics_token: Annotated[str | None, SECRET]`; a
    SecretStr key is one by its type): no message repeats it, since `check-config` and `run` print
    their errors to the terminal and, under systemd, into the journal that more people read."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = _Secret()

# A key named so holds a secret even where its model does not say it (a key the model does not know);
# tests/test_config_secrets.py holds every model key named so to its mark. A `_file` key names a path.
_SECRET_NAME = re.compile(r"(?:^|_)(?:password|passwd|passphrase|secret|token)s?$")


def is_secret(key: str, field: FieldInfo | None) -> bool:
    """Whether a key's value is a secret: marked so in its model, or named as one."""
    if _SECRET_NAME.search(key):
        return True
    if field is None:
        return False
    todo: list[Any] = [field.annotation]
    while todo:  # SecretStr inside `SecretStr | None`
        t = todo.pop()
        if t is SecretStr:
            return True
        todo.extend(get_args(t))
    return any(m is SECRET for m in field.metadata)


def secret_shape(value: Any) -> str:
    """What a secret was given as, without the secret: its kind and length, enough to fix it by."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        digits = len(str(abs(value)))
        return f"a number of {digits} digit{'s' if digits != 1 else ''}"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"a text of {len(value)} character{'s' if len(value) != 1 else ''}"
    return "a list" if isinstance(value, list) else "a table" if isinstance(value, dict) else "something else"


# A URL's login (`smtp://relayuser:password@host`) up to its last @ before a quote or a space.
_URL_LOGIN = re.compile(r"""(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'"]*:)[^\s'"]*@""")


def masked(text: str) -> str:
    """Text with every URL's password masked (`smtp://relayuser:***@mail.example.com:587`): a
    message repeats the value it refuses, and an address written as a URL may carry its login."""
    return _URL_LOGIN.sub(r"\g<head>***@", text)


def masked_address(value: str) -> str:
    """An address as a message may repeat it: the password of a login written into it masked, with a
    scheme or without one (`relayuser:***@mail.example.com:587`)."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    login, has_login, host = rest.rpartition("@")
    if not has_login or ":" not in login:
        return value
    return f"{scheme}{sep}{login.partition(':')[0]}:***@{host}"


class _Section(BaseModel):
    """Strict: lax parsing read `enabled = "on"` (or "yes", "1") as true and `window = true` or
    `window = 1.0` as 1, so an admin's slip silently meant something. A float key still takes a
    whole number (`validity_hours = 24`). A path key says `strict=False`: TOML has no path type,
    and its text is read as one."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def is_hostname(value: str) -> bool:
    """A DNS name as mail and TLS need it (RFC 1123): labels of letters, digits and inner hyphens,
    at most 63 characters each and 253 in all. Nothing else may reach a TOML string, an SMTP banner
    or an envelope unquoted."""
    return (
        len(value) <= 253
        and _HOSTNAME.match(value) is not None
        and all(len(label) <= 63 for label in value.split("."))
    )


def is_number_sender(sender: str) -> bool:
    """A sender a phone can answer: digits, optionally with a leading + (not a name such as "ACME").
    ASCII digits only: str.isdigit() also takes ٦٠١ and ¹²³, which no SMSC address field can carry
    (every SMS of such an account failed as malformed)."""
    digits = sender.removeprefix("+")
    return digits.isascii() and digits.isdigit()


def plain_address(value: str) -> str:
    """A config address that mail goes to or comes from: a bare user@domain, as the panel and the CLI
    require of the addresses they set (an empty one made billing mail an empty RCPT)."""
    if not is_plain_address(value):
        raise ValueError(f'{value!r} is not a mail address (use a bare address such as "ops@example.com")')
    return value.strip()


def host_port(
    value: str, what: str, example: str = "127.0.0.1:2525", *, listener: bool = True
) -> tuple[str, int]:
    """HOST:PORT. A listener may give port 0 (the system picks a free one: tests, `web.start`); an
    address the gateway connects to may not, since nothing can be reached there."""
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    v6 = f"[::1]:{example.rpartition(':')[2]}"
    shown = masked_address(value)  # never a login's password, into the terminal or the journal
    usage = f'{what} must be HOST:PORT such as "{example}" or "{v6}", got {shown!r}'
    if "://" in value or shown != value:
        login = ", its login in keys of its own" if "@" in value else ""
        usage += f" (the host and port alone, not a URL{login})"
    if not sep or not (port.isascii() and port.isdigit()):
        raise ValueError(usage)
    if int(port) > 65535:  # the shape is right: the number alone is wrong, and said so
        raise ValueError(f'{what} {shown!r}: port {int(port)} is over 65535, the highest; e.g. "{example}"')
    if int(port) == 0 and not listener:
        raise ValueError(
            f"{what} needs a port from 1 to 65535 (port 0 cannot be connected to), got {shown!r}"
        )
    if host:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if bracketed or not is_hostname(host):
                raise ValueError(usage) from None
        else:
            if ip.version == 6 and not bracketed:
                raise ValueError(f"{usage} (an IPv6 address goes in brackets)")
    return host or "127.0.0.1", int(port)


def joined(host: str, port: int) -> str:
    """HOST:PORT as `host_port` reads it back (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def credential_path(path: Path | None, base_dir: Path | None = None) -> Path | None:
    """A secret's file: a bare name is looked up in systemd's credentials directory first
    (`LoadCredential=`, readable by the service alone), else beside the config."""
    if path is None or path.is_absolute():
        return path
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / path).exists():
        return Path(creds) / path
    return base_dir / path if base_dir is not None else path


def link_host(value: str) -> str:
    """An SMSC link's `host`: a name or an IP address alone, spaces around it left off (as a mail
    address's are). "10.0.0.5:2775", "cimd2://10.0.0.5" and a name with a space in it passed the
    config's check, which only said they did not resolve, and the link never connected."""
    host = value.strip()
    if not host:
        raise ValueError('is empty: give the SMSC\'s name or IP address, e.g. host = "10.0.0.5"')
    _scheme, sep, rest = host.partition("://")
    if sep:
        bare = rest.split("/")[0].rpartition(":")[0] or rest.split("/")[0]
        raise ValueError(
            f"{value!r} is a URL: write the host alone, with no scheme (the link's type says the protocol),"
            f' e.g. host = "{bare}", and the port in port'
        )
    name, colon, port = host.rpartition(":")
    if colon and port.isascii() and port.isdigit() and (":" not in name or name.startswith("[")):
        bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        raise ValueError(f'{value!r} holds a port: write the port in port = {port}, and host = "{bare}"')
    if host.startswith("[") and host.endswith("]") and _ipv6(host[1:-1]):
        # Brackets are for an address beside a port (`host_port`, a URL); here the address stands alone.
        raise ValueError(f'{value!r}: write the IPv6 address without brackets, host = "{host[1:-1]}"')
    if any(c.isspace() or c in "/[]@" for c in host):
        raise ValueError(
            f'{value!r} is not a host name or an IP address: give the SMSC\'s, e.g. host = "10.0.0.5"'
        )
    return host


def _ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False
