"""Agents, one file per family."""
