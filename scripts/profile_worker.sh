#!/usr/bin/env bash
# Profile one worker of the notification loop under load, as ../shared/perf's profile was made:
# scripts/bench_notifications.py with two workers, py-spy sampling worker0 for PROFILE_S seconds,
# then the inclusive share by package and module (scripts/profile_summary.py).
#   scripts/profile_worker.sh [RATE] [DURATION_S] [PROFILE_S] [gil]   (the stack up: make stack)
# `gil`: sample only the thread holding the GIL, so a thread waiting for it in a C call (a
# thread-pool worker after a socket write, say) is not counted as busy there.
# py-spy comes with the dev extras; it needs ptrace rights over the worker (root, or
# kernel.yama.ptrace_scope=0).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-400}
duration_s=${2:-40}
profile_s=${3:-20}
gil=()
[ "${4:-}" = gil ] && gil=(--py-spy-gil)
out=$(mktemp)
.venv/bin/python scripts/bench_notifications.py --rate "$rate" --duration-s "$duration_s" \
    --workers 2 --py-spy-s "$profile_s" "${gil[@]}" | tee "$out"
folded=$(sed -n 's/^worker0 profile (folded stacks): //p' "$out")
rm -f "$out"
[ -n "$folded" ] || { echo "no profile was written" >&2; exit 1; }
.venv/bin/python scripts/profile_summary.py "$folded"
