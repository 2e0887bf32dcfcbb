"""`mario-rl grid`: the PyTorch tutorial's grid world, learned by (double) Q-learning.

Trains, prints the learned greedy policy as a table of arrows and the greedy path from the
start, and saves the normalised rolling-average reward plot (PNG) and the Q-table (.npz).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mario_rl.cli.args import non_negative_int
from mario_rl.outputs import writable_folder

if TYPE_CHECKING:
    from mario_rl.agents.tabular import QTable
    from mario_rl.env.gridworld import GridWorldEnv

DEFAULT_OUT = Path("runs/grid")
SUMMARY_EPISODES = 100
"""The last episodes whose mean return is printed."""

console = Console(width=max(Console().width, 100))


def policy_table(env: GridWorldEnv, table: QTable) -> Table:
    """The greedy move of every cell as an arrow; start green, end red, '·' never visited."""
    from mario_rl.agents.tabular import greedy_action
    from mario_rl.env.gridworld import ARROWS

    grid = Table(show_header=False, show_lines=True)
    for _ in range(env.size):
        grid.add_column(justify="center")
    for row in range(env.size):
        cells = []
        for col in range(env.size):
            cell = env.cell(row, col)
            if cell == env.end:
                cells.append("[bold red]end[/]")
            elif cell not in table:
                cells.append("·")
            else:
                arrow = ARROWS[greedy_action(table.q(cell))]
                cells.append(f"[bold green]{arrow}[/]" if cell == env.start else arrow)
        grid.add_row(*cells)
    return grid


def cmd_grid(args: argparse.Namespace) -> None:
    from mario_rl.agents.tabular import (
        TabularConfig,
        play_episode,
        save_reward_plot,
        train_grid_world,
    )
    from mario_rl.env.gridworld import ARROWS, GridWorldEnv

    writable_folder(args.out)
    config = TabularConfig(algo=args.algo)
    env = GridWorldEnv(size=args.size)
    agent, returns = train_grid_world(
        env, config, args.episodes, seed=args.seed, progress=not args.quiet
    )
    size = f"{env.size}x{env.size}"
    name = f"grid world {size}, {config.algo}, {args.episodes} episodes, seed {args.seed}"
    console.print(f"{name}: the greedy policy")
    console.print(policy_table(env, agent.table))
    console.print("start top-left (green), end bottom-right; · = never visited")

    path = play_episode(env, agent, epsilon=0.0, learn=False)
    moves = " ".join(ARROWS[action] for action in path.actions)
    ending = "reaches the end" if path.terminated else "does not reach the end"
    console.print(
        f"greedy path from the start: {moves} ({len(path.actions)} moves, {ending}, "
        f"return {path.total_reward:g}; best possible {env.best_return:g})"
    )
    last = returns[-min(len(returns), SUMMARY_EPISODES) :]
    console.print(
        f"training: mean return of the last {len(last)} episodes {last.mean():.2f} "
        f"(epsilon {config.epsilon})"
    )
    stem = f"grid{env.size}-{config.algo}-seed{args.seed}"
    plot = save_reward_plot(returns, args.out / f"{stem}.png", name)
    console.print(f"reward plot: {plot}")
    console.print(f"Q-table: {agent.table.save(args.out / f'{stem}.npz')}")


def add_grid_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `mario-rl grid` on the `mario-rl` command's subparsers."""
    grid = subparsers.add_parser(
        "grid",
        help="learn the PyTorch tutorial's grid world with tabular (double) Q-learning",
        description="Tabular Q-learning ('q') or the tutorial's double Q-learning with a "
        "target table ('double-q') on an N x N grid world: start top-left, end bottom-right, "
        "8 moves, reward -1 per move and 0 on reaching the end. Prints the greedy policy as "
        "arrows and saves the normalised rolling-average reward plot and the Q-table.",
    )
    grid.add_argument("--algo", default="q", metavar="{q,double-q}", help="algorithm (default q)")
    grid.add_argument(
        "--episodes", type=non_negative_int, default=1000, help="episodes (default 1000)"
    )
    grid.add_argument("--size", type=non_negative_int, default=3, help="grid side (default 3)")
    grid.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    grid.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}/)"
    )
    grid.add_argument("--quiet", action="store_true", help="no progress bar")
    grid.set_defaults(func=cmd_grid)
