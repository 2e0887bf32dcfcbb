"""Training throughput against the emulator's own speed, in one run, with a time split.

    python benchmarks/bench_train.py --preset ppo-fast --frames 200000
    python benchmarks/bench_train.py --preset dqn-fast --frames 100000 --profile

First the ceiling: the raw emulator (`_frame_advance` with random buttons, nothing else)
in one process, then in two processes at once (one per core here). Then `mario-rl train
--preset NAME` runs for `--frames` frames in a child process (a temporary runs directory,
no progress bar), and its frames/s, from the run's own `charts/fps` after the first
update, is printed as a ratio of the two-process raw rate, measured again right after it
and averaged with the one before: the share of the machine's emulation ceiling that
training reaches. `--repeats N` does that N times; `--src DIR` trains with another
checkout's package, so before/after ratios come from one machine in one sitting:

    git worktree add /tmp/before <commit>
    python benchmarks/bench_train.py --preset ppo-fast --src /tmp/before/src --repeats 3

While it trains, the CPU time of its processes is read from /proc once a second, and
printed as milliseconds of CPU per training frame over the same window as its frames/s:
the trainer process (learner, acting, talking to workers) and its other processes (the
env workers), beside the raw emulator's milliseconds per frame on one process.

`--profile` runs that training under py-spy (`pip install py-spy`), sampling the trainer
and its env workers, and splits the sampled time into: the emulator, the env pipeline
around it (wrappers, resize, stacking), talking to workers (pipes, shared memory, and the
learner's wait for them), acting (inference, storing steps), the learner's update, logging and
checkpoints, and the rest. py-spy leaves out threads it sees idle (blocked in a system
call), so the shares are of the samples in which a thread ran or was ready to run, across
all processes: where the busy time goes, not how many cores each part took. Sampling
costs some speed, so the frames/s of a profiled run are a little low (and are labelled).
The load average before and after is printed: figures from a busy machine say so.
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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mario_rl.bench import raw_emulator_fps

SPLIT = [
    ("emulator", "._frame_advance ("),
    ("learner update", "PPOAgent.update ("),
    ("learner update", "DQNLearner.update ("),
    ("logging and checkpoints", "MetricsLogger."),
    ("logging and checkpoints", "save_checkpoint ("),
    ("acting: inference, storing steps", "act (mario_rl/agents/ppo/rollout.py"),
    ("acting: inference, storing steps", "DQNTrainer.step ("),
    ("acting: inference, storing steps", "RolloutCollector."),
    ("workers: pipes, shared memory, waiting", "multiprocessing/"),
    ("workers: pipes, shared memory, waiting", "mario_rl/env/vector.py"),
    ("workers: pipes, shared memory, waiting", "gymnasium/vector/"),
    ("env pipeline", "mario_rl/env/"),
]
"""(part, a substring of a py-spy frame, which reads `Class.function (path:line)`). A
sampled stack belongs to the part of its innermost frame that matches one: the emulator
under the pipeline that calls it, a pipe read under the worker loop, the update under the
tensors it touches (torch frames match nothing, so the search goes on outwards)."""


def two_process_raw_fps(level: str, frames: int) -> float:
    """Both cores running the raw emulator at once: the machine's emulation ceiling."""
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(raw_emulator_fps, [level] * 2, [frames] * 2, [0, 1]))
    return sum(r.frames for r in results) / max(r.seconds for r in results)


def part_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for part, needle in SPLIT:
            if needle in frame:
                return part
    return "other"


def time_split(raw_profile: Path) -> dict[str, float]:
    """Share of py-spy's samples per part, from its `--format raw` output."""
    samples: Counter[str] = Counter()
    for line in raw_profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            samples[part_of(stack)] += int(count)
    total = sum(samples.values()) or 1
    return {part: count / total for part, count in samples.most_common()}


def training_fps(run_dir: Path) -> tuple[int, float, tuple[float, float]]:
    """Frames and frames/s of a finished run, from its TensorBoard `charts/fps` after the
    first logged value (which includes start-up), and the wall-clock window they span."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    fps = events.Scalars("charts/fps")
    if len(fps) < 2:
        raise SystemExit(f"{run_dir}: too few logged steps; raise --frames")
    steady = fps[1:]
    frames = steady[-1].step - fps[0].step
    seconds = sum(
        (later.step - earlier.step) / later.value
        for earlier, later in zip(fps, steady, strict=False)
    )
    return frames, frames / seconds, (fps[0].wall_time, steady[-1].wall_time)


def process_cpu_seconds(root: int) -> dict[int, float]:
    """User + system CPU seconds of process `root` and of every descendant alive now, by
    pid, from /proc (Linux); {} where /proc cannot tell."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces: split after its closing ')'.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    return {pid: cpu[pid] for pid in tree if pid in cpu}


def cpu_per_frame(
    samples: list[tuple[float, dict[int, float]]],
    trainer: int,
    window: tuple[float, float],
    frames: int,
) -> dict[str, float]:
    """Milliseconds of CPU per training frame in `window` (wall-clock seconds), for the
    trainer process and for all its other processes (env workers, the forkserver), from
    `samples` of `process_cpu_seconds` taken as (time, {pid: seconds}), oldest first.

    The two samples used are the last at or before each end of the window (the workers
    exit right after it ends), over the processes seen in both; their CPU time is scaled
    from the samples' span to the window's. {} when the window holds no two samples."""
    before_start = [sample for sample in samples if sample[0] <= window[0]]
    before_end = [sample for sample in samples if sample[0] <= window[1]]
    if not before_end:
        return {}
    (start_time, start), (end_time, end) = (before_start or samples)[-1], before_end[-1]
    if end_time <= start_time:
        return {}
    scale = (window[1] - window[0]) / (end_time - start_time)
    spent = {pid: (end[pid] - start[pid]) * scale for pid in start.keys() & end.keys()}
    trainer_seconds = spent.pop(trainer, 0.0)
    return {
        "trainer_ms": trainer_seconds / frames * 1e3,
        "others_ms": sum(spent.values()) / frames * 1e3,
    }


def train_once(args: argparse.Namespace, py_spy: str) -> dict[str, object]:
    """One training run between two measurements of the two-process raw emulator; the ratio
    is taken against their mean, so a machine that speeds up or slows down during the run
    moves both sides."""
    raw_before = two_process_raw_fps(args.level, args.raw_frames)
    with tempfile.TemporaryDirectory() as runs_dir:
        command = [
            sys.executable, "-m", "mario_rl", "train", "--preset", args.preset,
            "--level", args.level, "--frames", str(int(args.frames)), "--seed", "0",
            "--runs-dir", runs_dir, "--quiet", "--checkpoint-every", str(10**12),
            *args.train_args,
        ]  # fmt: skip
        profile = Path(runs_dir) / "profile.txt"
        if args.profile:
            command = [
                py_spy, "record", "--subprocesses", "--format", "raw", "--rate", "50",
                "--nonblocking", "-o", str(profile), "--", *command,
            ]  # fmt: skip
        environment = dict(os.environ)
        if args.src:
            environment["PYTHONPATH"] = str(Path(args.src).resolve())
        print("$", " ".join(command), flush=True)
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=environment)
        # Its processes' CPU time, once a second: which process spends what per frame.
        samples = []
        while child.poll() is None:
            samples.append((time.time(), process_cpu_seconds(child.pid)))
            time.sleep(1.0)
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command)
        wall = time.perf_counter() - start
        run_dir = next(p for p in Path(runs_dir).iterdir() if p.is_dir())
        frames, fps, window = training_fps(run_dir)
        # Not when profiling: py-spy, then the child, samples on the same cores.
        cpu = cpu_per_frame(samples, child.pid, window, frames) if not args.profile else {}
        split = time_split(profile) if args.profile else {}
    raw_after = two_process_raw_fps(args.level, args.raw_frames)
    raw_two = (raw_before + raw_after) / 2
    profiled = " (slowed a little by py-spy's sampling)" if args.profile else ""
    print(
        f"{args.preset} training: {fps:,.0f} frames/s over {frames:,} frames after the first "
        f"logged step ({wall:.0f} s in all, start-up included); raw emulator on 2 processes "
        f"{raw_before:,.0f} before, {raw_after:,.0f} after; training / raw: "
        f"{fps / raw_two:.2f}{profiled}",
        flush=True,
    )
    if cpu:
        print(
            f"CPU per training frame: trainer process {cpu['trainer_ms']:.3f} ms, its other "
            f"processes (env workers) {cpu['others_ms']:.3f} ms; the raw emulator "
            f"{2e3 / raw_two:.3f} ms a frame per process",
            flush=True,
        )
    if split:
        print("time split (share of sampled thread time, all processes):")
        for part, share in split.items():
            print(f"  {share:6.1%}  {part}")
    return {
        "train_fps": fps,
        "train_frames_measured": frames,
        "raw_fps_2_processes_before_after": [raw_before, raw_after],
        "train_over_raw_2": fps / raw_two,
        "time_split": split,
        "cpu_ms_per_frame": cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="ppo-fast")
    parser.add_argument("--level", default="1-1")
    parser.add_argument("--frames", type=float, default=200_000, help="training frames")
    parser.add_argument("--raw-frames", type=int, default=6_000, help="per raw measurement")
    parser.add_argument("--repeats", type=int, default=1, help="training runs, one after another")
    parser.add_argument(
        "--src",
        default=None,
        help="train with the mario_rl package in this folder (e.g. an older commit's src/ "
        "checked out with `git worktree add`), for before/after ratios on one machine",
    )
    parser.add_argument("--profile", action="store_true", help="sample the training with py-spy")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    parser.add_argument("train_args", nargs="*", help="more `mario-rl train` flags, after --")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if args.profile and not Path(py_spy).exists():
        parser.error("--profile needs py-spy: pip install py-spy")
    if args.repeats < 1:
        parser.error(f"--repeats: expected at least 1, got {args.repeats}")
    if args.src and not (Path(args.src) / "mario_rl").is_dir():
        parser.error(f"--src: {args.src} holds no mario_rl package")

    load_before = os.getloadavg()[0]
    raw_one = raw_emulator_fps(args.level, args.raw_frames, 0).fps
    print(f"raw emulator, 1 process: {raw_one:,.0f} frames/s", flush=True)
    runs = [train_once(args, py_spy) for _ in range(args.repeats)]
    ratios = [run["train_over_raw_2"] for run in runs]
    load_after = os.getloadavg()[0]
    print(
        f"training / raw emulator on 2 processes, {len(runs)} run(s): "
        + ", ".join(f"{ratio:.2f}" for ratio in ratios)
        + f" (lowest {min(ratios):.2f})"
    )
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
    if args.out:
        results = {
            "preset": args.preset,
            "level": args.level,
            "src": args.src,
            "cpu_count": os.cpu_count(),
            "raw_fps_1_process": raw_one,
            "runs": runs,
            "train_over_raw_2": ratios,
            "profiled": args.profile,
            "load_average_before_after": [load_before, load_after],
            "train_args": args.train_args,
        }
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
