"""Stable-Baselines3 on mario-rl's environments: `pip install -e '.[sb3]'`.

A single env needs nothing from here: `make_env(config)` is a Gymnasium env whose
`info["episode"]` has SB3's `r`, `l`, `t` (`mario_rl.env.wrappers.EpisodeStatistics`), so
`DummyVecEnv([lambda: make_env(config)])` works as it is. What SB3 cannot take is the
project's vector env (`make_vector_env`: worker processes, shared memory, Gymnasium's
SAME_STEP autoreset), because SB3 has its own vector API. `SB3VecEnv` translates:

    from stable_baselines3 import PPO
    from mario_rl.env.pipeline import EnvConfig
    from mario_rl.integrations.sb3 import make_sb3_vec_env

    envs = make_sb3_vec_env(8, EnvConfig(actions="right_only", resize=(42, 42)), seed=0)
    PPO("CnnPolicy", envs).learn(100_000)

Gymnasium's batched infos become SB3's list of per-env dicts; an ended episode's last
observation goes to `infos[i]["terminal_observation"]` and a truncation (not a death) sets
`infos[i]["TimeLimit.truncated"]`, so SB3 bootstraps it as it does behind its own TimeLimit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as error:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "mario_rl.integrations.sb3 needs Stable-Baselines3: pip install -e '.[sb3]'"
    ) from error

from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.vector import make_vector_env


def unbatch_info(info: dict[str, Any], index: int) -> dict[str, Any]:
    """Env `index`'s own info from a Gymnasium vector info (arrays masked by `_key`)."""
    own: dict[str, Any] = {}
    for key, value in info.items():
        mask = info.get(f"_{key}")
        if key.startswith("_") or mask is None or not mask[index]:
            continue
        if isinstance(value, dict):
            own[key] = unbatch_info(value, index)
        else:
            item = value[index]
            own[key] = item.item() if isinstance(item, np.generic) else item
    return own


class SB3VecEnv(VecEnv):
    """A Gymnasium vector env with SAME_STEP autoreset, as an SB3 `VecEnv`."""

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        self.envs = envs
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)

    def reset(self) -> np.ndarray:
        seeds = None if self._seeds[0] is None else list(self._seeds)
        obs, info = self.envs.reset(seed=seeds)
        self.reset_infos = [unbatch_info(info, i) for i in range(self.num_envs)]
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self.envs.step_async(np.asarray(actions))

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, terminated, truncated, info = self.envs.step_wait()
        dones = np.logical_or(terminated, truncated)
        infos = []
        for i in range(self.num_envs):
            if not dones[i]:
                infos.append(unbatch_info(info, i))
                continue
            # SAME_STEP autoreset: obs[i] already starts the next episode.
            ended = unbatch_info(info["final_info"], i)
            ended["terminal_observation"] = info["final_obs"][i]
            ended["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            infos.append(ended)
        return obs, np.asarray(rewards, np.float32), dones, infos

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        values = self.envs.get_attr(attr_name)
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        if indices is not None and list(self._get_indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError("set_attr: the vector env sets an attribute on all envs")
        self.envs.set_attr(attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        results = self.envs.call(method_name, *method_args, **method_kwargs)
        return [results[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        # The workers' wrappers are not visible from here; SB3 asks to decide whether to
        # warn about a missing Monitor, and info["episode"] already follows its convention.
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def make_sb3_vec_env(num_envs: int, config: EnvConfig, seed: int | None = None) -> SB3VecEnv:
    """`make_vector_env(num_envs, config, seed)` for SB3: env i seeded with `seed + i`."""
    envs = SB3VecEnv(make_vector_env(num_envs, config, seed))
    if seed is not None:
        envs.seed(seed)
    return envs
