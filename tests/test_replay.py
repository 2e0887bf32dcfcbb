"""FrameReplay: stacks rebuilt by index, episode boundaries, n-step returns, memory; the
sum tree and prioritised replay."""

import numpy as np
import pytest
import torch

from mario_rl.replay import FrameReplay, PrioritizedFrameReplay, SumTree, n_step_return

STACK = 4


def stack_of(frames: list[int]) -> np.ndarray:
    """A (1, 4, 2, 2) observation whose frames are filled with the given values."""
    return np.stack([np.full((2, 2), v, np.uint8) for v in frames])[None]


def values(obs: torch.Tensor) -> list[list[int]]:
    """Each sampled stack as the list of its frames' fill values."""
    return obs[:, :, 0, 0].tolist()


def play(replay: FrameReplay, episodes: list[int], first_value: int = 1) -> None:
    """Episodes of the given lengths; frame t of the run has value `first_value + t`.

    The observation is the 4-frame stack a FrameStackObservation would give, first frame
    repeated at reset; each episode ends `terminated`.
    """
    value = first_value
    for length in episodes:
        history = [value] * STACK
        replay.start(np.array([0]), stack_of(history))
        for t in range(length):
            value += 1
            history = [*history[1:], value]
            done = t == length - 1
            replay.add(
                np.array([value % 3]),
                np.array([float(value)]),
                stack_of(history),
                np.array([done]),
                np.array([False]),
            )
        value += 1


def all_transitions(replay: FrameReplay, n_step: int = 1, gamma: float = 0.5):
    """Every valid transition, found by sampling the whole ring many times."""
    batch = replay.sample(4096, n_step, gamma)
    seen = {}
    for i in range(4096):
        key = tuple(values(batch.obs[i : i + 1])[0])
        seen[key] = (
            values(batch.next_obs[i : i + 1])[0],
            int(batch.actions[i]),
            round(float(batch.returns[i]), 4),
            round(float(batch.discounts[i]), 4),
        )
    return seen


def test_stacks_repeat_the_first_frame_and_never_cross_episodes():
    replay = FrameReplay(64, (STACK, 2, 2), STACK, seed=0)
    play(replay, [3, 2])  # episode A: frames 1..4, episode B: frames 5..7
    seen = all_transitions(replay)
    assert seen == {
        (1, 1, 1, 1): ([1, 1, 1, 2], 2, 2.0, 0.5),
        (1, 1, 1, 2): ([1, 1, 2, 3], 0, 3.0, 0.5),
        (1, 1, 2, 3): ([1, 2, 3, 4], 1, 4.0, 0.0),  # terminal: no bootstrap
        (5, 5, 5, 5): ([5, 5, 5, 6], 0, 6.0, 0.5),
        (5, 5, 5, 6): ([5, 5, 6, 7], 1, 7.0, 0.0),
    }


def test_n_step_windows_stop_at_the_episode_end():
    replay = FrameReplay(64, (STACK, 2, 2), STACK, seed=0)
    play(replay, [3, 3])
    seen = all_transitions(replay, n_step=2, gamma=0.5)
    # From (1,1,1,1): r 2 + 0.5 * 3, bootstrap 2 steps on with 0.25.
    assert seen[(1, 1, 1, 1)] == ([1, 1, 2, 3], 2, 3.5, 0.25)
    # From (1,1,1,2): r 3 + 0.5 * 4 and the episode ends: no bootstrap.
    assert seen[(1, 1, 1, 2)] == ([1, 2, 3, 4], 0, 5.0, 0.0)
    # The last step of an episode is a 1-step return, never reaching into the next one.
    assert seen[(1, 1, 2, 3)] == ([1, 2, 3, 4], 1, 4.0, 0.0)
    # The newest transition lacks its second step: it is not sampled yet.
    assert (5, 5, 6, 7) not in seen


def test_wrapped_ring_drops_transitions_whose_frames_were_overwritten():
    replay = FrameReplay(10, (STACK, 2, 2), STACK, seed=0)
    play(replay, [30])  # 31 frames into 10 slots: values 22..31 remain
    seen = all_transitions(replay)
    for obs, (next_obs, _, reward, _) in seen.items():
        assert list(obs) == list(range(obs[0], obs[0] + 4))
        assert next_obs == [*obs[1:], obs[-1] + 1]
        assert reward == obs[-1] + 1
        assert obs[0] >= 22
    assert len(seen) == 10 - STACK


def test_n_step_return_by_hand():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    terminated = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], bool)
    truncated = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]], bool)
    returns, discounts, steps = n_step_return(rewards, terminated, truncated, gamma=0.5)
    # Row 0: 1 + 0.5*2 + 0.25*4 = 3, bootstrap with 0.5^3.
    # Row 1: 1 + 0.5*2 = 2, terminal after 2 steps: discount 0.
    # Row 2: truncated after the first step: 1, and still bootstraps with 0.5.
    np.testing.assert_allclose(returns, [3.0, 2.0, 1.0])
    np.testing.assert_allclose(discounts, [0.125, 0.0, 0.5])
    np.testing.assert_array_equal(steps, [3, 2, 1])


def test_vector_streams_keep_envs_apart_and_reset_obs_start_episodes():
    replay = FrameReplay(40, (STACK, 2, 2), STACK, num_envs=2, seed=0)
    first = np.concatenate([stack_of([10] * 4), stack_of([50] * 4)])
    replay.start(np.array([0, 1]), first)
    step_obs = np.concatenate([stack_of([10, 10, 10, 11]), stack_of([50, 50, 50, 51])])
    replay.add(
        np.array([1, 2]),
        np.array([0.0, 0.0]),
        step_obs,
        np.array([False, True]),
        np.array([False, False]),
    )
    replay.start(np.array([1]), stack_of([90] * 4))
    batch = replay.sample(256)
    pairs = {
        (tuple(o), tuple(n)) for o, n in zip(values(batch.obs), values(batch.next_obs), strict=True)
    }
    assert pairs == {((10,) * 4, (10, 10, 10, 11)), ((50,) * 4, (50, 50, 50, 51))}


def test_a_resumed_stream_marks_the_unfinished_episode_truncated():
    replay = FrameReplay(20, (STACK, 2, 2), STACK, seed=0)
    play(replay, [2])
    replay.start(np.array([0]), stack_of([1] * 4))
    replay.add(
        np.array([0]), np.array([1.0]), stack_of([1, 1, 1, 2]), np.array([False]), np.array([False])
    )
    replay.start(np.array([0]), stack_of([7] * 4))  # a resume: the episode was abandoned
    last = (replay.cursor[0] - 2) % replay.slots
    assert replay.truncated[0, last] and not replay.terminated[0, last]


def test_memory_per_transition_is_about_7_kb():
    capacity = 2_000
    replay = FrameReplay(capacity, (STACK, 84, 84), STACK)
    per_transition = replay.nbytes / capacity
    assert 84 * 84 <= per_transition < 7_100
    assert per_transition * 1_000_000 < 7.5e9
    assert per_transition * 100_000 < 0.75e9


def test_whole_observations_are_stored_when_there_is_no_stack():
    replay = FrameReplay(16, (3,), 1, obs_dtype=np.float32, seed=0)
    replay.start(np.array([0]), np.array([[0.0, 0.0, 1.0]], np.float32))
    replay.add(
        np.array([1]),
        np.array([2.0]),
        np.array([[0.0, 1.0, 0.0]], np.float32),
        np.array([True]),
        np.array([False]),
    )
    batch = replay.sample(3)
    assert batch.obs.tolist() == [[0.0, 0.0, 1.0]] * 3
    assert batch.next_obs.tolist() == [[0.0, 1.0, 0.0]] * 3
    assert batch.discounts.tolist() == [0.0] * 3


def test_state_dict_round_trip_samples_the_same():
    replay = FrameReplay(64, (STACK, 2, 2), STACK, seed=3)
    play(replay, [5, 4])
    copy = FrameReplay(64, (STACK, 2, 2), STACK, seed=99)
    copy.load_state_dict(replay.state_dict())
    a, b = replay.sample(16), copy.sample(16)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs)


def test_sampling_an_empty_replay_is_a_clear_error():
    replay = FrameReplay(16, (STACK, 2, 2), STACK)
    replay.start(np.array([0]), stack_of([1] * 4))
    with pytest.raises(ValueError, match="no sampleable transitions"):
        replay.sample(4)


# -- prioritised replay ----------------------------------------------------------------------


def test_sum_tree_finds_leaves_by_cumulative_priority():
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 2.0, 3.0, 4.0]))
    assert tree.total == 10.0
    # Cumulative ranges: [0,1) -> 0, [1,3) -> 2, [3,6) -> 3, [6,10) -> 4; leaf 1 is empty.
    found = tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99, 10.0]))
    assert found.tolist() == [0, 0, 2, 2, 3, 3, 4, 4, 4]
    tree.set(np.array([4, 1, 4]), np.array([7.0, 1.0, 0.5]))  # the last write of an index wins
    assert tree.total == 7.5 and tree.get(np.array([4, 1])).tolist() == [0.5, 1.0]
    tree.set(np.array([], np.int64), np.array([]))
    assert tree.find(np.array([])).tolist() == []


def prioritized(capacity: int = 64, alpha: float = 1.0) -> PrioritizedFrameReplay:
    return PrioritizedFrameReplay(capacity, (STACK, 2, 2), STACK, seed=0, alpha=alpha, eps=0.0)


def test_prioritized_draws_in_proportion_to_priority_and_weights_the_bias():
    replay = prioritized()
    play(replay, [10])
    batch = replay.sample(2000, beta=1.0)
    # All new, so all at the same priority: an even spread over the 10, equal weights.
    assert np.bincount(batch.indices, minlength=11)[1:].tolist() == [200] * 10
    assert torch.allclose(batch.weights, torch.ones(2000))
    # Transition with action-taken value v sits at slot v - 1; make one 9x the others.
    indices = np.arange(1, 11)
    errors = np.where(indices == 5, 9.0, 1.0)
    replay.update_priorities(indices, errors)
    batch = replay.sample(9000, beta=1.0)
    drawn = np.bincount(batch.indices, minlength=11)
    assert drawn[0] == 0  # the episode's first frame is no transition
    share = drawn[5] / drawn.sum()
    assert abs(share - 9 / 18) < 0.02
    # w = (N P)^-beta / max w: the 9x transition gets 1/9 the weight of the others.
    heavy = batch.weights[batch.indices == 5]
    light = batch.weights[batch.indices != 5]
    assert torch.allclose(heavy, torch.full_like(heavy, 1 / 9))
    assert torch.allclose(light, torch.ones_like(light))
    # New transitions enter at the highest priority seen so far.
    play(replay, [3], first_value=100)
    assert replay.priorities.get(np.array([13])).tolist() == [9.0]


def test_prioritized_with_alpha_and_beta_below_one_by_hand():
    replay = prioritized(alpha=0.5)
    play(replay, [4])  # transitions at slots 1..4
    replay.update_priorities(np.arange(1, 5), np.array([1.0, 4.0, 9.0, 16.0]))
    # p^alpha = sqrt([1, 4, 9, 16]) = [1, 2, 3, 4], total 10: P = [0.1, 0.2, 0.3, 0.4].
    assert replay.priorities.get(np.arange(1, 5)).tolist() == [1.0, 2.0, 3.0, 4.0]
    batch = replay.sample(1000, beta=0.5)
    # One draw per slice of 10/1000: 100, 200, 300, 400 (+-1 at the slice edges).
    drawn = np.bincount(batch.indices, minlength=5)[1:]
    np.testing.assert_allclose(drawn, [100, 200, 300, 400], atol=1)
    # w = (N P)^-0.5 / max w = (0.1 / P)^0.5 = [1, 1/sqrt(2), 1/sqrt(3), 1/2].
    expected = np.array([1.0, 0.5**0.5, (1 / 3) ** 0.5, 0.5])
    np.testing.assert_allclose(batch.weights.numpy(), expected[batch.indices - 1], rtol=1e-6)
    # A new transition enters at the largest priority seen, 16, as 16^alpha = 4.
    assert replay.max_priority == 16.0
    play(replay, [1], first_value=50)
    assert replay.priorities.get(np.array([6])).tolist() == [4.0]


def test_prioritized_never_draws_what_uniform_replay_could_not():
    replay = prioritized(capacity=24)
    play(replay, [7, 9, 12])  # wraps the ring
    uniform = all_transitions(replay, n_step=3)
    batch = replay.sample(4096, n_step=3, gamma=0.5)
    for i in range(4096):
        key = tuple(values(batch.obs[i : i + 1])[0])
        assert key in uniform
        assert uniform[key][0] == values(batch.next_obs[i : i + 1])[0]
        assert uniform[key][2] == round(float(batch.returns[i]), 4)


def test_prioritized_state_dict_round_trip():
    replay = prioritized()
    play(replay, [10, 6])
    replay.update_priorities(np.array([2, 3]), np.array([5.0, 0.25]))
    copy = prioritized()
    copy.load_state_dict(replay.state_dict())
    assert copy.max_priority == 5.0 and copy.priorities.total == replay.priorities.total
    assert (copy.sample(64).indices == replay.sample(64).indices).all()
