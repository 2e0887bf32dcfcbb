"""The `mario-rl` command line: a thin layer over the library, one module per command group.

Imports flow one way: `main` (the entry point, `mario-rl` and `python -m mario_rl`) imports
the command modules; each command module imports `args` (argument types and `UsageError`,
a leaf) and the library; nothing below imports `main` or another command module. Heavy
modules (torch, the agents) are imported only when a command runs.

- `basics`: `levels`, `actions`, `random`, `bench env`
- `train`: `train` (every agent, through `mario_rl.training`)
- `evaluate`: `eval`, `record`, `bundle`, `death-map`, `compare`
- `cs229`: `cs229-study` and the tabular agent's settings of `train --algo tabular`
- `grid`: `grid` (the tutorial's grid world)
- `play`: `play`, `watch`, `race`, `leaderboard`
- `levels_table`: `levels-table`
"""
