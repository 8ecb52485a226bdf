# Shared by the bench scripts (sourced): builds stackdrill, finds the PostgreSQL binaries, runs them as
# the postgres OS user when root, and prepares a work directory whose clusters are stopped on exit.
# Expects `work` to be set; sets `root`, `sd`, `pgbin`; KEEP=1 leaves the clusters running afterwards.
# SD_PROFILE=debug benches the dev build (when a release build is out of reach; the figures say which);
# SD_BIN=path benches that binary as it is (nothing built).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SD_PROFILE=${SD_PROFILE:-release}
sd=${SD_BIN:-${CARGO_TARGET_DIR:-$root/target}/$SD_PROFILE/stackdrill}
if [ -n "${SD_BIN:-}" ]; then SD_PROFILE="given ($SD_BIN)"
elif [ "$SD_PROFILE" = release ]; then (cd "$root" && cargo build --release --quiet)
else (cd "$root" && cargo build --quiet); fi
echo "stackdrill: $SD_PROFILE build, $(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet HEAD -- src || echo ' + uncommitted changes')"
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

# The runbook's restore by hand with the raw tools: copy base backup $2 into $1/data, replay WAL from archive
# $3 (to recovery_target_time $6 when given, else to the end), serve on port $4 with listen_addresses $5 ('' =
# the socket in $1 only), start, and wait until promoted (5 minutes at most).
raw_restore() {
  local d=$1 backup=$2 archive=$3 port=$4 listen=$5 target=${6:-}
  mkdir -p "$d" && chmod 700 "$d" && chown "$(id -u postgres 2>/dev/null || id -u)" "$d"
  as_pg cp -a "$backup" "$d/data"
  rm -f "$d/data/stackdrill-backup.json" "$d/data/backup_manifest"
  as_pg touch "$d/data/recovery.signal"
  {
    printf "port = '%s'\nunix_socket_directories = '%s'\nlisten_addresses = '%s'\narchive_mode = 'off'\n" "$port" "$d" "$listen"
    printf "restore_command = 'cp \"%s/%%f\" \"%%p\"'\nrecovery_target_action = 'promote'\n" "$archive"
    [ -z "$target" ] || printf "recovery_target_time = '%s'\n" "$target"
  } | as_pg tee -a "$d/data/postgresql.auto.conf" >/dev/null
  as_pg "$pgbin/pg_ctl" start -W -D "$d/data" -l "$d/server.log" >/dev/null
  local _
  for _ in $(seq 1 3000); do
    [ "$(as_pg "$pgbin/psql" -h "$d" -p "$port" -d app -XAtc 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
    sleep 0.1
  done
  echo "the restore in $d did not come up:" >&2; tail -5 "$d/server.log" >&2
  return 1
}
