#!/usr/bin/env bash
# Reliability figures (issue 8): the kill -9 matrices (every phase of a local drill and of an RDS drill against
# moto, then `drill cleanup` and `report verify`), RDS drills under injected AWS faults (throttling, 500s, slow
# answers, dropped connections) at several rates against the baseline of no faults, stack apply under faults,
# a hung API call against the phase deadline, the whole-output secret scan, then every fuzz target for a bounded
# number of cases. Prints each table; exits non-zero if any property fails.
#   FAULT_RUNS (default 5) drills per fault rate; FAULT_RATES (default 0,0.1,0.3,0.5); FUZZ_CASES (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/moto-venv >/dev/null
export STACKDRILL_FAULT_RUNS=${FAULT_RUNS:-5} STACKDRILL_FAULT_RATES=${FAULT_RATES:-0,0.1,0.3,0.5}
start=$(date +%s)
cargo test --test it reliability:: -- --nocapture --test-threads 2 2>&1 \
  | grep -v '^\s*Compiling\|^\s*Finished\|^\s*Running\|^running\|^$\|^test result\|^test reliability'
echo "reliability tests: $(( $(date +%s) - start )) s"
cases=${FUZZ_CASES:-20000}
start=$(date +%s)
PROPTEST_CASES=$cases cargo test --bin stackdrill config::fuzz -- --test-threads 2 2>&1 | grep -E '^test |test result'
echo "fuzzing: 6 targets x $cases cases in $(( $(date +%s) - start )) s, no panic, every rejection a clear error"
