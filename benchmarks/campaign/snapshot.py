"""Keep the level campaign's state in git, and bring it back when `runs/` is lost.

The campaign trains in `runs/campaign/`, which git ignores and a machine may lose between
sessions. `save` copies into this folder what the campaign needs to go on where it
stopped: the table and its state, each level's checks, the bundles and death maps of the
levels done, and, for a level still in training, the newest checkpoint of its run with the
run's config, episode log and piece target. `restore` rebuilds `runs/campaign/` from it;
the campaign's own command then continues the level in training from that checkpoint.

    python benchmarks/campaign/snapshot.py save      # after stopping the campaign (SIGTERM)
    python benchmarks/campaign/snapshot.py restore   # on a machine without runs/campaign

Only the newest checkpoint of the level in training is kept (about 2 MB with ppo-levels'
small torso), replaced at each save; its TensorBoard events are not kept, so a restored
run's charts start at the checkpoint. Save after the campaign has stopped: a check still
running when the files are copied would not match the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from mario_rl.runs import list_checkpoints, newest_run

HERE = Path(__file__).resolve().parent
TABLE_FILES = ("table.md", "table.json", "table.log")
RUN_FILES = ("config.json", "episodes.csv", "rewards.npy", "log.txt")
"""What a stopped run needs to be continued, besides its newest checkpoint."""


def levels_done(folder: Path) -> set[str]:
    state = folder / "table.json"
    return set(json.loads(state.read_text())["rows"]) if state.is_file() else set()


def copy_run(run_dir: Path, into: Path) -> Path:
    """The run's files and its newest checkpoint, into `into/<run name>/`."""
    kept = into / run_dir.name
    (kept / "checkpoints").mkdir(parents=True)
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, kept / name)
    newest = list_checkpoints(run_dir / "checkpoints")[-1]
    shutil.copy2(newest, kept / "checkpoints" / newest.name)
    return kept


def save(campaign: Path, into: Path) -> list[str]:
    """Copy the campaign's state from `campaign` into `into`; the lines say what was kept."""
    if not (campaign / "table.json").is_file():
        raise SystemExit(f"{campaign / 'table.json'} not found: nothing to save")
    said = []
    for name in TABLE_FILES:
        if (campaign / name).is_file():
            shutil.copy2(campaign / name, into / name)
    for death_map in sorted(campaign.glob("table.*.png")):
        shutil.copy2(death_map, into / death_map.name)
        said.append(f"death map {death_map.name}")
    done = levels_done(campaign)
    for level_runs in sorted(p for p in (campaign / "levels").glob("*") if p.is_dir()):
        level, kept = level_runs.name, into / "levels" / level_runs.name
        kept.mkdir(parents=True, exist_ok=True)
        if (level_runs / "checks.json").is_file():
            shutil.copy2(level_runs / "checks.json", kept / "checks.json")
        # A level's run is kept only while it trains: a done level's result is in the table.
        shutil.rmtree(kept / "run", ignore_errors=True)
        (kept / "piece.json").unlink(missing_ok=True)
        run_dir = newest_run(level_runs)
        if level in done or run_dir is None:
            continue
        run = copy_run(run_dir, kept / "run")
        if (level_runs / "piece.json").is_file():
            shutil.copy2(level_runs / "piece.json", kept / "piece.json")
        checkpoint = next((run / "checkpoints").iterdir()).name
        said.append(f"{level}: in training, {run.name}/checkpoints/{checkpoint}")
    for bundle in sorted(p for p in (campaign / "models").glob("*") if p.is_dir()):
        shutil.rmtree(into / "models" / bundle.name, ignore_errors=True)
        shutil.copytree(bundle, into / "models" / bundle.name)
        said.append(f"bundle {bundle.name}")
    return said


def restore(kept: Path, campaign: Path) -> list[str]:
    """Rebuild `campaign` from a saved state in `kept`; refuses to overwrite a campaign."""
    if (campaign / "table.json").exists():
        raise SystemExit(f"{campaign / 'table.json'} exists: the campaign is there, not restored")
    if not (kept / "table.json").is_file():
        raise SystemExit(f"{kept / 'table.json'} not found: nothing to restore")
    campaign.mkdir(parents=True, exist_ok=True)
    said = []
    for name in TABLE_FILES:
        if (kept / name).is_file():
            shutil.copy2(kept / name, campaign / name)
    for death_map in kept.glob("table.*.png"):
        shutil.copy2(death_map, campaign / death_map.name)
    done = levels_done(kept)
    for level_kept in sorted(p for p in (kept / "levels").glob("*") if p.is_dir()):
        level, level_runs = level_kept.name, campaign / "levels" / level_kept.name
        runs = sorted((level_kept / "run").glob("*")) if (level_kept / "run").is_dir() else []
        # A level in training whose run was not kept starts over: its checks belong to the
        # lost run, so they stay behind.
        if level not in done and not runs:
            said.append(f"{level}: no run kept, it starts over")
            continue
        level_runs.mkdir(parents=True, exist_ok=True)
        if (level_kept / "checks.json").is_file():
            shutil.copy2(level_kept / "checks.json", level_runs / "checks.json")
        if (level_kept / "piece.json").is_file():
            shutil.copy2(level_kept / "piece.json", level_runs / "piece.json")
        for run in runs:
            shutil.copytree(run, level_runs / run.name)
            said.append(
                f"{level}: continues {run.name} from {next((run / 'checkpoints').iterdir()).name}"
            )
    for bundle in sorted(p for p in (kept / "models").glob("*") if p.is_dir()):
        shutil.copytree(bundle, campaign / "models" / bundle.name)
        said.append(f"bundle {bundle.name}")
    return said


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument(
        "--campaign",
        type=Path,
        default=Path("runs/campaign"),
        help="the campaign's folder (default: runs/campaign)",
    )
    parser.add_argument(
        "--kept",
        type=Path,
        default=HERE,
        help="where its state is kept in git (default: this folder)",
    )
    args = parser.parse_args(argv)
    if args.action == "save":
        said = save(args.campaign, args.kept)
    else:
        said = restore(args.kept, args.campaign)
    print(
        f"{args.action}d {args.campaign} {'into' if args.action == 'save' else 'from'} {args.kept}"
    )
    for line in said:
        print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
