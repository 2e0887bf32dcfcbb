"""benchmarks/campaign/snapshot.py: what it keeps of a campaign, and that a restore gives
the campaign command back the level in training at its newest checkpoint."""

import json
import shlex
import shutil
from pathlib import Path

import pytest
from repo_scripts import REPO, load_script

SCRIPT = REPO / "benchmarks/campaign/snapshot.py"
snapshot = load_script(SCRIPT, "campaign_snapshot")


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def campaign(root: Path) -> Path:
    """1-1 done and bundled, 1-2 in training with two checkpoints."""
    rows = {"1-1": {"cleared": True, "bundle": {"clears": 47}}}
    write(root / "table.json", json.dumps({"recipe": {}, "rows": rows}))
    write(root / "table.md", "| level |")
    write(root / "table.log", "=== restart")
    write(root / "table.1-1.png")
    write(root / "levels/1-1/checks.json", '[{"frames": 5, "clears": 48}]')
    write(root / "levels/1-1/1-1__ppo__0__a/checkpoints/frames_5.pt")
    write(root / "levels/1-1/1-1__ppo__0__a/events.out.tfevents.1")
    run = root / "levels/1-2/1-2__ppo__0__b"
    for name in ("config.json", "episodes.csv", "rewards.npy", "log.txt", "events.out.tfevents.1"):
        write(run / name, name)
    write(run / "checkpoints/frames_100.pt", "old")
    write(run / "checkpoints/frames_200.pt", "new")
    write(root / "levels/1-2/piece.json", '{"target": 300}')
    write(root / "levels/1-2/checks.json", '[{"frames": 100, "clears": 0}]')
    write(root / "models/1-1/model.pt", "bundle")
    return root


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_save_keeps_the_newest_checkpoint_of_the_level_in_training_only(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    snapshot.save(campaign(tmp_path / "campaign"), kept)
    run = "levels/1-2/run/1-2__ppo__0__b"
    assert files(kept) == {
        "table.json", "table.md", "table.log", "table.1-1.png",
        "levels/1-1/checks.json", "levels/1-2/checks.json", "levels/1-2/piece.json",
        f"{run}/config.json", f"{run}/episodes.csv", f"{run}/rewards.npy", f"{run}/log.txt",
        f"{run}/checkpoints/frames_200.pt", "models/1-1/model.pt",
    }  # fmt: skip
    assert (kept / run / "checkpoints/frames_200.pt").read_text() == "new"


def test_a_save_while_the_campaign_appends_keeps_its_logs_whole_lines(tmp_path):
    root = campaign(tmp_path / "campaign")
    run = root / "levels/1-2/1-2__ppo__0__b"
    write(run / "episodes.csv", "frames,return\n100,1.5\n2")  # a row half written
    write(run / "log.txt", "episode 100: frames 120\n")
    kept = tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    kept_run = kept / "levels/1-2/run/1-2__ppo__0__b"
    assert (kept_run / "episodes.csv").read_text() == "frames,return\n100,1.5\n"
    assert (kept_run / "log.txt").read_text() == "episode 100: frames 120\n"


def test_a_later_save_replaces_the_kept_run_and_drops_it_once_the_level_is_done(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    write(root / "levels/1-2/1-2__ppo__0__b/checkpoints/frames_300.pt", "newer")
    snapshot.save(root, kept)
    checkpoints = kept / "levels/1-2/run/1-2__ppo__0__b/checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["frames_300.pt"]
    state = json.loads((root / "table.json").read_text())
    # Cleared: the run is kept until the level is bundled, which reads its checkpoint.
    state["rows"]["1-2"] = {"cleared": True, "run_dir": "runs/levels/1-2/1-2__ppo__0__b"}
    write(root / "table.json", json.dumps(state))
    snapshot.save(root, kept)
    assert [p.name for p in checkpoints.iterdir()] == ["frames_300.pt"]
    state["rows"]["1-2"]["bundle"] = {"clears": 46}
    write(root / "table.json", json.dumps(state))
    (root / "levels/1-2/piece.json").unlink()
    snapshot.save(root, kept)
    assert not (kept / "levels/1-2/run").exists()
    assert not (kept / "levels/1-2/piece.json").exists()
    assert (kept / "levels/1-2/checks.json").is_file()


def test_a_save_drops_what_the_campaign_no_longer_has(tmp_path):
    """A level retrained from scratch has no checks yet: the kept ones were the old run's,
    and a restore must not give them to the new one."""
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    (root / "levels/1-1/checks.json").unlink()
    (root / "table.1-1.png").unlink()
    shutil.rmtree(root / "models/1-1")
    shutil.rmtree(root / "levels/1-2")  # a run lost: dropping it takes --force
    snapshot.save(root, kept, force=True)
    assert files(kept) == {"table.json", "table.md", "table.log"}


def test_restore_gives_the_campaign_its_newest_run_back(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    snapshot.save(campaign(tmp_path / "campaign"), kept)
    restored = tmp_path / "restored"
    said = snapshot.restore(kept, restored)
    assert "1-2: continues 1-2__ppo__0__b from frames_200.pt" in said
    level_runs = restored / "levels/1-2"
    assert snapshot.newest_run(level_runs) == level_runs / "1-2__ppo__0__b"
    assert json.loads((level_runs / "piece.json").read_text()) == {"target": 300}
    assert (level_runs / "checks.json").is_file()
    assert (restored / "models/1-1/model.pt").read_text() == "bundle"
    assert set(snapshot.table_rows(restored)) == {"1-1"}
    with pytest.raises(SystemExit, match="the campaign is there"):
        snapshot.restore(kept, restored)


def test_the_checks_reports_are_kept_restored_and_dropped_with_the_campaigns(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    write(root / "levels/1-2/checks/frames_100.json", '{"per_episode": []}')
    write(root / "levels/1-2/checks/.frames_200.json.7.tmp", "half")  # being written
    snapshot.save(root, kept)
    assert files(kept / "levels/1-2/checks") == {"frames_100.json"}
    restored = tmp_path / "restored"
    snapshot.restore(kept, restored)
    report = restored / "levels/1-2/checks/frames_100.json"
    assert report.read_text() == '{"per_episode": []}'
    (root / "levels/1-2/checks/frames_100.json").unlink()
    write(root / "levels/1-2/checks/frames_200.json", "{}")
    snapshot.save(root, kept)
    assert files(kept / "levels/1-2/checks") == {"frames_200.json"}
    shutil.rmtree(root / "levels/1-2/checks")
    snapshot.save(root, kept)
    assert not (kept / "levels/1-2/checks").exists()


def test_a_save_refuses_to_drop_a_done_levels_reports_and_keeps_no_empty_folder(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    write(root / "levels/1-1/checks/frames_5.json", '{"per_episode": []}')
    write(root / "levels/5-1/checks/.frames_9.json.7.tmp", "half")  # only a write begun
    snapshot.save(root, kept)
    assert not (kept / "levels/5-1").exists()
    shutil.rmtree(root / "levels/1-1/checks")
    with pytest.raises(SystemExit, match=r"1-1's check reports \(frames_5.json\)"):
        snapshot.save(root, kept)
    assert (kept / "levels/1-1/checks/frames_5.json").is_file()
    snapshot.save(root, kept, force=True)
    assert not (kept / "levels/1-1/checks").exists()


def test_a_level_in_training_without_a_kept_run_starts_over_without_its_checks(tmp_path):
    root = campaign(tmp_path / "campaign")
    kept = tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    write(kept / "levels/4-1/checks.json", '[{"frames": 1, "clears": 0}]')
    said = snapshot.restore(kept, tmp_path / "restored")
    assert "4-1: no run kept, it starts over" in said
    assert not (tmp_path / "restored/levels/4-1").exists()


def test_a_kill_during_a_save_keeps_the_older_run_whole(tmp_path, monkeypatch):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    write(root / "levels/1-2/1-2__ppo__0__b/checkpoints/frames_300.pt", "newer")

    copy = shutil.copy2

    def killed_at_the_checkpoint(source, target):
        if Path(source).suffix == ".pt":
            raise KeyboardInterrupt
        return copy(source, target)

    monkeypatch.setattr(snapshot.shutil, "copy2", killed_at_the_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        snapshot.save(root, kept)
    run = kept / "levels/1-2/run/1-2__ppo__0__b"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["frames_200.pt"]
    assert (run / "config.json").is_file()
    monkeypatch.setattr(snapshot.shutil, "copy2", copy)
    snapshot.save(root, kept)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["frames_300.pt"]
    assert not list((kept / "levels/1-2").glob(".*")), "the interrupted copy was cleared"
    assert not list((kept / "levels/1-2/run").glob(".*")), "the interrupted copy was cleared"


def test_a_level_started_over_keeps_only_its_new_run(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    # A save of the old run killed mid-copy left its half-built copy beside it.
    write(kept / "levels/1-2/run/.1-2__ppo__0__b.building/checkpoints/frames_250.pt", "half")
    write(root / "levels/1-2/1-2__ppo__0__c/checkpoints/frames_50.pt", "restarted")
    shutil.rmtree(root / "levels/1-2/1-2__ppo__0__b")
    snapshot.save(root, kept, force=True)
    assert [p.name for p in (kept / "levels/1-2/run").iterdir()] == ["1-2__ppo__0__c"]


def test_a_save_killed_between_its_renames_is_restored_from_the_copy_it_set_aside(tmp_path):
    """The swap renames the kept run to `.<run>.old`, then the new copy in: a kill between
    the two leaves only `.<run>.old`, which a restore puts back and continues."""
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    run = kept / "levels/1-2/run/1-2__ppo__0__b"
    run.rename(run.with_name(".1-2__ppo__0__b.old"))
    write(kept / "levels/1-2/run/.1-2__ppo__0__b.building/checkpoints/frames_300.pt", "new")
    assert snapshot.kept_frames(kept / "levels/1-2") == 200
    said = snapshot.restore(kept, tmp_path / "restored")
    assert "1-2: continues 1-2__ppo__0__b from frames_200.pt" in said
    restored = tmp_path / "restored/levels/1-2"
    assert [p.name for p in restored.iterdir() if p.is_dir()] == ["1-2__ppo__0__b"]
    assert (restored / "1-2__ppo__0__b/checkpoints/frames_200.pt").read_text() == "new"


def test_a_restore_cut_short_is_run_again_and_never_saved_over_the_kept_state(
    tmp_path, monkeypatch
):
    """Before, table.json came first: a restore cut short at the bundles left a campaign
    that `start` would not restore again, and whose next save dropped the kept bundles."""
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    restored = tmp_path / "restored"
    copytree = shutil.copytree

    def cut_at_the_bundles(source, target, *args, **kwargs):
        if Path(target).parent.name == "models":
            raise OSError("No space left on device")
        return copytree(source, target, *args, **kwargs)

    monkeypatch.setattr(snapshot.shutil, "copytree", cut_at_the_bundles)
    with pytest.raises(OSError):
        snapshot.restore(kept, restored)
    assert not (restored / "table.json").exists()
    with pytest.raises(SystemExit, match=r"table\.json not found: nothing to save"):
        snapshot.save(restored, kept)
    monkeypatch.setattr(snapshot.shutil, "copytree", copytree)
    snapshot.restore(kept, restored)  # again, over what the first one copied
    assert files(restored) >= {"table.json", "models/1-1/model.pt"}
    shutil.rmtree(restored / "models")
    with pytest.raises(SystemExit, match="the bundle of 1-1"):
        snapshot.save(restored, kept)
    assert (kept / "models/1-1/model.pt").is_file()


def test_a_campaign_that_lost_only_its_table_json_is_not_restored_over(tmp_path):
    """Its runs are newer than the kept ones: a restore would have copied the kept logs and
    checkpoint over them (it copied into existing folders to finish a restore cut short)."""
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    log = next((root / "levels" / "1-2").glob("*/episodes.csv"))
    log.write_text(log.read_text() + "newer,row\n")
    (root / "table.json").unlink()
    with pytest.raises(SystemExit, match=r"has level runs .* but no table\.json"):
        snapshot.restore(kept, root)
    assert log.read_text().endswith("newer,row\n")
    assert not (root / snapshot.RESTORING_MARK).exists()
    # A mark a restore killed after its table.json left behind goes with the next save,
    # so that it cannot let a later restore through.
    shutil.copy2(kept / "table.json", root / "table.json")
    (root / snapshot.RESTORING_MARK).touch()
    snapshot.save(root, kept)
    assert not (root / snapshot.RESTORING_MARK).exists()


def test_a_bundle_being_built_is_neither_saved_nor_restored(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    write(root / "models/.1-2.building/model.pt", "half")
    said = snapshot.save(root, kept)
    assert "bundle .1-2.building" not in said and not (kept / "models/.1-2.building").exists()
    write(kept / "models/.1-2.building/model.pt", "half")  # kept by an older save
    restored = tmp_path / "restored"
    snapshot.restore(kept, restored)
    assert not (restored / "models/.1-2.building").exists()


def test_saves_hold_a_lock_so_two_never_run_at_once(tmp_path):
    import fcntl

    root = campaign(tmp_path / "campaign")
    lock = tmp_path / ".campaign-snapshot.lock"
    with snapshot.locked(root), lock.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with (tmp_path / ".campaign-snapshot.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again


def test_a_campaign_started_again_without_restore_is_not_saved_over_the_kept_one(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    snapshot.save(root, kept)
    # runs/ lost, and the campaign's command run again before `restore`.
    fresh = tmp_path / "fresh"
    write(fresh / "table.json", json.dumps({"recipe": {}, "rows": {}}))
    write(fresh / "levels/1-1/1-1__ppo__0__c/checkpoints/frames_10.pt")
    write(fresh / "levels/1-2/1-2__ppo__0__d/checkpoints/frames_20.pt")
    with pytest.raises(SystemExit, match="the row of 1-1; 1-2's run at 200 frames"):
        snapshot.save(fresh, kept)
    assert (kept / "levels/1-2/run/1-2__ppo__0__b/checkpoints/frames_200.pt").is_file()
    snapshot.save(fresh, kept, force=True)
    assert snapshot.table_rows(kept) == {}


def test_a_cleared_level_keeps_the_run_its_row_names(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    kept.mkdir()
    state = json.loads((root / "table.json").read_text())
    state["rows"]["1-2"] = {"cleared": True, "run_dir": "runs/levels/1-2/1-2__ppo__0__b"}
    write(root / "table.json", json.dumps(state))
    write(root / "levels/1-2/1-2__ppo__0__later/checkpoints/frames_900.pt")
    write(kept / "levels/NOTES.md", "not a level")
    snapshot.save(root, kept)
    assert [p.name for p in (kept / "levels/1-2/run").iterdir()] == ["1-2__ppo__0__b"]


def test_a_level_stopped_uncleared_at_the_cap_keeps_its_run(tmp_path):
    root, kept = campaign(tmp_path / "campaign"), tmp_path / "kept"
    state = json.loads((root / "table.json").read_text())
    # The cap reached without a clear: kept so that it can be trained on past the cap.
    state["rows"]["1-2"] = {"cleared": False, "run_dir": "runs/levels/1-2/1-2__ppo__0__b"}
    write(root / "table.json", json.dumps(state))
    kept.mkdir()
    snapshot.save(root, kept)
    run = kept / "levels/1-2/run/1-2__ppo__0__b"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["frames_200.pt"]
    said = snapshot.restore(kept, tmp_path / "restored")
    assert "1-2: done, its run 1-2__ppo__0__b back with frames_200.pt" in said
    restored = tmp_path / "restored/levels/1-2/1-2__ppo__0__b/checkpoints/frames_200.pt"
    assert restored.is_file()
    # A campaign that lost that run does not save over the kept one without --force.
    shutil.rmtree(root / "levels/1-2/1-2__ppo__0__b")
    with pytest.raises(SystemExit, match="1-2's kept run"):
        snapshot.save(root, kept)
    assert run.is_dir()
    snapshot.save(root, kept, force=True)
    assert not run.exists()


def test_save_without_a_campaign_says_so(tmp_path):
    with pytest.raises(SystemExit, match="nothing to save"):
        snapshot.save(tmp_path / "none", tmp_path)


@pytest.mark.parametrize(
    ("table", "preset", "runs", "levels"),
    [
        ("headline", "ppo-levels", "runs/campaign", 32),
        ("complex", "ppo-levels-complex", "runs/campaign-complex", 6),
        ("stall", "ppo-levels-stall", "runs/campaign-stall", 2),
        ("deep", "ppo-levels-deep", "runs/campaign-deep", 1),
        ("explore", "ppo-levels-explore", "runs/campaign-explore", 1),
        ("long", "ppo-levels-long", "runs/campaign-long", 1),
        ("more", "ppo-levels-more", "runs/campaign-more", 4),
        ("sticky", "ppo-levels-more-sticky", "runs/campaign-sticky", 2),
        ("sharp", "ppo-levels-more-sharp", "runs/campaign-sharp", 4),
        ("simple", "ppo-levels-more-simple", "runs/campaign-simple", 2),
        ("more-long", "ppo-levels-more-long", "runs/campaign-more-long", 4),
        ("hires", "ppo-levels-hires", "runs/campaign-hires", 2),
    ],
)
def test_campaign_script_runs_the_documented_command_level_order_included(
    table, preset, runs, levels
):
    repo = SCRIPT.parents[2]
    script = (SCRIPT.parent / "campaign.sh").read_text()
    settings = script.split(f"\n{table})\n", 1)[1].split(";;", 1)[0]
    assert f"PRESET={preset}\n" in settings and f"RUNS={runs}\n" in settings
    script_levels = settings.split('LEVELS="', 1)[1].split('"', 1)[0]
    # The command as the script runs it for this table, its variables filled in.
    command = script.split("-m mario_rl levels-table", 1)[1].split(">>", 1)[0]
    # A table's FRAMES and EXTRA, or the script's defaults set above the tables.
    frames = (settings if "FRAMES=" in settings else script).split("FRAMES=", 1)[1].split()[0]
    extra = (settings if "EXTRA=" in settings else script).split('EXTRA="', 1)[1].split('"')[0]
    variables = {"PRESET": preset, "LEVELS": script_levels, "RUNS": runs, "FRAMES": frames}
    for name, value in {**variables, "EXTRA": extra}.items():
        command = command.replace(f"${name}", value)
    # The headline's command is in the README; the trials' in the campaign's full record.
    page = repo / ("README.md" if table == "headline" else "docs/campaign.md")
    documented = page.read_text().split(f"mario-rl levels-table --preset {preset} ", 1)[1]
    documented = f"--preset {preset} " + documented.split("```", 1)[0]
    assert shlex.split(command.replace("\\\n", " ")) == shlex.split(documented.replace("\\\n", " "))
    assert len(script_levels.split()) == levels == len(set(script_levels.split()))
    assert "--confirm" in command
    # The tables the script's messages name are the tables it has.
    assert table in script.split('TABLES="', 1)[1].split('"', 1)[0].split("|")
