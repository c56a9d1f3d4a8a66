"""Thin HTTP handlers; the work happens in the modules they call."""
