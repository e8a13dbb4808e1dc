"""Monthly billing files (SPEC R-5): every SMS of a month per account, in one documented layout.

`monthly` reads a month's rows from the store (streamed, through the SQL in `repo`), `render` turns
them into the file's bytes (pure), `writer` writes the files atomically and `job` decides which
months are due, writes them and queues their mail. The daemon runs `job` from its scheduler; the
command line (`smsgw billing ...`) calls `writer` and `job` the same way.
"""
