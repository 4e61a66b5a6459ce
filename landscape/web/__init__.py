"""The web site and JSON API of Landscape (`landscape serve`, `landscape export --format site`)."""

from . import security  # noqa: F401 - registers the bounded path integer before routes compile
