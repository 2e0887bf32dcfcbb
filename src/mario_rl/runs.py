"""What every training run shares: its directory, metrics, checkpoints, budget and seeding.

A run lives in `runs/<level>__<algo>__<seed>__<YYYYmmdd-HHMMSS>/`:

    config.json        the full config, seed, package versions and git commit
    episodes.csv       one row per finished episode (EPISODE_COLUMNS)
    rewards.npy        the episode returns, in order, as the TensorFlow blog saved them
    log.txt            a line of headline numbers every SUMMARY_EVERY episodes
    events.out.tfevents.*   TensorBoard scalars under the shared names (METRICS)
    checkpoints/       `frames_<N>.pt`, the `keep` newest, each written atomically

With `RunConfig.keep_copy` set, each checkpoint also refreshes a copy of what a resume needs
(`keep_copy_of`) in a folder that outlives the machine; copied back, `--resume` continues it.

A checkpoint is a dict saved with `torch.save` holding at least CHECKPOINT_FIELDS; see
`mario_rl.agents.load_policy` for how evaluation reads it back.

Each agent's training loop is a `Trainer` (one `step` at a time, its state as a checkpoint
payload); `mario_rl.training.train` drives every trainer the same way, so run directories,
budgets, checkpoints, Ctrl-C and resume behave alike for all agents.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pickle
import platform
import random
import re
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from mario_rl.env.levels import parse_level
from mario_rl.env.wrappers import EPISODE_STATS

FORMAT_VERSION = 1
"""Bumped when the checkpoint layout changes incompatibly."""
CHECKPOINT_FIELDS = (
    "format_version",
    "algo",
    "module",
    "action_set",
    "network",
    "env_config",
    "model_state",
)
"""Fields every agent's checkpoint holds (see `mario_rl.agents.load_policy`)."""
METRICS = (
    "charts/episodic_return",
    "charts/x_pos",
    "charts/flag",
    "charts/fps",
    "charts/epsilon",
    "losses/td",
    "q/max",
)
"""TensorBoard scalar names shared by all agents; the x axis is always emulator frames."""
EPISODE_COLUMNS = (
    "frames",
    "episode",
    "return",
    "length",
    "episode_frames",
    "max_x",
    "flag",
    "time_left",
    "score",
    "wall_s",
    "level",
)
"""Columns of `episodes.csv`; `frames` is the run's total when the episode ended, `level`
the level it played (empty in rows written before the column existed)."""
VERSIONED_PACKAGES = ("mario-rl", "torch", "numpy", "gymnasium", "gym-super-mario-bros", "nes-py")
POSTFIX_SECONDS = 1.0
"""Seconds between refreshes of the numbers after the progress bar."""
ROLLING_EPISODES = 100
"""Episodes in the rolling mean return shown on the progress bar and in `log.txt`."""
SUMMARY_EVERY = 100
"""Episodes between the lines of `log.txt` (and printed above the progress bar)."""


T = TypeVar("T")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message says why and what to do."""


@dataclass
class RunConfig:
    """How a training run is run, whatever the algorithm."""

    seed: int = 0
    """Seeds Python, NumPy, torch, env resets and action spaces."""
    frames: int | None = 2_000_000
    """Budget in emulator frames (None: no frame limit)."""
    minutes: float | None = None
    """Budget in wall-clock minutes (None: no time limit); the first budget reached ends it."""
    schedule_frames: int | None = None
    """Frames the schedules (PPO's learning-rate annealing, DQN's replay schedules) span
    (None: the budget). For a run trained in pieces, each with its own budget, such as a
    level of `mario-rl levels-table`: the schedules then follow the whole run, not each
    piece."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""
    runs_dir: str = "runs"
    """Parent directory of run directories."""
    checkpoint_every: int = 250_000
    """Emulator frames between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = 10
    """Checkpoints kept; older ones are deleted."""
    save_replay: bool = False
    """Also save the replay buffer with each checkpoint, so `--resume` continues it."""
    log_every: int = 10_000
    """Emulator frames between TensorBoard scalars of losses, Q and speed."""
    progress: bool = True
    """Show a progress bar on the terminal."""
    ray: str | None = None
    """Collect experience on Ray actors: `local` (a private Ray instance), `auto` (the
    cluster this machine is in) or a head node's `HOST:PORT`; None: local env workers."""
    env_actors: int = 0
    """Ray actors collecting experience when `ray` is set (each owns num_envs / env_actors
    envs)."""
    keep_copy: str | None = None
    """A folder that outlives the machine (one git tracks, a mounted disk): after each
    checkpoint, what a resume needs is copied into `<keep_copy>/<run name>/`, replacing the
    copy before (`keep_copy_of`). None: no copy."""

    def next_checkpoint(self, frames: int) -> int:
        """The first checkpoint frame count after `frames` on the `checkpoint_every` grid, so
        a resumed run keeps the schedule of the run it continues."""
        return (frames // self.checkpoint_every + 1) * self.checkpoint_every


# -- environment of the run ------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cpu` / `cuda` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for but torch sees no GPU; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (envs are seeded at reset)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc's largest `M_MMAP_THRESHOLD`: allocations up to this size come from the heap."""
TRIM_THRESHOLD = 1024 * 1024 * 1024
"""Free memory at the heap's top that glibc keeps before giving it back to the system."""


def retain_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks up to 32 MB for reuse, instead of unmapping
    them; returns whether it applied (Linux with glibc only; elsewhere a no-op).

    The learner's activations are a few MB to tens of MB (a PPO minibatch of 256 through
    the small torso: 14 MB per layer output). glibc serves a block above its mmap
    threshold (128 kB, raised as such blocks are freed) with a fresh mapping, and gives
    the heap's free top back to the system past its trim threshold, so forward passes
    fault their memory in again, page by page, and the kernel zeroes it: the level
    campaign's trainer thread took about 70,000 minor page faults a second, 12% of a core
    in the kernel. `python benchmarks/bench_page_faults.py` (ppo-levels' update in the main
    thread, as the trainer runs it): about 110,000 faults and 0.29-0.40 s of system time
    per update before, under 600 faults and 0.003-0.014 s after (with the relabelling in
    minibatches, `PPOAgent.relabel`), user time unchanged at about 0.75 s.
    The cost: each of glibc's arenas (one per thread that allocates, up to a few per
    core) keeps up to `TRIM_THRESHOLD` of freed memory at its top mapped; in practice a
    training process's peak working set. Under another allocator (jemalloc or tcmalloc
    preloaded) the call returns True and changes nothing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(
        mallopt(m_mmap_threshold, MMAP_THRESHOLD) and mallopt(m_trim_threshold, TRIM_THRESHOLD)
    )


def rng_states() -> dict[str, Any]:
    """The global generators' states, for a checkpoint: tensors and plain data only."""
    numpy_state = np.random.get_state(legacy=False)
    # A plain list, not an array: checkpoints load with weights_only=True, which has no numpy.
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    numpy_state = states["numpy"]
    key = np.asarray(numpy_state["state"]["key"], np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(start: Path | None = None) -> str | None:
    """The commit checked out in the repository holding `start` (read from `.git`), or None.

    Also in a `git worktree` (the long runs start from one, so that commits made meanwhile
    do not change their code), whose `.git` is a file naming its own git directory: HEAD is
    read there, and a branch's ref from the main repository's (`commondir`).
    """
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        git = _git_dir(folder)
        if git is None:
            continue
        try:
            return _checked_out(git)
        except OSError:  # a worktree whose repository was moved or deleted
            return None
    return None


def _checked_out(git: Path) -> str | None:
    """The commit HEAD names in git directory `git`."""
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head
    ref = head.removeprefix("ref: ")
    common = git / "commondir"
    shared = (git / common.read_text().strip()).resolve() if common.is_file() else git
    for refs in dict.fromkeys([git, shared]):
        if (refs / ref).is_file():
            return (refs / ref).read_text().strip()
        packed = refs / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(f" {ref}"):
                    return line.split()[0]
    return None


def _git_dir(folder: Path) -> Path | None:
    """`folder`'s git directory: its `.git` folder, or the one a worktree's `.git` file names."""
    dot_git = folder / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():
        text = dot_git.read_text().strip()
        if text.startswith("gitdir: "):
            return (folder / text.removeprefix("gitdir: ")).resolve()
    return None


# -- run directories -------------------------------------------------------------------------


class RunDir:
    """One run's directory; `create` makes a new one, `RunDir(path)` opens an existing one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise CheckpointError(
                f"{self.path} is not a run directory (no config.json); pass a directory "
                "that `mario-rl train` made"
            )

    @classmethod
    def create(cls, root: str | Path, level: str, algo: str, seed: int, config: dict) -> RunDir:
        """Make `root/<level>__<algo>__<seed>__<time>/` and write its `config.json`."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(root) / f"{parse_level(level).name}__{algo}__{seed}__{stamp}"
        path, suffix = base, 1
        while path.exists():
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")
        (path / "checkpoints").mkdir(parents=True)
        record = {
            **config,
            "seed": seed,
            "algo": algo,
            "versions": package_versions(),
            "git_commit": git_commit(),
            "created": stamp,
        }
        (path / "config.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        return cls(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        try:
            saved = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path}: not a readable config ({error})") from None
        if not isinstance(saved, dict):
            raise CheckpointError(f"{path}: expected a JSON object, got {type(saved).__name__}")
        return saved

    def config_section(self, section: str, config_class: type[T]) -> T:
        """`config.json`'s `section` as `config_class`; a one-line `CheckpointError` for a
        missing section, unknown or missing fields, or bad values."""
        where = self.path / "config.json"
        values = self.config().get(section)
        if not isinstance(values, dict):
            raise CheckpointError(f"{where}: expected a {section!r} section, got {values!r}")
        try:
            values = with_current_names(values)
        except ValueError as error:
            raise CheckpointError(f"{where}: {section} section: {error}") from None
        known = {field.name for field in dataclasses.fields(config_class)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise CheckpointError(
                f"{where}: unknown {section} field(s) {', '.join(unknown)} (written by another "
                "version of mario-rl, or edited); remove them to resume"
            )
        # A config with nested dataclasses (CS229Config) reads itself back with `from_dict`.
        from_dict = getattr(config_class, "from_dict", None)
        try:
            return from_dict(values) if from_dict else config_class(**values)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{where}: {section} section does not load ({error})") from None

    def latest_checkpoint(self) -> Path | None:
        found = list_checkpoints(self.checkpoints)
        return found[-1] if found else None


RENAMED_FIELDS: dict[str, str] = {
    "extrinsic_scale": "reward_scale",
    "snapshot_starts": "snapshot_start_probability",
}
"""Config fields renamed since runs were first saved (old name: new name), so config.json
files and checkpoints written before the rename still resume and evaluate."""


def with_current_names(values: dict[str, Any]) -> dict[str, Any]:
    """A saved config section with any renamed field under its current name; a ValueError
    if it holds both a field's old and new name (an edited file: which one counts?)."""
    both = sorted(old for old, new in RENAMED_FIELDS.items() if old in values and new in values)
    if both:
        pairs = ", ".join(f"{old} and {RENAMED_FIELDS[old]}" for old in both)
        raise ValueError(f"both the old and the new name of a field: {pairs}; keep one")
    return {RENAMED_FIELDS.get(name, name): value for name, value in values.items()}


# -- checkpoints ------------------------------------------------------------------------------

_CHECKPOINT_NAME = re.compile(r"^frames_(\d+)\.pt$")


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in `directory`, oldest first (temporary files are ignored)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _CHECKPOINT_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT_NAME.match(p.name).group(1)))


def run_directory(checkpoint: str | Path) -> Path:
    """The run directory a checkpoint file belongs to: the folder above its `checkpoints/`,
    or the folder holding it (a bundled `models/<level>/model.pt`)."""
    folder = Path(checkpoint).parent
    return folder.parent if folder.name == "checkpoints" else folder


def run_label(config: dict[str, Any], fallback: str) -> str:
    """How a run (its config.json as a dict) is named in plots and tables: its preset, or
    its algo without one, or `fallback`; a random-agent run, which plays a preset's
    pipeline but not its agent, as "random (PRESET pipeline)"."""
    if config.get("algo") == "random":
        return f"random ({config['preset']} pipeline)" if config.get("preset") else "random"
    return str(config.get("preset") or config.get("algo") or fallback)


def newest_run(folder: Path) -> Path | None:
    """The newest run directory in `folder` that has a checkpoint, or None: what a command
    that trains in pieces (`levels-table`, `cs229-study`) continues. Hidden folders are not
    runs: a kept copy's `.building` or `.old` (`keep_copy_of`), copied back along with it,
    is half a copy or an older one."""
    if not folder.is_dir():
        return None
    runs = [
        run
        for run in folder.iterdir()
        if run.is_dir() and not run.name.startswith(".") and list_checkpoints(run / "checkpoints")
    ]
    return max(runs, key=lambda run: run.stat().st_mtime) if runs else None


def atomic_save(payload: Any, path: Path) -> None:
    """`torch.save` to a temporary file in the same directory, then rename over `path`.

    A kill at any moment leaves either the old file or the new one, never half of one.
    A failed write (a full disk: torch reports it as a RuntimeError) removes its temporary
    file and raises `OSError` naming the file, so a caller's earlier files stay as they were
    and the CLI prints one line. Temporary files that a kill left behind are removed by the
    next save into the same directory.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        temporary.unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
        raise OSError(f"could not write {path} ({reason}); earlier files are kept") from error
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`, so that a
    reader (or a kill) never sees half of the file: the state files of work that runs in
    pieces (`levels-table`, `cs229-study`). A link or a device (`--out /dev/null`) is
    written through instead: renaming over it would replace it."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        path.write_text(text)
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def save_checkpoint(directory: Path, frames: int, payload: dict[str, Any], keep: int) -> Path:
    """Write `frames_<frames>.pt` atomically and delete all but the `keep` newest."""
    missing = [f for f in CHECKPOINT_FIELDS if f not in payload and f != "format_version"]
    if missing:
        raise ValueError(f"checkpoint: expected fields {missing} too, got {sorted(payload)}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"frames_{frames}.pt"
    atomic_save({**payload, "format_version": FORMAT_VERSION}, path)
    for stale in directory.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink()
    return path


def check_keep_copy(keep_copy: str | Path, runs_dir: str | Path) -> None:
    """Refuse a kept copy in the folder the run lives in: the run would be its own copy,
    renamed away and replaced at each checkpoint (and resumed, the copy would become the
    run). A copy of a run resumed from the kept folder lands there too."""
    if Path(keep_copy).resolve() == Path(runs_dir).resolve():
        raise ValueError(
            f"keep_copy: {keep_copy} is the folder the run lives in; keep the copy in "
            "another folder, and resume a kept copy from a runs folder it was copied into "
            f"(mkdir -p RUNS && cp -r {Path(keep_copy) / 'RUN'} RUNS/)"
        )


KEPT_OUT = ("events.out.tfevents.*", "replay_*.pt")
"""Run files a kept copy leaves out: TensorBoard's events (the charts start again at the
checkpoint), and a DQN replay (hundreds of MB; a resume without it burns in again)."""


APPENDED_LOGS = ("episodes.csv", "log.txt")
"""Run files the runner appends to line by line (the others it writes whole)."""


def put_back_kept_copies(into: str | Path) -> None:
    """Put back each copy in `into` that a kill left aside (`.<run>.old` without `<run>`:
    killed between `keep_copy_of`'s two renames), so that what reads the kept copies finds
    the older copy where the newer was to be."""
    into = Path(into)
    if not into.is_dir():
        return
    for old in into.glob(".*.old"):
        kept = into / old.name[1 : -len(".old")]
        if old.is_dir() and not kept.exists():
            old.rename(kept)


def keep_copy_of(run_dir: str | Path, into: str | Path, *, while_running: bool = False) -> Path:
    """Copy what a resume of `run_dir` needs into `into/<run name>/`, replacing the copy
    there, and return it: the run's own files (config, episode log, returns, log, a
    tabular agent's table) but `KEPT_OUT`, and its newest checkpoint with the files beside
    it of the same frame count (`table_<N>.npz`).

    `while_running`: another process may be training the run as it is copied, so the
    logs it appends to (`APPENDED_LOGS`) are copied up to their last full line.

    Built in `.<run name>.building` beside it, then swapped in: a kill leaves the older
    copy in place, or, between the swap's two renames, aside as `.<run name>.old`, which
    the next copy puts back before anything else (a half-built or unswapped newer copy in
    `.building` is thrown away). Copied back into a runs folder, `mario-rl train --resume`
    continues it; the episodes logged after the checkpoint, if any, are dropped there as
    after a kill."""
    import shutil

    run_dir, into = Path(run_dir), Path(into)
    check_keep_copy(into, run_dir.parent)
    kept, building = into / run_dir.name, into / f".{run_dir.name}.building"
    old = into / f".{run_dir.name}.old"
    put_back_kept_copies(into)
    newest = list_checkpoints(run_dir / "checkpoints")
    if not newest:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to keep a copy of")
    frames = int(_CHECKPOINT_NAME.match(newest[-1].name).group(1))
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    (building / "checkpoints").mkdir(parents=True)
    # The checkpoint first: a log copied after it may run past it (a resume trims that),
    # one copied before it could lack episodes the checkpoint counts.
    for path in sorted((run_dir / "checkpoints").iterdir()):
        if path.is_file() and re.fullmatch(rf"[A-Za-z]+_{frames}\.[a-z]+", path.name):
            shutil.copy2(path, building / "checkpoints" / path.name)
    for path in sorted(run_dir.iterdir()):
        left_out = any(path.match(pattern) for pattern in KEPT_OUT)
        if not path.is_file() or path.name.startswith(".") or left_out:
            continue
        if while_running and path.name in APPENDED_LOGS:
            text = path.read_bytes()
            (building / path.name).write_bytes(text[: text.rfind(b"\n") + 1])
        else:
            shutil.copy2(path, building / path.name)
    if kept.exists():
        kept.rename(old)
    building.rename(kept)
    shutil.rmtree(old, ignore_errors=True)
    return kept


def file_beside(checkpoint: str | Path, name: object) -> Path:
    """The file `name` (read from a checkpoint) in the checkpoint's own folder.

    A name read from a file is data: it may not climb out of that folder (`../x`, `/etc/x`).
    """
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise CheckpointError(
            f"{checkpoint}: expected a file name beside the checkpoint, got {name!r}"
        )
    return Path(checkpoint).parent / name


def replay_path(run_dir: Path, frames: int) -> Path:
    """Where a DQN run saves its replay beside the checkpoint of `frames` frames."""
    return run_dir / f"replay_{frames}.pt"


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the newest checkpoint of a run directory."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        latest = list_checkpoints(path / "checkpoints") or list_checkpoints(path)
        if latest:
            return latest[-1]
        raise CheckpointError(f"{path} holds no checkpoint yet (no checkpoints/frames_*.pt)")
    raise CheckpointError(f"{path}: no such run directory or checkpoint file")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (a file or a run directory's newest) and check its format; its
    agent config comes with renamed fields under their current names.

    Only tensors and plain data are read (`torch.load(weights_only=True)`): a file that
    needs pickle to load could run code, and is refused.
    """
    path = resolve_checkpoint(path)
    checkpoint = load_plain_data(path, device)
    if not isinstance(checkpoint, dict) or checkpoint.get("format_version") != FORMAT_VERSION:
        version = checkpoint.get("format_version") if isinstance(checkpoint, dict) else None
        raise CheckpointError(
            f"{path}: expected checkpoint format {FORMAT_VERSION}, got {version}; "
            "it was made by another version of mario-rl"
        )
    if isinstance(checkpoint.get("agent_config"), dict):
        try:
            checkpoint["agent_config"] = with_current_names(checkpoint["agent_config"])
        except ValueError as error:
            raise CheckpointError(f"{path}: agent_config: {error}") from None
    checkpoint["path"] = str(path)
    return checkpoint


def load_plain_data(path: Path, device: str | torch.device = "cpu") -> Any:
    """`torch.load` of tensors and plain data only; a one-line `CheckpointError` otherwise."""
    # torch.save writes a zip archive (before torch 1.6, a pickle, which starts with 0x80);
    # torch calls anything else a file that needs pickle, which sends users the wrong way.
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            if file.read(1) != b"\x80":
                raise CheckpointError(
                    f"{path}: not a readable checkpoint (not a file torch.save wrote, or damaged)"
                )
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is a page long; its first line names what the file asked for.
        asked = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
        raise CheckpointError(
            f"{path}: refused, it needs pickle to load, which can run code "
            f"({asked or 'not plain tensors and data'}); a file you made yourself with an "
            "older mario-rl: python scripts/convert_checkpoints.py FILE"
        ) from error
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from error


def check_compatible(checkpoint: dict[str, Any], algo: str, action_set: str, network: str) -> None:
    """Raise a one-line `CheckpointError` unless the checkpoint fits this algo / actions / net."""
    made = (checkpoint["algo"], checkpoint["action_set"], checkpoint["network"])
    if made != (algo, action_set, network):
        raise CheckpointError(
            f"checkpoint {checkpoint.get('path', '?')} was made for algo {made[0]}, action set "
            f"{made[1]} / network {made[2]}; this run uses algo {algo}, action set "
            f"{action_set} / network {network}"
        )


# -- metrics ---------------------------------------------------------------------------------


def finished_episodes(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The `info["mario_episode"]` dicts of the episodes a vector env step just ended."""
    final = info.get("final_info")
    if not final or EPISODE_STATS not in final:
        return []
    stats, mask = final[EPISODE_STATS], final["_" + EPISODE_STATS]
    # Numbers come as NumPy scalars, the level's name as a plain str (an object array).
    return [
        {key: plain_value(stats[key][i]) for key in stats if not key.startswith("_")}
        for i in np.flatnonzero(mask)
    ]


def plain_value(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else (a str) as it is."""
    return value.item() if isinstance(value, np.generic) else value


class MetricsLogger:
    """TensorBoard scalars, `episodes.csv` and `rewards.npy` for one run.

    Opened with `resume_frames`, it drops what was logged after that frame count (the
    part of a killed run its last checkpoint does not cover) and appends from there.
    """

    def __init__(self, run_dir: RunDir, resume_frames: int | None = None) -> None:
        self.run_dir = run_dir
        self.csv_path = run_dir.path / "episodes.csv"
        for stale in run_dir.path.glob(".episodes.csv.*.tmp"):  # left by a kill
            stale.unlink(missing_ok=True)
        self.rows: list[dict[str, Any]] = []
        if resume_frames is not None and self.csv_path.is_file():
            with self.csv_path.open(newline="") as file:
                self.rows = [r for r in csv.DictReader(file) if int(r["frames"]) <= resume_frames]
        self._write_all_rows()
        self.writer = SummaryWriter(str(run_dir.path), purge_step=resume_frames)
        self.returns = [float(row["return"]) for row in self.rows]
        self.best_x = max((int(row["max_x"]) for row in self.rows), default=0)
        self.flags = sum(row["flag"] in ("1", "True", True, 1) for row in self.rows)
        self.start = time.perf_counter()
        self.wall_offset = float(self.rows[-1]["wall_s"]) if self.rows else 0.0
        # A run on several levels also charts each level's episodes apart.
        config_file = run_dir.path / "config.json"
        env = run_dir.config().get("env") if config_file.is_file() else None
        self.per_level = bool((env or {}).get("levels"))

    def _write_all_rows(self) -> None:
        # Beside the old file, then renamed over it: a kill mid-write keeps the history.
        temporary = self.csv_path.with_name(f".{self.csv_path.name}.{os.getpid()}.tmp")
        with temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, EPISODE_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(temporary, self.csv_path)

    @property
    def wall_seconds(self) -> float:
        """Training wall-clock time, carried over resumes."""
        return self.wall_offset + time.perf_counter() - self.start

    @property
    def mean_return(self) -> float:
        recent = self.returns[-ROLLING_EPISODES:]
        return float(np.mean(recent)) if recent else float("nan")

    def log_episode(self, frames: int, episode: dict[str, Any]) -> None:
        """Record one finished episode (`info["mario_episode"]`) ended at run total `frames`."""
        row = {
            "frames": frames,
            "episode": len(self.rows) + 1,
            "return": round(float(episode["return"]), 4),
            "length": int(episode["length"]),
            "episode_frames": int(episode["frames"]),
            "max_x": int(episode["max_x"]),
            "flag": int(bool(episode["flag"])),
            "time_left": int(episode["time_left"]),
            "score": int(episode["score"]),
            "wall_s": round(self.wall_seconds, 2),
            "level": episode.get("level") or "",
        }
        self.rows.append(row)
        self.returns.append(row["return"])
        self.best_x = max(self.best_x, row["max_x"])
        self.flags += row["flag"]
        with self.csv_path.open("a", newline="") as file:
            csv.DictWriter(file, EPISODE_COLUMNS).writerow(row)
        self.writer.add_scalar("charts/episodic_return", row["return"], frames)
        self.writer.add_scalar("charts/x_pos", row["max_x"], frames)
        self.writer.add_scalar("charts/flag", row["flag"], frames)
        self.writer.add_scalar("charts/episodic_length", row["length"], frames)
        if self.per_level and row["level"]:
            self.writer.add_scalar(f"levels/{row['level']}/x_pos", row["max_x"], frames)
            self.writer.add_scalar(f"levels/{row['level']}/flag", row["flag"], frames)

    def summary(self, frames: int, fps: float, **extra: float) -> str:
        """One line of headline numbers, appended to `log.txt` (the blog's periodic log)."""
        numbers = "".join(f", {key} {value:.3g}" for key, value in extra.items())
        line = (
            f"episode {len(self.rows)}: frames {frames}, {fps:.0f} frames/s{numbers}, "
            f"mean return (last {ROLLING_EPISODES}) {self.mean_return:.1f}, "
            f"best x {self.best_x}, flags {self.flags}, wall {self.wall_seconds:.0f} s"
        )
        with (self.run_dir.path / "log.txt").open("a") as file:
            file.write(line + "\n")
        return line

    def log_scalars(self, frames: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, frames)

    def save(self) -> None:
        """Flush TensorBoard and write `rewards.npy`."""
        self.writer.flush()
        np.save(self.run_dir.path / "rewards.npy", np.asarray(self.returns, np.float32))

    def close(self) -> None:
        self.save()
        self.writer.close()


# -- budget and progress ---------------------------------------------------------------------


class Budget:
    """Frames and/or minutes; `spent(frames)` once either is reached. Neither: never spent,
    for a trainer that stops on its own (the CS229 agent after its `episodes`; `train`
    refuses it for any other)."""

    def __init__(
        self, frames: int | None, minutes: float | None, schedule_frames: int | None = None
    ) -> None:
        if (frames is not None and frames < 1) or (minutes is not None and minutes <= 0):
            raise ValueError(f"budget: expected positive values, got {frames=} {minutes=}")
        if schedule_frames is not None and schedule_frames < 1:
            raise ValueError(f"schedule_frames: expected a positive number, got {schedule_frames}")
        self.frames = frames
        self.minutes = minutes
        self.schedule_frames = schedule_frames
        self.start = time.perf_counter()

    def spent(self, frames: int) -> bool:
        return self.fraction(frames) >= 1.0

    def schedule(self, frames: int) -> float:
        """How far the schedules (learning-rate annealing) are, 0..1: the share of
        `schedule_frames` at `frames` when set, else of the budget (`fraction`)."""
        if self.schedule_frames is None:
            return self.fraction(frames)
        return min(1.0, frames / self.schedule_frames)

    def fraction(self, frames: int) -> float:
        """How much of the budget is used, 0..1: the larger of its frame and minute shares.

        Schedules follow it unless `schedule_frames` is set (`schedule`), so they also work
        under a minutes-only budget.
        """
        shares = [0.0]
        if self.frames is not None:
            shares.append(frames / self.frames)
        if self.minutes is not None:
            shares.append((time.perf_counter() - self.start) / 60 / self.minutes)
        return min(1.0, max(shares))


class Progress:
    """A tqdm bar counting emulator frames, with the run's headline numbers after it."""

    def __init__(self, budget: Budget, start_frames: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=budget.frames,
            initial=start_frames,
            unit="frame",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not enabled,
        )
        self.frames = start_frames
        self.start = time.perf_counter()
        self.start_frames = start_frames
        self._last_postfix = 0.0

    @property
    def fps(self) -> float:
        return (self.frames - self.start_frames) / max(time.perf_counter() - self.start, 1e-9)

    def update(self, frames: int, logger: MetricsLogger, **extra: float) -> None:
        """Advance to `frames`; the numbers after the bar refresh at most every second."""
        self.bar.update(frames - self.frames)
        self.frames = frames
        now = time.perf_counter()
        if self.bar.disable or now - self._last_postfix < POSTFIX_SECONDS:
            return
        self._last_postfix = now
        self.bar.set_postfix(
            fps=f"{self.fps:.0f}",
            ret=f"{logger.mean_return:.1f}",
            best_x=logger.best_x,
            flags=logger.flags,
            **{key: f"{value:.3g}" for key, value in extra.items()},
            refresh=False,
        )

    def write(self, line: str) -> None:
        """Print a line above the bar (nothing when the bar is off)."""
        if not self.bar.disable:
            self.bar.write(line)

    def close(self) -> None:
        self.bar.close()


# -- the trainer interface -------------------------------------------------------------------


@dataclass
class Step:
    """What one `Trainer.step` did, for the runner to log."""

    episodes: list[tuple[int, dict[str, Any]]]
    """(run frames when it ended, its `info["mario_episode"]`) for each episode that ended."""
    last: bool
    """The trainer found the budget spent: the runner checkpoints and stops."""
    scalars: dict[str, float] = dataclasses.field(default_factory=dict)
    """TensorBoard scalars at the trainer's `frames` (empty: nothing to log this step)."""
    postfix: dict[str, float] = dataclasses.field(default_factory=dict)
    """Numbers shown after the progress bar and in the `log.txt` summaries."""
    stop: int | None = None
    """A stop signal the trainer noted while it finished something that must not be cut in
    half (`mario_rl.stopping.stop_signals_deferred`): the runner logs this step, then
    stops as that signal would have (checkpoint, `KeyboardInterrupt` or `Terminated`)."""


class Trainer(Protocol):
    """One agent's training loop, cut into steps; `mario_rl.training.train` runs it.

    Built with `(run, env_config, config, device, checkpoint)`, where `checkpoint` is the
    checkpoint to resume from (already checked with `identity`) or None. It owns its envs
    and networks; the runner owns the run directory, logs, budget, checkpoint schedule,
    Ctrl-C and clean-up. A trainer may also have `init_weights(checkpoint)`: start a new
    run from that checkpoint's networks (`train(init_from=...)`).
    """

    algo: str
    env_config: Any
    """The EnvConfig the agent trains on (saved in every checkpoint)."""
    frames: int
    """Emulator frames the state in `checkpoint()` has trained on."""
    identity: ClassVar[Any]
    """`identity(env_config, config) -> (algo, action_set, network)`: what a checkpoint must
    match to be resumed by this trainer (`check_compatible`)."""

    def start(self, run_dir: RunDir, logger: MetricsLogger) -> None:
        """Called once the run directory and logs are open, before the first `step`."""
        ...

    def done(self, budget: Budget) -> bool:
        """Whether training is over before another step (the budget, or the agent's own)."""
        ...

    def step(self, budget: Budget) -> Step:
        """One unit of training (an env step, a rollout and update, an episode); its
        `last` is `done(budget)` as the step saw it."""
        ...

    def checkpoint(self, run_dir: RunDir) -> dict[str, Any]:
        """The checkpoint payload of the state at `frames` (CHECKPOINT_FIELDS, counters and
        the agent's own state); files it refers to are written first, beside it."""
        ...

    def after_checkpoint(self, run_dir: RunDir) -> None:
        """Remove side files that no kept checkpoint refers to any more."""
        ...

    def close(self) -> None: ...
