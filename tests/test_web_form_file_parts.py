"""A form field sent as a file is refused by name, never read as the text of Python's repr of it.

POST /users with its `email` as a multipart file part was answered "UploadFile(filename='x.txt',
size=14, headers=Headers({...})) is not an email address"; a refused settings form showed such a
value in its fields again; a checkbox sent so was saved as unticked; a login so was a failed login.
Through the real server (uvicorn with the panel's protocol on 127.0.0.1), as a client posts them.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.test_web_form_errors import SETTINGS
from tests.test_web_limits import panel
from tests.web_helpers import ADMIN, OPERATOR, PASSWORD, csrf_of, login


@asynccontextmanager
async def browser(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with panel(tmp_path) as (_, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            yield c


def file_part(content: str) -> tuple[str, bytes, str]:
    return ("x.txt", content.encode(), "text/plain")


def refusal(r: httpx.Response, name: str) -> None:
    page = html.unescape(r.text)
    assert r.status_code == 400, (r.status_code, page[:2000])
    assert "UploadFile" not in page and "x.txt" not in page, page
    assert f"the form's field '{name}' was sent as a file" in page, page


async def test_a_field_sent_as_a_file_is_refused_by_its_name(tmp_path: Path) -> None:
    async with browser(tmp_path) as c:
        assert (await login(c, OPERATOR)).status_code == 303
        token = csrf_of((await c.get("/users")).text)
        r = await c.post(
            "/users",
            data={"csrf": token, "action": "add", "account": "acme"},
            files={"email": file_part("new@acme.example")},
        )
        refusal(r, "email")
        assert "new@acme.example" not in (await c.get("/users")).text  # nobody added
        # Refused for another field, the form came back with the file's repr in the sender field.
        token = csrf_of((await c.get("/account?account=acme")).text)
        r = await c.post(
            "/account?account=acme",
            data={"csrf": token, **SETTINGS, "daily_limit": "-1"},
            files={"sender": file_part("+48100200300")},
        )
        refusal(r, "sender")
        # A checkbox sent so was saved as unticked.
        token = csrf_of((await c.get("/account?account=acme")).text)
        r = await c.post(
            "/account?account=acme", data={"csrf": token, **SETTINGS}, files={"bulk": file_part("on")}
        )
        refusal(r, "bulk")


async def test_a_login_with_a_field_sent_as_a_file_is_refused_before_it_is_tried(tmp_path: Path) -> None:
    async with browser(tmp_path) as c:
        token = csrf_of((await c.get("/login")).text)
        r = await c.post(
            "/login", data={"csrf": token, "password": PASSWORD}, files={"email": file_part(ADMIN)}
        )
        refusal(r, "email")
        assert 'name="csrf"' in r.text  # the login page, to log in again
        assert (await login(c, ADMIN)).status_code == 303
