#!/bin/bash
# Usage: bench/quiet.sh COMMAND...   (pauses every running `ndogo sweep|finetune|distill|pretrain`; they
# resume when COMMAND exits)
# Run a benchmark on a quiet machine: wait until no sweep cell is timing (the bench lock), pause
# every background sweep and training run (SIGSTOP its process group), run the command, resume them whatever happens.
PGIDS=$(for p in $(pgrep -f "ndogo (sweep|finetune|distill|pretrain) "); do ps -o pgid= -p $p; done | sort -u | tr -d ' ')
resume() { for g in $PGIDS; do kill -CONT -- -$g 2>/dev/null; done; }
trap resume EXIT INT TERM
exec 9>/tmp/ndogo-bench.lock
flock 9
for g in $PGIDS; do kill -STOP -- -$g; done
flock -u 9
exec 9>&-
echo "paused sweep groups: $PGIDS ($(date +%T))" >&2
"$@"
