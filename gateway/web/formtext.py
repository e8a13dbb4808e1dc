"""A posted form's fields as text: the panel's forms have no file fields.

A multipart form may send any field as a file (a part with `filename=`), which Starlette hands over
as an `UploadFile`; `str()` of it went on as the field's value. POST /users with its `email` sent
so was answered "UploadFile(filename='x.txt', size=14, headers=Headers({...})) is not an email
address", such a value went back into the page's fields when another one was refused, and a
checkbox sent so was taken as unticked. A form with a file part is now refused as a whole (400,
naming the field) before a handler reads it (gateway/web/security.py `guarded`, the login), and
every field is read through `text`/`texts`, which never give anything but `str`.
"""

from __future__ import annotations

from starlette.datastructures import FormData

SHOWN_NAME = 40  # characters of a field's name the refusal quotes (the name is the client's)


def sent_as_file(name: str) -> str:
    """What the admin is told of a form whose field `name` came as a file."""
    return (
        f"the form's field {name[:SHOWN_NAME]!r} was sent as a file, and the panel's forms take only"
        " typed text: send the form from the panel's own page"
    )


class NotText(Exception):
    """A field read as text was sent as a file."""

    def __init__(self, field: str) -> None:
        super().__init__(sent_as_file(field))
        self.field = field


async def file_field(form: FormData) -> str | None:
    """The name of the form's first field sent as a file; None when every one is text. The form's
    files are then closed: nothing else closes them (Starlette leaves that to `Request.close`,
    which no route calls), so each one was left to the garbage collector."""
    sent = next((name for name, value in form.multi_items() if not isinstance(value, str)), None)
    if sent is not None:
        await form.close()
    return sent


def text(form: FormData, name: str, default: str = "") -> str:
    """The field `name` as posted, `default` when it is absent; NotText when it came as a file."""
    value = form.get(name, default)
    if not isinstance(value, str):
        raise NotText(name)
    return value


def texts(form: FormData, name: str) -> list[str]:
    """Every value of the field `name` (ticked checkboxes of one name); NotText when one is a file."""
    values: list[str] = []
    for value in form.getlist(name):
        if not isinstance(value, str):
            raise NotText(name)
        values.append(value)
    return values
