#!/usr/bin/env bash
# bench/local_drill.sh — `stackdrill drill run` against the same restore done by hand with the raw
# PostgreSQL tools, side by side on one source of >= 1 GB, alternating rounds; prints the median ratio.
#
# Both sides follow runbooks/database-pitr-restore.md: pg_verifybackup, copy the base backup, recovery
# settings (replay all archived WAL, promote), pg_ctl start, wait for promotion, one query, stop, remove.
# A second baseline skips pg_verifybackup, to show what that step costs.
#
#   ROUNDS=7 bench/local_drill.sh      (the demo source at SCALE=2, padded past 1 GB with PAD_ROWS rows)
set -euo pipefail
ROUNDS=${ROUNDS:-7}
SCALE=${SCALE:-2}
work=${WORK:-/tmp/sd-bench}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

echo "setting up a source at scale $SCALE (stackdrill demo --keep)..."
"$sd" -q demo --keep --dir "$work/demo" --scale "$SCALE" --reports "$work/reports" >/dev/null
port=$(sed -n 's/^ *port: *//p' "$work/demo/local-demo.yaml" | head -1)
psql_src() { as_pg "$pgbin/psql" -h "$work/demo/source" -p "$port" -U postgres -d app -XAtq "$@"; }
# Pad the source past 1 GB, then take a new base backup with plain pg_basebackup (the drill picks the
# newest; this one has no stackdrill sidecar, so its times come from backup_label and the manifest).
psql_src -c "create table padding as select g as id, repeat(md5(g::text), ${PAD_REPEAT:-28}) as pad from generate_series(1, ${PAD_ROWS:-1000000}) g" -c checkpoint
echo "source size: $(psql_src -c "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database")"
as_pg "$pgbin/pg_basebackup" -D "$work/demo/base-backups/bench-$(date -u +%Y%m%dT%H%M%SZ)" \
  -h "$work/demo/source" -p "$port" -U postgres -Fp -Xstream -cfast
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
timed() { local s e; s=$(now); "$@"; e=$(now); echo "$e - $s" | bc; }
for i in $(seq 1 "$ROUNDS"); do
  # Rotate who goes first: each copy leaves writeback that slows whatever runs next.
  case $((i % 3)) in
    1) a=$(timed run_sd); b=$(timed raw verify); c=$(timed raw noverify) ;;
    2) b=$(timed raw verify); c=$(timed raw noverify); a=$(timed run_sd) ;;
    0) c=$(timed raw noverify); a=$(timed run_sd); b=$(timed raw verify) ;;
  esac
  t_sd+=("$a"); t_raw+=("$b"); t_raw_nv+=("$c")
  printf 'round %d: stackdrill %6.2fs   raw tools %6.2fs   raw tools without pg_verifybackup %6.2fs\n' "$i" "$a" "$b" "$c"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_sd=$(median "${t_sd[@]}"); m_raw=$(median "${t_raw[@]}"); m_nv=$(median "${t_raw_nv[@]}")
echo
printf 'median: stackdrill %.2fs, raw tools %.2fs, raw tools without pg_verifybackup %.2fs\n' "$m_sd" "$m_raw" "$m_nv"
printf 'ratio stackdrill / raw tools (same procedure): %.3f   (goal <= 1.05)\n' "$(echo "$m_sd / $m_raw" | bc -l)"
printf 'ratio stackdrill / raw tools without verification: %.3f\n' "$(echo "$m_sd / $m_nv" | bc -l)"
