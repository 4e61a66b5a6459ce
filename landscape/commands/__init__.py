"""CLI command groups beyond the core ones in landscape.cli; each module has register(main)."""

MODULES = ("semantic", "understanding", "landscape", "web", "sync")
