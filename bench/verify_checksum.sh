#!/usr/bin/env bash
# bench/verify_checksum.sh — comparing a 5-million-row ledger between a source and a restore of it:
#   (a) stackdrill `checksum` (its time, from the drill report's check record)
#   (b) md5(string_agg(t::text, '' order by id)) on both sides
#   (c) pg_dump --data-only -t ledger | sha256sum on both sides
#   (d) reladiff (PyPI), comparing the two databases by key
#   (e) the floor: select count(*) on both sides
# Both sides always run at the same time. Then one source row is changed after the target and
# stackdrill's detection of it is timed. Prints each time, rows/s and the ratios.
#
#   ROUNDS=3 ROWS=5000000 bench/verify_checksum.sh
set -euo pipefail
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-5000000}
work=${WORK:-/tmp/sd-bench-checksum}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

echo "setting up: demo source, a $ROWS-row ledger, a base backup, and a restore of it to T..."
"$sd" -q demo --keep --dir "$work/demo" --reports "$work/reports" >/dev/null
port=$(sed -n 's/^ *port: *//p' "$work/demo/local-demo.yaml" | head -1)
pw=$(cat "$work/demo/source.password")
src() { as_pg "$pgbin/psql" -v ON_ERROR_STOP=1 -h "$work/demo/source" -p "$port" -U postgres -d app -XAtq "$@"; }
src -c "create table ledger (id bigint, account_id bigint not null, amount numeric(18,4) not null, kind text not null,
          idempotency_key uuid not null, created_at timestamptz not null)" \
    -c "insert into ledger select g, g % 9973, ((g::bigint * 7919) % 100000) / 100.0, case when g % 3 = 0 then 'debit' else 'credit' end,
          md5(g::text)::uuid, now() - interval '2 days' + g * interval '10 ms' from generate_series(1, $ROWS) g" \
    -c "alter table ledger add primary key (id)" -c "grant select on ledger to app" -c "vacuum analyze ledger" -c checkpoint
as_pg "$pgbin/pg_basebackup" -D "$work/demo/base-backups/bench-$(date -u +%Y%m%dT%H%M%SZ)" \
  -h "$work/demo/source" -p "$port" -U postgres -Fp -Xstream -cfast
sleep 1
target=$(src -c "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
sleep 1
src -c "insert into accounts (email) values ('after-target@example.com')" -c "select pg_switch_wal()" >/dev/null
sleep 2
backup=$(ls -d "$work"/demo/base-backups/bench-*/ | tail -1)

# The persistent restore the baselines compare against: the same backup, recovered to T by hand.
rport=54397
raw_restore "$work/rst" "${backup%/}" "$work/demo/wal-archive" "$rport" 127.0.0.1 "${target%Z}+00"
echo "ledger: $(src -c "select pg_size_pretty(pg_total_relation_size('ledger'))"), target $target"

cat > "$work/checksum.yaml" <<YAML
name: bench-checksum
restore:
  local-postgres: { base-backups: $work/demo/base-backups, wal-archive: $work/demo/wal-archive, scratch-root: $work/scratch, database: app }
source: { host: 127.0.0.1, port: $port, user: app, dbname: app, password-file: $work/demo/source.password }
target: { at: $target }
objectives: { rto: 1h, rpo: 24h }
verify:
  - checksum: { table: ledger, key: id, until-column: created_at }
YAML

# A drill restores to T and runs the checksum; its report says how long the check itself took.
sd_check() {
  "$sd" -q drill run "$work/checksum.yaml" --reports "$work/reports" >/dev/null || true
  python3 - "$work/reports" <<'PY'
import glob, json, sys
r = json.load(open(sorted(glob.glob(sys.argv[1] + "/*bench-checksum*.json"))[-1]))
c = r["checks"][0]
print(f'{c["seconds"]:.3f} {c["status"]} {c["detail"][:90]!r}', file=sys.stderr)
print(f'{c["seconds"]:.3f}')
PY
}
both() { # run "$1" against the source and "$2" against the restore at once
  local s e; s=$(date +%s.%N); bash -c "$1" >/dev/null & bash -c "$2" >/dev/null; wait; e=$(date +%s.%N); echo "$e - $s" | bc
}
q_src="$(printf '%q ' as_pg "$pgbin/psql" -h "$work/demo/source" -p "$port" -U postgres -d app -XAtq)"
q_rst="$(printf '%q ' as_pg "$pgbin/psql" -h "$work/rst" -p "$rport" -U postgres -d app -XAtq)"
export -f as_pg
md5_sql="select md5(string_agg(t::text, '' order by id)) from ledger t where created_at <= '$target'"
dump() { printf '%q ' as_pg "$pgbin/pg_dump" -h "$1" -p "$2" -U postgres -d app --data-only -t ledger; }

venv=$work/venv
python3 -m venv "$venv" && "$venv/bin/pip" -q install reladiff psycopg2-binary >/dev/null
reladiff_cmd="$venv/bin/reladiff postgresql://app:$pw@127.0.0.1:$port/app ledger postgresql://app:$pw@127.0.0.1:$rport/app ledger -k id -c '%' -w \"created_at <= '$target'\""

declare -a A B C D E
for i in $(seq 1 "$ROUNDS"); do
  A+=("$(sd_check)")
  B+=("$(both "$q_src -c \"$md5_sql\"" "$q_rst -c \"$md5_sql\"")")
  C+=("$(both "$(dump "$work/demo/source" "$port") | sha256sum" "$(dump "$work/rst" "$rport") | sha256sum")")
  s=$(date +%s.%N); eval "$reladiff_cmd" >"$work/reladiff.out" 2>&1 || { echo "reladiff failed:"; tail -3 "$work/reladiff.out"; }
  e=$(date +%s.%N); D+=("$(echo "$e - $s" | bc)")
  E+=("$(both "$q_src -c 'select count(*) from ledger'" "$q_rst -c 'select count(*) from ledger'")")
  printf 'round %d: (a) stackdrill %6.2fs  (b) md5(string_agg) %6.2fs  (c) pg_dump|sha256sum %6.2fs  (d) reladiff %6.2fs  (e) count(*) %6.2fs\n' \
    "$i" "${A[-1]}" "${B[-1]}" "${C[-1]}" "${D[-1]}" "${E[-1]}"
done

# One immutable ledger row changed on the source after the target: the restore must disagree, by key.
src -c "update ledger set amount = amount + 0.01 where id = $((ROWS / 2))"
declare -a F
for i in $(seq 1 "$ROUNDS"); do F+=("$(sd_check)"); done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
a=$(median "${A[@]}"); b=$(median "${B[@]}"); c=$(median "${C[@]}"); d=$(median "${D[@]}"); e=$(median "${E[@]}"); f=$(median "${F[@]}")
rate() { echo "$ROWS / $1" | bc; }
echo
printf '%-34s %8s %14s\n' "median of $ROUNDS ($ROWS rows)" seconds rows/s
printf '%-34s %8.2f %14s\n' "(a) stackdrill checksum" "$a" "$(rate "$a")"
printf '%-34s %8.2f %14s\n' "(b) md5(string_agg) both sides" "$b" "$(rate "$b")"
printf '%-34s %8.2f %14s\n' "(c) pg_dump | sha256sum both sides" "$c" "$(rate "$c")"
printf '%-34s %8.2f %14s\n' "(d) reladiff" "$d" "$(rate "$d")"
printf '%-34s %8.2f %14s\n' "(e) count(*) both sides (floor)" "$e" "$(rate "$e")"
printf '%-34s %8.2f %14s\n' "(a) with one changed row" "$f" "$(rate "$f")"
echo
printf 'reladiff / stackdrill   %6.2fx  (goal >= 3)\n' "$(echo "$d / $a" | bc -l)"
printf 'md5 / stackdrill        %6.2fx  (goal >= 5)\n' "$(echo "$b / $a" | bc -l)"
printf 'pg_dump / stackdrill    %6.2fx  (goal >= 5)\n' "$(echo "$c / $a" | bc -l)"
printf 'stackdrill / count(*)   %6.2fx  (goal <= 2)\n' "$(echo "$a / $e" | bc -l)"
printf 'changed row / clean     %6.2fx\n' "$(echo "$f / $a" | bc -l)"
