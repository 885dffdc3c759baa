"""Audit: the append-only log of every staff action (who, when, what, before and after)."""
