"""Replay storage that keeps each observation frame once and rebuilds frame stacks by index.

A stacked Atari-style observation (4, 84, 84) shares 3 of its 4 frames with the next one,
so storing (s, s') as float stacks costs about 225 KB per transition; storing each 84x84
uint8 frame once costs about 7 KB. Each env of a vector env writes its own ring ("stream")
of slots. Slot i holds one frame, its age in the episode (0 for the frame `reset` gave),
and, unless it is an episode's first frame, the transition that led to it:

    s  = the stack ending at slot i - 1      a, r, terminated, truncated = slot i
    s' = the stack ending at slot i

A stack ending at slot p repeats the episode's first frame where the episode is younger
than the stack (`p - min(j, age[p])`), exactly as `FrameStackObservation` does at reset, so
no stack ever mixes two episodes. Where the stack already lives inside the observation
(`stack=1`), whole observations are stored instead.

`sample` can return n-step transitions (Sutton and Barto 2018, eq. 7.1): the discounted sum
of up to n rewards, cut at the episode's end, and the state n steps on to bootstrap from.

`PrioritizedFrameReplay` samples in proportion to priority instead (Schaul et al. 2016,
"Prioritized Experience Replay", the proportional variant), over the same storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class ReplayBatch:
    """A sampled batch on the replay's device. `discounts` is gamma^m, 0 after a terminal.

    From a prioritised replay, `weights` are the importance-sampling weights to scale each
    transition's loss by, and `indices` name the transitions for `update_priorities`.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    returns: torch.Tensor
    discounts: torch.Tensor
    next_obs: torch.Tensor
    weights: torch.Tensor | None = None
    indices: np.ndarray | None = None


def n_step_return(
    rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n-step return of each row of (batch, n) windows, cut at the first episode end.

    Returns (returns, discounts, steps): `returns` = sum_{j<m} gamma^j r_j over the m steps
    up to and including the first `terminated` or `truncated` (or all n), `discounts` =
    gamma^m, or 0 when step m ended in `terminated` (nothing to bootstrap from), and
    `steps` = m. A truncated window still bootstraps: the state is not terminal.
    """
    done = terminated | truncated
    batch, n = rewards.shape
    alive = np.ones((batch, n), np.float64)
    alive[:, 1:] = np.cumprod(1.0 - done[:, :-1], axis=1)
    powers = gamma ** np.arange(n, dtype=np.float64)
    returns = (alive * powers * rewards).sum(axis=1)
    steps = alive.sum(axis=1).astype(np.int64)
    ended_terminal = terminated[np.arange(batch), steps - 1]
    discounts = np.where(ended_terminal, 0.0, gamma ** steps.astype(np.float64))
    return returns.astype(np.float32), discounts.astype(np.float32), steps


class FrameReplay:
    """Uniform replay over `num_envs` streams of `capacity // num_envs` slots each.

    Call `start(env_ids, obs)` with the first observation of every episode, and after each
    vector step `add(actions, rewards, next_obs, terminated, truncated)` with the true next
    observation (`info["final_obs"]` where an episode ended), then `start` the envs that
    were reset. `stack` is the number of frames stacked along the observation's first axis
    (1: store whole observations). `device` holds the frames (e.g. `cuda`); the bookkeeping
    stays in NumPy.
    """

    _ARRAYS = ("actions", "rewards", "terminated", "truncated", "has_transition", "age")
    _ARRAYS += ("cursor", "filled")
    """The NumPy arrays a checkpoint saves beside the frames."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        stack: int,
        num_envs: int = 1,
        obs_dtype: np.dtype | type = np.uint8,
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        if capacity < 2 * num_envs:
            raise ValueError(f"capacity: expected at least 2 slots per env, got {capacity}")
        if stack < 1 or (stack > 1 and obs_shape[0] != stack):
            raise ValueError(
                f"stack: expected 1 or the observation's first axis ({obs_shape[0]}), got {stack}"
            )
        self.num_envs = num_envs
        self.slots = capacity // num_envs
        self.stack = stack
        self.obs_shape = tuple(obs_shape)
        self.device = torch.device(device)
        frame_shape = self.obs_shape[1:] if stack > 1 else self.obs_shape
        torch_dtype = torch.from_numpy(np.zeros(0, obs_dtype)).dtype
        shape = (num_envs, self.slots)
        self.frames = torch.zeros((*shape, *frame_shape), dtype=torch_dtype, device=self.device)
        self.actions = np.zeros(shape, np.int16)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.truncated = np.zeros(shape, bool)
        self.has_transition = np.zeros(shape, bool)
        self.age = np.zeros(shape, np.uint8)
        self.cursor = np.zeros(num_envs, np.int64)
        self.filled = np.zeros(num_envs, np.int64)
        self.rng = np.random.default_rng(seed)

    # -- writing -------------------------------------------------------------------------

    def start(self, env_ids: np.ndarray, obs: np.ndarray) -> None:
        """Begin a new episode in each of `env_ids` with its first observation `obs[k]`.

        An episode left unfinished in that stream (a resumed run) is marked truncated.
        """
        env_ids = np.asarray(env_ids, np.int64)
        last = (self.cursor[env_ids] - 1) % self.slots
        unfinished = (
            (self.filled[env_ids] > 0)
            & self.has_transition[env_ids, last]
            & ~self.terminated[env_ids, last]
        )
        self.truncated[env_ids[unfinished], last[unfinished]] = True
        self._write(env_ids, obs, age=np.zeros(len(env_ids), np.int64), transition=False)

    def add(
        self,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one vector step: for env k, (s_k, actions[k]) led to `next_obs[k]`."""
        env_ids = np.arange(self.num_envs)
        previous = self.age[env_ids, (self.cursor - 1) % self.slots].astype(np.int64)
        slots = self._write(env_ids, next_obs, age=np.minimum(previous + 1, 255), transition=True)
        self.actions[env_ids, slots] = actions
        self.rewards[env_ids, slots] = rewards
        self.terminated[env_ids, slots] = terminated
        self.truncated[env_ids, slots] = truncated

    def _write(
        self, env_ids: np.ndarray, obs: np.ndarray, age: np.ndarray, transition: bool
    ) -> np.ndarray:
        slots = self.cursor[env_ids].copy()
        newest = np.asarray(obs)[:, -1] if self.stack > 1 else np.asarray(obs)
        self.frames[torch.from_numpy(env_ids), torch.from_numpy(slots)] = torch.from_numpy(
            np.ascontiguousarray(newest)
        ).to(self.device)
        self.age[env_ids, slots] = age
        self.has_transition[env_ids, slots] = transition
        self.terminated[env_ids, slots] = False
        self.truncated[env_ids, slots] = False
        self.cursor[env_ids] = (slots + 1) % self.slots
        self.filled[env_ids] = np.minimum(self.filled[env_ids] + 1, self.slots)
        return slots

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Slots written (transitions plus one first frame per episode), over all streams."""
        return int(self.filled.sum())

    @property
    def nbytes(self) -> int:
        """Memory held by the stored data, frames and bookkeeping."""
        arrays = (self.actions, self.rewards, self.terminated, self.truncated)
        bookkeeping = self.has_transition.nbytes + self.age.nbytes
        frames = self.frames.element_size() * self.frames.nelement()
        return frames + sum(a.nbytes for a in arrays) + bookkeeping

    def valid(self, env_ids: np.ndarray, slots: np.ndarray, n_step: int = 1) -> np.ndarray:
        """Whether each (env, slot) holds a transition whose stacks and n-step window exist.

        In a full ring the oldest `stack` slots lost the frames their stacks reach back to,
        and the newest `n_step - 1` slots lack the steps an n-step return looks ahead to.
        """
        cursor = self.cursor[env_ids]
        full = self.filled[env_ids] == self.slots
        rank = (slots - cursor) % self.slots
        in_full = (rank >= self.stack) & (rank <= self.slots - n_step)
        in_partial = slots <= cursor - n_step
        return self.has_transition[env_ids, slots] & np.where(full, in_full, in_partial)

    def sample(self, batch_size: int, n_step: int = 1, gamma: float = 0.99) -> ReplayBatch:
        """`batch_size` transitions drawn uniformly, as n-step returns when `n_step` > 1."""
        env_ids = np.empty(batch_size, np.int64)
        slots = np.empty(batch_size, np.int64)
        todo = np.arange(batch_size)
        for _ in range(1000):
            env_ids[todo] = self.rng.integers(0, self.num_envs, len(todo))
            slots[todo] = self.rng.integers(0, np.maximum(self.filled[env_ids[todo]], 1))
            todo = todo[~self.valid(env_ids[todo], slots[todo], n_step)]
            if len(todo) == 0:
                break
        else:
            raise self._nothing_to_sample(n_step)
        return self._batch(env_ids, slots, n_step, gamma)

    def _nothing_to_sample(self, n_step: int) -> ValueError:
        return ValueError(
            f"replay: no sampleable transitions for n_step={n_step} yet "
            f"({len(self)} slots written); add more steps before sampling"
        )

    def _batch(
        self, env_ids: np.ndarray, slots: np.ndarray, n_step: int, gamma: float
    ) -> ReplayBatch:
        """The (n-step) transitions stored at (env_ids, slots)."""
        window = (slots[:, None] + np.arange(n_step)) % self.slots
        rows = env_ids[:, None]
        returns, discounts, steps = n_step_return(
            self.rewards[rows, window],
            self.terminated[rows, window],
            self.truncated[rows, window],
            gamma,
        )
        last = (slots + steps - 1) % self.slots
        return ReplayBatch(
            obs=self._observations(env_ids, (slots - 1) % self.slots),
            actions=torch.from_numpy(self.actions[env_ids, slots].astype(np.int64)).to(self.device),
            returns=torch.from_numpy(returns).to(self.device),
            discounts=torch.from_numpy(discounts).to(self.device),
            next_obs=self._observations(env_ids, last),
        )

    def _observations(self, env_ids: np.ndarray, ends: np.ndarray) -> torch.Tensor:
        """The observations ending at slots `ends`, with stacks clamped at episode starts."""
        if self.stack == 1:
            return self.frames[torch.from_numpy(env_ids), torch.from_numpy(ends)]
        back = np.arange(self.stack - 1, -1, -1)
        offsets = np.minimum(back[None, :], self.age[env_ids, ends][:, None].astype(np.int64))
        positions = (ends[:, None] - offsets) % self.slots
        return self.frames[torch.from_numpy(env_ids[:, None]), torch.from_numpy(positions)]

    # -- saving --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue from here, as tensors on the CPU and plain data
        (so it loads with `torch.load(weights_only=True)`, which has no numpy)."""
        return {
            "frames": self.frames.cpu(),
            **{name: torch.from_numpy(getattr(self, name).copy()) for name in self._ARRAYS},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["frames"].shape) != tuple(self.frames.shape):
            raise ValueError(
                f"replay: expected saved frames shaped {tuple(self.frames.shape)}, got "
                f"{tuple(state['frames'].shape)}; resume with the same capacity and num_envs"
            )
        self.frames.copy_(state["frames"])
        for name in self._ARRAYS:
            getattr(self, name)[...] = np.asarray(state[name])
        self.rng.bit_generator.state = state["rng"]


class SumTree:
    """Priorities in a binary tree of partial sums: set and proportional draws in O(log n).

    Leaves are the `size` priorities (padded to a power of two); node k holds the sum of
    nodes 2k and 2k + 1, so node 1 holds the total. Everything is vectorised over a batch.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.leaves = 1 << max(0, (size - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[self.leaves + np.asarray(indices, np.int64)]

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set leaves `indices` to `priorities`; an index given twice takes its last value."""
        indices = np.asarray(indices, np.int64)
        if len(indices) == 0:
            return
        _, last = np.unique(indices[::-1], return_index=True)
        keep = len(indices) - 1 - last
        nodes = self.leaves + indices[keep]
        self.tree[nodes] = np.broadcast_to(priorities, indices.shape)[keep]
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def find(self, values: np.ndarray) -> np.ndarray:
        """The leaf whose cumulative range [sum before it, sum through it) holds each value."""
        values = np.array(values, np.float64)
        nodes = np.ones(len(values), np.int64)
        while len(nodes) and nodes[0] < self.leaves:
            left = self.tree[2 * nodes]
            go_right = values >= left
            values = np.where(go_right, values - left, values)
            nodes = 2 * nodes + go_right
        # Rounding can walk into an empty leaf past the last priority; step back from it.
        return np.minimum(nodes - self.leaves, self.size - 1)


class PrioritizedFrameReplay(FrameReplay):
    """`FrameReplay` drawing transitions with probability p_i^alpha / sum_k p_k^alpha.

    Proportional prioritised replay (Schaul et al. 2016, section 3.3 and Algorithm 1): a
    new transition gets the largest priority seen so far, so it is replayed at least once
    soon; after a transition is learned from, `update_priorities` sets p = |TD error| +
    `eps`. Draws are stratified, one per equal slice of the total. Slots without a valid
    transition (episode starts, frames a stack reaches back to that were overwritten,
    n-step windows not yet complete) are redrawn from the whole range. The
    importance-sampling weight w_i = (N * P(i))^-beta / max_j w_j corrects the bias (N
    cancels: w_i = (min_j P(j) / P(i))^beta over the batch); the caller anneals beta to 1
    over training.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        stack: int,
        num_envs: int = 1,
        obs_dtype: np.dtype | type = np.uint8,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        alpha: float = 0.6,
        eps: float = 1e-3,
    ) -> None:
        super().__init__(capacity, obs_shape, stack, num_envs, obs_dtype, device, seed)
        if alpha < 0:
            raise ValueError(f"alpha: expected a number >= 0, got {alpha}")
        self.alpha, self.eps = alpha, eps
        self.priorities = SumTree(self.num_envs * self.slots)
        self.max_priority = 1.0

    def _write(
        self, env_ids: np.ndarray, obs: np.ndarray, age: np.ndarray, transition: bool
    ) -> np.ndarray:
        slots = super()._write(env_ids, obs, age, transition)
        priority = self.max_priority**self.alpha if transition else 0.0
        self.priorities.set(env_ids * self.slots + slots, np.full(len(slots), priority))
        return slots

    def sample(
        self, batch_size: int, n_step: int = 1, gamma: float = 0.99, beta: float = 0.4
    ) -> ReplayBatch:
        """`batch_size` transitions drawn in proportion to priority, with their IS weights."""
        total = self.priorities.total
        if total <= 0:
            raise self._nothing_to_sample(n_step)
        indices = np.empty(batch_size, np.int64)
        todo = np.arange(batch_size)
        for attempt in range(1000):
            # Redraws come from the whole range: a stratum may hold only invalid slots.
            cells, width = (todo, total / batch_size) if attempt == 0 else (0, total)
            indices[todo] = self.priorities.find((cells + self.rng.random(len(todo))) * width)
            env_ids, slots = np.divmod(indices[todo], self.slots)
            drawable = self.priorities.get(indices[todo]) > 0
            todo = todo[~(drawable & self.valid(env_ids, slots, n_step))]
            if len(todo) == 0:
                break
        else:
            raise self._nothing_to_sample(n_step)
        env_ids, slots = np.divmod(indices, self.slots)
        weights = (self.priorities.get(indices) / total) ** -beta
        weights /= weights.max()
        batch = self._batch(env_ids, slots, n_step, gamma)
        batch.weights = torch.from_numpy(weights.astype(np.float32)).to(self.device)
        batch.indices = indices
        return batch

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Priority |TD error| + eps for the transitions `sample` returned as `indices`."""
        priorities = np.abs(np.asarray(td_errors, np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        # A transition drawn twice in one batch keeps the last of its errors.
        self.priorities.set(indices, priorities**self.alpha)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "priorities": torch.from_numpy(self.priorities.tree.copy()),
            "max_priority": self.max_priority,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.priorities.tree[...] = np.asarray(state["priorities"])
        self.max_priority = float(state["max_priority"])
