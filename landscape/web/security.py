"""Request-shape rules that hold before any handler runs.

Starlette's `{name:int}` path convertor accepts any run of digits, so `/topics/99999999999999999999`
reached SQLite as an integer it cannot bind (OverflowError, a 500). Integers in paths are bounded
here to what SQLite stores (18 digits fit a signed 64-bit integer), so a longer one matches no
route and is a 404 like any other unknown page. Importing this module (the `landscape.web`
package does) registers the rule before any route is compiled.

The rest of the server's defences live where they act: security headers and the read-only
routes (GET and HEAD only; there is no write endpoint, so no admin token) in `app`, bounded
parameters and page sizes in `params`.
"""

from __future__ import annotations

from starlette.convertors import IntegerConvertor, register_url_convertor

MAX_PATH_INT_DIGITS = 18


class BoundedIntConvertor(IntegerConvertor):
    """A path integer SQLite can bind: at most 18 digits."""

    regex = f"[0-9]{{1,{MAX_PATH_INT_DIGITS}}}"


def install() -> None:
    register_url_convertor("int", BoundedIntConvertor())


install()
