"""The panel's routes through an ASGI client on the test's loop: every page and role, scoping. The login
and its guards (the lockout, CSRF, security headers) have a module of their own
(test_web_routes_login.py); the `web` fixture and `routes` stay here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from starlette.routing import Route

from gateway.premium import handlers
from gateway.store.accounts import NotFound
from gateway.store.db import Store
from gateway.web.app import WebContext, build_app
from tests.conftest import DOMAIN, STAFF, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.web_helpers import (
    ADMIN,
    OPERATOR,
    PASSWORD,
    PLAIN,
    RIVAL_LEAKS,
    add_mail,
    as_user,
    client,
    csrf_of,
    login,
    panel_store,
    password_hash,
    web_context,
)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebContext]:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    yield web
    web.counts.close()  # the reader's thread and connection (the dashboard opens them)
    store.close()


PUBLIC = {"/login", "/metrics", "/healthz"}
OPERATOR_ONLY = {"/operator/accounts", "/operator/links"}


def routes(web: WebContext, method: str) -> list[str]:
    """Every page of the app for `method`, path parameters filled with acme's own records: a route
    added later is covered by the tests below without editing them."""
    samples = {
        "{id:rowid}": str(web.store.mine),  # type: ignore[attr-defined]
        "{action:str}": "hold",
        "{month}": str(web.store.month),  # type: ignore[attr-defined]
        "{name}": "acme.txt",
    }
    found = []
    for route in build_app(web).routes:
        if isinstance(route, Route) and method in (route.methods or ()) and route.path not in PUBLIC:
            path = route.path
            for key, value in samples.items():
                path = path.replace(key, value)
            assert "{" not in path, f"add a sample for {route.path} to routes()"
            found.append(path)
    return found


async def test_every_page_wants_a_login(web: WebContext) -> None:
    async with client(web) as c:
        for path in routes(web, "GET"):
            r = await c.get(path)
            # The login then goes on to the page asked for.
            back = "/login" if path == "/" else "/login?" + urlencode({"next": path}, safe="/")
            assert r.status_code == 303 and r.headers["location"] == back, path
        for path in routes(web, "POST"):
            assert (await c.post(path, data={})).status_code == 401, path


async def test_pages_per_role(web: WebContext) -> None:
    for email in (OPERATOR, ADMIN):
        async with as_user(web, email) as c:
            for path in routes(web, "GET"):
                r = await c.get(path)
                expected = 403 if path in OPERATOR_ONLY and email != OPERATOR else 200
                assert r.status_code == expected, (email, path, r.text[:300])


async def test_plain_user_and_wrong_password_get_no_session(web: WebContext) -> None:
    async with client(web) as c:
        r = await login(c, PLAIN)
        assert r.status_code == 403 and "no access to the panel" in r.text
        assert (await c.get("/")).status_code == 303
        r = await login(c, ADMIN, "wrong password")
        assert r.status_code == 401 and "wrong email or password" in r.text
        assert (await c.get("/")).status_code == 303


async def test_company_admin_sees_nothing_of_another_account(web: WebContext) -> None:
    theirs = web.store.theirs  # type: ignore[attr-defined]
    async with as_user(web, ADMIN) as c:
        for path in routes(web, "GET"):
            if path in OPERATOR_ONLY:
                continue
            text = (await c.get(path)).text
            for leak in (*RIVAL_LEAKS, "_summary"):
                assert leak not in text, (path, leak)
        for path in (
            f"/messages/{theirs}",
            "/messages?user=boss@rival.example",
            "/users?account=rival",
            "/account?account=rival",
            "/messages.csv?number=%2B48602000002",
            "/premium?account=rival",
            "/conversations?account=rival",
            f"/billing/{web.store.month}/rival.txt",  # type: ignore[attr-defined]
            f"/billing/{web.store.month}/_summary.txt",  # type: ignore[attr-defined]
        ):
            r = await c.get(path)
            assert r.status_code in (200, 404), path
            for leak in ("rival secret text", f'/messages/{theirs}"', "+48602000002</td>", "carl@rival"):
                assert leak not in r.text, (path, leak)
        assert (await c.get(f"/messages/{theirs}")).status_code == 404
        token = csrf_of((await c.get("/users")).text)
        posts = {
            f"/messages/{theirs}/retry": {},
            "/users": {"action": "remove", "email": "carl@rival.example"},
            "/operator/accounts": {"action": "suspend", "name": "rival"},
            "/optouts": {"action": "remove", "number": "+48602000002"},
            "/premium": {"password": "KP901", "account": "rival", "email": "boss@rival.example"},
        }
        for path, data in posts.items():
            r = await c.post(path, data={**data, "csrf": token})
            assert r.status_code in (403, 404), (path, r.status_code)
        for action in ("limits", "password", "role"):
            r = await c.post(
                "/users",
                data={
                    "action": action,
                    "email": "carl@rival.example",
                    "csrf": token,
                    "password": "long enough pw",
                    "role": "admin",
                },
            )
            assert r.status_code == 404, action
        r = await c.post(
            "/account?account=rival", data={"csrf": token, "split_mode": "separate", "dlr_mail": "all"}
        )
        assert r.status_code == 303
        assert web.store.accounts.get_account("rival").split_mode == "concatenated"  # own account changed
        assert web.store.accounts.get_account("acme").split_mode == "separate"
    assert web.store.accounts.find_user("carl@rival.example") is not None
    assert web.store.policy.is_opted_out("+48602000002")
    assert web.store.accounts.get_account("rival").suspended_at is None


async def test_users_page_changes_are_validated_like_the_cli_and_audited(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)

        async def post(**data: str) -> str:
            return (await c.post("/users", data={**data, "csrf": token}, follow_redirects=True)).text

        assert "&#39;nobody&#39; is not an email address" in await post(action="add", email="nobody")
        assert "user new@acme.example added to account acme" in await post(
            action="add", email="new@acme.example"
        )
        assert "exists already" in await post(action="add", email="new@acme.example")
        assert "give a whole number of SMS parts" in await post(
            action="limits", email="new@acme.example", monthly_limit="ten"
        )
        await post(action="limits", email="new@acme.example", monthly_limit="100", daily_limit="none")
        assert "password too short: at least 8 characters" in await post(
            action="password", email="new@acme.example", password="short"
        )
        # the admin's own password opens the window the role below is set in
        text = await post(
            action="password", email="new@acme.example", password="long enough pw", current_password=PASSWORD
        )
        assert "long enough pw" not in text
        assert "only an operator" in await post(action="role", email="new@acme.example", role="operator")
        await post(action="role", email="new@acme.example", role="admin")
        user = web.store.accounts.find_user("new@acme.example")
        assert user and user.monthly_limit == 100 and user.daily_limit is None and user.role == "admin"
        assert user.password_hash and user.password_hash.startswith("scrypt$")
        await post(action="remove", email="new@acme.example", confirm="yes")
        assert web.store.accounts.find_user("new@acme.example") is None
    actions = [(e["actor"], e["action"]) for e in web.repo.audit_log(None)]
    assert actions == [
        (ADMIN, a) for a in ("user.remove", "user.role", "user.password", "user.limits", "user.add")
    ]
    assert all("long enough" not in (e["detail"] or "") for e in web.repo.audit_log(None))


async def test_message_search_pages_by_id_and_exports_csv(web: WebContext) -> None:
    store = web.store
    ids = [
        await store.write(lambda i=i: add_mail(store, "acme", ADMIN, "+48601000009", f"text {i}"))
        for i in range(60)
    ]
    async with as_user(web, ADMIN) as c:
        first = (await c.get("/messages?number=601000009")).text
        assert f">{ids[-1]}</a>" in first and f">{ids[9]}</a>" not in first
        older = (await c.get(f"/messages?number=601000009&before={ids[10]}")).text
        assert f">{ids[9]}</a>" in older and f">{ids[10]}</a>" not in older and 'id="older"' not in older
        csv_text = (await c.get("/messages.csv?number=601000009")).text
        assert len(csv_text.strip().splitlines()) == 61
        assert (await c.get(f"/messages/{ids[0]}")).status_code == 200


async def test_operator_queue_actions_and_accounts(web: WebContext) -> None:
    mine = web.store.mine  # type: ignore[attr-defined]
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        r = await c.post(f"/messages/{mine}/cancel", data={"csrf": token, "confirm": "yes"})
        assert r.status_code == 303
        assert web.store.admin.message_info(mine)["state"] == "cancelled"
        r = await c.post(
            "/operator/accounts", data={"csrf": token, "action": "add", "name": "newco", "networks": "bad"}
        )
        assert "not a network" in r.text
        await c.post("/operator/accounts", data={"csrf": token, "action": "add", "name": "newco"})
        await c.post(
            "/operator/accounts",
            data={"csrf": token, "action": "suspend", "name": "newco", "confirm": "yes"},
        )
        assert web.store.accounts.get_account("newco").suspended_at is not None
        assert "rival" in (await c.get("/messages")).text  # the operator sees every account
    with pytest.raises(NotFound):
        web.store.accounts.get_account("bad")


async def test_panel_removes_a_user_who_sent_mail(web: WebContext) -> None:
    # Defect: Remove answered with an error (the emails' foreign key) for anyone who had sent mail.
    store = web.store
    anna = store.accounts.find_user(PLAIN)
    assert anna is not None

    def sent_by_anna() -> int:
        mid = add_mail(store, "acme", PLAIN, "+48601000007", "from anna")
        store.db.conn.execute(
            "UPDATE emails SET user_id = ? WHERE id = (SELECT email_id FROM messages WHERE id = ?)",
            (anna.id, mid),
        )
        return mid

    mid = await store.write(sent_by_anna)
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        data = {"action": "remove", "email": PLAIN, "csrf": token, "confirm": "yes"}
        r = await c.post("/users", data=data, follow_redirects=True)
        assert r.status_code == 200 and f"user {PLAIN} removed" in r.text
    assert store.accounts.find_user(PLAIN) is None
    assert store.admin.message_info(mid)["mail_from"] == PLAIN  # the audit record stays


def failed_at_the_smsc(store: Store, mid: int) -> None:
    """The message failed as R-2.4 judges it: its parts refused by the SMSC `main`."""
    store.db.conn.execute("UPDATE parts SET state = 'failed', link = 'main' WHERE message_id = ?", (mid,))
    store.db.conn.execute("UPDATE messages SET state = 'failed', finished_at = 0 WHERE id = ?", (mid,))


async def test_operator_resume_judges_the_account_afresh(web: WebContext) -> None:
    # Defect: after a resume the failures before it still counted, so one more failure suspended again.
    store = web.store
    acme = store.accounts.get_account("acme").id

    def failures() -> None:
        for i in range(5):
            mid = add_mail(store, "acme", ADMIN, f"+4860100001{i}", f"fails {i}")
            failed_at_the_smsc(store, mid)
        store.policy.suspend_account(acme, "5 of the last 5 messages failed")

    await store.write(failures)
    assert store.policy.failure_share(acme, 5) == (5, 5)
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/operator/accounts")).text)
        await c.post("/operator/accounts", data={"csrf": token, "action": "resume", "name": "acme"})
    assert store.accounts.get_account("acme").suspended_at is None
    assert store.policy.failure_share(acme, 5) == (0, 0)

    def one_more() -> None:
        mid = add_mail(store, "acme", ADMIN, "+48601000020", "fails after")
        failed_at_the_smsc(store, mid)

    await store.write(one_more)
    assert store.policy.failure_share(acme, 5) == (1, 1)


async def test_logout_ends_the_session(web: WebContext) -> None:
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/")).text)
        assert (await c.post("/logout", data={"csrf": token})).status_code == 303
        assert (await c.get("/")).status_code == 303


def test_cli_sets_the_panel_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli.main import main

    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[gateway]\ndomains = ["sms.example.com"]\nstate_dir = "{tmp_path}"\n'
        '[[smsc]]\nname = "main"\ntype = "smpp"\nport = 2775\nsystem_id = "x"\npassword = "y"\n'
    )
    assert main(["-c", str(conf), "account", "add", "acme"]) == 0
    assert main(["-c", str(conf), "user", "add", "boss@acme.example", "--account", "acme"]) == 0
    assert main(["-c", str(conf), "user", "set", "boss@acme.example", "--role", "admin"]) == 0
    assert main(["-c", str(conf), "user", "list"]) == 0
    assert "boss@acme.example  account acme  password not set  role admin" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["-c", str(conf), "user", "set", "boss@acme.example", "--role", "king"])


async def test_a_company_admin_cannot_touch_the_operators_login(web: WebContext) -> None:
    """The operator's login sits in acme here (as `first_operator` puts it in a client account):
    acme's admin must not set its password and log in as the operator, nor remove or change it."""
    before = web.store.accounts.find_user(OPERATOR)
    async with as_user(web, ADMIN) as c:
        token = csrf_of((await c.get("/users")).text)
        for data in (
            {"action": "password", "password": "attacker-pw-123"},
            {"action": "remove"},
            {"action": "limits", "monthly_limit": "1", "daily_limit": "1"},
            {"action": "role", "role": "user"},
        ):
            r = await c.post("/users", data={"csrf": token, "email": OPERATOR, **data})
            assert r.status_code == 403 and "only an operator" in r.text, data
    assert web.store.accounts.find_user(OPERATOR) == before
    async with client(web) as c:
        assert (await login(c, OPERATOR, "attacker-pw-123")).status_code != 303
    assert all(e["action"] != "user.password" for e in web.repo.audit_log(None))


async def test_a_new_password_ends_the_logins_other_sessions(web: WebContext) -> None:
    async with as_user(web, ADMIN) as mine, as_user(web, ADMIN) as elsewhere:
        token = csrf_of((await mine.get("/users")).text)
        data = {"csrf": token, "action": "password", "email": ADMIN, "password": "a new passphrase"}
        r = await mine.post("/users", data={**data, "current_password": PASSWORD}, follow_redirects=True)
        assert "password set for" in r.text
        assert (await mine.get("/users")).status_code == 200  # the session that set it stays
        assert (await elsewhere.get("/users")).status_code == 303  # the other one is logged out
        # A password set outside the panel (the CLI, another process) ends it too.
        await web.store.write(lambda: web.store.accounts.set_user(ADMIN, password_hash="scrypt$other"))
        assert (await mine.get("/users")).status_code == 303


async def test_premium_figures_are_the_accounts_own_after_a_password_changes_hands(web: WebContext) -> None:
    """rival gives up KP777 and acme gets it: acme's admin sees none of rival's earlier money."""
    repo = handlers.repo(web.store)
    rival = repo.active_service("KP777")
    acme = web.store.accounts.get_account("acme")

    def hand_over() -> None:
        repo.update_service(rival.id, removed_at=web.store.clock())
        repo.add_service("KP777", acme.id, ADMIN, [], [ADMIN])

    await web.store.write(hand_over)
    async with as_user(web, ADMIN) as c:
        page = (await c.get("/premium")).text
        assert "KP777" in page  # acme's service now
        assert "3.69" not in page  # rival's 369 grosze of last time
        assert "7.38" in page
    async with as_user(web, OPERATOR) as c:
        assert "3.69" in (await c.get("/premium")).text  # the operator still sees all of it


async def test_message_page_shows_the_client_ip_of_a_mail_sent_over_smtp(tmp_path: Path) -> None:
    # the audit record of an accepted mail says from which IP it came; the panel shows it.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        store = gw.store
        await store.write(lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="admin"))
        res = await gw.send(mail(f"601123456@{DOMAIN}", "Audited"), source="127.0.0.2")
        assert res.error is None
        mid = store.db.conn.execute("SELECT id FROM messages").fetchone()[0]
        web = web_context(tmp_path, store)
        try:
            async with as_user(web, STAFF) as c:
                page = (await c.get(f"/messages/{mid}")).text
        finally:
            web.counts.close()
    assert '<dd id="client-ip">127.0.0.2</dd>' in page
