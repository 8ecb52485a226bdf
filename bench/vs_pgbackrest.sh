#!/usr/bin/env bash
# bench/vs_pgbackrest.sh — `stackdrill drill run` against pgBackRest's restore of the same source to the
# same instant T, side by side, alternating rounds; prints each time, the medians, the ratio, and both
# tools' rates against the disk's own sequential read.
#
#   bench/vs_pgbackrest.sh --scale 1     (a ~1 GB source; --scale 5 for ~5 GB)    ROUNDS=5 PARALLEL=2
#
# Setup (not timed): the demo source (`stackdrill demo --keep`), padded to the size asked for (its WAL not
# archived while padding: no drill replays it), then on the same machine
#   - a pgBackRest stanza (repo on this disk, compress-type=none like a plain base backup,
#     process-max=PARALLEL, archive-async so archive-get fetches ahead), archive-push from the source's
#     archive_command, and a full backup;
#   - a plain `pg_basebackup` (with its backup_manifest) for stackdrill; the demo's older backups removed.
# Then a row is written, the source's clock read as T, another row written, and WAL switched and archived.
# Each round, in alternating order:
#   pgBackRest: `pgbackrest restore --type=time --target=T --target-action=promote` into a fresh
#     directory (pgBackRest checks each file's checksum as it restores), own port and socket, no TCP, no
#     archiving; pg_ctl start; wait until promoted; `select 1`; stop; remove.
#   stackdrill: `stackdrill drill run` of a local-postgres drill to `{ at: T }` with `parallel: PARALLEL`
#     (the base backup copied and checked against its manifest in one read), one trivial `sql` check; the
#     run includes its own teardown.
# Disk: about 4x the size while set up (source, pgBackRest repo, base backup, one restore at a time).
set -euo pipefail
SIZE_GB=1
while [ $# -gt 0 ]; do
  case $1 in
    --scale) SIZE_GB=$2; shift 2 ;;
    --scale=*) SIZE_GB=${1#--scale=}; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (use --scale GB)" >&2; exit 2 ;;
  esac
done
case $SIZE_GB in ''|*[!0-9]*) echo "--scale takes whole gigabytes (1, 5, ...)" >&2; exit 2 ;; esac
ROUNDS=${ROUNDS:-5}
PARALLEL=${PARALLEL:-$(nproc)}
work=${WORK:-/tmp/sd-bench-pgbr}
command -v pgbackrest >/dev/null || { echo "pgbackrest is not installed (scripts/install-test-deps installs it)" >&2; exit 2; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
pgbr_version=$(pgbackrest version)

echo "== stackdrill vs pgBackRest: ~${SIZE_GB} GB source, $ROUNDS alternating rounds, $PARALLEL workers each side"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM; $pgbr_version; PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}')"
echo "load at start: $(uptime)"
echo "setting up the demo source (stackdrill demo --keep)..."
"$sd" -q demo --keep --dir "$work/demo" --scale 2 --reports "$work/reports" >/dev/null
port=$(sed -n 's/^ *port: *//p' "$work/demo/local-demo.yaml" | head -1)
src=$work/demo/source
psql_src() { as_pg "$pgbin/psql" -h "$src" -p "$port" -U postgres -d app -XAtq "$@"; }
archive=$work/demo/wal-archive

# Pad without archiving the padding's WAL (nothing replays it: every backup used below starts after it).
echo "padding the source to ~${SIZE_GB} GB..."
psql_src -c "alter system set archive_command = '/bin/true'" -c "select pg_reload_conf()" >/dev/null
for i in $(seq 1 "$SIZE_GB"); do
  psql_src -c "create table padding_$i as select g as id, repeat(md5(g::text), 28) as pad from generate_series(1, ${PAD_ROWS_PER_GB:-1000000}) g"
done
psql_src -c checkpoint
echo "source size: $(psql_src -c "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database")"

# pgBackRest: its own config, repo, spool, logs and locks under $work, all the postgres user's.
pgbr_dir=$work/pgbr
mkdir -p "$pgbr_dir"/{repo,spool,log,lock}
cat > "$pgbr_dir/pgbackrest.conf" <<CONF
[global]
repo1-path=$pgbr_dir/repo
repo1-retention-full=1
compress-type=none
process-max=$PARALLEL
archive-async=y
spool-path=$pgbr_dir/spool
log-path=$pgbr_dir/log
lock-path=$pgbr_dir/lock
log-level-console=warn
log-level-file=info
start-fast=y

[bench]
pg1-path=$src/data
pg1-socket-path=$src
pg1-port=$port
pg1-user=postgres
CONF
chown -R postgres "$pgbr_dir"
pgbr() { as_pg pgbackrest --config="$pgbr_dir/pgbackrest.conf" --stanza=bench "$@"; }
# From now on every segment goes to both archives: stackdrill's directory and pgBackRest's repo.
psql_src -c "alter system set archive_command = 'cp %p $archive/%f && pgbackrest --config=$pgbr_dir/pgbackrest.conf --stanza=bench archive-push %p'" \
  -c "select pg_reload_conf()" >/dev/null
echo "pgBackRest: stanza-create, full backup (process-max $PARALLEL)..."
pgbr stanza-create
pgbr backup --type=full
echo "stackdrill: pg_basebackup (plain, with backup_manifest)..."
rm -rf "$work"/demo/base-backups/*
backup=$work/demo/base-backups/bench-$(date -u +%Y%m%dT%H%M%SZ)
as_pg "$pgbin/pg_basebackup" -D "$backup" -h "$src" -p "$port" -U postgres -Fp -Xstream -cfast
# The padding's WAL never reached the archive; drop what is older than this backup's start.
as_pg "$pgbin/pg_archivecleanup" "$archive" "$(sed -n 's/^START WAL LOCATION: .*(file \(.*\))$/\1/p' "$backup/backup_label")"

# T: between two rows, after both backups; archived on both sides before any round starts.
psql_src -c "insert into accounts (email) values ('before-t@example.com')" >/dev/null
sleep 1
T=$(psql_src -c "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
T_pgbr="$(echo "$T" | sed 's/T/ /; s/Z$/+00/')"   # pgBackRest's format for the same instant
sleep 1
psql_src -c "insert into accounts (email) values ('after-t@example.com')" >/dev/null
closed=$(psql_src -c "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 600); do
  [ "$(psql_src -c "select coalesce(last_archived_wal, '') >= '$closed' from pg_stat_archiver")" = t ] && break
  sleep 0.2
done
[ "$(psql_src -c "select coalesce(last_archived_wal, '') >= '$closed' from pg_stat_archiver")" = t ] ||
  { echo "segment $closed was not archived" >&2; exit 1; }
backup_bytes=$(du -sb "$backup" | cut -f1)
echo "T = $T"
echo "base backup: $(du -sh "$backup" | cut -f1) ($backup_bytes bytes); pgBackRest repo: $(du -sh "$pgbr_dir/repo" | cut -f1); WAL archive: $(du -sh "$archive" | cut -f1)"

# The disk's own sequential read: the base backup's largest file with O_DIRECT (no page cache, nothing
# dropped); if O_DIRECT is refused, a cached read (stated).
largest=$(find "$backup" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
disk_line=$(dd if="$largest" of=/dev/null bs=4M iflag=direct 2>&1 | tail -1) && disk_how="O_DIRECT read of $(basename "$largest") ($(du -h "$largest" | cut -f1)), page cache bypassed" ||
  { disk_line=$(dd if="$largest" of=/dev/null bs=4M 2>&1 | tail -1); disk_how="cached read (O_DIRECT refused): an upper bound, not the disk"; }
disk_bytes=$(echo "$disk_line" | awk '{print $1}')
disk_secs=$(echo "$disk_line" | sed -n 's/.* copied, \([0-9.]*\) s,.*/\1/p')
disk_gbs=$(echo "$disk_bytes / $disk_secs / 1000000000" | bc -l)
printf 'disk sequential read: %.2f GB/s (%s)\n' "$disk_gbs" "$disk_how"

cat > "$work/bench.yaml" <<YAML
name: bench-vs-pgbackrest
restore:
  local-postgres: { base-backups: $work/demo/base-backups, wal-archive: $archive, scratch-root: $work/scratch, database: app, parallel: $PARALLEL }
target: { at: $T }
objectives: { rto: 1h, rpo: 24h }
verify:
  - sql: { name: trivial, query: select 1, expect: { equals: "1" } }
YAML

run_sd() {
  "$sd" -q drill run "$work/bench.yaml" --reports "$work/sd-reports" >/dev/null
}
run_pgbr() {
  local d=$work/pgbr-restore p=54399
  rm -rf "$d"; mkdir -p "$d/data"; chmod 700 "$d" "$d/data"; chown -R postgres "$d"
  pgbr restore --pg1-path="$d/data" --type=time --target="$T_pgbr" --target-action=promote
  {
    printf "port = '%s'\nunix_socket_directories = '%s'\nlisten_addresses = ''\narchive_mode = 'off'\n" "$p" "$d"
  } | as_pg tee -a "$d/data/postgresql.auto.conf" >/dev/null
  as_pg "$pgbin/pg_ctl" start -W -D "$d/data" -l "$d/server.log" >/dev/null
  local up=
  for n in $(seq 1 3000); do
    [ "$(as_pg "$pgbin/psql" -h "$d" -p "$p" -d app -XAtc 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && { up=1; break; }
    [ "$n" -lt 30 ] || as_pg "$pgbin/pg_ctl" status -D "$d/data" >/dev/null 2>&1 || break
    sleep 0.1
  done
  [ -n "$up" ] || { echo "pgBackRest's restore did not come up:" >&2; grep -v 'starting up' "$d/server.log" | tail -8 >&2; return 1; }
  [ "$(as_pg "$pgbin/psql" -h "$d" -p "$p" -d app -XAtc "select count(*) from accounts where email = 'after-t@example.com'")" = 0 ] ||
    { echo "pgBackRest's restore went past T" >&2; return 1; }
  as_pg "$pgbin/pg_ctl" stop -D "$d/data" -m fast >/dev/null
  rm -rf "$d"
}
now() { date +%s.%N; }
timed() { local s e; s=$(now); "$@" || { echo "round failed: $*" >&2; return 1; }; e=$(now); echo "$e - $s" | bc; }

# A first stackdrill run to check the drill passes (not timed), and to show where its time goes.
run_sd
declare -a t_sd t_br
for i in $(seq 1 "$ROUNDS"); do
  load=$(uptime | sed 's/.*load average: //')
  if [ $((i % 2)) = 1 ]; then a=$(timed run_sd); b=$(timed run_pgbr); else b=$(timed run_pgbr); a=$(timed run_sd); fi
  t_sd+=("$a"); t_br+=("$b")
  printf 'round %d (%s first; load %s): stackdrill %7.2fs   pgBackRest %7.2fs\n' "$i" \
    "$([ $((i % 2)) = 1 ] && echo stackdrill || echo pgBackRest)" "$load" "$a" "$b"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_sd=$(median "${t_sd[@]}"); m_br=$(median "${t_br[@]}")
gb=$(echo "$backup_bytes / 1000000000" | bc -l)
echo
printf 'size: base backup %.2f GB; %d rounds; %d workers each side (stackdrill parallel, pgBackRest process-max)\n' "$gb" "$ROUNDS" "$PARALLEL"
printf 'median: stackdrill %.2fs (%.2f GB/s), pgBackRest %.2fs (%.2f GB/s); disk sequential read %.2f GB/s\n' \
  "$m_sd" "$(echo "$gb / $m_sd" | bc -l)" "$m_br" "$(echo "$gb / $m_br" | bc -l)" "$disk_gbs"
printf 'ratio stackdrill / pgBackRest: %.3f   (goal <= 1.0)\n' "$(echo "$m_sd / $m_br" | bc -l)"
newest=$(find "$work/sd-reports" -name '*.json' ! -name '*.dsse.json' | sort | tail -1)
[ -z "$newest" ] ||
  echo "stackdrill's last run, where its time went: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["source"]["details"]; print(", ".join(f"{k} {v}" for k, v in sorted(d.items()) if k.endswith("_seconds") or k in ("parallel", "checksums", "wal_segments_fetched")))' "$newest")"
echo "load at end: $(uptime)"
