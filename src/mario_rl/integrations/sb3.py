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

`save_sb3_model(model, path, config)` saves an SB3 PPO model with the `EnvConfig` it was
trained on, so `mario-rl eval/watch/race path.zip` can play it like any checkpoint
(`policy_from_zip`). Only its weights are read (`weights_only=True`), never SB3's pickled
parts, so a zip from elsewhere cannot run code; the policy must be SB3's default
`CnnPolicy` for image observations.

Gymnasium's batched infos become SB3's list of per-env dicts; an ended episode's last
observation goes to `infos[i]["terminal_observation"]` and a truncation (not a death) sets
`infos[i]["TimeLimit.truncated"]`, so SB3 bootstraps it as it does behind its own TimeLimit.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as error:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "mario_rl.integrations.sb3 needs Stable-Baselines3: pip install -e '.[sb3]'"
    ) from error

from mario_rl.env.pipeline import EnvConfig, make_env
from mario_rl.env.vector import make_vector_env
from mario_rl.runs import CheckpointError, plain_value

ENV_CONFIG_ENTRY = "mario_rl_env_config.json"
"""The zip entry `save_sb3_model` adds: the training `EnvConfig`, as JSON."""


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
            own[key] = plain_value(value[index])
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


def make_sb3_vec_env(num_envs: int, config: EnvConfig, seed: int | None = None) -> SB3VecEnv:
    """`make_vector_env(num_envs, config, seed)` for SB3: env i seeded with `seed + i`."""
    envs = SB3VecEnv(make_vector_env(num_envs, config, seed))
    if seed is not None:
        envs.seed(seed)
    return envs


def save_sb3_model(model: Any, path: str | Path, config: EnvConfig) -> Path:
    """`model.save(path)`, plus the `EnvConfig` it was trained on inside the zip."""
    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_name(path.name + ".zip")
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(ENV_CONFIG_ENTRY, json.dumps(config.to_dict(), indent=2))
    return path


def policy_from_zip(path: str | Path, device: str | torch.device = "cpu"):
    """An SB3 PPO zip saved by `save_sb3_model`, as a `mario_rl.agents.Policy`."""
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    from mario_rl.policy import Policy

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in (ENV_CONFIG_ENTRY, "policy.pth")}
    except KeyError:
        raise CheckpointError(
            f"{path}: not an SB3 model saved with mario_rl.integrations.sb3.save_sb3_model "
            "(it needs the env config it was trained on)"
        ) from None
    except (zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{path}: not a readable SB3 model ({error})") from error
    try:
        config = EnvConfig(**json.loads(entries[ENV_CONFIG_ENTRY]))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: a damaged env config ({error})") from error
    weights = entries["policy.pth"]
    try:
        state = torch.load(io.BytesIO(weights), map_location=device, weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: refused, its policy.pth needs pickle to load") from error
    env = make_env(config)
    try:
        policy = ActorCriticCnnPolicy(
            env.observation_space, env.action_space, lr_schedule=lambda _: 0.0
        ).to(device)
    finally:
        env.close()
    try:
        policy.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: the weights do not fit SB3's default CnnPolicy on this env "
            f"({str(error).splitlines()[0]})"
        ) from error
    policy.set_training_mode(False)

    def distribution(obs: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            observed, _ = policy.obs_to_tensor(obs)
            return policy.get_distribution(observed).distribution.probs.cpu()

    return Policy(
        "sb3-ppo",
        config,
        int(env.action_space.n),
        greedy=lambda obs: distribution(obs).argmax(dim=1).numpy(),
        checkpoint_path=str(path),
        probabilities=lambda obs: distribution(obs).numpy(),
    )
