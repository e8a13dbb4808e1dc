"""An account's own setting, else the gateway's: each path that sends or answers for an account
(staff mail, premium answers, conversations) reads it here, so that none of them keeps a rule of
its own (premium answers once ignored the account's end marker, window and validity)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.accounts import Account


def end_marker(cfg: Config, account: Account | None) -> str | None:
    """Where a mail's text ends for SMS: the footer and signature below it never reach the phone."""
    return (account.end_marker if account and account.end_marker else cfg.gateway.end_marker) or None


def validity_seconds(cfg: Config, account: Account | None) -> float:
    return 3600 * ((account.validity_hours if account else None) or cfg.gateway.validity_hours)


def reply_window_days(cfg: Config, days: float | None) -> float:
    """An account's `--reply-window-days` (`days`, None when unset), else `[replies] window_days`."""
    return days if days is not None else cfg.replies.window_days
