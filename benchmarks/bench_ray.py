"""PPO training frames/s with local env workers against Ray actors, on a Ray cluster of one
or two nodes started on this machine (loopback only), in one run.

    python benchmarks/bench_ray.py --preset ppo-fast --frames 150000

Settings, each `mario-rl train --preset NAME --frames F` in a child process, its frames/s
read from the run's own `charts/fps` after the first update (as bench_train.py does):
1. local env workers (the preset as it is);
2. Ray, one node with 2 CPUs (`ray start --head --num-cpus 2`), 2 actors: the same envs
   and cores as 1, so the ratio 2/1 is what Ray costs (goal >= 0.95);
3. Ray, one node with 1 CPU, 1 actor holding all the envs;
4. Ray, two nodes with 1 CPU each (a head and a second `ray start --address ...` on this
   machine), 2 actors, one per node: 4/3 is how frames/s grows from 1 to 2 "nodes".
The learner runs in the driver (this machine's `mario-rl train`), outside Ray's CPU count,
and shares the two cores with the actors in every setting. `--rounds N` repeats the four
settings in turn, so a drift of the machine's speed spreads over all of them. The raw
emulator on two processes is measured before and after, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_train import training_fps, two_process_raw_fps

PORT = 6391
# Loopback only, on one machine: the cluster and the driver run without Ray's token
# authentication (a real cluster keeps it on; README, "Scaling out on Ray").
os.environ["RAY_AUTH_MODE"] = "disabled"
SETTINGS = [
    # (name, nodes' CPUs, env actors); no nodes: local env workers.
    ("local env workers", [], 0),
    ("Ray, 1 node x 2 CPUs, 2 actors", [2], 2),
    ("Ray, 1 node x 1 CPU, 1 actor", [1], 1),
    ("Ray, 2 nodes x 1 CPU, 2 actors", [1, 1], 2),
]


def ray_command() -> str:
    return str(Path(sys.executable).with_name("ray"))


def start_cluster(cpus: list[int]) -> str:
    """A head node and more nodes on this machine, each with its own CPU count."""
    address = f"127.0.0.1:{PORT}"
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    common = ["--disable-usage-stats"]
    subprocess.run(
        [ray_command(), "start", "--head", "--port", str(PORT), "--num-cpus", str(cpus[0]),
         "--include-dashboard", "false", *common],
        **quiet,
    )  # fmt: skip
    for node_cpus in cpus[1:]:
        subprocess.run(
            [ray_command(), "start", "--address", address, "--num-cpus", str(node_cpus), *common],
            **quiet,
        )
    return address


def stop_cluster() -> None:
    # `ray stop` stops every Ray process on the machine: `main` refuses to start beside
    # another Ray instance, so only this benchmark's nodes are there to stop.
    subprocess.run([ray_command(), "stop", "--force"], stdout=subprocess.DEVNULL, check=False)


def ray_already_running() -> bool:
    """Whether a Ray node (its GCS server or raylet) already runs on this machine."""
    found = subprocess.run(["pgrep", "-f", "gcs_server|raylet"], capture_output=True)
    return found.returncode == 0


def train_fps(args: argparse.Namespace, cpus: list[int], actors: int, runs: Path) -> float:
    command = [
        sys.executable, "-m", "mario_rl", "train", "--preset", args.preset, "--level",
        args.level, "--frames", str(args.frames), "--runs-dir", str(runs), "--quiet",
        "--checkpoint-every", str(10**9),
    ]  # fmt: skip
    if cpus:
        command += ["--ray", start_cluster(cpus), "--env-actors", str(actors)]
    try:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    finally:
        if cpus:
            stop_cluster()
    (run_dir,) = runs.iterdir()
    _, fps = training_fps(run_dir)
    shutil.rmtree(runs)
    return fps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="ppo-fast")
    parser.add_argument("--level", default="1-1")
    parser.add_argument("--frames", type=int, default=150_000, help="per setting and round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--raw-frames", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=None, help="JSON of every measurement")
    args = parser.parse_args()
    if shutil.which(ray_command()) is None:
        print("ray is not installed: pip install -e '.[ray]'", file=sys.stderr)
        return 2
    if ray_already_running():
        print(
            "a Ray instance already runs on this machine, and this benchmark's `ray stop` "
            "would stop it too: stop it first (`ray stop`) or run the benchmark elsewhere",
            file=sys.stderr,
        )
        return 2

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    raw_before = two_process_raw_fps(args.level, args.raw_frames)
    measured: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for name, cpus, actors in SETTINGS:
                start = time.perf_counter()
                fps = train_fps(args, cpus, actors, Path(scratch) / f"{round_index}-{actors}")
                measured[name].append(fps)
                print(
                    f"round {round_index + 1}, {name}: {fps:,.0f} frames/s "
                    f"({time.perf_counter() - start:.0f} s with start-up)"
                )
    raw_after = two_process_raw_fps(args.level, args.raw_frames)
    raw = (raw_before + raw_after) / 2
    mean = {name: sum(values) / len(values) for name, values in measured.items()}
    names = [name for name, _, _ in SETTINGS]
    print(f"\nraw emulator, 2 processes: {raw_before:,.0f} before, {raw_after:,.0f} after")
    for name in names:
        print(f"{name}: {mean[name]:,.0f} frames/s, {mean[name] / raw:.2f} of raw")
    print(f"Ray / local at the same envs and cores: {mean[names[1]] / mean[names[0]]:.2f}")
    print(f"2 nodes / 1 node (1 CPU each): {mean[names[3]] / mean[names[2]]:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.out:
        result = {"args": vars(args) | {"out": str(args.out)}, "raw": [raw_before, raw_after]}
        args.out.write_text(json.dumps(result | {"fps": measured}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
