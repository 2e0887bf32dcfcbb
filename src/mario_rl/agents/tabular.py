"""Tabular Q-learning: the maths as pure functions, a Q-table, a thin agent, the episode loop.

Two write-ups use it. The PyTorch DDQN tutorial (Andrew Grebenisan, "Play Super Mario Bros
with a Double Deep Q-Network", Paperspace blog,
https://blog.paperspace.com/building-double-deep-q-network-super-mario-bros/) learns its
3x3 grid world with Q-learning and with "double Q-learning" (see `q_learning_target`); the
Stanford CS229 report learns Mario from a symbolic state packed into one integer
(`mario_rl.env.ram.pack_symbolic`), with Q ~ U(-0.1, 0.1) on a state's first visit and the
learning rate alpha(s, a) = alpha0 / visits(s, a).

`QTable` keys rows by integer states, so it holds the grid world's 9 cells and the CS229
agent's sparse 32-bit codes alike. It saves to `.npz` only (never pickle) together with the
`StateEncoding` its keys are written in, and refuses to load under another encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from mario_rl.env.gridworld import ENCODING_VERSION as GRID_ENCODING_VERSION
from mario_rl.env.gridworld import GridWorldEnv

ALGOS = ("q", "double-q")
"""'q': Q-learning; 'double-q': the tutorial's double Q-learning with a target table."""
INIT_SCALE = 0.1
"""New Q-table rows start ~ U(-INIT_SCALE, INIT_SCALE) (CS229 report)."""
PROGRESS_WINDOW = 100
"""Episodes averaged in the progress bar's mean return."""


# -- the maths ----------------------------------------------------------------------------


def epsilon_greedy(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """With probability `epsilon` a uniformly random action, else a greedy one.

    Ties between greedy actions are broken uniformly at random, so a row of equal values
    does not always pick action 0.
    """
    if rng.random() < epsilon:
        return int(rng.integers(q_row.shape[0]))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


def greedy_action(q_row: np.ndarray) -> int:
    """The action of highest value (the first one on ties)."""
    return int(np.argmax(q_row))


def visit_alpha(alpha0: float, visits: int) -> float:
    """CS229's per-pair learning rate alpha(s, a) = alpha0 / visits(s, a).

    `visits` counts the update being made, so a pair's first update uses alpha0, its second
    alpha0 / 2, and so on (the 1/n schedule under which tabular Q-learning converges;
    Watkins and Dayan 1992).
    """
    if visits < 1:
        raise ValueError(f"visits: expected at least 1 (this update counts), got {visits}")
    return alpha0 / visits


def q_learning_target(
    reward: float, next_q_row: np.ndarray, gamma: float, terminated: bool
) -> float:
    """The one-step target r + gamma * max_a' Q(s', a'); just r when s' is terminal.

    Only `terminated` stops the bootstrap: a truncated episode (a step limit) still
    bootstraps from s'.

    Q-learning (Watkins 1989; Sutton and Barto 2018, eq. 6.8) takes `next_q_row` from the
    table being learned. The tutorial's "double Q-learning" takes it from a target table
    Q^T, a copy of the learned table Q* refreshed every n updates; its update is
    Q*(s, a) <- Q*(s, a) + alpha * (r + gamma * max_a Q^T(s', a) - Q*(s, a)). That is the
    target-network idea of DQN (Mnih et al. 2015) in a table. It is neither van Hasselt's
    (2010) Double Q-learning (two tables, one updated at random per step and evaluated by
    the other) nor Double DQN (van Hasselt, Guez and Silver 2016), which picks the argmax
    with Q* and evaluates it with Q^T.
    """
    if terminated:
        return reward
    return reward + gamma * float(np.max(next_q_row))


def td_update(q_sa: float, target: float, alpha: float) -> float:
    """Move Q(s, a) a fraction `alpha` towards `target`: Q + alpha * (target - Q)."""
    return q_sa + alpha * (target - q_sa)


# -- the Q-table --------------------------------------------------------------------------


@dataclass(frozen=True)
class StateEncoding:
    """What a Q-table's state keys mean; a saved table loads only under the same one."""

    name: str
    """The state space, e.g. 'grid-3x3' or 'cs229-symbolic'."""
    version: int
    """The version of the code that turns observations into keys."""

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class QTable:
    """Q-values and visit counts per (state, action), for integer state keys.

    A state gets its row on first visit (`row`), with values ~ U(-init_scale, init_scale),
    in arrays that double when full; a dict maps keys to rows. `values`, `visits` and
    `target` are views of the rows so far: take them again after adding states.

    `sync_target` copies the values into a target table Q^T (created by the first call), for
    the tutorial's double Q-learning. A row created after the last copy enters Q^T with its
    initial values, as if it had been copied then.
    """

    _INITIAL_ROWS = 64

    def __init__(
        self,
        n_actions: int,
        encoding: StateEncoding,
        rng: np.random.Generator,
        *,
        init_scale: float = INIT_SCALE,
    ) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions: expected a positive integer, got {n_actions}")
        if init_scale < 0:
            raise ValueError(f"init_scale: expected a value >= 0, got {init_scale}")
        self.n_actions = n_actions
        self.encoding = encoding
        self.init_scale = init_scale
        self._rng = rng
        self._rows: dict[int, int] = {}
        self._keys = np.zeros(self._INITIAL_ROWS, np.int64)
        self._values = np.zeros((self._INITIAL_ROWS, n_actions))
        self._visits = np.zeros((self._INITIAL_ROWS, n_actions), np.int64)
        self._target: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, state: int) -> bool:
        return state in self._rows

    @property
    def states(self) -> np.ndarray:
        """The state keys, in row order."""
        return self._keys[: len(self)]

    @property
    def values(self) -> np.ndarray:
        """Q(s, a), one row per state (a view: writes go into the table)."""
        return self._values[: len(self)]

    @property
    def visits(self) -> np.ndarray:
        """Updates made to each (s, a) (a view: writes go into the table)."""
        return self._visits[: len(self)]

    @property
    def target(self) -> np.ndarray:
        """The target table Q^T, rows as in `values`; exists after the first `sync_target`."""
        if self._target is None:
            raise ValueError("target: expected a table with a target (call sync_target), got none")
        return self._target[: len(self)]

    @property
    def has_target(self) -> bool:
        return self._target is not None

    def row(self, state: int) -> int:
        """The row of `state`, created with random initial values on its first visit."""
        index = self._rows.get(state)
        if index is None:
            index = len(self._rows)
            if index == self._keys.shape[0]:
                self._reserve(2 * index)
            initial = self._rng.uniform(-self.init_scale, self.init_scale, self.n_actions)
            self._rows[state] = index
            self._keys[index] = state
            self._values[index] = initial
            if self._target is not None:
                self._target[index] = initial
        return index

    def q(self, state: int) -> np.ndarray:
        """A copy of Q(state, .), creating the state's row on its first visit."""
        index = self.row(state)  # first: adding a row may replace the arrays
        return self._values[index].copy()

    def sync_target(self) -> None:
        """Copy the values into the target table Q^T."""
        if self._target is None:
            self._target = np.zeros_like(self._values)
        self._target[: len(self)] = self.values

    def _reserve(self, rows: int) -> None:
        grow = rows - self._keys.shape[0]
        if grow <= 0:
            return
        self._keys = np.concatenate([self._keys, np.zeros(grow, np.int64)])
        extra = np.zeros((grow, self.n_actions))
        self._values = np.concatenate([self._values, extra])
        self._visits = np.concatenate([self._visits, extra.astype(np.int64)])
        if self._target is not None:
            self._target = np.concatenate([self._target, extra])

    def save(self, path: str | Path) -> Path:
        """Write the table to `path` (a `.npz` file), with its state encoding."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path: expected a file name ending in .npz, got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "states": self.states,
            "values": self.values,
            "visits": self.visits,
            "init_scale": np.array(self.init_scale),
            "encoding_name": np.array(self.encoding.name),
            "encoding_version": np.array(self.encoding.version),
        }
        if self._target is not None:
            arrays["target"] = self.target
        np.savez(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, encoding: StateEncoding, rng: np.random.Generator) -> QTable:
        """Read a table written by `save`; `encoding` must be the one it was saved with."""
        with np.load(path, allow_pickle=False) as data:
            try:
                found = StateEncoding(str(data["encoding_name"]), int(data["encoding_version"]))
                states, values, visits = data["states"], data["values"], data["visits"]
                init_scale = float(data["init_scale"])
            except KeyError as error:
                raise ValueError(
                    f"{path}: expected a Q-table written by QTable.save, got no {error} in it"
                ) from None
            if found != encoding:
                raise ValueError(
                    f"{path}: expected a Q-table for state encoding {encoding}, got {found}; "
                    "retrain, or load it with the code version that wrote it"
                )
            table = cls(values.shape[1], encoding, rng, init_scale=init_scale)
            table._reserve(len(states))
            table._rows = {int(state): index for index, state in enumerate(states)}
            table._keys[: len(states)] = states
            table.values[:] = values
            table.visits[:] = visits
            if "target" in data:
                table.sync_target()
                table.target[:] = data["target"]
        return table


# -- the agent ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TabularConfig:
    """Settings of a tabular agent.

    The defaults are the grid world's (the tutorial gives none): with them 1,000 episodes of
    the 3x3 grid learn a shortest-path move in every cell, for both algorithms, on each of
    seeds 0-9; with alpha 0.1 and epsilon 0.1 only the first move is reliably learned.
    """

    algo: str = "q"
    """'q' (Q-learning) or 'double-q' (the tutorial's, with a target table)."""
    alpha: float = 0.5
    """Learning rate; with `decay_alpha`, the alpha0 of alpha(s, a) = alpha0 / visits(s, a)."""
    decay_alpha: bool = False
    """Use CS229's per-pair decaying learning rate instead of a constant one."""
    gamma: float = 0.9
    """Discount factor."""
    epsilon: float = 0.2
    """Probability of a random action while training."""
    target_sync_steps: int = 10
    """double-q only: copy Q* into Q^T after every this many updates."""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo: expected one of {', '.join(ALGOS)}, got {self.algo!r}")
        for name in ("alpha", "gamma", "epsilon"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
        if self.target_sync_steps < 1:
            raise ValueError(
                f"target_sync_steps: expected a positive integer, got {self.target_sync_steps}"
            )


class TabularAgent:
    """Epsilon-greedy acting and one-step Q-learning updates on a `QTable`.

    For 'double-q' the table's target Q^T starts as a copy of Q* (unless the table already
    has one, e.g. a loaded one) and is refreshed every `config.target_sync_steps` updates.
    """

    def __init__(self, config: TabularConfig, table: QTable, rng: np.random.Generator) -> None:
        self.config = config
        self.table = table
        self.rng = rng
        self.updates = 0
        if config.algo == "double-q" and not table.has_target:
            table.sync_target()

    def act(self, state: int, epsilon: float) -> int:
        """An epsilon-greedy action in `state`."""
        return epsilon_greedy(self.table.q(state), epsilon, self.rng)

    def learn(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> float:
        """One update of Q(state, action) from a transition; returns the TD error."""
        config = self.config
        row, next_row = self.table.row(state), self.table.row(next_state)
        values, visits = self.table.values, self.table.visits
        visits[row, action] += 1
        if config.decay_alpha:
            alpha = visit_alpha(config.alpha, int(visits[row, action]))
        else:
            alpha = config.alpha
        double = config.algo == "double-q"
        bootstrap = self.table.target[next_row] if double else values[next_row]
        target = q_learning_target(reward, bootstrap, config.gamma, terminated)
        td_error = target - values[row, action]
        values[row, action] = td_update(values[row, action], target, alpha)
        self.updates += 1
        if double and self.updates % config.target_sync_steps == 0:
            self.table.sync_target()
        return td_error


# -- episodes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """What one episode did."""

    total_reward: float
    actions: tuple[int, ...]
    terminated: bool
    """True when it reached a terminal state, False when it was truncated."""
    info: dict[str, Any]
    """The info of its last step."""


def play_episode(
    env: gym.Env,
    agent: TabularAgent,
    *,
    epsilon: float,
    learn: bool,
    seed: int | None = None,
) -> Episode:
    """Play one episode of `env` (integer observations) epsilon-greedily.

    With `learn`, the agent updates after every step; without, it only acts (the report's
    evaluation with alpha 0).
    """
    n_actions = int(env.action_space.n)
    if n_actions != agent.table.n_actions:
        raise ValueError(
            f"env: expected {agent.table.n_actions} actions (the Q-table's), got {n_actions}"
        )
    obs, info = env.reset(seed=seed)
    state = int(obs)
    total_reward = 0.0
    actions: list[int] = []
    while True:
        action = agent.act(state, epsilon)
        obs, reward, terminated, truncated, info = env.step(action)
        next_state = int(obs)
        if learn:
            agent.learn(state, action, float(reward), next_state, terminated)
        total_reward += float(reward)
        actions.append(action)
        if terminated or truncated:
            return Episode(total_reward, tuple(actions), terminated, info)
        state = next_state


def train(
    env: gym.Env,
    agent: TabularAgent,
    episodes: int,
    *,
    seed: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Train for `episodes` episodes at the config's epsilon; returns each episode's return.

    `seed` seeds the first reset only (the env's own generator carries on from there).
    """
    if episodes < 1:
        raise ValueError(f"episodes: expected a positive integer, got {episodes}")
    returns = np.empty(episodes)
    with tqdm(total=episodes, unit="episode", disable=not progress, dynamic_ncols=True) as bar:
        for index in range(episodes):
            episode = play_episode(
                env,
                agent,
                epsilon=agent.config.epsilon,
                learn=True,
                seed=seed if index == 0 else None,
            )
            returns[index] = episode.total_reward
            bar.update()
            if (index + 1) % PROGRESS_WINDOW == 0:
                recent = returns[index + 1 - PROGRESS_WINDOW : index + 1]
                bar.set_postfix(mean_return=f"{recent.mean():.2f}", refresh=False)
    return returns


def grid_encoding(size: int) -> StateEncoding:
    """The state encoding of a `size` x `size` grid world's cell numbers."""
    return StateEncoding(f"grid-{size}x{size}", GRID_ENCODING_VERSION)


def train_grid_world(
    env: GridWorldEnv,
    config: TabularConfig,
    episodes: int,
    *,
    seed: int = 0,
    progress: bool = False,
) -> tuple[TabularAgent, np.ndarray]:
    """Learn the grid world from scratch; returns the agent and each episode's return.

    `seed` seeds everything: the Q-table's initial values, exploration and the env.
    """
    rng = np.random.default_rng(seed)
    table = QTable(int(env.action_space.n), grid_encoding(env.size), rng)
    agent = TabularAgent(config, table, rng)
    return agent, train(env, agent, episodes, seed=seed, progress=progress)


# -- the tutorial's reward plot -----------------------------------------------------------

ROLLING_WINDOW = 50
"""Episodes per point of the rolling average (at most a tenth of the episodes)."""


def rolling_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each position (of all of them before that)."""
    if window < 1:
        raise ValueError(f"window: expected a positive integer, got {window}")
    sums = np.cumsum(values, dtype=float)
    sums[window:] = sums[window:] - sums[:-window]
    return sums / np.minimum(np.arange(1, len(values) + 1), window)


def min_max_normalise(values: np.ndarray) -> np.ndarray:
    """Map the smallest value to 0 and the largest to 1 (all ones when they are equal)."""
    span = values.max() - values.min()
    if span == 0:
        return np.ones_like(values, dtype=float)
    return (values - values.min()) / span


def save_reward_plot(returns: np.ndarray, path: Path, title: str) -> Path:
    """Plot the min-max normalised rolling average of `returns` into the PNG `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    window = max(1, min(ROLLING_WINDOW, len(returns) // 10))
    averages = rolling_average(returns, window)
    figure = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    episodes = np.arange(1, len(returns) + 1)
    axes.plot(episodes, min_max_normalise(averages), marker="." if len(returns) == 1 else "")
    axes.set_xlabel("episode")
    axes.set_ylabel(f"mean return of the last {window} episodes\n(0 = lowest, 1 = highest)")
    axes.set_title(f"{title}\nrolling mean from {averages.min():.2f} to {averages.max():.2f}")
    axes.set_ylim(-0.05, 1.05)
    axes.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
