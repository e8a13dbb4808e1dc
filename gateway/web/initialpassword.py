"""`web-initial-password` in state_dir: the first operator's password, made at the first start with
the panel (`gateway.web.server.first_operator`), for the admin's first login.

It outlived the password it held: anyone who could read it later read a password that no longer
worked, or one that still did because nobody had changed it. It now goes when that login's
password is set anew (the panel's users page, `smsgw user passwd`), and at a start when it holds
no operator's password any more (changed otherwise, or the login removed).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from acl.passwords import verify_password
from gateway.store.db import Store

INITIAL_PASSWORD_FILE = "web-initial-password"


def _written(state_dir: Path) -> str | None:
    """The password in the file: only a regular file of this user, never through a link."""
    try:
        fd = os.open(state_dir / INITIAL_PASSWORD_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > 4096:
            return None
        return os.read(fd, 4096).decode("utf-8", "replace").strip() or None
    finally:
        os.close(fd)


def forget_replaced(state_dir: Path, old_hash: str | None) -> Path | None:
    """After a login's password was set anew: the file goes when it held the password replaced
    (`old_hash`, the login's hash before); its path then, else None."""
    written = _written(state_dir)
    if written is None or not old_hash or not verify_password(written, old_hash):
        return None
    path = state_dir / INITIAL_PASSWORD_FILE
    path.unlink(missing_ok=True)
    return path


def forget_stale(store: Store, state_dir: Path) -> Path | None:
    """At a start: the file goes when no operator logs in with its password any more; its path
    then. With no operator yet, `first_operator` writes a new one in its place instead."""
    written = _written(state_dir)
    operators = [u for u in store.accounts.list_users() if u.role == "operator"]
    if written is None or not operators:
        return None
    if any(verify_password(written, u.password_hash) for u in operators):
        return None
    path = state_dir / INITIAL_PASSWORD_FILE
    path.unlink(missing_ok=True)
    return path
