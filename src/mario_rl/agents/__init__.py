"""Agents, one file per family, and the small interface evaluation and recording use.

Every agent saves checkpoints with `mario_rl.runs.save_checkpoint`, a dict holding at least:

    format_version  int, filled in by `save_checkpoint`
    algo            str, e.g. "dqn", "ddqn", "ppo"
    module          str, the agent's module, e.g. "mario_rl.agents.dqn"
    action_set      str, the `EnvConfig.actions` name it was trained with
    network         str, e.g. "nature", "nature+dueling"
    env_config      dict, `EnvConfig.to_dict()` of the training env
    model_state     the network's `state_dict()` (or the agent's table)

and its module defines `policy_from_checkpoint(checkpoint: dict, device) -> Policy`.
`load_policy(path)` reads the checkpoint and calls that function, so `mario-rl eval` and
`mario-rl record` work for any agent that follows these two rules.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from mario_rl.env.actions import ACTION_SETS
from mario_rl.policy import Policy
from mario_rl.runs import CheckpointError, load_checkpoint

AGENTS_PACKAGE = "mario_rl.agents."
AGENT_MODULES = tuple(AGENTS_PACKAGE + name for name in ("dqn", "ppo", "cs229", "random_actions"))
"""The modules a checkpoint may name: only this package's own agents are ever imported."""
__all__ = ["AGENT_MODULES", "Policy", "load_policy"]


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> Policy:
    """The policy in a checkpoint file, a run directory's newest checkpoint, or an SB3 zip.

    Checked before use: the format version (`load_checkpoint`), the agent module, that the
    action set exists and is the one the env config names, and that the network's weights
    fit the network the checkpoint names; each failure is a one-line `CheckpointError`.
    """
    if str(path).endswith(".zip"):
        return _sb3_policy(path, device)
    checkpoint: dict[str, Any] = load_checkpoint(path, device)
    where = checkpoint["path"]
    module = str(checkpoint.get("module", ""))
    if not module.startswith(AGENTS_PACKAGE):
        raise CheckpointError(
            f"{where}: expected a `module` field naming a {AGENTS_PACKAGE}* module, got {module!r}"
        )
    action_set = checkpoint.get("action_set")
    trained_on = (checkpoint.get("env_config") or {}).get("actions", action_set)
    if action_set not in ACTION_SETS or trained_on != action_set:
        raise CheckpointError(
            f"{where}: action set {action_set!r} does not match its env config's "
            f"{trained_on!r} or is not one of {', '.join(ACTION_SETS)}; the file is damaged"
        )
    if module not in AGENT_MODULES:
        raise CheckpointError(
            f"{where}: module {module!r} is not one of this package's agents "
            f"({', '.join(AGENT_MODULES)}); the file is damaged or from another program"
        )
    loader = importlib.import_module(module).policy_from_checkpoint
    try:
        policy: Policy = loader(checkpoint, torch.device(device))
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise CheckpointError(
            f"{where}: a {checkpoint.get('algo')} checkpoint for action set {action_set} / "
            f"network {checkpoint.get('network')} that does not load ({first_line})"
        ) from error
    policy.checkpoint_path = checkpoint["path"]
    # A bundled agent measured with sampling acts that way in watch and race too.
    policy.set_sampling(bool(checkpoint.get("act_by_sampling", False)))
    return policy


def _sb3_policy(path: str | Path, device: str | torch.device) -> Policy:
    """A Stable-Baselines3 PPO zip (`mario_rl.integrations.sb3.save_sb3_model`)."""
    try:
        from mario_rl.integrations.sb3 import policy_from_zip
    except ImportError as error:
        raise CheckpointError(f"{path}: {error}") from error
    return policy_from_zip(path, device)
