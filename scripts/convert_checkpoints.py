"""Convert checkpoints and replays saved by mario-rl before weights-only loading.

mario-rl now loads `.pt` files with `torch.load(weights_only=True)`, which refuses files
that need pickle. Files written before that held a few NumPy arrays (the global RNG key,
PPO's surprisal statistics, DQN replay arrays) and are refused too. This script unpickles
such files, which can run code, so **convert only files you made yourself**; it rewrites
each one, atomically, with the arrays as tensors and the RNG key as a list.

    .venv/bin/python scripts/convert_checkpoints.py runs/MY_RUN/checkpoints/*.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mario_rl.runs import CheckpointError, atomic_save, load_plain_data


def plain(value: Any) -> Any:
    """`value` with every NumPy array and scalar as a tensor or a Python number."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(item) for item in value)
    return value


def convert(payload: dict[str, Any]) -> dict[str, Any]:
    numpy_state = payload.get("rng_states", {}).get("numpy")
    if isinstance(numpy_state, tuple):
        # np.random.get_state()'s legacy tuple, as the dict `rng_states` now saves.
        name, key, position, has_gauss, gauss = numpy_state
        payload["rng_states"]["numpy"] = {
            "bit_generator": name,
            "state": {"key": np.asarray(key).tolist(), "pos": int(position)},
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        }
    return plain(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="checkpoint or replay .pt files")
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            load_plain_data(path)
            print(f"{path}: already loads without pickle; left as it is")
            continue
        except CheckpointError:
            pass
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(payload, dict):
            print(f"{path}: not a mario-rl checkpoint or replay; left as it is", file=sys.stderr)
            return 1
        atomic_save(convert(payload), path)
        load_plain_data(path)
        print(f"{path}: converted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
