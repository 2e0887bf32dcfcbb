"""One policy from the average of several checkpoints' weights: the weight-averaging trial.

A policy trained to the same level from one start, checkpointed along its last stretch of
training, is a handful of nearby points in weight space. Their uniform average (as in
stochastic weight averaging, Izmailov et al. 2018; for RL, Nikishin et al. 2018) tends
to sit in a flatter spot than any one of them, which in supervised learning generalises
better; whether it plays more steadily under sticky actions is what the trial measures,
on seeds no check used:

    RUN=runs/campaign-more/levels/8-3/8-3__ppo__0__20261207-024350
    python benchmarks/campaign/average_weights.py \\
        $RUN/checkpoints/frames_{2001558,2253855,2502166,2750332,3002450}.pt \\
        --out runs/averaged/8-3/checkpoints/average.pt
    mario-rl eval runs/averaged/8-3/checkpoints/average.pt --level 8-3 --episodes 50 \\
        --seed 10000 --sticky 0.25 --noop-max 30 --max-stuck-steps 1000 --no-control

The result is a checkpoint like its newest input's, weights replaced, training-only
fields dropped (it is for acting: a resumed run would need the optimiser state of one
real point), its inputs named under `averaged_from`. The run's config.json is copied to
the folder above `checkpoints/`, so `mario-rl bundle` takes it as it takes a run's own.
Only checkpoints of one network, action set and environment average: anything else is
refused with the field that differs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import torch

from mario_rl.bundled import TRAINING_ONLY_FIELDS
from mario_rl.runs import atomic_save, load_checkpoint, run_directory

MUST_MATCH = ("algo", "module", "network", "action_set", "num_actions", "obs_shape", "env_config")
"""Fields that must agree for an average to be one policy of one environment."""


def averaged(paths: list[Path]) -> dict[str, Any]:
    """A checkpoint like the newest of `paths` (most frames) with their weights' uniform
    mean; training-only fields dropped, `averaged_from` naming each input and its frames,
    oldest first."""
    if len(paths) < 2:
        raise ValueError("expected at least two checkpoints to average")
    checkpoints = sorted(
        (load_checkpoint(path) for path in paths),
        key=lambda checkpoint: checkpoint["counters"]["frames"],
    )
    first, newest = checkpoints[0], checkpoints[-1]
    for checkpoint in checkpoints[1:]:
        for field in MUST_MATCH:
            if checkpoint.get(field) != first.get(field):
                raise ValueError(
                    f"{checkpoint['path']}: its {field} differs from {first['path']}'s; "
                    "only checkpoints of one network and environment average"
                )
        if checkpoint["model_state"].keys() != first["model_state"].keys():
            raise ValueError(f"{checkpoint['path']}: its weights differ in name from the first's")
    result = {key: value for key, value in newest.items() if key not in TRAINING_ONLY_FIELDS}
    state: dict[str, torch.Tensor] = {}
    for name, tensor in first["model_state"].items():
        if not torch.is_floating_point(tensor):
            raise ValueError(f"{first['path']}: weight {name} is not floating point")
        # Summed in float64 so that the order of the inputs does not change the result.
        total = sum(checkpoint["model_state"][name].double() for checkpoint in checkpoints)
        state[name] = (total / len(checkpoints)).to(tensor.dtype)
    result["model_state"] = state
    result["averaged_from"] = [
        {"checkpoint": checkpoint["path"], "frames": checkpoint["counters"]["frames"]}
        for checkpoint in checkpoints
    ]
    result.pop("path")
    return result


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The weight-averaging trial: docs/campaign.md, 'One policy from several'.",
    )
    parser.add_argument("checkpoints", nargs="+", type=Path, help="two or more checkpoint files")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the averaged checkpoint to write, e.g. runs/averaged/8-3/checkpoints/average.pt; "
        "the inputs' run config.json is copied to the folder above checkpoints/",
    )
    args = parser.parse_args(argv)
    try:
        checkpoint = averaged(args.checkpoints)
    except (ValueError, OSError) as error:
        raise SystemExit(f"average_weights: {error}") from None
    config = run_directory(checkpoint["averaged_from"][-1]["checkpoint"]) / "config.json"
    if not config.is_file():
        raise SystemExit(f"average_weights: no config.json at {config} to copy beside the result")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(checkpoint, args.out)
    shutil.copy(config, run_directory(args.out) / "config.json")
    frames = ", ".join(f"{entry['frames']:,}" for entry in checkpoint["averaged_from"])
    print(f"{args.out}: the mean of {len(args.checkpoints)} checkpoints' weights ({frames} frames)")
    return args.out


if __name__ == "__main__":
    main()
