"""Analyses the dashboard shows (parameter importance of a sweep's metric)."""
