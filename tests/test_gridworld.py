"""The tutorial's grid world env, the plot helpers and the `mario-rl grid` command."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mario_rl.agents.tabular import min_max_normalise, rolling_average
from mario_rl.cli.main import main
from mario_rl.env.gridworld import ACTION_NAMES, DOWN_RIGHT, GridWorldEnv


def move(name: str) -> int:
    return ACTION_NAMES.index(name)


def test_passes_the_gymnasium_env_checker():
    check_env(GridWorldEnv(), skip_render_check=True)
    check_env(GridWorldEnv(size=5, max_steps=7), skip_render_check=True)


def test_starts_top_left_and_ends_bottom_right():
    env = GridWorldEnv()
    obs, info = env.reset(seed=0)
    assert obs == 0 and isinstance(obs, np.int64) and info == {}
    assert (env.start, env.end) == (env.cell(0, 0), env.cell(2, 2)) == (0, 8)
    assert env.observation_space.n == 9 and env.action_space.n == 8


def test_the_diagonal_is_two_moves_with_return_minus_one():
    env = GridWorldEnv()
    env.reset()
    assert env.step(DOWN_RIGHT) == (4, -1.0, False, False, {})
    assert env.step(DOWN_RIGHT) == (8, 0.0, True, False, {})
    assert env.best_return == -1.0
    assert GridWorldEnv(size=5).best_return == -3.0


def test_straight_and_diagonal_moves():
    env = GridWorldEnv()
    env.reset()
    assert env.step(move("E"))[0] == 1
    assert env.step(move("S"))[0] == 4
    assert env.step(move("SW"))[0] == 6
    assert env.step(move("NE"))[0] == 4
    assert env.step(move("NW"))[0] == 0


@pytest.mark.parametrize("name", ["N", "NE", "W", "SW", "NW"])
def test_a_move_into_a_wall_stays_in_place_and_costs_one(name):
    env = GridWorldEnv()
    env.reset()
    obs, reward, terminated, truncated, _ = env.step(move(name))
    assert (obs, reward, terminated, truncated) == (0, -1.0, False, False)


def test_walls_on_the_bottom_and_right_edges():
    env = GridWorldEnv()
    env.reset()
    env.step(move("S"))
    env.step(move("S"))
    assert env.step(move("S"))[0] == 6
    assert env.step(move("SE"))[0] == 6
    env.step(move("NE"))
    env.step(move("E"))
    assert env.step(move("E"))[0] == 5
    assert env.step(move("NE"))[0] == 5


def test_the_step_limit_truncates_and_never_terminates():
    env = GridWorldEnv(max_steps=3)
    env.reset()
    results = [env.step(move("N")) for _ in range(3)]
    assert [r[2:4] for r in results] == [(False, False), (False, False), (False, True)]
    env.reset()
    env.step(move("E"))
    assert env.step(move("SE"))[2:4] == (False, False)
    assert env.step(move("S"))[2:4] == (True, False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 1}, "size: expected an integer of at least 2, got 1"),
        ({"max_steps": 0}, "max_steps: expected a positive integer, got 0"),
    ],
)
def test_bad_settings_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GridWorldEnv(**kwargs)


def test_a_bad_action_says_what_was_expected():
    env = GridWorldEnv()
    env.reset()
    with pytest.raises(ValueError, match=r"action: expected an integer in \[0, 8\), got 8"):
        env.step(8)


def test_rolling_average_by_hand():
    values = np.array([1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(rolling_average(values, 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(rolling_average(values, 3), [1.0, 2.0, 3.0, 5.0])
    np.testing.assert_allclose(rolling_average(values, 10), [1.0, 2.0, 3.0, 4.0])


def test_min_max_normalise():
    np.testing.assert_allclose(min_max_normalise(np.array([-3.0, -1.0, -2.0])), [0, 1, 0.5])
    np.testing.assert_allclose(min_max_normalise(np.array([-1.0, -1.0])), [1.0, 1.0])


@pytest.mark.parametrize("algo", ["q", "double-q"])
def test_grid_command_prints_the_policy_and_saves_the_plot(algo, tmp_path, capsys):
    assert main(["grid", "--algo", algo, "--episodes", "40", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    png, npz = tmp_path / f"grid3-{algo}-seed0.png", tmp_path / f"grid3-{algo}-seed0.npz"
    assert png.read_bytes().startswith(b"\x89PNG") and npz.is_file()
    assert f"reward plot: {png}" in out and f"Q-table: {npz}" in out
    assert "end" in out and "greedy path from the start:" in out
    assert any(arrow in out for arrow in "↑↗→↘↓↙←↖")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "sarsa"], "algo: expected one of q, double-q, got 'sarsa'"),
        (["--episodes", "0"], "episodes: expected a positive integer, got 0"),
        (["--size", "1"], "size: expected an integer of at least 2, got 1"),
    ],
)
def test_grid_command_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    assert main(["grid", "--out", str(tmp_path), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err == f"mario-rl grid: error: {message}\n"
