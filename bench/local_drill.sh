#!/usr/bin/env bash
# bench/local_drill.sh — `stackdrill drill run` against the same restore done by hand with the raw
# PostgreSQL tools, side by side on one source of >= 1 GB, alternating rounds; prints the median ratio.
#
# Both sides follow runbooks/database-pitr-restore.md: pg_verifybackup, copy the base backup, recovery
# settings (replay all archived WAL, promote), pg_ctl start, wait for promotion, one query, stop, remove.
# A second baseline skips pg_verifybackup, to show what that step costs.
#
#   ROUNDS=7 bench/local_drill.sh [--scale GB]   (the demo source at SCALE=2, padded to ~GB gigabytes, default 1,
#                                                  with PAD_ROWS rows per gigabyte; its WAL not archived while
#                                                  padding: the backup both sides restore is taken after it)
# Disk: about 3x the size (source, base backup, one restore at a time).
set -euo pipefail
SIZE_GB=1
while [ $# -gt 0 ]; do
  case $1 in
    --scale) SIZE_GB=$2; shift 2 ;;
    --scale=*) SIZE_GB=${1#--scale=}; shift ;;
    *) echo "unknown argument: $1 (use --scale GB)" >&2; exit 2 ;;
  esac
done
case $SIZE_GB in ''|*[!0-9]*) echo "--scale takes whole gigabytes (1, 5, ...)" >&2; exit 2 ;; esac
ROUNDS=${ROUNDS:-7}
SCALE=${SCALE:-2}
work=${WORK:-/tmp/sd-bench}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
echo "== stackdrill vs the runbook by hand: ~${SIZE_GB} GB source, $ROUNDS rounds; $(nproc) cores; load $(uptime | sed 's/.*load average: //')"

echo "setting up a source at scale $SCALE (stackdrill demo --keep)..."
"$sd" -q demo --keep --dir "$work/demo" --scale "$SCALE" --reports "$work/reports" >/dev/null
port=$(sed -n 's/^ *port: *//p' "$work/demo/local-demo.yaml" | head -1)
psql_src() { as_pg "$pgbin/psql" -h "$work/demo/source" -p "$port" -U postgres -d app -XAtq "$@"; }
# Pad the source past 1 GB, then take a new base backup with plain pg_basebackup (the drill picks the
# newest; this one has no stackdrill sidecar, so its times come from backup_label and the manifest).
archive_command=$(psql_src -c "show archive_command")   # the demo's: no single quote in it
psql_src -c "alter system set archive_command = '/bin/true'" -c "select pg_reload_conf()" >/dev/null
for i in $(seq 1 "$SIZE_GB"); do
  psql_src -c "create table padding_$i as select g as id, repeat(md5(g::text), ${PAD_REPEAT:-28}) as pad from generate_series(1, ${PAD_ROWS:-1000000}) g"
done
psql_src -c checkpoint -c "alter system set archive_command = '$archive_command'" -c "select pg_reload_conf()" >/dev/null
echo "source size: $(psql_src -c "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database")"
rm -rf "$work"/demo/base-backups/*
as_pg "$pgbin/pg_basebackup" -D "$work/demo/base-backups/bench-$(date -u +%Y%m%dT%H%M%SZ)" \
  -h "$work/demo/source" -p "$port" -U postgres -Fp -Xstream -cfast
first=$(sed -n 's/^START WAL LOCATION: .*(file \(.*\))$/\1/p' "$work"/demo/base-backups/bench-*/backup_label)
as_pg "$pgbin/pg_archivecleanup" "$work/demo/wal-archive" "$first"
psql_src -c "insert into accounts (email) values ('after-backup@example.com')" -c "select pg_switch_wal()" >/dev/null
sleep 2
backup=$(ls -d "$work"/demo/base-backups/bench-*/ | sort | tail -1)
backup=${backup%/}
archive=$work/demo/wal-archive
echo "base backup: $(du -sh "$backup" | cut -f1), WAL archive: $(du -sh "$archive" | cut -f1)"

cat > "$work/bench.yaml" <<YAML
name: bench
restore:
  local-postgres: { base-backups: $work/demo/base-backups, wal-archive: $archive, scratch-root: $work/scratch, database: app }
target: latest
objectives: { rto: 1h, rpo: 24h }
verify:
  - sql: { name: trivial, query: select 1, expect: { equals: "1" } }
YAML

raw() { # $1 = verify|noverify
  [ "$1" = verify ] && as_pg "$pgbin/pg_verifybackup" -q -i stackdrill-backup.json "$backup"
  raw_restore "$work/raw" "$backup" "$archive" 54398 ''
  as_pg "$pgbin/psql" -h "$work/raw" -p 54398 -d app -XAtc 'select 1' >/dev/null
  as_pg "$pgbin/pg_ctl" stop -D "$work/raw/data" -m fast >/dev/null
  rm -rf "$work/raw"
}

now() { date +%s.%N; }
declare -a t_sd t_raw t_raw_nv
run_sd() { "$sd" -q drill run "$work/bench.yaml" --reports "$work/reports" >/dev/null; }
timed() { local s e; s=$(now); "$@" || { echo "round failed: $*" >&2; return 1; }; e=$(now); echo "$e - $s" | bc; }
for i in $(seq 1 "$ROUNDS"); do
  # Rotate who goes first: each copy leaves writeback that slows whatever runs next.
  case $((i % 3)) in
    1) a=$(timed run_sd); b=$(timed raw verify); c=$(timed raw noverify) ;;
    2) b=$(timed raw verify); c=$(timed raw noverify); a=$(timed run_sd) ;;
    0) c=$(timed raw noverify); a=$(timed run_sd); b=$(timed raw verify) ;;
  esac
  t_sd+=("$a"); t_raw+=("$b"); t_raw_nv+=("$c")
  printf 'round %d (load %s): stackdrill %6.2fs   raw tools %6.2fs   raw tools without pg_verifybackup %6.2fs\n' \
    "$i" "$(uptime | sed 's/.*load average: //')" "$a" "$b" "$c"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_sd=$(median "${t_sd[@]}"); m_raw=$(median "${t_raw[@]}"); m_nv=$(median "${t_raw_nv[@]}")
echo
printf 'median: stackdrill %.2fs, raw tools %.2fs, raw tools without pg_verifybackup %.2fs\n' "$m_sd" "$m_raw" "$m_nv"
printf 'ratio stackdrill / raw tools (same procedure): %.3f   (goal <= 0.9)\n' "$(echo "$m_sd / $m_raw" | bc -l)"
printf 'ratio stackdrill / raw tools without verification: %.3f\n' "$(echo "$m_sd / $m_nv" | bc -l)"
newest=$(find "$work/reports" -name '*.json' ! -name '*.dsse.json' -newer "$work/bench.yaml" | sort | tail -1)
[ -z "$newest" ] || echo "stackdrill's last run, where its time went: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["source"]["details"]; print(", ".join(f"{k} {v}" for k, v in sorted(d.items()) if k.endswith("_seconds") or k in ("parallel", "checksums", "wal_segments_fetched")))' "$newest")"
