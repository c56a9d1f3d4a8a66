"""Benchmarks that are run by hand and whose results are committed (see ``REPORT.md``)."""
