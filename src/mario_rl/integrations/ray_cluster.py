"""Joining or starting a Ray cluster for the env actors (`mario-rl train --ray ...`).

Ray is an optional extra (`pip install -e '.[ray]'`); only runs that ask for actors
import it. Addresses:
- `local`: start a private Ray instance on this machine for this run (it stops with it);
- `auto`: join the cluster this machine already belongs to (`ray start` or `RAY_ADDRESS`);
- `HOST:PORT` (or `ray://HOST:PORT`): join that cluster's head node.
"""

from __future__ import annotations

import os
from types import ModuleType

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
    if address == "local":
        ray.init(num_cpus=max(os.cpu_count() or 1, actors), **options)
    else:
        try:
            ray.init(address=address, **options)
        except ConnectionError as error:
            raise ConnectionError(
                f"ray address {address!r}: no Ray cluster answered ({error}); start one with "
                "`ray start --head`, or pass --ray local to start a private one for this run"
            ) from None
    return ray, True
