#!/usr/bin/env bash
# The level campaign across sessions (README, "The level campaign"), in three commands:
#
#   bash benchmarks/campaign/campaign.sh start    # restore runs/campaign/ if lost, then start
#   bash benchmarks/campaign/campaign.sh stop     # SIGTERM (it checkpoints), then save here
#   bash benchmarks/campaign/campaign.sh status   # running or not, and the table's state line
#
# `start` runs the README's command from a detached git worktree of HEAD, so that commits
# made while it trains do not change its code, writes a `=== restart` line naming that
# commit into runs/campaign/table.log, and saves the campaign's state into this folder
# every 20 minutes while it runs (snapshot.py save), so that a machine lost mid-session
# loses at most the frames since the last check. After `stop`, commit this folder:
#   git add -A benchmarks/campaign && git commit -m "Campaign state: ..."
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
python="$repo/.venv/bin/python"
# The README's command, level order included (a test checks that the two agree).
LEVELS="1-1 1-2 4-1 1-4 3-4 2-4 4-2 1-3 2-3 8-1 8-3 2-2 4-4 8-4
        2-1 3-1 3-2 3-3 4-3 5-1 5-2 5-3 5-4 6-1 6-2 6-3 6-4 7-1 7-2 7-3 7-4 8-2"
SAVE_EVERY_S=1200

campaign_pid() {
  pgrep -o -f "mario_rl levels-table --preset ppo-levels .*--out runs/campaign/table.md"
}

case "${1:-}" in
start)
  if pid=$(campaign_pid); then
    echo "the campaign is already running (pid $pid)" >&2
    exit 1
  fi
  [ -x "$python" ] || "$repo/scripts/bootstrap.sh"
  [ -f runs/campaign/table.json ] || "$python" "$here/snapshot.py" restore
  commit="$(git rev-parse --short HEAD)"
  tree="${TMPDIR:-/tmp}/mario-rl-campaign-$commit"
  git worktree prune
  # A worktree left from another clone of the repository (its git link gone) is made again.
  if [ "$(git -C "$tree" rev-parse --short HEAD 2>/dev/null)" != "$commit" ]; then
    rm -rf "$tree"
    git worktree prune
    git worktree add -f --detach "$tree" HEAD >/dev/null
  fi
  echo "=== restart $(date -u) at commit $commit (campaign.sh start)" >> runs/campaign/table.log
  # shellcheck disable=SC2086  # LEVELS is a list of words
  PYTHONUNBUFFERED=1 PYTHONPATH="$tree/src" nohup "$python" -m mario_rl levels-table \
    --preset ppo-levels --levels $LEVELS \
    --frames 10e6 --check-every 1e6 --episodes 50 --confirm \
    --out runs/campaign/table.md --runs-dir runs/campaign/levels \
    --bundle runs/campaign/models --quiet >> runs/campaign/table.log 2>&1 &
  pid=$!
  # Its saves' output goes to snapshot.log: a save that refuses or fails says so there.
  nohup bash -c "while sleep $SAVE_EVERY_S && kill -0 $pid 2>/dev/null; do
      { date -u; nice -n 19 '$python' '$here/snapshot.py' save; } >> runs/campaign/snapshot.log 2>&1 || true
    done" > /dev/null 2>&1 &
  echo "started the campaign (pid $pid) at commit $commit; its log: runs/campaign/table.log"
  ;;
stop)
  if ! pid=$(campaign_pid); then
    echo "the campaign is not running; saving its state as it is" >&2
  else
    kill -TERM "$pid"
    for _ in $(seq 240); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "the campaign (pid $pid) did not stop within 120 s; not saving" >&2
      exit 1
    fi
    # Its 20-minute saves end with it; one in progress holds the lock, which the save
    # below waits for, so stop's own save is the last.
    pkill -f "while sleep $SAVE_EVERY_S && kill -0 $pid .*$here/snapshot.py" || true
    echo "=== stopped $(date -u) by SIGTERM (campaign.sh stop)" >> runs/campaign/table.log
  fi
  "$python" "$here/snapshot.py" save
  echo 'now commit it: git add -A benchmarks/campaign && git commit -m "Campaign state: ..."'
  ;;
status)
  if pid=$(campaign_pid); then echo "running (pid $pid)"; else echo "not running"; fi
  [ -f runs/campaign/table.md ] && tail -n 1 runs/campaign/table.md
  ;;
*)
  echo "usage: bash benchmarks/campaign/campaign.sh start|stop|status" >&2
  exit 2
  ;;
esac
