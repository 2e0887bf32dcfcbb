#!/usr/bin/env bash
# The level campaign across sessions (README, "The level campaign"), in three commands:
#
#   bash benchmarks/campaign/campaign.sh start [TABLE]   # restore its runs if lost, then start
#   bash benchmarks/campaign/campaign.sh stop [TABLE]    # SIGTERM (it checkpoints), then save
#   bash benchmarks/campaign/campaign.sh status [TABLE]  # running or not, and its state line
#
# TABLE is `headline` (the default: the one recipe, ppo-levels, on all 32 levels, in
# runs/campaign/, kept in this folder), `complex` (the per-level column, ppo-levels-complex,
# in runs/campaign-complex/, kept in complex/ here) or `stall` (the trial of
# ppo-levels-stall on the levels the recipe stalls on, in runs/campaign-stall/, kept in
# stall/ here) or `deep` (the trial of ppo-levels-deep, death starts from further back, on
# 1-3, in runs/campaign-deep/, kept in deep/ here) or `explore` (the trial of
# ppo-levels-explore, an entropy floor, on 1-3, in runs/campaign-explore/, kept in explore/
# here) or `long` (the trial of ppo-levels-long, gamma 0.99, on 1-3, in runs/campaign-long/,
# kept in long/ here) or `more` (the column of more frames: ppo-levels-more trains the levels
# the headline nearly clears on from their cap checkpoints, 3M frames at most, in
# runs/campaign-more/, kept in more/ here; it needs the headline's runs, restored first) or
# `sticky` (the trial beside it: ppo-levels-more-sticky, the same start and frames trained
# under sticky actions 0.4, on 8-3 and 2-3, in runs/campaign-sticky/, kept in sticky/ here)
# or `sharp` (the trial of ppo-levels-more-sharp, the column's start and frames without the
# entropy bonus, on 8-3 and 2-3, then 2-4 and 1-2, in runs/campaign-sharp/, kept in sharp/
# here) or `simple` (the trial of ppo-levels-more-simple, the column's start and frames
# with SIMPLE_MOVEMENT's A alone and left added, on 4-2 and 1-2, in runs/campaign-simple/,
# kept in simple/ here) or `more-long` (the trial of ppo-levels-more-long, the column's start
# and frames at gamma 0.99, on 8-3, 2-3, 2-4 and 1-2, in runs/campaign-more-long/, kept in
# more-long/ here) or `hires`
# (the trial of ppo-levels-hires, 84x84 frames, from scratch on 8-3 and 2-2, in
# runs/campaign-hires/, kept in hires/ here).
# The tables share the two cores: run one at a time.
#
# `start` runs the documented command from a detached git worktree of HEAD, so that commits
# made while it trains do not change its code, writes a `=== restart` line naming that
# commit into the table's table.log, and saves the table's state into this folder every
# 20 minutes while it runs (snapshot.py save), so that a machine lost mid-session loses at
# most the frames since the last check. After `stop`, commit this folder:
#   git add -A benchmarks/campaign && git commit -m "Campaign state: ..."
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
python="$repo/.venv/bin/python"
SAVE_EVERY_S=1200

# Each table is its documented command (the headline's in README.md, the trials' in
# docs/campaign.md), level order included (a test checks that they agree).
FRAMES=10e6
EXTRA=""
TABLES="headline|complex|stall|deep|explore|long|more|sticky|sharp|simple|more-long|hires"
case "${2:-headline}" in
headline)
  PRESET=ppo-levels
  LEVELS="1-1 1-2 4-1 1-4 3-4 2-4 4-2 1-3 2-3 8-1 8-3 2-2 4-4 8-4
          2-1 3-1 3-2 3-3 4-3 5-1 5-2 5-3 5-4 6-1 6-2 6-3 6-4 7-1 7-2 7-3 7-4 8-2"
  RUNS=runs/campaign
  KEPT="$here"
  ;;
complex)
  PRESET=ppo-levels-complex
  LEVELS="4-2 1-2 4-4 8-4 1-4 2-4"
  RUNS=runs/campaign-complex
  KEPT="$here/complex"
  ;;
stall)
  PRESET=ppo-levels-stall
  LEVELS="4-2 1-2"
  RUNS=runs/campaign-stall
  KEPT="$here/stall"
  ;;
deep)
  PRESET=ppo-levels-deep
  LEVELS="1-3"
  RUNS=runs/campaign-deep
  KEPT="$here/deep"
  ;;
explore)
  PRESET=ppo-levels-explore
  LEVELS="1-3"
  RUNS=runs/campaign-explore
  KEPT="$here/explore"
  ;;
long)
  PRESET=ppo-levels-long
  LEVELS="1-3"
  RUNS=runs/campaign-long
  KEPT="$here/long"
  ;;
more)
  PRESET=ppo-levels-more
  LEVELS="8-3 2-3 2-4 1-2"
  RUNS=runs/campaign-more
  KEPT="$here/more"
  FRAMES=3e6
  EXTRA="--init-from-table runs/campaign/table.md"
  ;;
sticky)
  PRESET=ppo-levels-more-sticky
  LEVELS="8-3 2-3"
  RUNS=runs/campaign-sticky
  KEPT="$here/sticky"
  FRAMES=3e6
  EXTRA="--init-from-table runs/campaign/table.md"
  ;;
sharp)
  PRESET=ppo-levels-more-sharp
  LEVELS="8-3 2-3 2-4 1-2"
  RUNS=runs/campaign-sharp
  KEPT="$here/sharp"
  FRAMES=3e6
  EXTRA="--init-from-table runs/campaign/table.md"
  ;;
simple)
  PRESET=ppo-levels-more-simple
  LEVELS="4-2 1-2"
  RUNS=runs/campaign-simple
  KEPT="$here/simple"
  FRAMES=3e6
  EXTRA="--init-from-table runs/campaign/table.md"
  ;;
more-long)
  PRESET=ppo-levels-more-long
  LEVELS="8-3 2-3 2-4 1-2"
  RUNS=runs/campaign-more-long
  KEPT="$here/more-long"
  FRAMES=3e6
  EXTRA="--init-from-table runs/campaign/table.md"
  ;;
hires)
  PRESET=ppo-levels-hires
  LEVELS="8-3 2-2"
  RUNS=runs/campaign-hires
  KEPT="$here/hires"
  ;;
*)
  echo "unknown table ${2}: expected one of $TABLES" >&2
  exit 2
  ;;
esac

# `mario_rl` as campaign.sh runs it, `mario-rl` as the documented command is typed.
campaign_pid() {
  pgrep -o -f "mario[-_]rl levels-table --preset $PRESET .*--out $RUNS/table.md"
}

# Any campaign table's process, this one's included.
any_table_pid() {
  pgrep -o -f "mario[-_]rl levels-table --preset .*--out runs/campaign[-a-z]*/table.md"
}

save_state() {
  "$python" "$here/snapshot.py" save --campaign "$RUNS" --kept "$KEPT"
}

case "${1:-}" in
start)
  if pid=$(campaign_pid); then
    echo "the $PRESET table is already running (pid $pid)" >&2
    exit 1
  fi
  if pid=$(any_table_pid); then
    echo "another campaign table is running (pid $pid): stop it first, they share the cores" >&2
    exit 1
  fi
  [ -x "$python" ] || "$repo/scripts/bootstrap.sh"
  # The column of more frames starts from the headline's checkpoints: restored if lost.
  if [ -n "$EXTRA" ] && [ ! -f runs/campaign/table.json ] && [ -f "$here/table.json" ]; then
    "$python" "$here/snapshot.py" restore --campaign runs/campaign --kept "$here"
  fi
  # Restored when its runs are gone and a state was kept (a table's first start has none).
  if [ ! -f "$RUNS/table.json" ] && [ -f "$KEPT/table.json" ]; then
    "$python" "$here/snapshot.py" restore --campaign "$RUNS" --kept "$KEPT"
  fi
  mkdir -p "$RUNS"
  commit="$(git rev-parse --short HEAD)"
  tree="${TMPDIR:-/tmp}/mario-rl-campaign-$commit"
  git worktree prune
  # A worktree left from another clone of the repository (its git link gone) is made again.
  if [ "$(git -C "$tree" rev-parse --short HEAD 2>/dev/null)" != "$commit" ]; then
    rm -rf "$tree"
    git worktree prune
    git worktree add -f --detach "$tree" HEAD >/dev/null
  fi
  echo "=== restart $(date -u) at commit $commit (campaign.sh start)" >> "$RUNS/table.log"
  # shellcheck disable=SC2086  # LEVELS is a list of words
  PYTHONUNBUFFERED=1 PYTHONPATH="$tree/src" nohup "$python" -m mario_rl levels-table \
    --preset $PRESET --levels $LEVELS \
    --frames $FRAMES --check-every 1e6 --episodes 50 --confirm $EXTRA \
    --out $RUNS/table.md --runs-dir $RUNS/levels \
    --bundle $RUNS/models --quiet >> "$RUNS/table.log" 2>&1 &
  pid=$!
  # Its saves' output goes to snapshot.log: a save that refuses or fails says so there.
  nohup bash -c "while sleep $SAVE_EVERY_S && kill -0 $pid 2>/dev/null; do
      { date -u; nice -n 19 '$python' '$here/snapshot.py' save --campaign '$RUNS' --kept '$KEPT'; } >> '$RUNS/snapshot.log' 2>&1 || true
    done" > /dev/null 2>&1 &
  echo "started the $PRESET table (pid $pid) at commit $commit; its log: $RUNS/table.log"
  ;;
stop)
  if ! pid=$(campaign_pid); then
    echo "the $PRESET table is not running; saving its state as it is" >&2
    if other=$(any_table_pid); then
      echo "another campaign table is running (pid $other): stop it with its name" \
        "(campaign.sh stop $TABLES)" >&2
    fi
  else
    kill -TERM "$pid"
    for _ in $(seq 240); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "the $PRESET table (pid $pid) did not stop within 120 s; not saving" >&2
      exit 1
    fi
    # Its 20-minute saves end with it; one in progress holds the lock, which the save
    # below waits for, so stop's own save is the last.
    pkill -f "while sleep $SAVE_EVERY_S && kill -0 $pid .*$here/snapshot.py" || true
    echo "=== stopped $(date -u) by SIGTERM (campaign.sh stop)" >> "$RUNS/table.log"
  fi
  save_state
  echo 'now commit it: git add -A benchmarks/campaign && git commit -m "Campaign state: ..."'
  ;;
status)
  if pid=$(campaign_pid); then
    echo "running (pid $pid)"
    # The state line counts a level's frames at its checkpoints; its episodes log is live.
    episodes=$(ls -t "$RUNS"/levels/*/*/episodes.csv 2>/dev/null | head -n 1)
    if [ -n "$episodes" ]; then
      echo "training $(basename "$(dirname "$(dirname "$episodes")")"): $(tail -n 1 "$episodes" | cut -d, -f1) frames at its last episode"
    fi
  elif other=$(any_table_pid); then
    echo "not running; another campaign table is (pid $other)"
  else
    echo "not running"
  fi
  if [ -f "$RUNS/table.md" ]; then tail -n 1 "$RUNS/table.md"; fi
  ;;
*)
  echo "usage: bash benchmarks/campaign/campaign.sh start|stop|status [$TABLES]" >&2
  exit 2
  ;;
esac
