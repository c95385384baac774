"""Worked examples; each folder runs on its own (see its README)."""
