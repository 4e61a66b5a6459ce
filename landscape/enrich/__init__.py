"""Enrichment: one module per step, run in order by `landscape build` (see pipeline.py)."""
