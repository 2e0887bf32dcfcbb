"""mario-rl: reinforcement learning agents for Super Mario Bros. (NES)."""

from mario_rl.env.registration import register_envs

__version__ = "0.1.0"

# `gym.make("mario_rl/SuperMarioBros-1-1-v0", ...)` works after `import mario_rl`.
register_envs()
