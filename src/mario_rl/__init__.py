"""mario-rl: reinforcement learning agents for Super Mario Bros. (NES)."""

__version__ = "0.1.0"
