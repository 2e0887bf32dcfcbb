"""Joining or starting a Ray cluster for the env actors (`mario-rl train --ray ...`).

Ray is an optional extra (`pip install -e '.[ray]'`); only runs that ask for actors
import it. Addresses:
- `local`: start a private Ray instance on this machine for this run (it stops with it);
- `auto`: join the cluster this machine already belongs to (`ray start` or `RAY_ADDRESS`);
- `HOST:PORT` (or `ray://HOST:PORT`): join that cluster's head node.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

ACTOR_RESTARTS = 100
"""How many times Ray restarts one actor before the run gives up on it."""
RESTART_WAIT_S = 180.0
"""Seconds one round of calls waits, in all, for actors that died to be back: Ray restarts
an actor in a new Python process that imports torch and builds its env again, which takes
seconds on an idle machine and more on a loaded one."""
RETRY_PAUSES_S = (0.5, 1.0, 2.0, 5.0)
"""Pauses before each call made again to a restarting actor, the last one repeated: a call
to an actor still restarting fails at once, so calling again at once only spends tries."""

RAY_MISSING = (
    "Ray is not installed: env actors need the optional extra, "
    "pip install -e '.[ray]' (or pip install 'ray>=2.40')"
)


def import_ray() -> ModuleType:
    """The `ray` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(RAY_MISSING) from error
    return ray


def connect(address: str, actors: int) -> tuple[ModuleType, bool]:
    """Join (or, for `local`, start) the Ray cluster at `address`; returns `ray` and whether
    this call started it (a process already connected, e.g. a test session, keeps its own).

    A local instance gets a CPU slot per actor at least, since each actor asks for one: on a
    small machine the actors then share its cores (as the local env workers do) instead of
    waiting forever for slots that never free up.
    """
    if not address:
        raise ValueError("ray address: expected local, auto or HOST:PORT, got an empty one")
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    options = {"include_dashboard": False, "log_to_driver": True}
    # `ray.init` installs a SIGTERM handler that exits at once: `kill PID` would then skip
    # the checkpoint the command's own handler (mario_rl.stopping) writes, so it is put back.
    in_main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        if address == "local":
            ray.init(num_cpus=max(os.cpu_count() or 1, actors), **options)
        else:
            try:
                ray.init(address=address, **options)
            except ConnectionError as error:
                raise ConnectionError(
                    f"ray address {address!r}: no Ray cluster answered ({error}); start one "
                    "with `ray start --head`, or pass --ray local to start a private one for "
                    "this run"
                ) from None
    finally:
        if in_main and sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    return ray, True


def start_actors(ray: ModuleType, worker_class: type, count: int, *args: Any) -> list[Any]:
    """`count` actors of `worker_class(*args)`, one CPU each, spread over the nodes, each
    restarted by Ray when it dies (`ACTOR_RESTARTS`)."""
    remote = ray.remote(num_cpus=1, max_restarts=ACTOR_RESTARTS, max_task_retries=0)(worker_class)
    return [remote.options(scheduling_strategy="SPREAD").remote(*args) for _ in range(count)]


def gather(
    ray: ModuleType, pending: dict[int, Any], resend: Callable[[int], Any], what: str
) -> tuple[dict[int, Any], int]:
    """The results of one round of actor calls (`pending`: actor index -> call), waiting for
    each; a call whose actor died is made again with `resend(index)`, after a pause that
    grows while Ray restarts the actor, for up to `RESTART_WAIT_S` in all. Returns the
    results by actor index and how many calls were lost."""
    results: dict[int, Any] = {}
    lost = 0
    deadline = None
    while pending:
        index, ref = next(iter(pending.items()))
        try:
            results[index] = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            lost += 1
            deadline = deadline or time.monotonic() + RESTART_WAIT_S
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"env actors died or were unavailable {lost} times while collecting one "
                    f"{what}, and were not back within {RESTART_WAIT_S:g} s; "
                    "see the Ray logs (/tmp/ray/session_latest/logs)"
                ) from None
            time.sleep(RETRY_PAUSES_S[min(lost, len(RETRY_PAUSES_S)) - 1])
            pending[index] = resend(index)
            continue
        del pending[index]
    return results, lost


def stop_actors(ray: ModuleType, actors: list[Any], started_ray: bool) -> None:
    """Kill `actors` for good, and stop the Ray instance if this run started it."""
    for actor in actors:
        ray.kill(actor, no_restart=True)
    if started_ray:
        ray.shutdown()
