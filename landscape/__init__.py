"""Landscape: turn research documents into a navigable map of a field."""

__version__ = "0.1.0"
