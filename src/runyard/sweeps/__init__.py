"""Sweeps: sweep.yaml, search methods, early termination, the controller and the agent."""
