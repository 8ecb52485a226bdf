# Shared by the bench scripts (sourced): builds stackdrill, finds the PostgreSQL binaries, runs them as
# the postgres OS user when root, and prepares a work directory whose clusters are stopped on exit.
# Expects `work` to be set; sets `root`, `sd`, `pgbin`; KEEP=1 leaves the clusters running afterwards.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sd=$root/target/release/stackdrill
(cd "$root" && cargo build --release --quiet)
pgbin=${STACKDRILL_PG_BIN:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Stops every cluster under $work (any directory with a postmaster.pid) and removes $work.
cleanup() {
  local pid
  for pid in "$work"/*/data/postmaster.pid "$work"/*/*/data/postmaster.pid; do
    [ -f "$pid" ] && as_pg "$pgbin/pg_ctl" stop -D "$(dirname "$pid")" -m fast >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
cleanup
mkdir -p "$work" && chmod 755 "$work"
