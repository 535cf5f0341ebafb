#!/bin/bash
# Usage: bench/quiet.sh COMMAND...   (pauses every running `ndogo sweep|finetune|distill|pretrain`; they
# resume when COMMAND exits)
# Run a benchmark on a quiet machine: wait until no sweep cell is timing (the bench lock), pause
# every background sweep and training run (SIGSTOP its process group), run the command, resume them whatever happens.
# never the group of this script or of any process above it: a COMMAND that is itself `ndogo sweep ...` (or a
# `timeout ... quiet.sh ...` or shell around it) matches the pattern too, and stopping it would stop everything for good
MINE=""
p=$$
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  MINE="$MINE $(ps -o pgid= -p "$p" | tr -d ' ')"
  p=$(ps -o ppid= -p "$p" | tr -d ' ')
done
PGIDS=$(for p in $(pgrep -f "ndogo (sweep|finetune|distill|pretrain) "); do ps -o pgid= -p $p; done | tr -d ' ' \
        | sort -u | grep -vxF -f <(tr ' ' '\n' <<< "$MINE" | grep .))
resume() { for g in $PGIDS; do kill -CONT -- -$g 2>/dev/null; done; }
trap resume EXIT INT TERM
exec 9>/tmp/ndogo-bench.lock
flock 9
for g in $PGIDS; do kill -STOP -- -$g; done
flock -u 9
exec 9>&-
echo "paused sweep groups: $PGIDS ($(date +%T))" >&2
"$@"
