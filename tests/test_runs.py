"""Run directories, metrics files, atomic checkpoints, kill/resume, and the mismatch error."""

import csv
import json
import os
import random
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from dqn_chain import chain_envs
from repo_scripts import REPO, load_script

from mario_rl.agents import load_policy
from mario_rl.agents.dqn import DQNConfig
from mario_rl.env.pipeline import EnvConfig
from mario_rl.runs import (
    EPISODE_COLUMNS,
    CheckpointError,
    RunConfig,
    RunDir,
    atomic_save,
    check_compatible,
    git_commit,
    keep_copy_of,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    set_rng_states,
    with_current_names,
)
from mario_rl.training import train

CHAIN_ENV = EnvConfig(actions="lnr", frame_stack=1)
CHAIN_AGENT = DQNConfig(
    network="mlp",
    gamma=0.9,
    learning_rate=1e-3,
    replay_size=2_000,
    burn_in=50,
    learn_every=2,
    target_sync_every=50,
    epsilon_schedule="three_phase",
    epsilon_anneal=300,
    epsilon_end=0.05,
    num_envs=2,
    worker_processes=False,
    torch_threads=1,
)


def chain_run(tmp_path, frames: int, **changes) -> RunConfig:
    return RunConfig(
        seed=5,
        frames=frames,
        device="cpu",
        runs_dir=str(tmp_path),
        checkpoint_every=200,
        keep_checkpoints=3,
        progress=False,
        **changes,
    )


def train_chain(run: RunConfig, agent: DQNConfig = CHAIN_AGENT, resume=None):
    return train(run, CHAIN_ENV, agent, resume=resume, envs_fn=lambda s: chain_envs(2, s))


def read_rows(run_dir) -> list[dict]:
    with (run_dir / "episodes.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


def test_git_commit_reads_a_repository_its_packed_refs_and_its_worktrees(tmp_path):
    # The long runs start from a `git worktree`, whose .git is a file, not a folder: their
    # config.json had no commit before.
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f.txt").write_text("one")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "src").mkdir()
    assert git_commit(repo / "src") == first
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "detached"), "HEAD")
    (repo / "f.txt").write_text("two")
    git(repo, "commit", "-qam", "two")
    second = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "branch"), "HEAD")
    assert git_commit(repo) == second
    assert git_commit(tmp_path / "detached" / "f.txt") == first
    assert git_commit(tmp_path / "branch") == second
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "side").exists()
    assert git_commit(repo) == second and git_commit(tmp_path / "branch") == second
    shutil.rmtree(repo / ".git" / "worktrees")  # the repository moved: the link dangles
    assert git_commit(tmp_path / "detached") is None


def test_run_directory_holds_config_metrics_and_checkpoints(tmp_path):
    run_dir = train_chain(chain_run(tmp_path, 1_000))
    assert run_dir.name.startswith("1-1__ddqn__5__")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 5 and config["agent"]["network"] == "mlp"
    assert config["env"]["actions"] == "lnr" and config["run"]["frames"] == 1_000
    assert {"torch", "numpy", "gymnasium", "python"} <= set(config["versions"])
    assert "git_commit" in config
    rows = read_rows(run_dir)
    assert rows and list(rows[0]) == list(EPISODE_COLUMNS)
    returns = np.load(run_dir / "rewards.npy")
    np.testing.assert_allclose(returns, [float(r["return"]) for r in rows])
    assert list((run_dir).glob("events.out.tfevents.*"))
    summaries = (run_dir / "log.txt").read_text().splitlines()
    assert len(summaries) == len(rows) // 100
    assert summaries[0].startswith("episode 100: frames ")
    # Checkpoints every 200 frames, the 3 newest kept, the last one at the end.
    kept = list_checkpoints(run_dir / "checkpoints")
    assert len(kept) == 3 and kept[-1].name == "frames_1000.pt"


@pytest.mark.parametrize("learner_thread", [False, True], ids=["inline", "learner-thread"])
def test_same_seed_trains_the_same_network(tmp_path, learner_thread):
    agent = replace(CHAIN_AGENT, prioritized=True, learner_thread=learner_thread)
    first = load_checkpoint(train_chain(chain_run(tmp_path / "a", 400), agent))
    second = load_checkpoint(train_chain(chain_run(tmp_path / "b", 400), agent))
    for name, tensor in first["model_state"].items():
        assert torch.equal(tensor, second["model_state"][name]), name
    assert first["counters"] == second["counters"]
    # Every update counted is in the weights: Adam stepped once per update.
    adam_steps = {float(s["step"]) for s in first["optimizer_state"]["state"].values()}
    assert adam_steps == {float(first["counters"]["updates"])}


@pytest.mark.parametrize("learner_thread", [False, True], ids=["inline", "learner-thread"])
def test_env_groups_train_the_same_network_as_one_vector_env(tmp_path, learner_thread):
    agent = replace(CHAIN_AGENT, num_envs=4, prioritized=True, learner_thread=learner_thread)
    runs = {}
    for groups in (1, 2, 4):
        size = 4 // groups
        run_dir = train(
            chain_run(tmp_path / str(groups), 400),
            CHAIN_ENV,
            replace(agent, env_groups=groups),
            envs_fn=lambda s, size=size, groups=groups: [
                chain_envs(size, s + i * size) for i in range(groups)
            ],
        )
        runs[groups] = (load_checkpoint(run_dir), read_rows(run_dir))
    one, one_rows = runs[1]
    assert one["counters"]["updates"] > 50 and len(one_rows) > 10
    for groups in (2, 4):
        other, other_rows = runs[groups]
        for name, tensor in one["model_state"].items():
            assert torch.equal(tensor, other["model_state"][name]), (groups, name)
        assert one["counters"] == other["counters"]
        assert one["explore_rng"] == other["explore_rng"]
        # Episodes logged alike, each at the run's frames after the step it ended in.
        wall_clock = "wall_s"
        assert [{k: v for k, v in row.items() if k != wall_clock} for row in one_rows] == [
            {k: v for k, v in row.items() if k != wall_clock} for row in other_rows
        ]


def test_kill_then_resume_continues_counters_optimizer_and_logs(tmp_path):
    run_dir = train_chain(chain_run(tmp_path, 600, save_replay=True))
    checkpoints = run_dir / "checkpoints"
    before = load_checkpoint(run_dir)
    # A kill while writing leaves a temporary file behind; it is never taken for a checkpoint.
    (checkpoints / ".frames_800.pt.999.tmp").write_bytes(b"half a checkpoint")
    # A kill after the last checkpoint leaves episodes logged past it; resume drops them.
    with (run_dir / "episodes.csv").open("a", newline="") as file:
        csv.writer(file).writerow([9_999, 99, 1.0, 1, 1, 1, 0, 0, 0, 1.0])
    assert load_checkpoint(run_dir)["counters"] == before["counters"]

    run = RunConfig(**json.loads((run_dir / "config.json").read_text())["run"])
    resumed = train_chain(replace(run, frames=1_000), resume=run_dir)
    assert resumed == run_dir
    after = load_checkpoint(run_dir)
    assert after["counters"]["frames"] == 1_000
    assert after["counters"]["steps"] == 1_000  # one frame per chain step
    # Updates continue from the checkpoint's count: one per 2 steps after the burn-in.
    assert after["counters"]["updates"] == (1_000 - 50) // 2
    adam_steps = {float(s["step"]) for s in after["optimizer_state"]["state"].values()}
    assert adam_steps == {float(after["counters"]["updates"])}
    assert not list(checkpoints.glob("*.tmp"))
    rows = read_rows(run_dir)
    frames = [int(r["frames"]) for r in rows]
    assert frames == sorted(frames) and max(frames) <= 1_000
    assert [int(r["episode"]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(np.load(run_dir / "rewards.npy")) == len(rows)
    assert sorted(p.name for p in run_dir.glob("replay*.pt")) == ["replay_1000.pt"]


def test_resume_takes_the_replay_of_the_checkpoints_frame_count(tmp_path):
    run_dir = train_chain(chain_run(tmp_path, 600, save_replay=True))
    saved = run_dir / "replay_600.pt"
    # A kill after the next replay was written but before its checkpoint: a newer replay.
    newer = torch.load(saved, weights_only=True)
    newer["rewards"][...] = 123.0
    torch.save(newer, run_dir / "replay_800.pt")
    run = RunConfig(**json.loads((run_dir / "config.json").read_text())["run"])
    train_chain(replace(run, frames=1_000), resume=run_dir)
    resumed = torch.load(run_dir / "replay_1000.pt", weights_only=True)
    assert 123.0 not in resumed["rewards"]
    # The replay of frame 600 was taken: no second burn-in, one update per 2 steps after it.
    assert load_checkpoint(run_dir)["counters"]["updates"] == (1_000 - 50) // 2
    assert sorted(p.name for p in run_dir.glob("replay*.pt")) == ["replay_1000.pt"]


def test_a_checkpoint_that_needs_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "frames_1.pt"
    torch.save({"format_version": 1, "model_state": Exploit()}, evil)
    with pytest.raises(CheckpointError, match=r"refused, it needs pickle.*GLOBAL .*system"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_resume_without_the_replay_burns_in_again(tmp_path):
    run_dir = train_chain(chain_run(tmp_path, 600))
    before = load_checkpoint(run_dir)["counters"]
    run = RunConfig(**json.loads((run_dir / "config.json").read_text())["run"])
    train_chain(replace(run, frames=1_000), resume=run_dir)
    after = load_checkpoint(run_dir)["counters"]
    refill = CHAIN_AGENT.burn_in
    assert after["updates"] == before["updates"] + (1_000 - before["steps"] - refill) // 2


def test_atomic_save_keeps_the_last_good_checkpoint_when_killed(tmp_path, monkeypatch):
    payload = {
        "algo": "dqn",
        "module": "mario_rl.agents.dqn",
        "action_set": "lnr",
        "network": "mlp",
        "env_config": {},
        "model_state": {"w": torch.ones(2)},
    }
    save_checkpoint(tmp_path, 100, payload, keep=2)

    def killed(obj, path, *args, **kwargs):
        with open(path, "wb") as file:
            file.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 200, payload, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["frames_100.pt"]
    assert torch.equal(
        load_checkpoint(tmp_path / "frames_100.pt")["model_state"]["w"], torch.ones(2)
    )


def test_a_full_disk_during_a_save_is_one_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    replay = tmp_path / "replay.pt"
    atomic_save({"w": torch.ones(2)}, replay)
    real_save = torch.save

    def disk_full(obj, path, *args, **kwargs):
        with open(path, "wb") as file:
            file.write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64\nmore")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"could not write .*replay.pt \(\[enforce fail .*earlier"):
        atomic_save({"w": torch.zeros(2)}, replay)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.pt"]
    assert torch.equal(torch.load(replay)["w"], torch.ones(2))
    # A temporary that a kill left behind goes with the next good save.
    (tmp_path / ".replay.pt.999.tmp").write_bytes(b"tens of MB")
    monkeypatch.setattr(torch, "save", real_save)
    atomic_save({"w": torch.zeros(2)}, replay)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.pt"]


def test_mismatched_checkpoint_is_a_one_line_error(tmp_path):
    run_dir = train_chain(chain_run(tmp_path, 200))
    checkpoint = load_checkpoint(run_dir)
    with pytest.raises(CheckpointError) as error:
        check_compatible(checkpoint, "ddqn", "right_only", "nature")
    message = str(error.value)
    assert "\n" not in message
    assert "was made for algo ddqn, action set lnr / network mlp" in message
    assert "this run uses algo ddqn, action set right_only / network nature" in message
    # Resuming with another network fails the same way, before training anything.
    with pytest.raises(
        CheckpointError, match=r"network mlp; this run uses .* network mlp\+dueling"
    ):
        train_chain(chain_run(tmp_path, 400), replace(CHAIN_AGENT, dueling=True), resume=run_dir)


def test_bad_paths_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such run directory or checkpoint file"):
        load_policy(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint yet"):
        load_policy(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not a run directory"):
        RunDir(tmp_path / "empty")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_policy(tmp_path / "junk.pt")


def fake_run(path, preset: str, returns: list[float]):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"preset": preset, "algo": "dqn"}))
    with (path / "episodes.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, EPISODE_COLUMNS)
        writer.writeheader()
        for i, value in enumerate(returns):
            row = dict.fromkeys(EPISODE_COLUMNS, 0)
            writer.writerow({**row, "frames": 100 * (i + 1), "episode": i + 1, "return": value})
    return path


def test_compare_groups_runs_by_preset_and_averages_seeds(tmp_path):
    from mario_rl.compare import compare

    runs = [
        fake_run(tmp_path / "a0", "tutorial-dqn", [0.0, 2.0, 4.0]),
        fake_run(tmp_path / "a1", "tutorial-dqn", [2.0, 4.0, 6.0]),
        fake_run(tmp_path / "b0", "tutorial-ddqn", [10.0, 10.0, 10.0]),
    ]
    summary = compare(runs, tmp_path / "plot.png", window=1)
    assert summary == {
        "tutorial-ddqn": {"runs": 1, "frames": 300.0, "final": 10.0},
        "tutorial-dqn": {"runs": 2, "frames": 300.0, "final": 5.0},
    }
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_resume_rewrites_the_episode_log_beside_the_old_one(tmp_path, monkeypatch):
    """A kill while resume trims episodes.csv must not leave it empty (it did: in place)."""
    import os

    from mario_rl.runs import MetricsLogger

    run_dir = train_chain(chain_run(tmp_path, 400))
    log = run_dir / "episodes.csv"
    before = log.read_text()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        MetricsLogger(RunDir(run_dir), resume_frames=200)
    assert log.read_text() == before
    monkeypatch.undo()
    MetricsLogger(RunDir(run_dir), resume_frames=200).writer.close()
    assert not list(run_dir.glob(".episodes.csv.*"))
    assert all(int(row["frames"]) <= 200 for row in read_rows(run_dir))


def test_a_resume_drops_the_episodes_logged_past_its_checkpoint(tmp_path):
    """Before, the rows a killed run logged within its resumed envs' no-op frames past the
    checkpoint were kept: the trim used the trainer's frames, which count those no-ops."""
    from mario_rl.cli.main import main

    runs = tmp_path / "runs"
    small = ["--num-envs", "2", "--quiet", "--seed", "0"]
    assert main(["train", "--preset", "ppo-fast", "--frames", "200", *small,
                 "--runs-dir", str(runs)]) == 0  # fmt: skip
    (run_dir,) = runs.iterdir()
    kept = int(load_checkpoint(run_dir)["counters"]["frames"])
    with (run_dir / "episodes.csv").open(newline="") as file:
        columns = csv.DictReader(file).fieldnames
    past = dict.fromkeys(columns, 0) | {"frames": kept + 1, "return": -12345, "level": "1-1"}
    with (run_dir / "episodes.csv").open("a", newline="") as file:
        csv.DictWriter(file, columns).writerow(past)
    assert main(["train", "--resume", str(run_dir), "--frames", str(kept + 400), "--quiet"]) == 0
    assert -12345.0 not in [float(row["return"]) for row in read_rows(run_dir)]


def test_a_checkpoint_from_before_weights_only_loading_converts(tmp_path):
    converter = load_script("scripts/convert_checkpoints.py")

    np.random.seed(7)
    old = {
        "format_version": 1,
        "model_state": {"w": torch.ones(2)},
        "rng_states": {"python": random.getstate(), "numpy": np.random.get_state()},
        "surprisal_stats": {"mean": np.zeros(8), "var": np.ones(8), "count": 3.0},
    }
    path = tmp_path / "frames_5.pt"
    torch.save(old, path)
    with pytest.raises(CheckpointError, match=r"scripts/convert_checkpoints\.py"):
        load_checkpoint(path)
    assert converter.main([str(path)]) == 0
    loaded = load_checkpoint(path)
    assert loaded["surprisal_stats"]["var"].tolist() == [1.0] * 8
    expected = np.random.random()
    set_rng_states({**loaded["rng_states"], "torch": torch.get_rng_state()})
    assert np.random.random() == expected, "the converted NumPy state draws as the old one"


def test_next_checkpoint_stays_on_the_grid_of_the_run():
    run = RunConfig(checkpoint_every=1000)
    assert [run.next_checkpoint(f) for f in (0, 999, 1000, 2500)] == [1000, 1000, 2000, 3000]


def test_configs_saved_under_the_old_field_names_still_resume_and_load(tmp_path):
    """`extrinsic_scale` became `reward_scale` and `snapshot_starts` became
    `snapshot_start_probability`: run directories and checkpoints saved before still work."""
    from mario_rl.agents.ppo import PPOConfig

    (tmp_path / "config.json").write_text(
        json.dumps({"agent": {"extrinsic_scale": 0.1, "snapshot_starts": 0.25}})
    )
    agent = RunDir(tmp_path).config_section("agent", PPOConfig)
    assert (agent.reward_scale, agent.snapshot_start_probability) == (0.1, 0.25)

    run_dir = train_chain(chain_run(tmp_path / "run", 200))
    path = list_checkpoints(run_dir / "checkpoints")[-1]
    checkpoint = torch.load(path, weights_only=True)
    saved = checkpoint["agent_config"]
    saved["snapshot_starts"] = saved.pop("snapshot_start_probability")
    torch.save(checkpoint, path)
    observation = np.zeros((1, *checkpoint["obs_shape"]), np.float32)
    assert load_policy(path).act(observation).shape == (1,)

    # A PPO checkpoint (the bundled agent's) under the old names acts as it did.
    bundled = Path(__file__).resolve().parents[1] / "models" / "1-1" / "model.pt"
    checkpoint = torch.load(bundled, weights_only=True)
    agent_config = with_current_names(checkpoint["agent_config"])
    agent_config["extrinsic_scale"] = agent_config.pop("reward_scale")
    agent_config["snapshot_starts"] = agent_config.pop("snapshot_start_probability")
    old = tmp_path / "old_names.pt"
    torch.save({**checkpoint, "agent_config": agent_config}, old)
    frames = np.random.default_rng(0).integers(0, 255, (3, 4, 42, 42)).astype(np.uint8)
    assert (load_policy(old).greedy(frames) == load_policy(bundled).greedy(frames)).all()

    with pytest.raises(ValueError, match="snapshot_starts and snapshot_start_probability"):
        with_current_names({"snapshot_starts": 0.5, "snapshot_start_probability": 0.25})


def test_retain_freed_memory_stops_a_ppo_updates_page_faults():
    """The real update of ppo-levels, in fresh processes (benchmarks/bench_page_faults.py):
    with glibc's defaults each update faults its activations in again; retained, it
    reuses them."""
    import platform

    bench = load_script("benchmarks/bench_page_faults.py")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's mallopt: Linux with glibc only")
    src = REPO / "src"
    defaults = bench.measure(src, retain=False, updates=1)
    retained = bench.measure(src, retain=True, updates=1)
    assert retained["faults"] * 10 < defaults["faults"], (defaults, retained)


def test_a_kept_copy_follows_each_checkpoint_and_resumes_after_the_run_is_lost(tmp_path):
    kept = tmp_path / "kept"
    run = chain_run(tmp_path / "runs", 600, save_replay=True, keep_copy=str(kept))
    run_dir = train_chain(run)
    (copy,) = kept.iterdir()
    assert copy.name == run_dir.name
    # The newest checkpoint alone; no TensorBoard events, no replay, nothing half-built.
    assert [p.name for p in (copy / "checkpoints").iterdir()] == ["frames_600.pt"]
    assert sorted(p.name for p in copy.iterdir() if p.is_file()) == [
        "config.json",
        "episodes.csv",
        "log.txt",
        "rewards.npy",
    ]
    assert list(run_dir.glob("events.out.tfevents.*")) and list(run_dir.glob("replay_*.pt"))
    assert (copy / "episodes.csv").read_text() == (run_dir / "episodes.csv").read_text()
    assert not list(kept.glob(".*"))

    shutil.rmtree(tmp_path / "runs")  # the machine's runs/ is lost
    # The copy itself is not trained on: the run would be copied onto itself.
    saved = RunConfig(**json.loads((copy / "config.json").read_text())["run"])
    with pytest.raises(ValueError, match="the folder the run lives in"):
        train_chain(replace(saved, frames=1_000), resume=copy)
    restored = tmp_path / "runs" / copy.name
    shutil.copytree(copy, restored)
    assert train_chain(replace(saved, frames=1_000), resume=restored) == restored
    assert load_checkpoint(restored)["counters"]["frames"] == 1_000
    rows = read_rows(restored)
    assert [int(r["episode"]) for r in rows] == list(range(1, len(rows) + 1))
    # The resumed run refreshes the same copy.
    assert [p.name for p in (copy / "checkpoints").iterdir()] == ["frames_1000.pt"]
    assert (copy / "episodes.csv").read_text() == (restored / "episodes.csv").read_text()


def test_a_kept_copy_takes_the_files_of_the_newest_checkpoints_frame_count(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "1-1__tabular__0__x"
    (run_dir / "checkpoints").mkdir(parents=True)
    for name in ("frames_100.pt", "frames_200.pt", "table_100.npz", "table_200.npz"):
        (run_dir / "checkpoints" / name).write_text(name)
    for name in ("config.json", "q_table.npz", "events.out.tfevents.1.host", "replay_200.pt"):
        (run_dir / name).write_text(name)
    (run_dir / ".episodes.csv.7.tmp").write_text("a kill's leftover")
    kept = tmp_path / "kept"
    # A kill between a copy's two renames left the older copy aside: it comes back first,
    # even when no new copy can be made.
    (kept / f".{run_dir.name}.old").mkdir(parents=True)
    (kept / f".{run_dir.name}.old" / "config.json").write_text("older")
    (kept / f".{run_dir.name}.building").mkdir()
    (run_dir / "checkpoints").rename(tmp_path / "aside")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        keep_copy_of(run_dir, kept)
    assert (kept / run_dir.name / "config.json").read_text() == "older"
    (tmp_path / "aside").rename(run_dir / "checkpoints")
    copy = keep_copy_of(run_dir, kept)
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == [
        "frames_200.pt",
        "table_200.npz",
    ]
    assert sorted(p.name for p in copy.iterdir() if p.is_file()) == ["config.json", "q_table.npz"]
    assert [p.name for p in kept.iterdir()] == [run_dir.name]
    (run_dir / "checkpoints" / "frames_300.pt").write_text("newer")
    keep_copy_of(run_dir, kept)
    assert [p.name for p in (copy / "checkpoints").iterdir()] == ["frames_300.pt"]
    assert (copy / "config.json").read_text() == "config.json"

    # A kill between the swap's two renames leaves the older copy aside, never no copy.
    real_rename = Path.rename

    def killed_at_the_swap(self, target):
        if Path(target) == copy:
            raise KeyboardInterrupt
        return real_rename(self, target)

    (run_dir / "checkpoints" / "frames_400.pt").write_text("newest")
    with monkeypatch.context() as patch:
        patch.setattr(Path, "rename", killed_at_the_swap)
        with pytest.raises(KeyboardInterrupt):
            keep_copy_of(run_dir, kept)
    assert not copy.exists()
    aside = kept / f".{run_dir.name}.old" / "checkpoints"
    assert [p.name for p in aside.iterdir()] == ["frames_300.pt"]
    keep_copy_of(run_dir, kept)
    assert [p.name for p in (copy / "checkpoints").iterdir()] == ["frames_400.pt"]
    assert [p.name for p in kept.iterdir()] == [run_dir.name]


def test_a_kept_copy_is_never_the_folder_the_run_lives_in(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match="the folder the run lives in"):
        train_chain(chain_run(runs, 400, keep_copy=str(runs)))
    assert not runs.exists()  # refused before the run was made
    run_dir = train_chain(chain_run(runs, 400))
    with pytest.raises(ValueError, match="the folder the run lives in"):
        keep_copy_of(run_dir, runs)
    assert (run_dir / "checkpoints" / "frames_400.pt").is_file()
