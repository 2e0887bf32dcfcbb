"""Tabular Q-learning: the maths by hand, the Q-table, save/load, and the grid world learned."""

import numpy as np
import pytest

from mario_rl.agents.tabular import (
    Episode,
    QTable,
    StateEncoding,
    TabularAgent,
    TabularConfig,
    epsilon_greedy,
    greedy_action,
    play_episode,
    q_learning_target,
    td_update,
    train,
    train_grid_world,
    visit_alpha,
)
from mario_rl.env.gridworld import DOWN_RIGHT, MOVES, GridWorldEnv

ENCODING = StateEncoding("test", 1)


def table_with(rows: dict[int, list[float]], rng=None) -> QTable:
    """A Q-table whose states and values are set by hand."""
    table = QTable(len(next(iter(rows.values()))), ENCODING, rng or np.random.default_rng(0))
    for state, values in rows.items():
        row = table.row(state)  # before `table.values`: its view covers existing rows only
        table.values[row] = values
    return table


# -- the maths ----------------------------------------------------------------------------


def test_epsilon_zero_is_greedy_and_breaks_ties_at_random():
    rng = np.random.default_rng(0)
    assert {epsilon_greedy(np.array([0.1, 0.7, -0.2]), 0.0, rng) for _ in range(50)} == {1}
    tied = np.array([0.5, -1.0, 0.5, 0.2])
    assert {epsilon_greedy(tied, 0.0, rng) for _ in range(200)} == {0, 2}
    assert greedy_action(tied) == 0


def test_epsilon_one_is_uniform():
    rng = np.random.default_rng(0)
    picks = [epsilon_greedy(np.array([9.0, 0.0, 0.0, 0.0]), 1.0, rng) for _ in range(4000)]
    counts = np.bincount(picks, minlength=4)
    assert counts.sum() == 4000 and counts.min() > 900


def test_q_learning_update_by_hand():
    # target = -1 + 0.9 * max(0.2, 0.8, -0.3) = -0.28; Q = 0.5 + 0.5 * (-0.28 - 0.5) = 0.11
    target = q_learning_target(-1.0, np.array([0.2, 0.8, -0.3]), gamma=0.9, terminated=False)
    assert target == pytest.approx(-0.28)
    assert td_update(0.5, target, alpha=0.5) == pytest.approx(0.11)


def test_a_terminal_next_state_is_not_bootstrapped():
    # target = r = -1; Q = 0.5 + 0.5 * (-1 - 0.5) = -0.25
    target = q_learning_target(-1.0, np.array([5.0, 5.0]), gamma=0.9, terminated=True)
    assert target == -1.0
    assert td_update(0.5, target, alpha=0.5) == pytest.approx(-0.25)


def test_the_cs229_alpha_schedule():
    assert [visit_alpha(0.8, n) for n in (1, 2, 4, 8)] == pytest.approx([0.8, 0.4, 0.2, 0.1])
    with pytest.raises(ValueError, match="visits: expected at least 1"):
        visit_alpha(0.8, 0)


# -- the agent ----------------------------------------------------------------------------


def test_agent_q_learning_update_by_hand():
    table = table_with({0: [0.0, 0.5], 1: [0.2, 0.8]})
    agent = TabularAgent(TabularConfig(alpha=0.5, gamma=0.9), table, np.random.default_rng(0))
    td_error = agent.learn(0, 1, -1.0, 1, terminated=False)
    # target = -1 + 0.9 * 0.8 = -0.28; TD error -0.78; Q = 0.5 - 0.39 = 0.11
    assert td_error == pytest.approx(-0.78)
    np.testing.assert_allclose(table.values, [[0.0, 0.11], [0.2, 0.8]])
    np.testing.assert_array_equal(table.visits, [[0, 1], [0, 0]])


def test_agent_double_q_update_bootstraps_from_the_target_table_by_hand():
    table = table_with({0: [0.0, 0.0], 1: [1.0, 0.0]})
    config = TabularConfig(algo="double-q", alpha=0.5, gamma=0.9, target_sync_steps=2)
    agent = TabularAgent(config, table, np.random.default_rng(0))
    np.testing.assert_array_equal(table.target, table.values)  # Q^T starts as a copy of Q*
    table.values[1] = [0.0, 2.0]  # Q* moves on; Q^T(1) stays [1, 0]
    agent.learn(0, 0, -1.0, 1, terminated=False)
    # target = -1 + 0.9 * max Q^T(1) = -0.1 (Q-learning would use max Q*(1) = 2: 0.8);
    # Q*(0, 0) = 0 + 0.5 * (-0.1 - 0) = -0.05; one update, so no copy yet
    np.testing.assert_allclose(table.values, [[-0.05, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(table.target, [[0.0, 0.0], [1.0, 0.0]])
    agent.learn(0, 1, -1.0, 1, terminated=False)
    # Q*(0, 1) = 0 + 0.5 * (-1 + 0.9 * 1 - 0) = -0.05; second update: Q^T <- Q*
    np.testing.assert_allclose(table.values, [[-0.05, -0.05], [0.0, 2.0]])
    np.testing.assert_array_equal(table.target, table.values)


def test_agent_decaying_alpha_by_hand():
    table = table_with({0: [0.0], 1: [0.0]})
    config = TabularConfig(alpha=0.8, decay_alpha=True, gamma=0.6)
    agent = TabularAgent(config, table, np.random.default_rng(0))
    agent.learn(0, 0, 1.0, 1, terminated=True)  # alpha 0.8: Q = 0.8
    agent.learn(0, 0, 1.0, 1, terminated=True)  # alpha 0.4: Q = 0.8 + 0.4 * 0.2 = 0.88
    assert table.values[0, 0] == pytest.approx(0.88)
    assert table.visits[0, 0] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algo": "sarsa"}, "algo: expected one of q, double-q, got 'sarsa'"),
        ({"alpha": 1.5}, r"alpha: expected a value in \[0, 1\], got 1.5"),
        ({"gamma": -0.1}, r"gamma: expected a value in \[0, 1\], got -0.1"),
        ({"epsilon": 2.0}, r"epsilon: expected a value in \[0, 1\], got 2.0"),
        ({"target_sync_steps": 0}, "target_sync_steps: expected a positive integer, got 0"),
    ],
)
def test_bad_config_says_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TabularConfig(**kwargs)


# -- the Q-table --------------------------------------------------------------------------


def test_rows_appear_on_first_visit_in_the_cs229_range():
    table = QTable(12, ENCODING, np.random.default_rng(0))
    code = 2**31 + 12345  # a sparse 32-bit symbolic state
    assert code not in table and len(table) == 0
    first = table.q(code)
    assert code in table and len(table) == 1
    assert first.shape == (12,) and np.all(np.abs(first) < 0.1) and np.ptp(first) > 0
    np.testing.assert_array_equal(table.q(code), first)  # a second visit changes nothing
    assert table.states.tolist() == [code]


def test_growing_keeps_every_row():
    table = QTable(3, ENCODING, np.random.default_rng(0))
    states = [7 * i + 2**20 for i in range(300)]
    first_values = [table.q(state) for state in states]
    assert len(table) == 300
    for state, values in zip(states, first_values, strict=True):
        np.testing.assert_array_equal(table.q(state), values)
    np.testing.assert_array_equal(table.states, states)


def test_a_row_added_after_a_sync_enters_the_target_with_its_initial_values():
    table = QTable(2, ENCODING, np.random.default_rng(0))
    table.q(1)
    table.sync_target()
    initial = table.q(5)
    table.values[table.row(5)] += 1.0
    np.testing.assert_array_equal(table.target[table.row(5)], initial)


def test_save_and_load_round_trip(tmp_path):
    table = table_with({3: [0.1, -0.2], 2**32 - 1: [0.3, 0.4]})
    table.visits[1, 0] = 7
    table.sync_target()
    table.values[0, 0] = 9.0
    path = table.save(tmp_path / "table.npz")
    loaded = QTable.load(path, ENCODING, np.random.default_rng(1))
    assert (loaded.n_actions, loaded.encoding, len(loaded)) == (2, ENCODING, 2)
    np.testing.assert_array_equal(loaded.states, table.states)
    np.testing.assert_array_equal(loaded.values, table.values)
    np.testing.assert_array_equal(loaded.visits, table.visits)
    np.testing.assert_array_equal(loaded.target, table.target)
    np.testing.assert_array_equal(loaded.q(2**32 - 1), [0.3, 0.4])
    loaded.q(99)  # the loaded table keeps growing
    assert len(loaded) == 3
    with np.load(path, allow_pickle=False) as data:
        assert not any(data[key].dtype == object for key in data.files)


def test_a_table_without_a_target_loads_without_one(tmp_path):
    path = table_with({0: [1.0]}).save(tmp_path / "plain.npz")
    assert not QTable.load(path, ENCODING, np.random.default_rng(0)).has_target


@pytest.mark.parametrize("other", [StateEncoding("test", 2), StateEncoding("grid-3x3", 1)])
def test_loading_under_another_encoding_is_one_line_error(tmp_path, other):
    path = table_with({0: [1.0]}).save(tmp_path / "table.npz")
    with pytest.raises(ValueError) as error:
        QTable.load(path, other, np.random.default_rng(0))
    message = str(error.value)
    assert "\n" not in message
    assert f"expected a Q-table for state encoding {other}, got test v1" in message


def test_loading_a_foreign_npz_says_what_is_missing(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ValueError, match=r"expected a Q-table written by QTable\.save"):
        QTable.load(path, ENCODING, np.random.default_rng(0))


def test_save_wants_an_npz_name(tmp_path):
    with pytest.raises(ValueError, match=r"path: expected a file name ending in \.npz"):
        table_with({0: [1.0]}).save(tmp_path / "table.pkl")


# -- episodes and the grid world learned --------------------------------------------------


def test_play_episode_without_learning_leaves_the_values_alone():
    env = GridWorldEnv()
    rng = np.random.default_rng(0)
    agent = TabularAgent(TabularConfig(), QTable(8, ENCODING, rng), rng)
    episode = play_episode(env, agent, epsilon=1.0, learn=False, seed=0)
    assert isinstance(episode, Episode)
    assert episode.total_reward == -(len(episode.actions) - int(episode.terminated))
    assert agent.table.visits.sum() == 0 and agent.updates == 0


def test_play_episode_checks_the_number_of_actions():
    rng = np.random.default_rng(0)
    agent = TabularAgent(TabularConfig(), QTable(12, ENCODING, rng), rng)
    with pytest.raises(ValueError, match=r"env: expected 12 actions \(the Q-table's\), got 8"):
        play_episode(GridWorldEnv(), agent, epsilon=0.1, learn=True)


def test_training_twice_with_one_seed_gives_the_same_table():
    runs = [train_grid_world(GridWorldEnv(), TabularConfig(), 50, seed=3) for _ in range(2)]
    (first, first_returns), (second, second_returns) = runs
    np.testing.assert_array_equal(first_returns, second_returns)
    np.testing.assert_array_equal(first.table.values, second.table.values)


def test_train_wants_a_positive_episode_count():
    env = GridWorldEnv()
    rng = np.random.default_rng(0)
    agent = TabularAgent(TabularConfig(), QTable(8, ENCODING, rng), rng)
    with pytest.raises(ValueError, match="episodes: expected a positive integer, got 0"):
        train(env, agent, 0)


def on_a_shortest_path(env: GridWorldEnv, cell: int, action: int) -> bool:
    """Whether `action` brings `cell` one move (Chebyshev distance) closer to the end."""
    row, col = divmod(cell, env.size)
    d_row, d_col = MOVES[action]
    if not (0 <= row + d_row < env.size and 0 <= col + d_col < env.size):
        return False

    def distance(r: int, c: int) -> int:
        return max(env.size - 1 - r, env.size - 1 - c)

    return distance(row + d_row, col + d_col) == distance(row, col) - 1


@pytest.mark.parametrize("algo", ["q", "double-q"])
def test_the_learned_first_move_is_the_diagonal(algo):
    env = GridWorldEnv()
    agent, returns = train_grid_world(env, TabularConfig(algo=algo), 1000, seed=0)
    assert greedy_action(agent.table.q(env.start)) == DOWN_RIGHT
    path = play_episode(env, agent, epsilon=0.0, learn=False)
    assert path.actions == (DOWN_RIGHT, DOWN_RIGHT) and path.total_reward == env.best_return
    for cell in range(env.end):
        assert on_a_shortest_path(env, cell, greedy_action(agent.table.q(cell))), cell
    assert returns[:50].mean() < returns[-100:].mean()
