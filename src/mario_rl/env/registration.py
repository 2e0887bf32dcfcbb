"""Gymnasium ids for the project's pipeline, registered when `mario_rl` is imported.

    import gymnasium as gym
    import mario_rl  # noqa: F401  (registers the ids)

    env = gym.make("mario_rl/SuperMarioBros-1-1-v0", actions="right_only", resize=(42, 42))
    envs = gym.make_vec("mario_rl/SuperMarioBros-1-1-v0", num_envs=4, actions="right_only")

Keyword arguments are `EnvConfig` fields; `mario_rl/SuperMarioBros-v0` is the whole game.
Registration imports only Gymnasium: the emulator loads at the first `gym.make`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from mario_rl.env.levels import Level, all_levels

NAMESPACE = "mario_rl"


def make_registered(level: str, render_mode: str | None = None, **config: Any) -> gym.Env:
    """The entry point of every id: `make_env(EnvConfig(level=level, **config))`."""
    from mario_rl.env.pipeline import EnvConfig, make_env

    return make_env(EnvConfig(level=level, **config), render_mode=render_mode)


def register_envs() -> list[str]:
    """Register `mario_rl/SuperMarioBros-W-S-v0` for the 32 levels and the whole game."""
    ids = []
    for level in [*all_levels(), Level()]:
        env_id = f"{NAMESPACE}/{level.gym_id}"
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point=f"{__name__}:make_registered",
                kwargs={"level": level.name},
            )
        ids.append(env_id)
    return ids
