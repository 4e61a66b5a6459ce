"""CLI commands for the understanding part of Landscape."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Attach this module's commands to the `landscape` group."""
