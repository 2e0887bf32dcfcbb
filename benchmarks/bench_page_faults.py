"""A PPO update's CPU time in the kernel: page faults from freshly mapped activations.

    python benchmarks/bench_page_faults.py
    python benchmarks/bench_page_faults.py --src /tmp/before/src   # another checkout

Runs `PPOAgent.update` (ppo-levels' agent settings: 8 x 128 steps, 4 epochs of 4
minibatches, the relabelling that `overlap` does) on a rollout of random observations, in
the main thread as the trainer runs it (with `overlap` the rollout is collected in another
thread meanwhile), in a fresh process per setting:
- `glibc defaults`: malloc as the process starts;
- `retain_freed_memory`: after `mario_rl.runs.retain_freed_memory()`, as `mario-rl train`
  runs (skipped for a `--src` checkout that lacks it).
Settings alternate over `--rounds` rounds. Each prints, per update after one warm-up
update: wall-clock, user and system CPU seconds and minor page faults (`getrusage`).
Wall-clock moves with whatever else the machine runs; the CPU seconds and faults are the
process's own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
from gymnasium import spaces
from mario_rl.agents.ppo.agent import PPOAgent
from mario_rl.agents.ppo.rollout import Rollout
from mario_rl.presets import get_preset

retain, updates = sys.argv[1] == "1", int(sys.argv[2])
if retain:
    from mario_rl.runs import retain_freed_memory
    assert retain_freed_memory(), "mallopt refused"
torch.set_num_threads(1)
torch.manual_seed(0)
config = get_preset("ppo-levels").agent
space = spaces.Box(0, 255, (4, 42, 42), "uint8")
agent = PPOAgent(config, space, 5)
rollout = Rollout.allocate(config.num_steps, config.num_envs, space, torch.device("cpu"))
rollout.obs.copy_(torch.randint(0, 256, rollout.obs.shape, dtype=torch.uint8))
rollout.next_obs.copy_(torch.randint(0, 256, rollout.obs.shape, dtype=torch.uint8))
rollout.actions.copy_(torch.randint(0, 5, rollout.actions.shape))
rollout.rewards.normal_()
agent.update(rollout)
before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(updates):
    agent.update(rollout)
after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - start
print(json.dumps({
    "wall": wall / updates,
    "user": (after.ru_utime - before.ru_utime) / updates,
    "system": (after.ru_stime - before.ru_stime) / updates,
    "faults": (after.ru_minflt - before.ru_minflt) / updates,
}))
"""


def measure(src: Path, retain: bool, updates: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, "1" if retain else "0", str(updates)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--updates", type=int, default=4, help="measured updates per process")
    parser.add_argument(
        "--src",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "src",
        help="the mario_rl package's folder to run (default: this checkout's src/)",
    )
    args = parser.parse_args()
    has_retain = "def retain_freed_memory" in (args.src / "mario_rl" / "runs.py").read_text()
    settings = {"glibc defaults": False}
    if has_retain:
        settings["retain_freed_memory"] = True
    print(f"PPOAgent.update from {args.src}, per update:")
    for round_index in range(args.rounds):
        for name, retain in settings.items():
            r = measure(args.src, retain, args.updates)
            print(
                f"  round {round_index + 1}, {name}: wall {r['wall']:.2f} s, user "
                f"{r['user']:.3f} s, system {r['system']:.3f} s, minor faults {r['faults']:,.0f}"
            )


if __name__ == "__main__":
    main()
