"""The CS229 report's agent: tabular Q-learning on Mario's symbolic RAM state.

Yizheng Liao, Kun Yi and Zhe Yang, "CS229 Final Report: Reinforcement Learning to Play
Mario" (Stanford, 2012) learn Mario with a Q-table over a small symbolic state (Mario's
mode, motion, stuck / on ground / can jump / collided, enemies in 8 directions at 3 ranges,
kills by stomp and fire, 4 obstacle bits ahead; `mario_rl.env.ram.symbolic_state`), with
Q ~ U(-0.1, 0.1), alpha(s, a) = alpha0 / visits(s, a), alpha0 0.8, gamma 0.6, epsilon 0.3,
12 actions, a shaped reward, training rotated over Mario's three modes, and an evaluation
every 20 episodes with alpha 0 and epsilon 0.01. This file is that agent, in order:
settings, acting and evaluation (the score), the training loop and the trained policy
(its commands: `mario_rl.cli.cs229`). The decision-level env it plays (the state's bits,
the shaped reward, the mode schedule) is `mario_rl.env.symbolic`, which env worker
processes import without PyTorch.

One decision every k = 6 frames (`CS229Config.frames_per_decision`): at full run speed
Mario moves about one 16-px tile in 6 frames, so consecutive decisions see a changed state
(with k = 1..2 most transitions are self-loops that the 1/visits learning rate averages
away), gamma 0.6 then looks about 2.5 decisions (15 frames, a short hop) ahead, and the
emulator, not the table, sets the speed (one state read per 6 frames).

Beyond the report, `CS229Config.gap_feature` adds one bit to the state: a pit in the next
two tile columns. The report's state cannot tell a pit from flat ground, and on 1-1 the
pits are where most of its training episodes end.

The report's enemy bits: near, mid and far per direction (24 bits). By default the state
keeps the nearest range per direction (16 bits), which says all 24 exactly if the windows
are nested; `CS229Config.enemy_rings` reads them as rings instead (mid = 7x7 less 3x3,
far = 11x11 less 7x7), which also tells "and another enemy further out the same way"
(in about 5% of the decisions on 1-1: `benchmarks/cs229_state_bits.py`).
"""

from __future__ import annotations

import csv
import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mario_rl.agents import Policy
from mario_rl.agents.tabular import (
    QTable,
    StateEncoding,
    TabularAgent,
    TabularConfig,
    epsilon_greedy,
)
from mario_rl.env.actions import action_set
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.ram import SYMBOLIC_ENCODING_VERSION
from mario_rl.env.symbolic import (
    RewardWeights,
    SymbolicSettings,
    close_in_turn,
    make_symbolic_env,
    make_symbolic_envs_in_turn,
    reset_in_turn,
    training_mode,
)
from mario_rl.env.vector import StepsInTurn, drop_pending_step
from mario_rl.env.wrappers import EPISODE_STATS
from mario_rl.runs import (
    Budget,
    MetricsLogger,
    RunConfig,
    RunDir,
    Step,
    file_beside,
    list_checkpoints,
    plain_value,
)

ALGO = "tabular"
"""The name `mario-rl train --algo` and run directories use."""
ACTION_SET = "cs229"
"""{left, right, stay} x {jump, no} x {speed, no}: 12 actions."""
ENCODING = StateEncoding("cs229-symbolic", SYMBOLIC_ENCODING_VERSION)
"""What the Q-table's keys are: `pack_symbolic` codes of this RAM reader version."""
GAP_ENCODING = StateEncoding("cs229-symbolic+gap", SYMBOLIC_ENCODING_VERSION)
"""The keys with `CS229Config.gap_feature`: the code plus the gap bit
(`mario_rl.env.symbolic.GAP_BIT`)."""
RINGS_ENCODING = StateEncoding("cs229-symbolic-rings", SYMBOLIC_ENCODING_VERSION)
"""The keys with `CS229Config.enemy_rings`: `pack_symbolic_rings` codes."""
RINGS_GAP_ENCODING = StateEncoding("cs229-symbolic-rings+gap", SYMBOLIC_ENCODING_VERSION)
"""`enemy_rings` and `gap_feature`: the rings code plus the gap
bit (`mario_rl.env.symbolic.RINGS_GAP_BIT`)."""
STUDY_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("default (alpha0 0.8 / visits, gamma 0.6)", {}),
    "fixed-alpha": ("fixed alpha 0.15", {"decay_alpha": False, "alpha": 0.15}),
    "gamma-0.2": ("gamma 0.2", {"gamma": 0.2}),
    "rings": ("enemy bits as rings (24)", {"enemy_rings": True}),
    "gap": ("pit-ahead bit (ours)", {"gap_feature": True}),
}
"""Study variants by name: a label and the `CS229Config` fields changed from the study's
base. The report's studies are the first three (`REPORT_STUDIES`); "rings" keys the table
by the report's 24 enemy bits read as rings instead of the nearest range per direction;
"gap" adds the pit-ahead bit (`CS229Config.gap_feature`)."""
REPORT_STUDIES = ("default", "fixed-alpha", "gamma-0.2")
"""The CS229 report's studies: its defaults, a fixed alpha of 0.15, and gamma 0.2."""


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CS229Config:
    """The CS229 agent's settings; the defaults are the report's unless a field says not."""

    alpha: float = 0.8
    """alpha0 of alpha(s, a) = alpha0 / visits(s, a); the constant alpha if not `decay_alpha`."""
    decay_alpha: bool = True
    """The report's per-pair decaying learning rate (False: constant `alpha`)."""
    gamma: float = 0.6
    """Discount factor."""
    epsilon: float = 0.3
    """Probability of a random action while training."""
    frames_per_decision: int = 6
    """k: emulator frames each action is held (ours; see the module docstring)."""
    stuck_after: int = 8
    """Decisions with x unchanged before Mario counts as stuck (8 x 6 frames = 0.8 s)."""
    mode_block: int = 20
    """Training episodes per Mario mode before rotating small -> big -> fire."""
    eval_every: int = 20
    """Evaluate after every this many training episodes."""
    eval_episodes: int = 10
    """Evaluation episodes (the report: 100; fewer here for speed)."""
    eval_epsilon: float = 0.01
    """Random-action probability in evaluation (alpha is 0 there: nothing is learned)."""
    noop_max: int = 30
    """Random 0..noop_max no-op frames at each reset (docs/architecture.md, section 3)."""
    no_progress_decisions: int = 100
    """Truncate an episode whose best x has not grown for this many decisions (10 s of game
    at k = 6; 0: never; ours: a Mario stuck at a pipe would otherwise burn the 400-s clock)."""
    gap_feature: bool = False
    """Ours, beyond the report: add one state bit, `mario_rl.env.symbolic.gap_ahead` (a pit
    in the next `GAP_LOOKAHEAD` columns). The report's state cannot tell a pit from flat ground."""
    enemy_rings: bool = False
    """The report's 24 enemy bits read as rings (near 3x3, mid 7x7 less 3x3, far 11x11 less
    7x7 tiles, per direction) instead of the nearest range per direction (16 bits)."""
    episodes: int | None = None
    """Training episodes to stop after (None: only the run's frame / time budget)."""
    num_envs: int = 1
    """Ours: envs in worker processes, each computing its symbolic state from its own RAM,
    while this process keeps the one table, choosing and learning for each env's decision
    in turn (1: one env here, the loop as before). Evaluation plays on as many workers."""
    reward: RewardWeights = field(default_factory=RewardWeights)
    """The shaped reward's weights."""

    def __post_init__(self) -> None:
        for name in ("alpha", "gamma", "epsilon", "eval_epsilon"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
        for name in ("frames_per_decision", "stuck_after", "mode_block", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        for name in ("eval_episodes", "noop_max", "no_progress_decisions"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {getattr(self, name)}")
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"episodes: expected a positive integer or None, got {self.episodes}")
        if not isinstance(self.num_envs, int) or self.num_envs < 1:
            raise ValueError(f"num_envs: expected a positive integer, got {self.num_envs!r}")

    @property
    def encoding(self) -> StateEncoding:
        """What this config's state keys are."""
        if self.enemy_rings:
            return RINGS_GAP_ENCODING if self.gap_feature else RINGS_ENCODING
        return GAP_ENCODING if self.gap_feature else ENCODING

    def tabular(self) -> TabularConfig:
        """The `TabularAgent` settings: plain Q-learning."""
        return TabularConfig(
            algo="q",
            alpha=self.alpha,
            decay_alpha=self.decay_alpha,
            gamma=self.gamma,
            epsilon=self.epsilon,
        )

    def symbolic(self) -> SymbolicSettings:
        """What the env (`make_symbolic_env`) takes of these settings."""
        return SymbolicSettings(
            reward=self.reward,
            stuck_after=self.stuck_after,
            gap_feature=self.gap_feature,
            enemy_rings=self.enemy_rings,
        )

    def env_config(self, level: str) -> EnvConfig:
        """The env this agent plays, as an `EnvConfig` (built by `make_symbolic_env`)."""
        return EnvConfig(
            level=level,
            actions=ACTION_SET,
            frame_skip=self.frames_per_decision,
            frame_stack=1,
            noop_max=self.noop_max,
            no_progress_steps=self.no_progress_decisions,
            extra={"observation": f"packed symbolic state ({self.encoding})"},
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CS229Config:
        """Inverse of `dataclasses.asdict`."""
        return cls(**{**values, "reward": RewardWeights(**values["reward"])})


# -- acting and evaluation --------------------------------------------------------------------


def composite_score(x: int, won: bool, mode: int, kills: int, time_left: int) -> float:
    """An episode's composite score: the Mario AI benchmark's weighted fitness (the
    benchmark the report used), on the terms we measure:
    distance (px) + 1024 win + 32 mode at the end + 42 kills + 8 time left (wins only)."""
    return float(x + 1024 * won + 32 * mode + 42 * kills + (8 * time_left if won else 0))


def vector_episode(info: dict[str, Any], index: int) -> dict[str, Any]:
    """`play`'s summary of the episode env `index` of a vector env just ended, from the
    step's `final_info`."""
    final = info["final_info"]
    stats = {key: plain_value(value[index]) for key, value in final[EPISODE_STATS].items()
             if not key.startswith("_")}  # fmt: skip
    return {
        **stats,
        "kills": int(final["kills"][index]),
        "enemies": int(final["enemies"][index]),
        "mode": int(final["mode"][index]),
        "game_time": int(final["start_time"][index]) - int(final["time"][index]),
        "play_frames": int(final["frames"][index]) - int(final["start_frames"][index]),
    }


def table_action(table: QTable, state: int, epsilon: float, rng: np.random.Generator) -> int:
    """Epsilon-greedy on `table` without adding rows: a state never visited gets a uniform
    action (what a fresh U(-0.1, 0.1) row would pick), so evaluation leaves the table as
    it was."""
    if state not in table:
        return int(rng.integers(table.n_actions))
    return epsilon_greedy(table.q(state), epsilon, rng)


def play(
    env: gym.Env,
    choose: Callable[[int], int],
    *,
    mode: int | None,
    learn: Callable[[int, int, float, int, bool], Any] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """One episode; returns `info["mario_episode"]` with kills, enemies, mode and the clock and
    frames spent from the start of control. `learn(s, a, r, s', terminated)` is called
    after every decision when given."""
    obs, info = env.reset(seed=seed, options={"mode": mode})
    state = int(obs)
    while True:
        action = choose(state)
        obs, reward, terminated, truncated, info = env.step(action)
        next_state = int(obs)
        if learn is not None:
            learn(state, action, float(reward), next_state, terminated)
        state = next_state
        if terminated or truncated:
            break
    return {
        **info[EPISODE_STATS],
        "kills": info["kills"],
        "enemies": info["enemies"],
        "mode": info["mode"],
        "game_time": info["start_time"] - info["time"],
        "play_frames": info["frames"] - info["start_frames"],
    }


@dataclass(frozen=True)
class Evaluation:
    """The report's evaluation after `episode` training episodes (`frames` emulator frames)."""

    episode: int
    frames: int
    wall_s: float
    win_rate: float
    """Fraction of evaluation episodes that reached the flag."""
    score: float
    """Mean `composite_score`."""
    kill_pct: float
    """Enemies defeated / enemies that appeared, in %, over all evaluation episodes (capped
    at 100: an enemy can appear and fall between two decisions unseen)."""
    finish_time: float
    """Mean game-clock units from start to flag, over wins (nan without wins)."""
    finish_frames: float
    """Mean frames from start to flag, over wins (nan without wins)."""
    mean_x: float
    """Mean furthest x."""
    unseen_share: float = float("nan")
    """Share of the evaluation's decisions made in a state the table never visited, where
    the action is uniform (a table too sparse for its state space shows here); nan in
    evaluations saved before it was measured."""


def evaluate_table(
    env: gym.Env | list[gym.vector.VectorEnv],
    table: QTable,
    episodes: int,
    epsilon: float,
    rng: np.random.Generator,
    *,
    at: tuple[int, int, float] = (0, 0, 0.0),
) -> Evaluation:
    """`episodes` episodes from the level's true start (small Mario, no-op start) with alpha 0
    (nothing learned) and `epsilon`; `at` = (training episodes, frames, wall seconds).
    `env` may be a list of evaluation envs (`make_symbolic_envs_in_turn`): they play the
    episodes side by side."""
    decisions = unseen = 0

    def choose(state: int) -> int:
        nonlocal decisions, unseen
        decisions += 1
        unseen += state not in table
        return table_action(table, state, epsilon, rng)

    if isinstance(env, list):
        results = _play_in_turn(env, choose, episodes)
    else:
        results = [play(env, choose, mode=0) for _ in range(episodes)]
    wins = [r for r in results if r["flag"]]
    enemies_seen = sum(r["enemies"] for r in results)
    return Evaluation(
        episode=at[0],
        frames=at[1],
        wall_s=at[2],
        win_rate=len(wins) / max(episodes, 1),
        score=float(
            np.mean(
                [
                    composite_score(r["max_x"], r["flag"], r["mode"], r["kills"], r["time_left"])
                    for r in results
                ]
            )
        ),
        kill_pct=100.0 * min(sum(r["kills"] for r in results) / max(enemies_seen, 1), 1.0),
        finish_time=float(np.mean([r["game_time"] for r in wins])) if wins else float("nan"),
        finish_frames=float(np.mean([r["play_frames"] for r in wins])) if wins else float("nan"),
        mean_x=float(np.mean([r["max_x"] for r in results])),
        unseen_share=unseen / max(decisions, 1),
    )


def _play_in_turn(
    envs: list[gym.vector.VectorEnv], choose: Callable[[int], int], episodes: int
) -> list[dict[str, Any]]:
    """`episodes` evaluation episodes on one-env vector envs stepped in turn
    (`make_symbolic_envs_in_turn`), each env starting a new one when its last ends until
    enough have started; `play`'s summaries in the order they ended. Decisions are chosen
    env by env in a fixed order, so a seed fixes the result."""
    steps = StepsInTurn()
    playing = [i < episodes for i in range(len(envs))]
    started = sum(playing)
    results: list[dict[str, Any]] = []
    try:
        states = reset_in_turn(envs)
        for i in np.flatnonzero(playing):
            steps.send(envs[i], np.array([choose(states[i])]))
        while any(playing):
            for i, env in enumerate(envs):
                if not playing[i]:
                    continue
                obs, _, terminated, truncated, info = steps.receive(env)
                if terminated[0] or truncated[0]:
                    results.append(vector_episode(info, 0))
                    if started == episodes:
                        playing[i] = False
                        continue
                    started += 1
                steps.send(env, np.array([choose(int(obs[0]))]))
    except BaseException:
        for env in envs:
            drop_pending_step(env)
        raise
    return results


EVALUATIONS_FILE = "evaluations.csv"
CURVES_FILE = "learning_curves.png"
TABLE_FILE = "q_table.npz"


_CSV_TYPES = [(f, int if f.type == "int" else float) for f in fields(Evaluation)]


def write_evaluations(path: Path, evaluations: list[Evaluation]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, [f.name for f in fields(Evaluation)])
        writer.writeheader()
        writer.writerows(asdict(e) for e in evaluations)


def read_evaluations(run_dir: str | Path) -> list[Evaluation]:
    """The evaluations a `train` run wrote (`evaluations.csv` in its directory)."""
    with (Path(run_dir) / EVALUATIONS_FILE).open(newline="") as file:
        return [
            # A field added later (`unseen_share`) is nan in older files.
            Evaluation(**{f.name: type_of(row.get(f.name, "nan")) for f, type_of in _CSV_TYPES})
            for row in csv.DictReader(file)
        ]


_CURVES = (
    ("win_rate", "win probability"),
    ("score", "composite score"),
    ("kill_pct", "% of enemies killed"),
    ("finish_time", "time to finish (game clock, wins)"),
)


def plot_curves(
    series: dict[str, Sequence[list[Evaluation]]],
    path: Path,
    title: str,
    eval_every: int | None = None,
) -> Path:
    """The report's four learning curves against training episodes: one line per series,
    the mean over its runs (seeds) at each evaluation point (`runs_side_by_side`), with a
    band from their lowest to their highest value when there are several."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 7), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    for index, (name, label) in enumerate(_CURVES):
        axes = figure.add_subplot(2, 2, index + 1)
        plotted = False
        for line, runs in series.items():
            episodes, values = runs_side_by_side(runs, name, eval_every)
            if not episodes:
                continue
            mean, low, high = _mean_and_range(values)
            runs_text = f" ({len(runs)} runs)" if len(runs) > 1 else ""
            marker = "." if len(episodes) < 30 else ""
            drawn = axes.plot(episodes, mean, marker=marker, label=line + runs_text)
            if len(runs) > 1:
                axes.fill_between(episodes, low, high, color=drawn[0].get_color(), alpha=0.2)
            plotted |= not np.isnan(mean).all()
        if not plotted:
            axes.text(0.5, 0.5, "no data yet", ha="center", transform=axes.transAxes)
        axes.set_xlabel("training episodes")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if index == 0:
            axes.set_ylim(-0.05, 1.05)
            axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def runs_side_by_side(
    runs: Sequence[list[Evaluation]], metric: str, eval_every: int | None = None
) -> tuple[list[int], np.ndarray]:
    """The evaluation points of any run, and each run's `metric` there (runs x points; nan
    where a run has none). With `eval_every`, an evaluation counts at the multiple of it
    that it followed: side-by-side envs may finish the due episode a little past it, and
    one run may lack a point (a stop during that evaluation)."""

    def point(evaluation: Evaluation) -> int:
        if eval_every is None:
            return evaluation.episode
        return evaluation.episode // eval_every * eval_every

    episodes = sorted({point(e) for run in runs for e in run})
    column = {episode: index for index, episode in enumerate(episodes)}
    values = np.full((len(runs), len(episodes)), np.nan)
    for row, run in enumerate(runs):
        for e in run:
            values[row, column[point(e)]] = getattr(e, metric)
    return episodes, values


def _mean_and_range(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: mean, lowest and highest over the runs that have a number (nan where
    none has: time to finish without a win)."""
    with warnings.catch_warnings():
        # An all-nan column stays nan; NumPy would also warn about it.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


# -- training ---------------------------------------------------------------------------------


class CS229Trainer:
    """The CS229 loop as a `mario_rl.runs.Trainer`: each `step` is one training episode,
    after every `config.eval_every` of them an `evaluate_table` and the curves redrawn.

    Episode i starts Mario in `training_mode(i, config.mode_block)`. Of `env_config` it takes
    the level: the agent plays its own symbolic env (`config.env_config`). The run directory
    gets the shared logs plus `evaluations.csv`, `learning_curves.png` and the newest
    `q_table.npz`; checkpoints hold the table as `checkpoints/table_<frames>.npz`. A resumed
    run continues the table (values, visit counts), counters, evaluations and RNGs.
    """

    def __init__(
        self,
        run: RunConfig,
        env_config: EnvConfig,
        config: CS229Config,
        device: torch.device,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        if env_config.levels:
            raise ValueError(
                f"levels: the CS229 agent learns one level; expected none beside "
                f"{env_config.level}, got {', '.join(env_config.levels)}"
            )
        self.run, self.config, self.algo = run, config, ALGO
        self.env_config = config.env_config(env_config.level)
        self.rng = np.random.default_rng(run.seed)
        self.eval_rng = np.random.default_rng([run.seed, 1])
        self.frames = self.episodes = 0
        # The evaluations the checkpoint's state follows (None in checkpoints from before
        # this count was saved): one made after it is made again on resuming, its draws
        # from the generator as the checkpoint has it.
        self.checkpointed_evaluations: int | None = None
        if checkpoint is not None:
            self.frames = int(checkpoint["counters"]["frames"])
            self.episodes = int(checkpoint["counters"]["episodes"])
            self.checkpointed_evaluations = checkpoint["counters"].get("evaluations")
        # The table first: a checkpoint that cannot be read fails before any env starts.
        num_actions = len(action_set(ACTION_SET))
        if checkpoint is None:
            table = QTable(num_actions, config.encoding, self.rng)
        else:
            table = QTable.load(table_path(checkpoint), config.encoding, self.rng)
            self.rng.bit_generator.state = checkpoint["table_rng"]
            self.eval_rng.bit_generator.state = checkpoint["eval_rng"]
        self.table = table
        self.agent = TabularAgent(config.tabular(), table, self.rng)
        if checkpoint is not None:
            self.agent.updates = int(checkpoint["counters"]["updates"])
        self.side_by_side = config.num_envs > 1
        self.env: gym.Env | list[gym.vector.VectorEnv]
        self.eval_env: gym.Env | list[gym.vector.VectorEnv]
        if self.side_by_side:
            self.env, self.eval_env = [], []
            try:
                settings, n = config.symbolic(), config.num_envs
                self.env += make_symbolic_envs_in_turn(
                    self.env_config, settings, n, mode_block=config.mode_block,
                    first_episode=self.episodes,
                )  # fmt: skip
                self.eval_env += make_symbolic_envs_in_turn(
                    self.env_config, settings, n, mode_block=None
                )
                self.states = reset_in_turn(self.env, run.seed + self.frames)
                reset_in_turn(self.eval_env, run.seed + self.frames + config.num_envs)
            except BaseException:
                self.close()
                raise
            self.steps = StepsInTurn()
            # Each env's action in flight (None: not sent yet) and the env whose step is
            # taken next: the turn goes on across `step` calls.
            self.sent: list[int] | None = None
            self.next_env = 0
        else:
            self.env = self.eval_env = make_symbolic_env(
                self.env_config, settings=config.symbolic()
            )
        # The first episode seeds the env: of a new run with its seed, of a resumed one with
        # the seed and frame count, as the pixel agents reseed their envs.
        self.reset_seed: int | None = run.seed + self.frames
        self.evaluations: list[Evaluation] = []
        self.run_dir: RunDir | None = None
        self.logger: MetricsLogger | None = None

    @staticmethod
    def identity(env_config: EnvConfig, config: CS229Config) -> tuple[str, str, str]:
        return ALGO, ACTION_SET, "q-table"

    def start(self, run_dir: RunDir, logger: MetricsLogger) -> None:
        self.run_dir, self.logger = run_dir, logger
        if (run_dir.path / EVALUATIONS_FILE).is_file():
            saved = read_evaluations(run_dir.path)
            if self.checkpointed_evaluations is not None:
                self.evaluations = saved[: self.checkpointed_evaluations]
            else:
                self.evaluations = [e for e in saved if e.frames <= self.frames]
        write_evaluations(run_dir.path / EVALUATIONS_FILE, self.evaluations)

    def evaluation_due(self) -> bool:
        """Whether `eval_every` more training episodes ended since the last evaluation: also
        after resuming a run that a stop interrupted during one."""
        if not self.config.eval_episodes:
            return False
        every = self.config.eval_every
        last = self.evaluations[-1].episode // every if self.evaluations else 0
        return self.episodes // every > last

    def done(self, budget: Budget) -> bool:
        episodes_spent = self.config.episodes is not None and self.episodes >= self.config.episodes
        return (budget.spent(self.frames) or episodes_spent) and not self.evaluation_due()

    def step(self, budget: Budget) -> Step:
        config, table = self.config, self.table
        # An evaluation is a step of its own, after the episodes that made it due have been
        # logged: a stop during it loses none of them, and the resumed run makes it.
        if self.evaluation_due():
            scalars = self._evaluate()
            return Step([], last=self.done(budget), scalars=scalars, postfix={"states": len(table)})
        if self.side_by_side:
            episodes = self._decide_side_by_side()
        else:
            episodes = [
                play(
                    self.env,
                    functools.partial(self.agent.act, epsilon=config.epsilon),
                    mode=training_mode(self.episodes, config.mode_block),
                    learn=self.agent.learn,
                    seed=self.reset_seed,
                )
            ]
            self.reset_seed = None
        finished = []
        for episode in episodes:
            self.frames += episode["frames"]
            self.episodes += 1
            finished.append((self.frames, episode))
        scalars = {"charts/epsilon": config.epsilon, "q/states": len(table)}
        return Step(
            finished, last=self.done(budget), scalars=scalars, postfix={"states": len(table)}
        )

    def _evaluate(self) -> dict[str, float]:
        """The report's evaluation now, added to the run's evaluations and curves; returns
        its scalars for the logger."""
        config = self.config
        # A stop during the evaluation checkpoints the generator as it was before it: the
        # evaluation made on resuming starts from the same draws, not from partway through.
        eval_rng_before = self.eval_rng.bit_generator.state
        try:
            evaluation = evaluate_table(
                self.eval_env,
                self.table,
                config.eval_episodes,
                config.eval_epsilon,
                self.eval_rng,
                at=(self.episodes, self.frames, self.logger.wall_seconds),
            )
        except BaseException:
            self.eval_rng.bit_generator.state = eval_rng_before
            raise
        self.evaluations.append(evaluation)
        write_evaluations(self.run_dir.path / EVALUATIONS_FILE, self.evaluations)
        plot_curves(
            {"evaluation": [self.evaluations]},
            self.run_dir.path / CURVES_FILE,
            f"CS229 tabular Q-learning on {self.env_config.level}: {config.eval_episodes} "
            f"evaluation episodes every {config.eval_every} training episodes",
            eval_every=config.eval_every,
        )
        return {
            f"eval/{name}": value
            for name, value in asdict(evaluation).items()
            if name not in ("episode", "frames", "wall_s")
        }

    def _decide_side_by_side(self) -> list[dict[str, Any]]:
        """Decision steps of the envs in turn until an episode ends: as each env's step
        comes back, its transition is learned and its next action chosen and sent while the
        other envs emulate. The turn follows env order, so a seed fixes the run; the ended
        episode."""
        agent, envs = self.agent, self.env
        if self.sent is None:
            self.sent = [self._send(i) for i in range(len(envs))]
        while True:
            i = self.next_env
            self.next_env = (i + 1) % len(envs)
            obs, rewards, terminated, truncated, info = self.steps.receive(envs[i])
            ended = bool(terminated[0] or truncated[0])
            next_state = int(info["final_obs"][0]) if ended else int(obs[0])
            agent.learn(
                self.states[i], self.sent[i], float(rewards[0]), next_state, bool(terminated[0])
            )
            self.states[i] = int(obs[0])
            self.sent[i] = self._send(i)
            if ended:
                return [vector_episode(info, 0)]

    def _send(self, i: int) -> int:
        """Chooses env i's next action and starts its step; the action."""
        action = self.agent.act(self.states[i], self.config.epsilon)
        self.steps.send(self.env[i], np.array([action]))
        return action

    def checkpoint(self, run_dir: RunDir) -> dict[str, Any]:
        table_file = f"table_{self.frames}.npz"
        temporary = run_dir.checkpoints / f".{table_file}.tmp.npz"
        self.table.save(temporary).replace(run_dir.checkpoints / table_file)
        return {
            "algo": ALGO,
            "module": __name__,
            "action_set": ACTION_SET,
            "network": "q-table",
            "env_config": self.env_config.to_dict(),
            "agent_config": asdict(self.config),
            "model_state": {"table_file": table_file, "encoding": str(self.config.encoding)},
            "counters": {
                "frames": self.frames,
                "episodes": self.episodes,
                "updates": self.agent.updates,
                "evaluations": len(self.evaluations),
            },
            "table_rng": self.rng.bit_generator.state,
            "eval_rng": self.eval_rng.bit_generator.state,
        }

    def after_checkpoint(self, run_dir: RunDir) -> None:
        kept = {
            f"table_{p.stem.removeprefix('frames_')}.npz"
            for p in list_checkpoints(run_dir.checkpoints)
        }
        for old in run_dir.checkpoints.glob("table_*.npz"):
            if old.name not in kept:
                old.unlink()
        self.table.save(run_dir.path / TABLE_FILE)

    def close(self) -> None:
        if isinstance(self.env, list):
            close_in_turn(self.env)
            close_in_turn(self.eval_env)
        else:
            self.env.close()


# -- the trained policy ---------------------------------------------------------------------------


def table_path(checkpoint: dict[str, Any]) -> Path:
    """The Q-table file of a checkpoint `CS229Trainer` wrote (beside the checkpoint file)."""
    return file_beside(checkpoint["path"], checkpoint["model_state"]["table_file"])


def load_table(checkpoint: dict[str, Any]) -> QTable:
    """The Q-table of a checkpoint `CS229Trainer` wrote."""
    encoding = CS229Config.from_dict(checkpoint["agent_config"]).encoding
    return QTable.load(table_path(checkpoint), encoding, np.random.default_rng(0))


def policy_from_checkpoint(checkpoint: dict[str, Any], device: torch.device) -> Policy:
    """The greedy table policy (the `mario_rl.agents` interface); observations are packed
    symbolic states, so the policy brings its own `make_env`. States the table never saw
    get a random action, drawn from the policy's `rng` (which evaluation seeds per
    episode). `device` is unused: the table lives in NumPy."""
    table = load_table(checkpoint)
    config = CS229Config.from_dict(checkpoint["agent_config"])

    def greedy(obs: np.ndarray) -> np.ndarray:
        return np.array([table_action(table, int(code), 0.0, policy.rng) for code in np.ravel(obs)])

    policy = Policy(
        ALGO,
        EnvConfig(**checkpoint["env_config"]),
        table.n_actions,
        greedy,
        make_env=functools.partial(make_symbolic_env, settings=config.symbolic()),
        rng=np.random.default_rng(0),
    )
    return policy
