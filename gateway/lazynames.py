"""A package's names imported the first time they are read (PEP 562), for the feature packages whose
`__init__` the command line imports to add their subcommands: `smsgw --help` must not import their
handlers, the store and the SMTP side for that."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, where: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """The package's `__getattr__`: each name of `where` from the module named for it, kept in the
    package's `namespace` once read, so that the next reading is a plain look-up."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        namespace[name] = value
        return value

    return __getattr__
