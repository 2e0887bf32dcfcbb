"""The CS229 tabular agent: reward, modes and scores by hand, the env on Mario, smoke runs."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from repo_scripts import load_script

from mario_rl.agents import load_policy
from mario_rl.agents.cs229 import (
    ENCODING,
    EVALUATIONS_FILE,
    GAP_ENCODING,
    RINGS_ENCODING,
    RINGS_GAP_ENCODING,
    TABLE_FILE,
    CS229Config,
    composite_score,
    load_table,
    read_evaluations,
    table_action,
)
from mario_rl.agents.tabular import QTable, StateEncoding, TabularAgent
from mario_rl.cli.main import main
from mario_rl.env import ram as smb
from mario_rl.env.actions import action_set, noop_index
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.symbolic import (
    GAP_BIT,
    PLAYER_SIZE,
    RINGS_GAP_BIT,
    RewardWeights,
    SymbolicSettings,
    count_new_enemies,
    decision_reward,
    gap_ahead,
    live_enemies,
    make_symbolic_env,
    set_mode,
    state_key,
    training_mode,
)
from mario_rl.env.wrappers import StickyAction
from mario_rl.evaluate import evaluate
from mario_rl.runs import CheckpointError, RunConfig, load_checkpoint
from mario_rl.training import train

MARIO_X, GROUND_Y = 40, 176  # screen pixels; the screen is on level page 1
GOOMBA = 0x06
STOMPED = 0x04
FALLING = 0x20
PLATFORM = 0x24
B_ONLY = action_set("cs229").index(("B",))
NOOP = action_set("cs229").index(("NOOP",))
# Decisions of these smoke runs end after 8 decisions without progress: short episodes.
QUICK = CS229Config(eval_every=1, eval_episodes=1, noop_max=5, no_progress_decisions=8)


def hand_ram(bytes_at: dict[int, int] | None = None) -> np.ndarray:
    """Small Mario on the ground at level x 296 (screen 40, 176), then `bytes_at` over it."""
    ram = np.zeros(smb.RAM_SIZE, dtype=np.uint8)
    ram[smb.PLAYER_PAGE] = ram[smb.SCREEN_LEFT_PAGE] = 1
    ram[smb.PLAYER_X] = MARIO_X
    ram[smb.PLAYER_Y] = ram[smb.PLAYER_Y_PIXEL] = GROUND_Y
    ram[smb.PLAYER_Y_VIEWPORT] = 1
    for address, value in (bytes_at or {}).items():
        ram[address] = value
    return ram


def enemy_at(level_x: int, *, state: int = 0, kind: int = GOOMBA, slot: int = 0) -> dict[int, int]:
    """RAM bytes of an enemy on Mario's floor at `level_x`."""
    page, x = divmod(level_x, 256)
    return {
        smb.ENEMY_DRAWN + slot: 1,
        smb.ENEMY_KIND + slot: kind,
        smb.ENEMY_STATE + slot: state,
        smb.ENEMY_PAGE + slot: page,
        smb.ENEMY_X + slot: x,
        smb.ENEMY_Y_VIEWPORT + slot: 1,
        smb.ENEMY_Y + slot: GROUND_Y + 8,
    }


def reward_for(
    after: dict[int, int],
    before: dict[int, int] | None = None,
    *,
    steps_still: int = 0,
    died: bool = False,
    won: bool = False,
) -> float:
    """The default-weight reward of one 6-frame decision between two hand-made RAMs."""
    ram_before, ram_after = hand_ram(before), hand_ram(after)
    memory = dataclasses.replace(smb.remember(ram_before, None), steps_still=steps_still)
    state = smb.symbolic_state(ram_after, memory)
    kills = smb.count_kills(memory.enemy_states, ram_after)
    return decision_reward(
        smb.read_mario(ram_before),
        smb.read_mario(ram_after),
        state,
        kills.stomp + kills.fire + kills.other,
        died=died,
        won=won,
        frames=6,
        weights=RewardWeights(),
    )


# -- the reward -------------------------------------------------------------------------------

MARIO_LEVEL_X = 256 + MARIO_X


@pytest.mark.parametrize(
    ("after", "before", "expected"),
    [
        pytest.param({smb.PLAYER_X: MARIO_X + 10}, None, 10.0, id="10 px right: +1 each"),
        pytest.param({smb.PLAYER_X: MARIO_X - 4}, None, -4.0, id="4 px back: -1 each"),
        pytest.param(
            {smb.PLAYER_X: MARIO_X + 10, **enemy_at(MARIO_LEVEL_X + 10 + 32)},
            enemy_at(MARIO_LEVEL_X + 10 + 32),
            5.0,
            id="right with an enemy 2 tiles ahead (mid window): +0.5 each",
        ),
        pytest.param(
            {smb.PLAYER_X: MARIO_X + 10, **enemy_at(MARIO_LEVEL_X + 10 + 80)},
            enemy_at(MARIO_LEVEL_X + 10 + 80),
            10.0,
            id="right with an enemy 5 tiles ahead (far window): full",
        ),
        pytest.param(
            {smb.PLAYER_Y: GROUND_Y - 16, smb.PLAYER_Y_PIXEL: GROUND_Y - 16},
            None,
            4.0,
            id="16 px up: +0.25 each",
        ),
        pytest.param(
            {smb.PLAYER_Y: GROUND_Y, smb.PLAYER_Y_PIXEL: GROUND_Y},
            {smb.PLAYER_Y: GROUND_Y - 16, smb.PLAYER_Y_PIXEL: GROUND_Y - 16},
            0.0,
            id="falling costs nothing",
        ),
        pytest.param(
            enemy_at(MARIO_LEVEL_X + 160, state=STOMPED),
            enemy_at(MARIO_LEVEL_X + 160),
            25.0,
            id="a stomp kill: +25",
        ),
        pytest.param({smb.POWER: 0}, {smb.POWER: 1}, -50.0, id="hurt (big to small): -50"),
        pytest.param(
            {smb.PLAYER_X: MARIO_X + 200}, None, 0.0, id="a 200 px warp in 6 frames: no progress"
        ),
    ],
)
def test_reward_terms_on_hand_made_ram(after, before, expected):
    assert reward_for(after, before) == pytest.approx(expected)


def test_reward_penalises_being_stuck():
    assert reward_for({}, steps_still=6) == 0.0  # 7 decisions still: not yet stuck
    assert reward_for({}, steps_still=7) == -5.0  # the 8th: stuck


def test_dying_costs_100_and_its_last_moves_count_for_nothing():
    moved = {smb.PLAYER_X: MARIO_X + 10, smb.PLAYER_Y_PIXEL: GROUND_Y - 40}
    assert reward_for(moved, died=True) == -100.0


def test_reaching_the_flag_earns_100_on_top():
    assert reward_for({smb.PLAYER_X: MARIO_X + 3}, won=True) == 103.0


def test_the_weights_scale_their_terms():
    ram_before, ram_after = hand_ram(), hand_ram({smb.PLAYER_X: MARIO_X + 10})
    state = smb.symbolic_state(ram_after, smb.remember(ram_before, None))
    weights = RewardWeights(progress=2.0, kill=7.0)
    reward = decision_reward(
        smb.read_mario(ram_before),
        smb.read_mario(ram_after),
        state,
        2,
        died=False,
        won=False,
        frames=6,
        weights=weights,
    )
    assert reward == 2.0 * 10 + 7.0 * 2


# -- modes, enemies and scores ----------------------------------------------------------------


def test_training_rotates_small_big_fire_every_20_episodes():
    modes = [training_mode(episode, 20) for episode in range(130)]
    assert modes[:20] == [0] * 20 and modes[20:40] == [1] * 20 and modes[40:60] == [2] * 20
    assert modes[60:120] == modes[:60] and modes[120:] == [0] * 10


@pytest.mark.parametrize(("mode", "size"), [(0, 1), (1, 0), (2, 0)])
def test_set_mode_writes_power_and_a_consistent_player_size(mode, size):
    ram = hand_ram({smb.POWER: 1, PLAYER_SIZE: 0})
    set_mode(ram, mode)
    assert (ram[smb.POWER], ram[PLAYER_SIZE]) == (mode, size)


def test_set_mode_rejects_other_modes():
    with pytest.raises(ValueError, match=r"expected 0 \(small\), 1 \(big\) or 2 \(fire\)"):
        set_mode(hand_ram(), 3)


def test_live_enemies_keep_enemies_and_drop_platforms_and_the_defeated():
    ram = hand_ram(
        {
            **enemy_at(400, slot=0),
            **enemy_at(450, slot=1, kind=PLATFORM),
            **enemy_at(500, slot=2, state=FALLING),
            **enemy_at(550, slot=3, state=STOMPED),
        }
    )
    assert live_enemies(ram) == (GOOMBA, -1, -1, -1, -1)


@pytest.mark.parametrize(
    ("before", "after", "new"),
    [
        ((-1, -1, -1, -1, -1), (6, -1, 0, -1, -1), 2),
        ((6, -1, -1, -1, -1), (6, -1, -1, -1, -1), 0),
        ((6, -1, -1, -1, -1), (0, -1, -1, -1, -1), 1),  # the slot now holds another kind
        ((6, 6, -1, -1, -1), (-1, -1, -1, -1, -1), 0),
    ],
)
def test_count_new_enemies(before, after, new):
    assert count_new_enemies(before, after) == new


def test_composite_score_by_hand():
    assert composite_score(3161, True, 0, 5, 300) == 3161 + 1024 + 42 * 5 + 8 * 300
    assert composite_score(500, False, 1, 2, 300) == 500 + 32 + 42 * 2


def ground_ram(missing_columns: tuple[int, ...] = ()) -> np.ndarray:
    """`hand_ram` with ground (rows 11 and 12) under the screen but in `missing_columns`
    (level tile columns; Mario is in column 19)."""
    ram = hand_ram()
    for column in range(16, 32):
        if column not in missing_columns:
            for row in (11, 12):
                page = column // 16 % 2
                ram[smb.BLOCK_BUFFER + page * smb.BLOCK_PAGE_BYTES + row * 16 + column % 16] = 0x54
    return ram


@pytest.mark.parametrize(
    ("missing", "gap"),
    [((), False), ((20,), True), ((21,), True), ((22,), False), ((18,), False)],
)
def test_gap_ahead_looks_two_columns_right_of_mario(missing, gap):
    assert gap_ahead(ground_ram(missing)) is gap


def test_no_gap_when_mario_is_below_the_screen():
    ram = ground_ram((20,))
    ram[smb.PLAYER_Y_VIEWPORT] = 2
    assert gap_ahead(ram) is False


def test_the_gap_bit_sits_above_the_packed_code():
    ram = ground_ram((20,))
    state = smb.symbolic_state(ram, None)
    assert state_key(ram, state, gap_feature=False) == smb.pack_symbolic(state)
    assert state_key(ram, state, gap_feature=True) == smb.pack_symbolic(state) | 1 << GAP_BIT
    # Every field at its largest sets the code's top bit; the gap bit is the next one up,
    # so it collides with no code and a key splits back into its state and its gap flag.
    highest = smb.SymbolicState(2, 8, True, True, True, True, (3,) * 8, True, True, (True,) * 4)
    assert 1 << (GAP_BIT - 1) <= smb.pack_symbolic(highest) < 1 << GAP_BIT
    key = state_key(ram, state, gap_feature=True)
    assert key >> GAP_BIT == 1 and smb.unpack_symbolic(key & ~(1 << GAP_BIT)) == state
    assert CS229Config(gap_feature=True).encoding == GAP_ENCODING != ENCODING


def test_the_rings_key_holds_the_report_s_24_enemy_bits_below_its_gap_bit():
    ram = ground_ram((20,))
    state = smb.symbolic_state(ram, None)
    rings = np.zeros((8, 3), bool)
    rings[smb.DIRECTIONS.index("E")] = True  # near, mid and far east
    code = smb.pack_symbolic_rings(state, rings)
    assert code & 0xFFFF == smb.pack_symbolic(state) & 0xFFFF
    assert code >> 16 == 0b111 << (3 * smb.DIRECTIONS.index("E"))
    highest = smb.SymbolicState(2, 8, True, True, True, True, (3,) * 8, True, True, (True,) * 4)
    top = smb.pack_symbolic_rings(highest, np.ones((8, 3), bool))
    assert 1 << (RINGS_GAP_BIT - 1) <= top < 1 << RINGS_GAP_BIT == 1 << 40
    key = state_key(ram, state, gap_feature=True, enemy_rings=True)
    assert key == smb.pack_symbolic_rings(state, smb.enemy_rings(ram)) | 1 << RINGS_GAP_BIT
    assert CS229Config(enemy_rings=True).encoding == RINGS_ENCODING
    assert CS229Config(enemy_rings=True, gap_feature=True).encoding == RINGS_GAP_ENCODING
    assert len({RINGS_ENCODING, RINGS_GAP_ENCODING, GAP_ENCODING, ENCODING}) == 4
    with pytest.raises(ValueError, match="expected shape"):
        smb.pack_symbolic_rings(state, np.zeros(8, bool))


# -- the Q update and the table ---------------------------------------------------------------


def test_the_reports_settings_update_q_by_hand():
    """alpha0 0.8 / visits, gamma 0.6: Q(s, a) = 0.05, max Q(s', .) = 0.1, r = 10, twice."""
    table = QTable(12, ENCODING, np.random.default_rng(0))
    table.row(1), table.row(2)
    table.values[0, 3] = 0.05
    table.values[1] = 0.1
    agent = TabularAgent(CS229Config().tabular(), table, np.random.default_rng(0))
    agent.learn(1, 3, 10.0, 2, terminated=False)
    assert table.values[0, 3] == pytest.approx(0.05 + 0.8 * (10 + 0.6 * 0.1 - 0.05))  # 8.058
    agent.learn(1, 3, 10.0, 2, terminated=False)
    assert table.values[0, 3] == pytest.approx(8.058 + 0.4 * (10.06 - 8.058))  # 8.8588
    fixed = CS229Config(alpha=0.15, decay_alpha=False).tabular()
    assert (fixed.alpha, fixed.decay_alpha, fixed.gamma, fixed.epsilon) == (0.15, False, 0.6, 0.3)


def test_table_action_leaves_the_table_alone():
    table = QTable(12, ENCODING, np.random.default_rng(0))
    table.row(5)
    table.values[0] = np.arange(12.0)
    rng = np.random.default_rng(0)
    assert table_action(table, 5, 0.0, rng) == 11
    assert {table_action(table, 99, 0.0, rng) for _ in range(200)} == set(range(12))
    assert len(table) == 1


def test_a_table_of_another_state_encoding_version_is_refused(tmp_path):
    newer = StateEncoding(ENCODING.name, ENCODING.version + 1)
    QTable(12, newer, np.random.default_rng(0)).save(tmp_path / "table_0.npz")
    checkpoint = {
        "path": str(tmp_path / "frames_0.pt"),
        "agent_config": dataclasses.asdict(CS229Config()),
        "model_state": {"table_file": "table_0.npz"},
    }
    with pytest.raises(ValueError, match=f"expected a Q-table for state encoding {ENCODING}"):
        load_table(checkpoint)


def test_config_says_what_was_expected():
    with pytest.raises(ValueError, match=r"gamma: expected a value in \[0, 1\], got 1.5"):
        CS229Config(gamma=1.5)
    with pytest.raises(ValueError, match="frames_per_decision: expected a positive integer"):
        CS229Config(frames_per_decision=0)


# -- the env on Mario -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def symbolic_env() -> Iterator:
    config = dataclasses.replace(QUICK, noop_max=0)
    env = make_symbolic_env(config.env_config("1-1"), seed=0, settings=config.symbolic())
    yield env
    env.close()


@pytest.mark.parametrize(("mode", "size"), [(0, 1), (1, 0), (2, 0)])
def test_reset_sets_the_mode_through_ram_and_the_game_keeps_it(symbolic_env, mode, size):
    obs, info = symbolic_env.reset(options={"mode": mode})
    ram = symbolic_env.unwrapped.ram
    assert (ram[smb.POWER], ram[PLAYER_SIZE]) == (mode, size)
    assert smb.unpack_symbolic(int(obs)).mode == mode and info["mode"] == mode
    fireball = False
    for action in (NOOP, B_ONLY, B_ONLY):
        obs, _, terminated, truncated, info = symbolic_env.step(action)
        fireball |= bool(ram[smb.FIREBALL_STATE])
        assert smb.pack_symbolic(smb.unpack_symbolic(int(obs))) == obs  # real states round-trip
    assert not (terminated or truncated)
    assert (ram[smb.POWER], ram[PLAYER_SIZE]) == (mode, size)
    assert smb.unpack_symbolic(int(obs)).mode == mode and info["mode"] == mode
    assert fireball == (mode == 2)  # only fire Mario throws on B


def test_a_decision_is_k_frames_and_a_stalled_episode_is_truncated(symbolic_env):
    _, info = symbolic_env.reset(options={"mode": 0})
    start = info["frames"]
    _, _, _, _, info = symbolic_env.step(NOOP)
    assert info["frames"] - start == QUICK.frames_per_decision
    for _ in range(QUICK.no_progress_decisions - 2):
        _, _, terminated, truncated, info = symbolic_env.step(NOOP)
        assert not (terminated or truncated)
    _, _, terminated, truncated, info = symbolic_env.step(NOOP)
    assert truncated and not terminated and info["no_progress"]


# -- smoke runs -------------------------------------------------------------------------------


def quick_run(tmp_path: Path, episodes: int = 2, **changes: object) -> Path:
    run = RunConfig(seed=3, frames=100_000, runs_dir=str(tmp_path), progress=False)
    config = dataclasses.replace(QUICK, episodes=episodes, **changes)
    return train(run, EnvConfig(level="1-1"), config)


def test_training_writes_the_shared_run_files_and_the_evaluations(tmp_path):
    run_dir = quick_run(tmp_path)
    for name in ("config.json", "episodes.csv", "rewards.npy", TABLE_FILE, EVALUATIONS_FILE):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "learning_curves.png").stat().st_size > 0
    evaluations = read_evaluations(run_dir)
    assert [e.episode for e in evaluations] == [1, 2]
    assert all(0.0 <= e.win_rate <= 1.0 and e.mean_x > 0 for e in evaluations)
    assert all(0.0 <= e.unseen_share <= 1.0 for e in evaluations)
    assert len(np.load(run_dir / "rewards.npy")) == 2
    # Evaluations saved before unseen_share was measured still read, as nan.
    path = run_dir / EVALUATIONS_FILE
    old_columns = [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]
    path.write_text("\n".join(old_columns) + "\n")
    assert all(np.isnan(e.unseen_share) for e in read_evaluations(run_dir))
    table = QTable.load(run_dir / TABLE_FILE, ENCODING, np.random.default_rng(0))
    assert len(table) > 0 and table.visits.sum() > 0
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    assert [p.suffix for p in checkpoints] == [".pt", ".npz"]

    policy = load_policy(run_dir)
    report = evaluate(policy, episodes=1, epsilon=0.01, noop_max=5, max_stuck_steps=8)
    assert report["algo"] == "tabular" and report["episodes"] == 1 and report["max_x"] > 0
    # States the table never saw get random actions, drawn per episode: an episode is the
    # same whichever episodes were played before it (as evaluation workers need).
    settings = dict(noop_max=5, max_stuck_steps=8)
    third = evaluate(policy, episodes=3, seed=7, **settings)["per_episode"][2]
    assert third == evaluate(policy, episodes=1, seed=9, **settings)["per_episode"][0]
    # The symbolic agent's own env honours evaluation's sticky actions too.
    env = policy.make_env(dataclasses.replace(policy.env_config, sticky_probability=0.25), 0)
    (sticky,) = [layer for layer in wrapper_layers(env) if isinstance(layer, StickyAction)]
    # Rests on the set's no-op, not its index 0 (left+A+B in the CS229 set).
    assert sticky.noop_action == noop_index("cs229") == 11


def test_ctrl_c_keeps_the_table_learned_so_far(tmp_path, monkeypatch):
    from mario_rl.agents import cs229

    real_play, calls = cs229.play, []

    def play_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_play(*args, **kwargs)

    monkeypatch.setattr(cs229, "play", play_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        quick_run(tmp_path, episodes=5, eval_episodes=0)
    (run_dir,) = tmp_path.iterdir()
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[0].startswith("frames_"), checkpoints
    table = QTable.load(run_dir / TABLE_FILE, ENCODING, np.random.default_rng(0))
    assert table.visits.sum() > 0
    assert len(np.load(run_dir / "rewards.npy")) == 2  # the two finished episodes


def wrapper_layers(env):
    while True:
        yield env
        if not hasattr(env, "env"):
            return
        env = env.env


def test_training_twice_with_one_seed_gives_the_same_table(tmp_path):
    runs = [quick_run(tmp_path / str(i), eval_episodes=0, gap_feature=True) for i in (0, 1)]
    rng = np.random.default_rng(0)
    tables = [QTable.load(run_dir / TABLE_FILE, GAP_ENCODING, rng) for run_dir in runs]
    assert load_policy(runs[0]).num_actions == 12  # the checkpoint names its encoding
    np.testing.assert_array_equal(tables[0].states, tables[1].states)
    np.testing.assert_array_equal(tables[0].values, tables[1].values)


def test_training_with_enemy_rings_keys_its_table_by_the_rings_encoding(tmp_path):
    run_dir = quick_run(tmp_path, eval_episodes=0, enemy_rings=True)
    table = QTable.load(run_dir / TABLE_FILE, RINGS_ENCODING, np.random.default_rng(0))
    assert len(table) > 0 and int(np.max(table.states)) < 1 << RINGS_GAP_BIT
    with pytest.raises(ValueError, match="state encoding"):
        QTable.load(run_dir / TABLE_FILE, ENCODING, np.random.default_rng(0))
    assert load_policy(run_dir).num_actions == 12


def test_envs_side_by_side_feed_one_table_and_one_seed_fixes_it(tmp_path):
    runs = [quick_run(tmp_path / str(i), episodes=4, num_envs=2, eval_every=2, eval_episodes=3)
            for i in (0, 1)]  # fmt: skip
    rng = np.random.default_rng(0)
    tables = [QTable.load(run_dir / TABLE_FILE, ENCODING, rng) for run_dir in runs]
    np.testing.assert_array_equal(tables[0].states, tables[1].states)
    np.testing.assert_array_equal(tables[0].values, tables[1].values)
    counters = [load_checkpoint(run_dir)["counters"] for run_dir in runs]
    assert counters[0] == counters[1] and counters[0]["episodes"] >= 4
    # One update per decision of either env: the table saw both envs' transitions.
    assert tables[0].visits.sum() == counters[0]["updates"] > 0
    evaluations = read_evaluations(runs[0])
    assert len(evaluations) >= 2 and all(e.mean_x > 0 for e in evaluations)
    others = read_evaluations(runs[1])
    # The same evaluations (wall-clock aside; assert_equal counts NaN equal to NaN).
    np.testing.assert_equal(
        [dataclasses.asdict(e) | {"wall_s": 0} for e in evaluations],
        [dataclasses.asdict(e) | {"wall_s": 0} for e in others],
    )


def test_envs_in_turn_learn_each_envs_own_transitions(tmp_path, monkeypatch):
    from mario_rl.agents import cs229

    events: list[tuple] = []
    real_send, real_learn = cs229.CS229Trainer._send, TabularAgent.learn

    def send(trainer, i):
        action = real_send(trainer, i)
        events.append(("send", i, trainer.states[i], action))
        return action

    def learn(agent, state, action, reward, next_state, terminated):
        events.append(("learn", state, action, next_state))
        return real_learn(agent, state, action, reward, next_state, terminated)

    monkeypatch.setattr(cs229.CS229Trainer, "_send", send)
    monkeypatch.setattr(TabularAgent, "learn", learn)
    run_dir = quick_run(tmp_path, episodes=6, num_envs=3, eval_episodes=0)
    episodes = load_checkpoint(run_dir)["counters"]["episodes"]
    sent: dict[int, tuple[int, int]] = {}
    learned = chained = 0
    for index, event in enumerate(events):
        if event[0] == "send" and event[1] not in sent:
            sent[event[1]] = event[2:]  # the turn's first round: nothing learned before
            continue
        if event[0] != "learn":
            continue
        _, state, action, next_state = event
        kind, i, new_state, new_action = events[index + 1]
        # Each learned step is that env's own (state, action) as sent, and the env's next
        # decision, sent right after, starts from the step's next state (unless its
        # episode ended there and the env was reset).
        assert kind == "send" and (state, action) == sent[i], (index, event, sent)
        chained += next_state == new_state
        learned += 1
        sent[i] = (new_state, new_action)
    assert len(sent) == 3 and learned > 0
    assert learned - chained <= episodes


@pytest.mark.filterwarnings("error:.*pending call")
def test_envs_in_turn_stop_and_resume_mid_turn(tmp_path, monkeypatch):
    real_learn, calls = TabularAgent.learn, []

    def learn_then_interrupt(agent, *args):
        calls.append(1)
        if len(calls) == 40:  # the other envs' steps are in flight
            raise KeyboardInterrupt
        return real_learn(agent, *args)

    monkeypatch.setattr(TabularAgent, "learn", learn_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        quick_run(tmp_path, episodes=4, num_envs=2, eval_episodes=0)
    monkeypatch.setattr(TabularAgent, "learn", real_learn)
    (run_dir,) = tmp_path.iterdir()
    before = load_checkpoint(run_dir)["counters"]
    run = RunConfig(seed=3, frames=100_000, runs_dir=str(tmp_path), progress=False)
    config = dataclasses.replace(QUICK, episodes=4, num_envs=2, eval_episodes=0)
    assert train(run, EnvConfig(level="1-1"), config, resume=run_dir) == run_dir
    after = load_checkpoint(run_dir)["counters"]
    assert after["episodes"] >= 4 and after["updates"] > before["updates"] >= 39


def test_scheduled_modes_rotate_by_each_envs_own_episodes(scripted_env):
    from mario_rl.env.symbolic import ScheduledModes

    class Recorder(gym.Wrapper):
        def __init__(self, env):
            super().__init__(env)
            self.modes: list[int] = []

        def reset(self, **kwargs):
            self.modes.append(kwargs["options"]["mode"])
            return self.env.reset()

    # Env 1 of 2 with blocks of 2: its episodes are 1, 3, 5, 7 -> modes 0, 1, 2, 0.
    env = ScheduledModes(Recorder(scripted_env()), block=2, first=1, stride=2)
    for _ in range(4):
        env.reset()
    assert env.env.modes == [0, 1, 2, 0]
    evaluation = ScheduledModes(Recorder(scripted_env()), block=None)
    evaluation.reset()
    assert evaluation.env.modes[-1] == 0  # evaluation always starts small


@pytest.fixture
def evaluation_envs_in_turn() -> Iterator[list[gym.vector.VectorEnv]]:
    """Two evaluation envs in worker processes, stepped in turn, reset with seed 0."""
    from mario_rl.env.symbolic import close_in_turn, make_symbolic_envs_in_turn, reset_in_turn

    envs = make_symbolic_envs_in_turn(QUICK.env_config("1-1"), QUICK.symbolic(), 2, mode_block=None)
    try:
        reset_in_turn(envs, seed=0)
        yield envs
    finally:
        close_in_turn(envs)


def test_env_workers_run_without_torch(evaluation_envs_in_turn):
    """The workers import the env alone: PyTorch in each added about 2 s of start-up."""
    if not Path("/proc/self/maps").is_file():
        pytest.skip("reads the workers' memory maps from /proc")
    for env in evaluation_envs_in_turn:
        (worker,) = env.processes
        libraries = Path(f"/proc/{worker.pid}/maps").read_text()
        assert "nes_py" in libraries
        assert "libtorch" not in libraries


def test_the_symbolic_env_imports_no_torch_and_has_the_agents_defaults():
    code = "import sys, mario_rl.env.symbolic; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    assert "'mario_rl.env.symbolic'" in loaded
    assert "'torch'" not in loaded and "'mario_rl.agents'" not in loaded
    assert SymbolicSettings() == CS229Config().symbolic()


def test_envs_in_turn_refuse_bad_counts():
    from mario_rl.env.symbolic import make_symbolic_envs_in_turn

    env_config = QUICK.env_config("1-1")
    with pytest.raises(ValueError, match="num_envs: expected a positive integer, got 0"):
        make_symbolic_envs_in_turn(env_config, QUICK.symbolic(), 0, mode_block=None)
    with pytest.raises(ValueError, match="mode_block: expected a positive integer or None"):
        make_symbolic_envs_in_turn(env_config, QUICK.symbolic(), 1, mode_block=0)


def test_side_by_side_evaluation_plays_exactly_the_episodes_asked_for(evaluation_envs_in_turn):
    from mario_rl.agents.cs229 import _play_in_turn, evaluate_table, table_action

    envs = evaluation_envs_in_turn
    table, rng = QTable(12, ENCODING, np.random.default_rng(0)), np.random.default_rng(1)
    for episodes in (1, 3):
        results = _play_in_turn(envs, lambda state: table_action(table, state, 0.5, rng), episodes)
        assert len(results) == episodes and all(r["mode"] == 0 for r in results)
    # An empty table has seen no state: every decision is a uniform one.
    assert evaluate_table(envs, table, 2, 0.5, rng).unseen_share == 1.0
    assert len(table) == 0  # evaluation adds no rows


def test_an_evaluation_stopped_mid_turn_leaves_its_envs_ready_for_the_next(
    evaluation_envs_in_turn,
):
    from mario_rl.agents.cs229 import _play_in_turn

    decisions = 0

    def interrupted(state: int) -> int:
        nonlocal decisions
        decisions += 1
        if decisions == 5:  # the other env's step is in flight
            raise KeyboardInterrupt
        return 0

    with pytest.raises(KeyboardInterrupt):
        _play_in_turn(evaluation_envs_in_turn, interrupted, 2)
    assert len(_play_in_turn(evaluation_envs_in_turn, lambda state: 3, 2)) == 2


def test_train_algo_tabular_command(tmp_path, capsys):
    args = ["train", "--algo", "tabular", "--frames", "200", "--no-progress-steps", "8"]
    assert main([*args, "--runs-dir", str(tmp_path), "--quiet"]) == 0
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("1-1__tabular__0__")
    assert (run_dir / TABLE_FILE).is_file()
    # `--resume` continues the table and its counters, as for the pixel agents.
    before = load_checkpoint(run_dir)["counters"]
    assert main(["train", "--resume", str(run_dir), "--frames", "400", "--quiet"]) == 0
    after = load_checkpoint(run_dir)["counters"]
    assert after["frames"] >= 400 and after["episodes"] > before["episodes"]
    assert after["updates"] > before["updates"]
    # With --algo as well, the message says what a resume takes.
    resumed = ["train", "--algo", "tabular", "--resume", str(run_dir), "--frames", "600"]
    assert main(resumed) == 2
    assert "--resume continues the run with its own config.json" in capsys.readouterr().err


def test_train_algo_tabular_takes_num_envs(tmp_path):
    args = ["train", "--algo", "tabular", "--frames", "200", "--num-envs", "2"]
    assert main([*args, "--no-progress-steps", "8", "--runs-dir", str(tmp_path), "--quiet"]) == 0
    (run_dir,) = tmp_path.iterdir()
    config = load_checkpoint(run_dir)["agent_config"]
    assert config["num_envs"] == 2 and load_checkpoint(run_dir)["counters"]["frames"] >= 200


def test_a_table_file_named_in_a_checkpoint_never_leaves_its_folder(tmp_path, capsys):
    args = ["train", "--algo", "tabular", "--frames", "200", "--no-progress-steps", "8"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    (checkpoint,) = (run_dir / "checkpoints").glob("*.pt")
    payload = torch.load(checkpoint, weights_only=True)
    (tmp_path / "secret.npz").write_bytes((run_dir / TABLE_FILE).read_bytes())
    payload["model_state"]["table_file"] = "../../../secret.npz"
    torch.save(payload, checkpoint)
    models = tmp_path / "models"
    bundle = ["bundle", str(run_dir), "--command", "x", "--models-dir", str(models)]
    assert main([*bundle, "--episodes", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "expected a file name beside the checkpoint, got '../../../secret.npz'" in err
    assert err.count("\n") == 1 and not list(tmp_path.rglob("models/**/*.npz"))
    with pytest.raises(CheckpointError, match="expected a file name beside the checkpoint"):
        load_policy(run_dir)


def test_train_algo_tabular_refuses_dqn_flags(capsys):
    assert main(["train", "--algo", "tabular", "--lr", "0.1"]) == 2
    assert "--algo tabular: expected only the shared flags" in capsys.readouterr().err


def test_cs229_study_command_plots_the_three_variants_together(tmp_path, capsys):
    args = ["cs229-study", "--episodes", "1", "--eval-every", "1", "--eval-episodes", "1"]
    args += ["--no-progress-decisions", "8", "--runs-dir", str(tmp_path), "--quiet"]
    assert main(args) == 0
    (study,) = tmp_path.iterdir()
    assert (study / "study_1-1.png").stat().st_size > 0
    assert len([p for p in study.iterdir() if p.is_dir()]) == 3
    out = capsys.readouterr().out
    assert "fixed alpha 0.15" in out and "gamma 0.2" in out and "study plot" in out


def test_a_study_s_episodes_are_its_budget_with_no_frame_limit(tmp_path, monkeypatch):
    import mario_rl.studies

    def record(level, base, run, out, variants, seeds, keep=None):
        seen.append((run, base))
        raise ValueError("recorded")

    seen: list = []
    monkeypatch.setattr(mario_rl.studies, "run_study", record)
    assert main(["cs229-study", "--episodes", "3000", "--out", str(tmp_path), "--quiet"]) == 2
    ((run, base),) = seen
    # RunConfig's default of 2M frames would end 3,000 episodes of 1-1 near episode 1,900.
    assert run.frames is None and run.minutes is None and base.episodes == 3000


def test_an_episode_count_alone_bounds_a_run_and_nothing_else_runs_unbounded(tmp_path):
    from mario_rl.agents.ppo.config import PPOConfig

    run = RunConfig(seed=3, frames=None, runs_dir=str(tmp_path), progress=False)
    run_dir = train(
        run, EnvConfig(level="1-1"), dataclasses.replace(QUICK, episodes=2, eval_episodes=0)
    )
    assert load_checkpoint(run_dir)["counters"]["episodes"] == 2
    with pytest.raises(ValueError, match="expected frames, minutes or both"):
        train(run, EnvConfig(level="1-1"), dataclasses.replace(QUICK, episodes=None))
    with pytest.raises(ValueError, match="expected frames, minutes or both"):
        train(run, EnvConfig(level="1-1"), PPOConfig())


def test_the_study_command_names_the_variants_the_agent_defines():
    from mario_rl.agents.cs229 import REPORT_STUDIES, STUDY_VARIANTS
    from mario_rl.cli.cs229 import REPORT_STUDY_NAMES, STUDY_VARIANT_NAMES

    assert tuple(STUDY_VARIANTS) == STUDY_VARIANT_NAMES
    assert REPORT_STUDY_NAMES == REPORT_STUDIES


def test_a_study_on_several_seeds_continues_and_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["cs229-study", "--episodes", "1", "--eval-every", "1", "--eval-episodes", "1"]
    args += ["--no-progress-decisions", "8", "--quiet", "--out", str(out)]
    args += ["--variants", "default", "rings", "--seeds", "2", "--seed", "4"]
    assert main(args) == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["default__seed4", "default__seed5", "rings__seed4", "rings__seed5"]
    state = json.loads((out / "study.json").read_text())
    assert sorted(state["finished"]) == folders
    # Seed by seed, so that a study stopped part-way has both variants on its first seeds.
    assert list(state["finished"]) == [
        "default__seed4",
        "rings__seed4",
        "default__seed5",
        "rings__seed5",
    ]
    # Kept relative to the study's folder, which may move.
    assert all((out / path / "config.json").is_file() for path in state["finished"].values())
    assert not any(Path(path).is_absolute() for path in state["finished"].values())
    assert "last evaluation win" in capsys.readouterr().out
    # Again: the finished runs are kept, none trained anew.
    runs_before = sorted(out.glob("*/*/config.json"))
    assert main(args) == 0
    assert sorted(out.glob("*/*/config.json")) == runs_before
    capsys.readouterr()
    # Other settings in the same folder are refused.
    assert main([*args, "--gamma", "0.3"]) == 2
    assert "holds a study with other settings" in capsys.readouterr().err


def study_args(out: Path, *more: str) -> list[str]:
    args = ["cs229-study", "--episodes", "2", "--eval-every", "1", "--eval-episodes", "1"]
    return [*args, "--no-progress-decisions", "8", "--quiet", "--out", str(out), *more]


def test_a_study_kept_elsewhere_continues_on_a_machine_that_lost_its_folder(tmp_path, capsys):
    out, keep = tmp_path / "runs" / "study", tmp_path / "kept"
    args = study_args(out, "--variants", "default", "gamma-0.2", "--keep-copy", str(keep))
    assert main(args) == 0
    state = json.loads((keep / "study.json").read_text())
    assert state == json.loads((out / "study.json").read_text())
    for path in state["finished"].values():
        (checkpoint,) = (keep / path / "checkpoints").glob("frames_*.pt")
        assert (out / path / "checkpoints" / checkpoint.name).is_file()
        assert (keep / path / "evaluations.csv").read_text() == (
            out / path / "evaluations.csv"
        ).read_text()
    first = capsys.readouterr().out
    shutil.rmtree(tmp_path / "runs")  # the machine's runs/ is lost
    shutil.copytree(keep, out)
    assert main(args) == 0
    again = capsys.readouterr().out
    # Nothing trained anew: the same runs, the same evaluations.
    assert sorted(p.parent.name for p in out.glob("*/*/config.json")) == sorted(
        Path(path).name for path in state["finished"].values()
    )
    assert [line for line in first.splitlines() if "last evaluation" in line] == [
        line for line in again.splitlines() if "last evaluation" in line
    ]
    assert (out / "study_1-1.png").is_file()
    for inside in (out, out / "kept", tmp_path):  # the study's own folder, in it, around it
        assert main([*args[:-2], "--keep-copy", str(inside)]) == 2
        assert "hold one another" in capsys.readouterr().err

    # A run stopped part-way (not yet listed finished) continues from its copied-back run,
    # not from a kill's leftover beside it, however new.
    shutil.rmtree(tmp_path / "runs")
    shutil.copytree(keep, out)
    for folder in (keep, out):
        saved = json.loads((folder / "study.json").read_text())
        del saved["finished"]["gamma-0.2__seed0"]
        (folder / "study.json").write_text(json.dumps(saved))
    (gamma_run,) = (out / "gamma-0.2__seed0").iterdir()
    leftover = out / "gamma-0.2__seed0" / f".{gamma_run.name}.building"
    shutil.copytree(gamma_run, leftover)
    (leftover / "evaluations.csv").unlink()
    assert main(args) == 0
    finished = json.loads((keep / "study.json").read_text())["finished"]
    assert finished["gamma-0.2__seed0"] == f"gamma-0.2__seed0/{gamma_run.name}"
    capsys.readouterr()
    # The copy is no one else's: another study's settings, or a study behind it, refused.
    fresh = study_args(tmp_path / "fresh", *args[args.index("--variants") :])
    assert main([*fresh, "--gamma", "0.5"]) == 2
    assert "keeps a study with other settings" in capsys.readouterr().err
    assert main(fresh) == 2
    assert "copy them back first" in capsys.readouterr().err


def test_a_study_kept_only_from_its_continuation_keeps_its_finished_runs(tmp_path):
    out, keep = tmp_path / "study", tmp_path / "kept"
    args = study_args(out, "--variants", "default")
    assert main(args) == 0
    assert main([*args, "--keep-copy", str(keep)]) == 0
    (run,) = (out / "default__seed0").iterdir()
    assert (keep / "default__seed0" / run.name / "config.json").is_file()
    assert "default__seed0" in json.loads((keep / "study.json").read_text())["finished"]


def test_study_curves_are_the_mean_and_range_over_the_runs_at_each_evaluation():
    from mario_rl.agents.cs229 import Evaluation, _mean_and_range, runs_side_by_side

    def evaluation(episode, win_rate):
        return Evaluation(episode, 0, 0.0, win_rate, 0.0, 0.0, float("nan"), 0.0, 0.0)

    # The second run's envs side by side finished its due episode at 41, and it has no
    # evaluation at 60 (yet).
    runs = [
        [evaluation(20, 0.1), evaluation(40, 0.5), evaluation(60, 0.7)],
        [evaluation(20, 0.3), evaluation(41, 0.9)],
    ]
    episodes, values = runs_side_by_side(runs, "win_rate", eval_every=20)
    assert episodes == [20, 40, 60]
    mean, low, high = _mean_and_range(values)
    assert np.allclose(mean, [0.2, 0.7, 0.7]) and np.allclose(low, [0.1, 0.5, 0.7])
    assert np.allclose(high, [0.3, 0.9, 0.7])
    assert runs_side_by_side(runs, "win_rate")[0] == [20, 40, 41, 60]
    _, times = runs_side_by_side(runs, "finish_time", eval_every=20)
    assert np.isnan(_mean_and_range(times)[0]).all()  # no wins: no time, not a warning


def test_an_evaluation_a_stop_interrupted_is_made_on_resuming(tmp_path, monkeypatch):
    from mario_rl.agents import cs229

    real_evaluate, calls = cs229.evaluate_table, []

    def second_one_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(cs229, "evaluate_table", second_one_interrupted)
    with pytest.raises(KeyboardInterrupt):
        quick_run(tmp_path, episodes=2, eval_every=1, eval_episodes=1)
    (run_dir,) = tmp_path.iterdir()
    assert [e.episode for e in read_evaluations(run_dir)] == [1]
    # The episode that made the evaluation due was logged before it.
    with (run_dir / "episodes.csv").open() as file:
        assert [row["episode"] for row in csv.DictReader(file)] == ["1", "2"]
    # The checkpoint counts both episodes; resuming makes the missing evaluation first.
    run = RunConfig(seed=3, frames=100_000, runs_dir=str(tmp_path), progress=False)
    config = dataclasses.replace(QUICK, episodes=2, eval_every=1, eval_episodes=1)
    assert train(run, EnvConfig(level="1-1"), config, resume=run_dir) == run_dir
    assert [e.episode for e in read_evaluations(run_dir)] == [1, 2]


def test_an_evaluation_after_the_last_checkpoint_is_made_again_after_a_crash(tmp_path, monkeypatch):
    """A crash (no checkpoint on the way out) after an evaluation that followed the last
    checkpoint: the resumed run makes that evaluation again from the generator state the
    checkpoint saved, rather than keeping it and then drawing its draws again."""
    from mario_rl.agents import cs229

    real_play, real_evaluate = cs229.play, cs229.evaluate_table
    states, training_episodes = [], []

    def recorded(env, table, episodes, epsilon, rng, *, at):
        states.append((at[0], str(rng.bit_generator.state["state"])))
        return real_evaluate(env, table, episodes, epsilon, rng, at=at)

    def crash_in_the_third_episode(*args, learn=None, **kwargs):
        if learn is not None:
            training_episodes.append(1)
            if len(training_episodes) == 3:
                raise RuntimeError("crash")
        return real_play(*args, learn=learn, **kwargs)

    monkeypatch.setattr(cs229, "evaluate_table", recorded)
    monkeypatch.setattr(cs229, "play", crash_in_the_third_episode)
    run = RunConfig(
        seed=3, frames=100_000, runs_dir=str(tmp_path), progress=False, checkpoint_every=1
    )
    config = dataclasses.replace(QUICK, episodes=3, eval_every=1, eval_episodes=1)
    with pytest.raises(RuntimeError, match="crash"):
        train(run, EnvConfig(level="1-1"), config)
    (run_dir,) = tmp_path.iterdir()
    assert [e.episode for e in read_evaluations(run_dir)] == [1, 2]
    monkeypatch.setattr(cs229, "play", real_play)
    train(run, EnvConfig(level="1-1"), config, resume=run_dir)
    # Evaluation 2 (made after the checkpoint at episode 2) again, with the same draws.
    assert [episode for episode, _ in states] == [1, 2, 2, 3]
    assert states[2] == states[1] and states[3][1] != states[1][1]
    assert [e.episode for e in read_evaluations(run_dir)] == [1, 2, 3]


def test_the_startup_benchmark_times_a_worker_built_and_reset():
    bench = load_script("benchmarks/bench_cs229_startup.py")
    assert 0 < bench.one_start(1) < 120
