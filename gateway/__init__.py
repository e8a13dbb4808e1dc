"""smsgw: an email-to-SMS gateway daemon.

`__version__` is read from the installed package's metadata only when asked for (`--version`, the
start banner, an upgrade note): importlib.metadata and its search of sys.path cost every `smsgw`
command and every daemon start some 20-30 ms of CPU before anything else ran.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("smsgw")
    except PackageNotFoundError:  # run from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found  # looked up once per process
    return found
