"""Evaluation separate from training: episodes from the level's start, under sticky actions.

A level is cleared when the flag is reached or the stage changes (docs/architecture.md, section 3).
NES games are deterministic and no-op starts do not perturb 1-1 (the observations after
25 and 26 no-ops are byte-identical), so a memorised button sequence passes a no-op-only
evaluation. Evaluation therefore repeats the previous action with probability
`sticky` (0.25 by default, Machado et al. 2018) on every emulator frame, on top of random
0..`noop_max` no-op frames; `sticky=0` is the deterministic evaluation, labelled so.

The blind-replay control (`control=True`) replays the actions of one of the policy's own
episodes open loop, without looking, on fresh starts under the same stochasticity: a
policy that uses its eyes clears far more often than its own blind replay.

Episodes end early (truncated) after `max_stuck_steps` agent steps without a new best x.
Each episode depends only on its seed (its env reset and its own acting generator), so
`workers` processes can play them side by side and give the same report as one.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mario_rl.agents import Policy
from mario_rl.env.levels import parse_level
from mario_rl.env.pipeline import EnvConfig
from mario_rl.env.wrappers import EPISODE_STATS, EVAL_STICKY
from mario_rl.runs import run_directory, write_text_atomic

Actor = Callable[[np.ndarray], int | None]
"""Maps an observation to the next action; None ends the episode (a replay ran out)."""


def eval_env_config(
    config: EnvConfig,
    level: str | None,
    noop_max: int,
    max_stuck_steps: int,
    sticky: float = EVAL_STICKY,
) -> EnvConfig:
    """The training pipeline with evaluation's starts, ends and sticky actions, no shaping."""
    if not 0.0 <= sticky < 1.0:
        raise ValueError(f"sticky: expected a probability in [0, 1), got {sticky}")
    if noop_max < 0:
        raise ValueError(f"noop_max: expected >= 0 no-op frames, got {noop_max}")
    return replace(
        config,
        level=parse_level(level or config.level).name,
        levels=(),
        noop_max=noop_max,
        no_progress_steps=max_stuck_steps,
        no_progress_is_death=False,
        sticky_probability=sticky,
        end_on_life_loss=False,
    )


def policy_actor(policy: Policy, epsilon: float = 0.0) -> Actor:
    """The policy acting on what it sees (greedy, sampled, or epsilon-greedy)."""
    return lambda obs: int(policy.act(obs[None], epsilon)[0])


def blind_actor(actions: Sequence[int]) -> Actor:
    """The given actions in order, whatever is seen; the episode ends when they run out."""
    remaining = iter(actions)
    return lambda _obs: next(remaining, None)


def trajectory_id(actions: Sequence[int], xs: Sequence[int]) -> str:
    """A short fingerprint of an episode: its actions and Mario's x after each of them.

    The x sequence tells apart episodes of one button sequence that sticky actions played
    differently (a blind replay always has the same actions).
    """
    digest = hashlib.sha1(np.asarray(actions, np.uint8).tobytes())
    digest.update(np.asarray(xs, np.int32).tobytes())
    return digest.hexdigest()[:12]


def run_episode(
    act: Actor, env: Any, seed: int, frames: list[np.ndarray] | None = None
) -> dict[str, Any]:
    """Play one episode with `act`; returns its numbers and the actions taken.

    Appends full-colour screens to `frames` if given. An episode whose actor runs out of
    actions (a blind replay) ends there, counted as not cleared unless it already was.
    """
    obs, info = env.reset(seed=seed)
    start_stage = (info["world"], info["stage"])
    start_frames, start_time, noops = info["frames"], info["time"], info.get("noops", 0)
    start_x, start_area = info["x_pos"], info.get("area")
    cleared_at: dict[str, int] | None = None
    actions: list[int] = []
    xs: list[int] = []
    if frames is not None:
        frames.append(env.unwrapped.screen_rgb())
    while True:
        action = act(obs)
        if action is None:
            break
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        xs.append(info["x_pos"])
        if frames is not None:
            frames.append(env.unwrapped.screen_rgb())
        stage_changed = (info["world"], info["stage"]) != start_stage
        if cleared_at is None and (info["flag_get"] or stage_changed):
            cleared_at = {
                "frames": info["frames"] - start_frames,
                "time": start_time - info["time"],
            }
        if terminated or truncated:
            break
    # A replay that ran out ends the episode here, so the env has no totals for it.
    ended = info.get(EPISODE_STATS)
    stuck = bool(info.get("no_progress", False))
    ending = how_it_ended(
        cleared_at is not None, stuck, ended is not None, info.get("exit") == "loop"
    )
    return {
        "seed": seed,
        "cleared": cleared_at is not None,
        "ended": ending,
        # How the life was lost (MarioEnv's `info["death"]`): "fell", "hit" or "time".
        "death": info.get("death") if ending == "died" else None,
        "end_x": int(xs[-1]) if xs else int(start_x),
        # x restarts in a pipe's or bonus room's area: end_x is only comparable within one.
        "start_area": start_area,
        "end_area": info.get("area"),
        "max_x": int(max([start_x, *xs])),
        "return": float(ended["return"]) if ended else None,
        "frames": int(info["frames"]) - start_frames,
        "frames_to_clear": cleared_at["frames"] if cleared_at else None,
        "game_time_to_clear": cleared_at["time"] if cleared_at else None,
        "score": int(info["score"]),
        "noops": int(noops),
        "stuck": stuck,
        # How the level was left, as MarioEnv reports it: "flag", "warp W-S", "loop" or None.
        "exit": info.get("exit"),
        "trajectory": trajectory_id(actions, xs),
        "actions": actions,
    }


ENDINGS = ("cleared", "died", "stuck", "replay ran out", "looped")
"""How an evaluation episode can end: at the flag (or a new stage), by losing the life
(the clock running out included), truncated after `max_stuck_steps` steps without a new
best x, (a blind replay) with no actions left, or sent back by a castle's loop (4-4, 7-4,
8-4 on the wrong path)."""


DEATH_ENDINGS = {"fell": "died: fell", "hit": "died: hit", "time": "died: out of time"}
"""A death's ending in a death map, by how the life was lost (an episode's `death`):
below the screen (a pit, lava), anything else that kills (an enemy, its fire), the clock."""
MAP_ENDINGS = ("died", *DEATH_ENDINGS.values(), *ENDINGS[2:])
"""The endings a death map draws, in stacking order: "died" alone for reports from before
episodes kept how the life was lost."""


def how_it_ended(cleared: bool, stuck: bool, finished: bool, looped: bool = False) -> str:
    if cleared:
        return "cleared"
    if not finished:
        return "replay ran out"
    if looped:
        return "looped"
    return "stuck" if stuck else "died"


ANOTHER_AREA = " in another area"
"""Suffix of an ending in an area other than the episode's first (`where_episodes_ended`)."""
DEATH_MAP_BAND_PX = 128
"""Width of a death map's bands: half a screen (256 px), so a level's obstacles stay apart."""


def ended_in_another_area(episode: dict[str, Any]) -> bool:
    """Whether an episode of a report ended in another area than it started in (reports
    from before areas were recorded: no)."""
    return episode.get("end_area", episode.get("start_area")) != episode.get("start_area")


def map_ending(episode: dict[str, Any]) -> str:
    """How an episode that did not clear ended, as a death map draws it (`MAP_ENDINGS`).
    Reports saved before episodes kept their end (such as older bundles' eval.json) give
    died or stuck; those from before they kept how a life was lost, "died"."""
    ending = episode.get("ended") or ("stuck" if episode["stuck"] else "died")
    if ending == "died":
        return DEATH_ENDINGS.get(episode.get("death") or "", ending)
    return ending


def where_episodes_ended(
    report: dict[str, Any], band_px: int = DEATH_MAP_BAND_PX
) -> dict[int, Counter[str]]:
    """The episodes of a report that did not clear, counted by how they ended (a death by
    how the life was lost: `DEATH_ENDINGS`), per `band_px`-wide band of the level (keyed by
    the band's first x), lowest band first.
    An episode that ended in another area than it started in (a pipe, a bonus room: x
    there is that area's) counts as e.g. "died: hit in another area". Saved reports from
    before episodes kept their end (such as older bundles' eval.json) count at their
    furthest x."""
    if band_px < 1:
        raise ValueError(f"band_px: expected a positive number of pixels, got {band_px}")
    bands: dict[int, Counter[str]] = {}
    for episode in report["per_episode"]:
        if episode["cleared"]:
            continue
        x = episode.get("end_x", episode["max_x"])
        ending = map_ending(episode)
        if ended_in_another_area(episode):
            ending += ANOTHER_AREA
        bands.setdefault(x // band_px * band_px, Counter())[ending] += 1
    return dict(sorted(bands.items()))


def machine_summary() -> dict[str, Any]:
    """Where an evaluation ran: enough to tell two reports' machines apart."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mario_rl": version("mario-rl"),
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def acting_mode(policy: Policy, epsilon: float) -> str:
    """How the policy picks actions: greedy, sampled, or either with epsilon (the random
    agent: uniform, either way)."""
    if policy.algo == "random":  # the same distribution, drawn in two ways
        return "uniform, sampled" if policy.sample else "uniform"
    mode = "sampled" if policy.sample else "greedy"
    return f"{mode}, epsilon {epsilon:g}" if epsilon > 0 else mode


def stochasticity_label(sticky: float, noop_max: int) -> str:
    """What perturbs the episodes, in words: sticky actions or "deterministic", and no-ops."""
    kind = f"sticky {sticky:g}" if sticky > 0 else "deterministic (no sticky actions)"
    return f"{kind}, no-ops 0..{noop_max}"


def episode_numbers(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What a set of episodes adds up to: clears, x, frames and game time to clear."""
    cleared = [r for r in results if r["cleared"]]
    return {
        "episodes": len(results),
        "clears": len(cleared),
        "clear_rate": len(cleared) / len(results),
        "distinct_trajectories": len({r["trajectory"] for r in results}),
        "mean_x": _mean([r["max_x"] for r in results]),
        "max_x": max(r["max_x"] for r in results),
        "mean_frames_to_clear": _mean([r["frames_to_clear"] for r in cleared]),
        "mean_game_time_to_clear": _mean([r["game_time_to_clear"] for r in cleared]),
        "mean_score": _mean([r["score"] for r in results]),
        "exits": exit_counts(cleared),
        "failures": failure_counts(results),
    }


def failure_counts(episodes: list[dict[str, Any]]) -> dict[str, int]:
    """How the episodes that did not clear ended, most first: "died: fell", "stuck", ...
    (`MAP_ENDINGS`; a death whose cause was not recorded counts as "died")."""
    counts = Counter(map_ending(episode) for episode in episodes if not episode["cleared"])
    return dict(counts.most_common())


def exit_counts(episodes: list[dict[str, Any]]) -> dict[str, int]:
    """How many of `episodes` left the level by each exit ("flag", "warp 4-1", ...), most
    taken first; one whose exit was not recorded (reports older than the field) counts
    under "unknown"."""
    counts = Counter(episode.get("exit") or "unknown" for episode in episodes)
    return dict(counts.most_common())


def _without_actions(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in r.items() if key != "actions"} for r in results]


ACTING_STREAM = 1
"""Second word of the acting generator's seed (`acting_rng`), setting it apart from the env's."""


def acting_rng(seed: int) -> np.random.Generator:
    """The generator a sampling or epsilon-greedy policy draws from in the episode seeded
    `seed`. Not `default_rng(seed)`: that is the stream the env's sticky actions and
    no-ops draw from after `reset(seed=seed)`, and the two must not move together."""
    return np.random.default_rng([seed, ACTING_STREAM])


def episode_player(
    policy: Policy,
    config: EnvConfig,
    seed: int,
    epsilon: float = 0.0,
    actions: Sequence[int] | None = None,
) -> tuple[Callable[[int], dict[str, Any]], Any]:
    """A function playing episode `index` (seeded `seed + index`), and the env it uses.

    The policy acts on what it sees (`policy_actor`), or, given `actions`, they are
    replayed blind (`blind_actor`).
    """
    env = policy.make_env(config, seed)

    def play(index: int) -> dict[str, Any]:
        policy.rng = acting_rng(seed + index)
        act = policy_actor(policy, epsilon) if actions is None else blind_actor(actions)
        return run_episode(act, env, seed + index, None)

    return play, env


_worker_arguments: tuple[Any, ...] = ()
"""What an evaluation worker process builds its episode player from (`_start_worker`)."""
_worker_play: Callable[[int], dict[str, Any]] | None = None


def _start_worker(*arguments: Any) -> None:
    from mario_rl.env.vector import ignore_interrupts_in_workers

    # Ctrl-C reaches the whole process group: the parent alone handles it, ending these.
    ignore_interrupts_in_workers()
    # Only kept here: the player is built by the first episode, so that a failure (a
    # checkpoint that does not load) reaches the parent as that episode's own error; one
    # in the initializer would only say that the pool broke.
    global _worker_arguments
    _worker_arguments = arguments


def _play_in_worker(index: int) -> dict[str, Any]:
    global _worker_play
    if _worker_play is None:
        import torch

        from mario_rl.agents import load_policy

        checkpoint, sample, config, seed, epsilon, actions, threads = _worker_arguments
        # The caller's thread count: a convolution's sums can round differently with
        # another, and a greedy action could flip at a near tie.
        torch.set_num_threads(threads)
        policy = load_policy(checkpoint)
        policy.set_sampling(sample)
        _worker_play, _ = episode_player(policy, config, seed, epsilon, actions)
    return _worker_play(index)


def play_episodes(
    policy: Policy,
    config: EnvConfig,
    seed: int,
    episodes: int,
    epsilon: float = 0.0,
    actions: Sequence[int] | None = None,
    workers: int = 1,
    stop_after_failures: int | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Episodes seeded `seed`.. in order (`episode_player`), the same for any `workers`.

    With `workers` > 1 each of that many processes loads the policy from its checkpoint
    file. `stop_after_failures`: stop once that many episodes have not cleared; the
    episodes played are the first ones of the full evaluation.
    """
    if workers < 1:
        raise ValueError(f"workers: expected a positive number of processes, got {workers}")
    if stop_after_failures is not None and stop_after_failures < 1:
        raise ValueError(
            f"stop_after_failures: expected a positive number, got {stop_after_failures}"
        )
    workers = min(workers, episodes)
    if workers > 1 and not policy.checkpoint_path:
        raise ValueError(
            "workers: evaluation processes load the policy from its checkpoint file, and "
            f"this {policy.algo} policy has none; use workers=1"
        )
    bar = tqdm(
        total=episodes, unit="episode" if actions is None else "replay", disable=not progress
    )
    results: list[dict[str, Any]] = []
    failures = 0
    with (
        bar,
        _episodes_in_order(policy, config, seed, episodes, epsilon, actions, workers) as played,
    ):
        for result in played:
            results.append(result)
            bar.update()
            failures += not result["cleared"]
            if stop_after_failures is not None and failures >= stop_after_failures:
                break
    return results


@contextmanager
def _episodes_in_order(
    policy: Policy,
    config: EnvConfig,
    seed: int,
    episodes: int,
    epsilon: float,
    actions: Sequence[int] | None,
    workers: int,
) -> Iterator[Iterator[dict[str, Any]]]:
    """Episode 0, 1, ... played lazily; leaving the block stops (and kills) what is left."""
    if workers == 1:
        play, env = episode_player(policy, config, seed, epsilon, actions)
        try:
            yield (play(index) for index in range(episodes))
        finally:
            env.close()
        return
    import torch

    # forkserver, as the vector env: a fork of a process holding torch's threads can hang.
    # An executor, not a Pool: a worker that dies (killed for memory, a crash) fails the
    # evaluation with BrokenProcessPool, where a Pool would replace it and wait forever.
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("forkserver"),
        initializer=_start_worker,
        initargs=(
            policy.checkpoint_path,
            policy.sample,
            config,
            seed,
            epsilon,
            actions,
            torch.get_num_threads(),
        ),
    )
    try:
        yield _results_in_order(executor, _play_in_worker, episodes, window=2 * workers)
    finally:
        _close_executor(executor)


def _results_in_order(
    executor: ProcessPoolExecutor,
    play: Callable[[int], dict[str, Any]],
    episodes: int,
    window: int,
) -> Iterator[dict[str, Any]]:
    """`play(0)`, `play(1)`, ... in `executor`'s processes, in order: at most `window`
    submitted ahead of the one awaited, so that an early stop leaves little work in
    flight, and a slow episode keeps few workers idle."""
    pending: deque[Future[dict[str, Any]]] = deque()
    submitted = 0
    while submitted < episodes or pending:
        while submitted < episodes and len(pending) < window:
            pending.append(executor.submit(play, submitted))
            submitted += 1
        yield pending.popleft().result()


def _close_executor(executor: ProcessPoolExecutor) -> None:
    """Shut `executor` down and end its processes, episodes in flight included (an early
    stop, an error, Ctrl-C), as Python 3.14's `ProcessPoolExecutor.terminate_workers`."""
    processes = list((executor._processes or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()


def evaluate(
    policy: Policy,
    level: str | None = None,
    episodes: int = 20,
    epsilon: float = 0.0,
    noop_max: int = 30,
    seed: int = 0,
    max_stuck_steps: int = 250,
    progress: bool = False,
    sample: bool | None = None,
    sticky: float = EVAL_STICKY,
    control: bool = False,
    workers: int = 1,
    stop_after_failures: int | None = None,
) -> dict[str, Any]:
    """Play `episodes` evaluation episodes; returns the summary and each episode's numbers.

    Episode i is seeded `seed + i`: its no-op count and sticky draws, and (`acting_rng`)
    a sampling or epsilon-greedy policy's draws. `sample` True draws each action from a
    stochastic policy, False takes the greedy one, None keeps the policy's own setting (a
    bundled agent's is the one it was measured by). `workers` processes play the episodes
    (`play_episodes`); the report is the same for any number. `stop_after_failures`:
    stop once that many episodes failed (`"stopped_early"`; "episodes" counts those
    played). With `control`, the blind-replay control (`blind_replay`) of the first
    cleared episode (the first episode if none cleared) runs on `episodes` fresh starts,
    seeded `seed + episodes + i`, and is saved under `"control"`.
    """
    if episodes < 1:
        raise ValueError(f"episodes: expected a positive integer, got {episodes}")
    if sample is not None:
        policy.set_sampling(sample)
    config = eval_env_config(policy.env_config, level, noop_max, max_stuck_steps, sticky)
    results = play_episodes(
        policy,
        config,
        seed,
        episodes,
        epsilon,
        workers=workers,
        stop_after_failures=stop_after_failures,
        progress=progress,
    )
    report: dict[str, Any] = {
        "checkpoint": policy.checkpoint_path,
        "algo": policy.algo,
        "level": config.level,
        "acting": acting_mode(policy, epsilon),
        "epsilon": epsilon,
        "sample": policy.sample,
        "sticky_probability": sticky,
        "deterministic": sticky == 0,
        "noop_max": noop_max,
        "noop_range": [0, noop_max],
        "seed": seed,
        "seeds": [seed, seed + len(results) - 1],
        "max_stuck_steps": max_stuck_steps,
        "machine": machine_summary(),
        **episode_numbers(results),
        "mean_return": _mean([r["return"] for r in results if r["return"] is not None]),
        "per_episode": _without_actions(results),
    }
    if len(results) < episodes:
        report["stopped_early"] = {
            "episodes_asked": episodes,
            "after_failures": stop_after_failures,
        }
    if control:
        source = next((r for r in results if r["cleared"]), results[0])
        report["control"] = blind_replay(
            policy,
            source["actions"],
            config,
            episodes,
            seed + episodes,
            progress,
            source_seed=source["seed"],
            workers=workers,
        )
    return report


def blind_replay(
    policy: Policy,
    actions: Sequence[int],
    config: EnvConfig,
    episodes: int,
    seed: int,
    progress: bool = False,
    source_seed: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """The blind-replay control: `actions` replayed open loop on `episodes` starts.

    Same env (`config`, sticky actions and no-ops included) and the same scoring as the
    policy's episodes (`run_episode`); only the actor differs. Episode i is seeded
    `seed + i`; an episode ends when the actions run out.
    """
    actions = list(map(int, actions))
    results = play_episodes(
        policy, config, seed, episodes, actions=actions, workers=workers, progress=progress
    )
    return {
        "kind": "blind replay",
        "source_seed": source_seed,
        "actions": actions,
        "seeds": [seed, seed + episodes - 1],
        **episode_numbers(results),
        "per_episode": _without_actions(results),
    }


def default_report_path(checkpoint: str, level: str) -> Path:
    """`<run>/eval/<level>__<checkpoint name>__<time>.json` beside the checkpoint's run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return run_directory(checkpoint) / "eval" / f"{level}__{Path(checkpoint).stem}__{stamp}.json"


def save_report(report: dict[str, Any], path: Path) -> Path:
    """Write `report` as JSON, whole or not at all (a copy taken meanwhile, as the level
    campaign's saves take its checks' reports, never reads half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
    return path


def summary_line(report: dict[str, Any]) -> str:
    """What a person reads: the conditions, the clear rate, and the control's beside it."""
    frames = report["mean_frames_to_clear"]
    time_text = report["mean_game_time_to_clear"]
    clear_text = (
        f", mean {frames:.0f} frames / {time_text:.0f} game-clock units to clear"
        if frames is not None
        else ""
    )
    first, last = report["seeds"]
    line = (
        f"{report['algo']} ({report['acting']}) on {report['level']}, "
        f"{stochasticity_label(report['sticky_probability'], report['noop_max'])}, "
        f"seeds {first}..{last}: cleared {report['clears']}/{report['episodes']} "
        f"({report['clear_rate']:.0%}), {report['distinct_trajectories']} distinct "
        f"trajectories, mean x {report['mean_x']:.0f}, max x {report['max_x']}{clear_text}"
    )
    stopped = report.get("stopped_early")
    if stopped:
        line += (
            f" (stopped after {stopped['after_failures']} failed episodes of the "
            f"{stopped['episodes_asked']} asked)"
        )
    failures = report.get("failures")
    if failures:
        line += "\nthe episodes that did not clear: " + ", ".join(
            f"{count} {ending.removeprefix('died: ')}" for ending, count in failures.items()
        )
    control = report.get("control")
    if control:
        line += (
            f"\nblind-replay control (the actions of seed {control['source_seed']}'s episode, "
            f"open loop, same conditions): cleared {control['clears']}/{control['episodes']} "
            f"({control['clear_rate']:.0%}), mean x {control['mean_x']:.0f}"
        )
    return line
