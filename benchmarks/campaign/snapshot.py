"""Keep the level campaign's state in git, and bring it back when `runs/` is lost.

The campaign trains in `runs/campaign/`, which git ignores and a machine may lose between
sessions. `save` copies into this folder what the campaign needs to go on where it
stopped: the table and its state, each level's checks (and each check's report, episode by
episode, from which a death map or a note's numbers are read again), the bundles and death
maps of the levels done, and, for a level still in training (or cleared and not yet
bundled, or stopped uncleared at the frame cap), the newest checkpoint of its run with the
run's config, episode log and piece target. `restore` rebuilds `runs/campaign/` from it;
the campaign's own command then continues the level in training from that checkpoint.

    python benchmarks/campaign/snapshot.py save      # after stopping the campaign (SIGTERM)
    python benchmarks/campaign/snapshot.py restore   # on a machine without runs/campaign

Only the newest checkpoint of such a run is kept (about 2 MB with ppo-levels' small torso),
replaced at each save; its TensorBoard events are not kept, so a restored
run's charts start at the checkpoint.

Save after stopping the campaign at a session's end, so that its newest frames are in a
checkpoint. A save while it runs (`campaign.sh start` makes one every 20 minutes, so that
a machine lost mid-session loses at most the frames since the last check) keeps a state
a kill could have left: the campaign replaces each file it writes whole (written beside
it, then renamed), the logs it appends to are copied up to their last full line, and a
checkpoint copied before its check is checked again after a restore. Two saves (the
20-minute one and `stop`'s) never run at once: each holds a lock on
`runs/.campaign-snapshot.lock` (beside the campaign's folder). A restore writes
`table.json` last, so one cut short is simply run again.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from mario_rl.levels_table import checkpoint_frames
from mario_rl.runs import keep_copy_of, list_checkpoints, newest_run, put_back_kept_copies

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TABLE_FILES = ("table.md", "table.json", "table.log")
RESTORING_MARK = ".restoring"
"""In the campaign's folder while a restore copies into it (gone once table.json is back)."""


@contextlib.contextmanager
def locked(campaign: Path) -> Iterator[None]:
    """Hold the campaign's snapshot lock (waiting for a save or restore in progress)."""
    campaign.parent.mkdir(parents=True, exist_ok=True)
    with (campaign.parent / ".campaign-snapshot.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def folders(parent: Path) -> list[Path]:
    """`parent`'s sub-folders, by name, without hidden ones: a bundle or a save being
    built (`.<name>.building`) is not one yet."""
    return sorted(p for p in parent.glob("*") if p.is_dir() and not p.name.startswith("."))


def table_rows(folder: Path) -> dict[str, dict]:
    """The rows of the levels done, from `folder/table.json` (none without it)."""
    state = folder / "table.json"
    return json.loads(state.read_text())["rows"] if state.is_file() else {}


def needs_run(row: dict | None) -> bool:
    """Whether a level's run is still needed: while it trains (no row), once cleared until
    it is bundled, since bundling reads its checkpoint, and when it stopped at the cap
    uncleared, so that it can be trained on past the cap or fine-tuned for that level."""
    return row is None or not row.get("cleared") or "bundle" not in row


def copy_run(run_dir: Path, into: Path) -> Path:
    """What a resume of the run needs (`keep_copy_of`: its files, its newest checkpoint),
    as `into/<run name>/`, replacing the copy there and then any other run `into` held (a
    level's run started over). The campaign may be training it meanwhile: its appended
    logs are copied up to their last full line."""
    kept = keep_copy_of(run_dir, into, while_running=True)
    for other in into.iterdir():  # hidden ones too: an older run's killed copy
        if other.is_dir() and other != kept:
            shutil.rmtree(other)
        elif other.is_file():
            other.unlink()
    return kept


def mirror_file(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source`, or goes when `source` is not there."""
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    else:
        target.unlink(missing_ok=True)


def mirror_folder(source: Path, target: Path) -> None:
    """`target` becomes a copy of `source`'s files (hidden ones, a write in progress, left
    out), or goes when `source` is not there."""
    if not source.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        return
    names = {p.name for p in source.iterdir() if p.is_file() and not p.name.startswith(".")}
    if not names:
        shutil.rmtree(target, ignore_errors=True)
        return
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.name not in names:
            old.unlink()
    for name in names:
        shutil.copy2(source / name, target / name)


def kept_frames(level_kept: Path) -> int | None:
    """Frames of the checkpoint kept for a level's run, or None without one (a copy a
    killed save left aside is put back first)."""
    put_back_kept_copies(level_kept / "run")
    runs = [run for run in folders(level_kept / "run") if list_checkpoints(run / "checkpoints")]
    return max((checkpoint_frames(run) for run in runs), default=None)


def behind(campaign: Path, into: Path) -> list[str]:
    """What `into` keeps that `campaign` has lost: rows of levels done, a level's run
    further on than the campaign's, the run kept for a done level (to bundle, or
    stopped at the cap), a done level's check reports, or a bundled level's bundle. Saving
    such a campaign would erase it; it is usually one started again without `restore`, or a
    restore cut short."""
    rows, lost = table_rows(campaign), []
    lost += [f"the row of {level}" for level in table_rows(into) if level not in rows]
    lost += [
        f"the bundle of {level}"
        for level, row in rows.items()
        if "bundle" in row
        and (into / "models" / level).is_dir()
        and not (campaign / "models" / level).is_dir()
    ]
    for level_kept in folders(into / "levels"):
        frames = kept_frames(level_kept)
        run_dir = newest_run(campaign / "levels" / level_kept.name)
        trained = None if run_dir is None else checkpoint_frames(run_dir)
        if frames is not None and level_kept.name not in rows and (trained or 0) < frames:
            lost.append(f"{level_kept.name}'s run at {frames:,} frames")
        row = rows.get(level_kept.name)
        if row is not None and (level_kept / "checks").is_dir():
            reports = campaign / "levels" / level_kept.name / "checks"
            gone = [
                p.name for p in (level_kept / "checks").iterdir() if not (reports / p.name).exists()
            ]
            if gone:
                lost.append(f"{level_kept.name}'s check reports ({', '.join(sorted(gone))})")
        if frames is not None and row is not None and needs_run(row):
            # A done level's run (to bundle, or to train on past the cap) the campaign lost.
            run_dir = campaign / "levels" / level_kept.name / Path(row["run_dir"]).name
            if not list_checkpoints(run_dir / "checkpoints"):
                lost.append(f"{level_kept.name}'s kept run (done, at {frames:,} frames)")
    return lost


def save(campaign: Path, into: Path, force: bool = False) -> list[str]:
    """Make `into` hold the campaign's state as it is in `campaign` (what the campaign no
    longer has goes, so a restore cannot mix in a lost run's files); the lines say what
    was kept."""
    if not (campaign / "table.json").is_file():
        raise SystemExit(f"{campaign / 'table.json'} not found: nothing to save")
    # A restore killed between copying table.json and removing its mark left the mark,
    # which would let a later restore copy over runs this folder made since.
    (campaign / RESTORING_MARK).unlink(missing_ok=True)
    lost = behind(campaign, into)
    if lost and not force:
        raise SystemExit(
            f"{campaign} lacks what {into} keeps ({'; '.join(lost)}): run `restore` on a "
            "machine that lost runs/, or save with --force to drop them"
        )
    said = []
    for name in TABLE_FILES:
        mirror_file(campaign / name, into / name)
    maps = {path.name for path in campaign.glob("table.*.png")}
    for name in maps | {path.name for path in into.glob("table.*.png")}:
        mirror_file(campaign / name, into / name)
    said += [f"death map {name}" for name in sorted(maps)]
    rows = table_rows(campaign)
    levels = {path.name for path in folders(campaign / "levels")}
    kept_levels = {path.name for path in folders(into / "levels")}
    for level in sorted(levels | kept_levels):
        level_runs, kept = campaign / "levels" / level, into / "levels" / level
        for name in ("checks.json", "piece.json"):
            mirror_file(level_runs / name, kept / name)
        mirror_folder(level_runs / "checks", kept / "checks")
        shutil.rmtree(kept / ".run.building", ignore_errors=True)  # a killed save's
        row, run_dir = rows.get(level), None
        if row is None:
            run_dir = newest_run(level_runs)
        elif needs_run(row):  # done: to be bundled, or uncleared at the cap; its row's run
            run_dir = level_runs / Path(row["run_dir"]).name
            if not list_checkpoints(run_dir / "checkpoints"):
                run_dir = None
        if run_dir is None:
            shutil.rmtree(kept / "run", ignore_errors=True)
            if kept.is_dir() and not any(kept.iterdir()):
                kept.rmdir()
            continue
        run = copy_run(run_dir, kept / "run")
        checkpoint = next((run / "checkpoints").iterdir()).name
        said.append(f"{level}: run kept, {run.name}/checkpoints/{checkpoint}")
    bundles = {path.name for path in folders(campaign / "models")}
    for name in sorted(bundles | {path.name for path in (into / "models").glob("*")}):
        shutil.rmtree(into / "models" / name, ignore_errors=True)
        if name in bundles:
            shutil.copytree(campaign / "models" / name, into / "models" / name)
            said.append(f"bundle {name}")
    return said


def restore(kept: Path, campaign: Path) -> list[str]:
    """Rebuild `campaign` from a saved state in `kept`; refuses to overwrite a campaign."""
    if (campaign / "table.json").exists():
        raise SystemExit(f"{campaign / 'table.json'} exists: the campaign is there, not restored")
    if not (kept / "table.json").is_file():
        raise SystemExit(f"{kept / 'table.json'} not found: nothing to restore")
    # A restore marks the folder until it is done: runs there without table.json and
    # without the mark are a campaign whose table.json went some other way, and copying the
    # kept runs over them would put older logs beside newer checkpoints.
    restoring = campaign / RESTORING_MARK
    found = [path for path in folders(campaign / "levels") if newest_run(path) is not None]
    if found and not restoring.exists():
        raise SystemExit(
            f"{campaign} has level runs ({', '.join(path.name for path in found)}) but no "
            "table.json, and no restore left them: move the folder away to restore, or put "
            "back its table.json"
        )
    campaign.mkdir(parents=True, exist_ok=True)
    restoring.touch()
    said = []
    # table.json last: until it is there, a restore cut short is run again (copying over
    # what it had copied), and `campaign.sh start` restores again.
    for name in TABLE_FILES:
        if (kept / name).is_file() and name != "table.json":
            shutil.copy2(kept / name, campaign / name)
    for death_map in kept.glob("table.*.png"):
        shutil.copy2(death_map, campaign / death_map.name)
    rows = table_rows(kept)
    for level_kept in folders(kept / "levels"):
        level, level_runs = level_kept.name, campaign / "levels" / level_kept.name
        put_back_kept_copies(level_kept / "run")
        runs = folders(level_kept / "run")
        # A level in training whose run was not kept starts over: its checks belong to the
        # lost run, so they stay behind.
        if level not in rows and not runs:
            said.append(f"{level}: no run kept, it starts over")
            continue
        row = rows.get(level)
        if row is not None and row.get("cleared") and "bundle" not in row and not runs:
            said.append(f"{level}: cleared, but its run was not kept to bundle it")
        level_runs.mkdir(parents=True, exist_ok=True)
        for name in ("checks.json", "piece.json"):
            if (level_kept / name).is_file():
                shutil.copy2(level_kept / name, level_runs / name)
        if (level_kept / "checks").is_dir():
            shutil.copytree(level_kept / "checks", level_runs / "checks", dirs_exist_ok=True)
        for run in runs:
            shutil.copytree(run, level_runs / run.name, dirs_exist_ok=True)
            checkpoint = next((run / "checkpoints").iterdir()).name
            if row is None:
                said.append(f"{level}: continues {run.name} from {checkpoint}")
            else:
                said.append(f"{level}: done, its run {run.name} back with {checkpoint}")
    for bundle in folders(kept / "models"):
        shutil.copytree(bundle, campaign / "models" / bundle.name, dirs_exist_ok=True)
        said.append(f"bundle {bundle.name}")
    shutil.copy2(kept / "table.json", campaign / "table.json")
    restoring.unlink()
    return said


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument(
        "--campaign",
        type=Path,
        default=REPO / "runs" / "campaign",
        help="the campaign's folder (default: runs/campaign in this repository)",
    )
    parser.add_argument(
        "--kept",
        type=Path,
        default=HERE,
        help="where its state is kept in git (default: this folder)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="save even when the campaign lacks rows or runs the kept state has (they go)",
    )
    args = parser.parse_args(argv)
    with locked(args.campaign):
        if args.action == "save":
            said = save(args.campaign, args.kept, force=args.force)
        else:
            said = restore(args.kept, args.campaign)
    print(
        f"{args.action}d {args.campaign} {'into' if args.action == 'save' else 'from'} {args.kept}"
    )
    for line in said:
        print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
