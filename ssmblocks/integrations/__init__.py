"""Bridges to tools people already use; each module imports its tool lazily and only when used."""
