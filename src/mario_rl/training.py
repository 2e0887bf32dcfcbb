"""Training behind one call: which loop trains which agent.

`train(run, env_config, agent)` picks the loop by the type of `agent` (its config
dataclass), so the CLI, `levels-table` and the benchmarks never repeat that choice, and a
new agent is one entry in `TRAINERS` and one in `ALGO_CONFIGS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mario_rl.agents import cs229, dqn, ppo
from mario_rl.env.pipeline import EnvConfig
from mario_rl.runs import RunConfig

AgentConfig = dqn.DQNConfig | ppo.PPOConfig | cs229.CS229Config


def _train_cs229(
    run: RunConfig,
    env_config: EnvConfig,
    config: cs229.CS229Config,
    resume: str | Path | None = None,
    preset: str | None = None,
) -> Path:
    """The CS229 agent builds its own symbolic env: of `env_config` it takes the level."""
    if resume is not None:
        raise ValueError("the CS229 tabular agent cannot resume a run; start a new one")
    return cs229.train(run, config, env_config.level)


TRAINERS: dict[type, Callable[..., Path]] = {
    dqn.DQNConfig: dqn.train,
    ppo.PPOConfig: ppo.train,
    cs229.CS229Config: _train_cs229,
}
"""The training loop of each agent config type: `(run, env_config, agent, resume, preset)`."""
ALGO_CONFIGS: dict[str, type] = {
    "dqn": dqn.DQNConfig,
    "ddqn": dqn.DQNConfig,
    "ppo": ppo.PPOConfig,
    "ppo-icm": ppo.PPOConfig,
    cs229.ALGO: cs229.CS229Config,
}
"""The config type of each `algo` a run's config.json may name (for `--resume`)."""


def config_class(algo: str) -> type:
    """The agent config dataclass of runs whose config.json says `algo`."""
    try:
        return ALGO_CONFIGS[algo]
    except KeyError:
        raise ValueError(
            f"unknown algo {algo!r}: expected one of {', '.join(ALGO_CONFIGS)}"
        ) from None


def train(
    run: RunConfig,
    env_config: EnvConfig,
    agent: AgentConfig,
    resume: str | Path | None = None,
    preset: str | None = None,
) -> Path:
    """Train `agent` with its own loop until the run's budget is spent; the run directory."""
    try:
        trainer = TRAINERS[type(agent)]
    except KeyError:
        raise TypeError(f"no training loop for {type(agent).__name__}") from None
    return trainer(run, env_config, agent, resume=resume, preset=preset)
