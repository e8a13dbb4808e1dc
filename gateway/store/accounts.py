"""The accounts repository: accounts, their trusted networks and their users (the sender ACL).

Kept apart from the queue verbs because admins change these rows from the CLI while the daemon
runs. The lookups made for every mail (`find_user`, `account_by_id`, `all_networks`) are answered
from `gateway.store.cache`, which a change by any process invalidates (see there).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from acl.quiet import release_time
from gateway.relaynets import relay_owners
from gateway.store.accountrecord import ACCOUNT_COLS, ACCOUNT_SETTINGS, Account, account_from_row
from gateway.store.accountshares import AccountShare
from gateway.store.policy import SUSPENDED_HOLD
from gateway.store.repository import Repository

if TYPE_CHECKING:
    from gateway.store.db import Db

# The parts a change of quiet hours moves: those held for the window (`admin.QUIET_HELD`),
# also under a suspension, which keeps each part's due time for the resume (a part waiting for a link,
# `queueage.parked()`, is held due now: no such hold). Binds: the suspension's note (:note), now
# (:now). `state IN` first: the range of index parts_due, not every part.
_HELD_FOR_QUIET = (
    "p.state IN ('queued', 'hold') AND (p.state = 'queued' OR p.error = :note)"
    " AND p.attempts = 0 AND p.next_attempt_at > :now"
)


class NotFound(LookupError):
    """An admin named an account or user that does not exist."""


class Conflict(ValueError):
    """An admin tried to create something that exists already."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    account_id: int
    account: str
    password_hash: str | None
    monthly_limit: int | None
    daily_limit: int | None
    role: str = "user"  # user | admin (company admin of its account) | operator (web panel)
    # New at every change of the role and for each user added (triggers, migration 57): a panel
    # session opened under another key has ended, even if the role it lost was given back since.
    role_key: str | None = None


ROLES = ("user", "admin", "operator")
# A `User` row is `User(*row)` of `SELECT {USER_COLUMNS} FROM {USERS_FROM} ...`: public, because the
# panel's paged users list (gateway/web/userlist.py) builds its own WHERE and ORDER on them.
USER_COLUMNS = (
    "u.id, u.email, u.account_id, a.name, u.password_hash, u.monthly_limit, u.daily_limit, u.role, k.key"
)
USERS_FROM = "users u JOIN accounts a ON a.id = u.account_id LEFT JOIN user_role_keys k ON k.user_id = u.id"


# What keeps an account from `remove_account`, as (table, what it is to the admin): the features' rows
# (conversations, premium services and votes) are told between these and the audit trail.
_ACCOUNT_HOLDS = (
    ("users", "users (remove them first: `smsgw user list --account {name}`)"),
    ("messages", "SMS"),
    ("emails", "mail taken or refused"),
    ("mo", "answers from phones"),
)
_AUDIT_HOLDS = ("audit", "panel actions in its audit trail")
_USAGE: dict[int, str] = {}
_ADD = " ON CONFLICT(scope, period) DO UPDATE SET parts = parts + excluded.parts"


class AccountsRepo(Repository):
    def __init__(self, db: Db, clock: Callable[[], float], zone: tzinfo | None = None) -> None:
        super().__init__(db, clock)
        # `[gateway] timezone`: quiet hours are read on its wall clock, as acceptance reads them.
        # None is the machine's own zone (a store opened without a config, as in some tests).
        self.zone = zone

    def _account(self, row: tuple[Any, ...]) -> Account:
        nets = tuple(
            r[0]
            for r in self.conn.execute(
                "SELECT cidr FROM account_networks WHERE account_id = ? ORDER BY cidr", (row[0],)
            )
        )
        return account_from_row(row, nets)

    def add_account(self, name: str, *, networks: list[str] = (), sender: str | None = None) -> Account:
        with self.changing_settings():
            try:
                cur = self.conn.execute(
                    "INSERT INTO accounts (name, sender, created_at) VALUES (?, ?, ?)",
                    (name, sender, self.clock()),
                )
            except self.db.IntegrityError as exc:
                raise Conflict(f"account {name!r} exists already") from exc
            for cidr in networks:
                self.conn.execute(
                    "INSERT INTO account_networks (account_id, cidr) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (cur.lastrowid, cidr),
                )
        return self.get_account(name)

    def get_account(self, name: str) -> Account:
        row = self.conn.execute(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(self.no_account(name, "see `smsgw account list`"))
        return self._account(row)

    def no_account(self, name: str, otherwise: str = "") -> str:
        """The words for a name no account has, with the one meant when exactly one account's name
        differs from it in case only (`acme` typed for `ACME`).

        Names stay case-sensitive (two may differ in case only: `gateway.cli.accountnames`), so the
        name is only suggested; with none or several alike, `otherwise` is said instead, if any.
        """
        alike = [
            n
            for (n,) in self.conn.execute("SELECT name FROM accounts")
            if n != name and n.casefold() == name.casefold()
        ]
        hint = f"did you mean {alike[0]!r}?" if len(alike) == 1 else otherwise
        return f"no account named {name!r}" + (f" ({hint})" if hint else "")

    def remove_account(self, name: str, features: Sequence[AccountShare]) -> None:
        """Delete an account that nothing refers to: one added by mistake (a typo, a name that differs
        from another's in case only).

        An account with users, or with any mail, SMS, answer from a phone, premium service or panel
        history, is refused (Conflict) naming what it has: those rows are its billing and audit trail.
        So is one whose bill was mailed (a `mailed/<month>/<id>` mark, even of a month without
        traffic): its file was sent and stays on disk (R-5.1), yet a month written again without the
        account would leave that file beside a summary that no longer names it, and the mark would
        pass to the next account given its id.
        Its networks and billing addresses go with it (ON DELETE CASCADE), and so do its usage
        counters and limit notices, keyed by its id, which SQLite hands to the next account added.
        The `features` say what of their rows holds it, and delete theirs that go with it.
        """
        with self.changing_settings():
            acc = self.get_account(name)
            own = [what.format(name=acc.name) for table, what in _ACCOUNT_HOLDS if self._holds(table, acc.id)]
            theirs = [what for feature in features for what in feature.holds(self.conn, acc.id)]
            has = own + theirs + ([_AUDIT_HOLDS[1]] if self._holds(_AUDIT_HOLDS[0], acc.id) else [])
            billed = [  # (`billing_reports.repo.mailed_key`: "mailed/YYYY-MM/<id>")
                str(row[0])
                for row in self.conn.execute(
                    "SELECT substr(key, 8, 7) FROM billing_state WHERE key GLOB 'mailed/????-??/' || ?"
                    " ORDER BY key",
                    (str(acc.id),),
                )
            ]
            if billed:
                has.append(f"a bill mailed for {', '.join(billed)} (its billing history)")
            if has:
                raise Conflict(f"account {acc.name!r} is not removed: it has {', '.join(has)}")
            for feature in features:
                if feature.release is not None:
                    feature.release(self.conn, acc.id)
            scope = f"account:{acc.id}"
            self.conn.execute("DELETE FROM usage WHERE scope = ?", (scope,))
            self.conn.execute("DELETE FROM limit_notices WHERE scope = ?", (scope,))
            self.conn.execute("DELETE FROM accounts WHERE id = ?", (acc.id,))

    def _holds(self, table: str, account_id: int) -> bool:
        return (
            self.conn.execute(f"SELECT 1 FROM {table} WHERE account_id = ? LIMIT 1", (account_id,)).fetchone()
            is not None
        )

    def account_by_id(self, account_id: int) -> Account:
        return self.db.settings.get("account", account_id, lambda: self._account_by_id(account_id))

    def _account_by_id(self, account_id: int) -> Account:
        row = self.conn.execute(f"SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?", (account_id,)).fetchone()
        if row is None:
            raise NotFound(f"no account with id {account_id}")
        return self._account(row)

    def list_accounts(self) -> list[Account]:
        return [
            self._account(r) for r in self.conn.execute(f"SELECT {ACCOUNT_COLS} FROM accounts ORDER BY name")
        ]

    def update_account(self, name: str, **settings: Any) -> Account:
        unknown = set(settings) - set(ACCOUNT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown account setting(s): {', '.join(sorted(unknown))}")
        if "cut_from" in settings:  # phrases are one line each (`adminrules.cut_from_list`)
            settings["cut_from"] = "\n".join(settings["cut_from"] or ()) or None
        if "countries" in settings:  # ISO regions (`accountrules.countries_list`), stored "PL,DE"
            settings["countries"] = ",".join(settings["countries"] or ()) or None
        acc = self.get_account(name)
        if settings:
            assignments = ", ".join(f"{k} = ?" for k in settings)
            window = (settings.get("quiet_start", acc.quiet_start), settings.get("quiet_end", acc.quiet_end))
            with self.changing_settings():
                self.conn.execute(
                    f"UPDATE accounts SET {assignments} WHERE id = ?", (*settings.values(), acc.id)
                )
                if window != (acc.quiet_start, acc.quiet_end):
                    self._release_held(acc.id, *window)
                if acc.bulk and not settings.get("bulk", True):
                    # Held only because the account's mail was all bulk: no longer, so they go now.
                    self._release_held(acc.id, None, None, own_mail_bulk=False)
        return self.get_account(name)

    def _release_held(
        self, account_id: int, start: str | None, end: str | None, *, own_mail_bulk: bool | None = None
    ) -> int:
        """Give the account's SMS held for quiet hours the release time of its new window.

        Acceptance stamps the end of the window on the parts (the dispatcher claims by due time),
        so a window turned off or shortened left them held until the old end, and only a
        `queue retry` of each sent them. Each goes when a bulk SMS written now would: at once
        when now is outside the new window, else at its end; its validity, counted from its
        release, moves with it. Only the parts change: the dispatcher looks for due parts at
        least once a second. Returns how many parts moved. `own_mail_bulk=False`: only those whose
        mail did not itself ask to wait (held by the account's `bulk` setting alone).
        """
        now = self.clock()
        release = release_time(datetime.fromtimestamp(now, self.zone), start, end)
        until = now if release is None else release.timestamp()
        # Set-based, in SQLite: a row each from Python held the write lock (and SMTP) for 0.8 s per 50,000
        # held parts; those already due at `until` (a window changed at its start) are not touched.
        held = (
            "FROM parts p JOIN messages m ON m.id = p.message_id"
            f" WHERE m.account_id = :account AND {_HELD_FOR_QUIET} AND p.next_attempt_at != :until"
            + ("" if own_mail_bulk is None else f" AND m.bulk = {int(own_mail_bulk)}")
        )
        binds = {"account": account_id, "note": SUSPENDED_HOLD, "now": now, "until": until}
        # Messages first, while their parts still carry the old due time the validity counts from.
        self.conn.execute(
            "UPDATE messages SET expires_at = expires_at + :until - (SELECT MIN(p.next_attempt_at)"
            f" FROM parts p INDEXED BY parts_message WHERE p.message_id = messages.id AND {_HELD_FOR_QUIET})"
            f" WHERE id IN (SELECT p.message_id {held})",
            binds,
        )
        return self.conn.execute(
            "UPDATE parts SET expires_at = expires_at + :until - next_attempt_at, next_attempt_at = :until"
            f" WHERE id IN (SELECT p.id {held})",
            binds,
        ).rowcount

    def set_account_networks(self, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Account:
        acc = self.get_account(name)
        with self.changing_settings():
            for cidr in add:
                self.conn.execute(
                    "INSERT INTO account_networks (account_id, cidr) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (acc.id, cidr),
                )
            # By the network a row stands for: one stored as typed ("10.0.0.1/8", before they were
            # stored as networks) goes with the network it trusts, 10.0.0.0/8.
            gone = {_network(c) for c in remove}
            for cidr in acc.networks:
                if _network(cidr) in gone:
                    self.conn.execute(
                        "DELETE FROM account_networks WHERE account_id = ? AND cidr = ?", (acc.id, cidr)
                    )
        return self.get_account(name)

    def all_networks(self) -> Iterator[tuple[int, str]]:
        def load() -> tuple[tuple[int, str], ...]:
            return tuple(self.conn.execute("SELECT account_id, cidr FROM account_networks"))

        return iter(self.db.settings.get("networks", None, load))

    def relay_owners(self, client_ip: str | None) -> frozenset[int]:
        """`gateway.relaynets.relay_owners` of the networks now, kept per address in the settings
        cache: asked at MAIL and again by the accepting write, parsing the address and every network
        each time cost the two processes some 60,000 instructions a mail."""
        return self.db.settings.get(
            "relay_owners", client_ip, lambda: frozenset(relay_owners(client_ip, self.all_networks()))
        )

    def add_user(self, email: str, account: str, *, password_hash: str | None = None) -> User:
        acc = self.get_account(account)
        with self.changing_settings():
            try:
                self.conn.execute(
                    "INSERT INTO users (email, account_id, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    (email.strip(), acc.id, password_hash, self.clock()),
                )
            except self.db.IntegrityError as exc:
                raise Conflict(f"user {email!r} exists already") from exc
        user = self.find_user(email)
        assert user is not None
        return user

    def find_user(self, email: str) -> User | None:
        email = email.strip()
        return self.db.settings.get("user", email, lambda: self._find_user(email))

    def _find_user(self, email: str) -> User | None:
        row = self.conn.execute(
            f"SELECT {USER_COLUMNS} FROM {USERS_FROM} WHERE u.email = ?",
            (email,),
        ).fetchone()
        return User(*row) if row else None

    def list_users(self, account: str | None = None) -> list[User]:
        sql = f"SELECT {USER_COLUMNS} FROM {USERS_FROM}"
        args: tuple[Any, ...] = ()
        if account is not None:
            sql += " WHERE a.name = ?"
            args = (account,)
        return [User(*r) for r in self.conn.execute(sql + " ORDER BY a.name, u.email", args)]

    def remove_user(self, email: str) -> None:
        """Take a user off the ACL, whether or not they ever sent mail.

        Their emails stay for the audit trail and billing (R-2.5, R-5: both read the sender from
        `mail_from`) and only lose the link the foreign key would otherwise refuse to orphan. Their
        usage counters and limit notices go: they are keyed by the user's id, which SQLite hands to
        the next user added (the table has no AUTOINCREMENT), and that user must start from zero.
        The users trigger bumps the settings generation, so a running daemon refuses them at once.
        """
        with self.changing_settings():
            row = self.conn.execute("SELECT id FROM users WHERE email = ?", (email.strip(),)).fetchone()
            if row is None:
                raise NotFound(f"no user {email!r}")
            user_id, scope = row[0], f"user:{row[0]}"
            self.conn.execute("UPDATE emails SET user_id = NULL WHERE user_id = ?", (user_id,))
            self.conn.execute("DELETE FROM usage WHERE scope = ?", (scope,))
            self.conn.execute("DELETE FROM limit_notices WHERE scope = ?", (scope,))
            self.conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

    def set_user(self, email: str, **fields: Any) -> User:
        allowed = {"password_hash", "monthly_limit", "daily_limit", "role"}
        if fields.get("role", "user") not in ROLES:
            raise ValueError(f"unknown role {fields['role']!r}: one of {', '.join(ROLES)}")
        if set(fields) - allowed:
            raise ValueError(f"unknown user setting(s): {', '.join(sorted(set(fields) - allowed))}")
        user = self.find_user(email)
        if user is None:
            raise NotFound(f"no user {email!r}")
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)
            with self.changing_settings():
                self.conn.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*fields.values(), user.id))
        found = self.find_user(email)
        assert found is not None
        return found

    def billing_addresses(self, account_id: int) -> list[str]:
        """Where the account's monthly billing file goes (R-5.1), besides the operator."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT address FROM account_billing_to WHERE account_id = ? ORDER BY address", (account_id,)
            )
        ]

    def set_billing_addresses(self, name: str, addresses: Sequence[str]) -> list[str]:
        """Replace the account's billing addresses; an empty list turns its billing mail off."""
        acc = self.get_account(name)
        with self.changing_settings():
            self.conn.execute("DELETE FROM account_billing_to WHERE account_id = ?", (acc.id,))
            self.conn.executemany(
                "INSERT INTO account_billing_to (account_id, address) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(acc.id, a.strip()) for a in addresses],
            )
        return self.billing_addresses(acc.id)

    def has_role(self, role: str) -> bool:
        return self.conn.execute("SELECT 1 FROM users WHERE role = ? LIMIT 1", (role,)).fetchone() is not None

    def add_usage(self, scopes: list[str], periods: list[str], parts: int) -> None:
        """Charge `parts` to every (scope, period) counter, in one statement, whose text is made once per
        number of counters (`_USAGE`): made and hashed anew for the statement cache at every mail."""
        values = [value for scope in scopes for period in periods for value in (scope, period, parts)]
        if (sql := _USAGE.get(len(values))) is None and values:
            marks = ", ".join(["(?, ?, ?)"] * (len(values) // 3))
            sql = _USAGE[len(values)] = f"INSERT INTO usage (scope, period, parts) VALUES {marks}{_ADD}"
        if sql is not None:
            self.conn.execute(sql, values)

    def usage(self, scope: str, period: str) -> int:
        row = self.conn.execute(
            "SELECT parts FROM usage WHERE scope = ? AND period = ?", (scope, period)
        ).fetchone()
        return int(row[0]) if row else 0


def _network(cidr: str) -> str:
    """A network as removal compares it: a row stored with a zone id (refused since) by its plain form."""
    address, slash, prefix = cidr.strip().partition("/")
    try:
        return str(ipaddress.ip_network(address.partition("%")[0] + slash + prefix, strict=False))
    except ValueError:
        return cidr  # refused where it is typed; a stored oddity goes only by its own text
