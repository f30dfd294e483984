"""The runyard client: runs, config, summary, journal, and the process hooks."""
