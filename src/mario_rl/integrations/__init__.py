"""Adapters to other RL libraries; each needs its optional extra (see pyproject.toml)."""
