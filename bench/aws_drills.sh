#!/usr/bin/env bash
# N (default 20) RDS point-in-time drills at once against the moto emulator, with the real SDK: prints the
# API calls (total, describes, per drill) and the wall time, against the baseline of one drill run alone.
# moto has no database engine: each scratch is reached through `connect` at a local PostgreSQL, so the
# figures are the orchestration's (API calls, polling, teardown), not RDS's restore time.
set -euo pipefail
work=$(cd "$(dirname "$0")" && pwd)/work/aws
source "$(dirname "$0")/lib.sh"
N=${N:-20}
cd "$root"
bash scripts/moto-venv >/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(port)
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || cleanup' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=ap-southeast-1 AWS_DEFAULT_REGION=ap-southeast-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$moto_port") 2>/dev/null && break; sleep 0.1; done

# The stand-in scratch database every drill connects to.
pg_port=$(port)
mkdir -p "$work/pg" && chown "$(id -u postgres 2>/dev/null || id -u)" "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust >/dev/null
as_pg "$pgbin/pg_ctl" start -w -D "$work/pg/data" -l "$work/pg/server.log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$work/pg -c max_connections=200" >/dev/null
as_pg "$pgbin/psql" -h "$work/pg" -p "$pg_port" -d postgres -Xqc \
  "create table ledger (at timestamptz not null default now()); insert into ledger default values"

.venv/bin/python - <<'PY'
import boto3
ec2, rds = boto3.client("ec2"), boto3.client("rds")
vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"ap-southeast-1{z}")["Subnet"]["SubnetId"]
           for i, z in ((1, "a"), (2, "b"))]
rds.create_db_subnet_group(DBSubnetGroupName="drills-isolated", DBSubnetGroupDescription="drills", SubnetIds=subnets)
rds.create_db_instance(DBInstanceIdentifier="prod-db", Engine="postgres", DBInstanceClass="db.m6g.large",
                       AllocatedStorage=100, MasterUsername="postgres", MasterUserPassword="production-secret-1",
                       StorageEncrypted=True, MultiAZ=True, BackupRetentionPeriod=7, DBSubnetGroupName="drills-isolated")
PY

mkdir -p "$work/drills"
names=()
for i in $(seq "$N"); do
  cat >"$work/drills/bench-$i.yaml" <<YAML
restore:
  aws-rds-instance:
    source-instance: prod-db
    subnet-group: drills-isolated
    security-groups: [sg-0123456789abcdef0]
    sslmode: disable
    connect: { host: 127.0.0.1, port: $pg_port }
target: latest
objectives: { rto: 10m, rpo: 1h }
verify:
  - sql: { name: answers, query: select 1, expect: { equals: "1" } }
  - freshness: { table: ledger, column: at, max-lag: 1h }
YAML
  names+=("$work/drills/bench-$i.yaml")
done

now() { date +%s.%N; }
t0=$(now); "$sd" drill run "${names[0]}" --reports "$work/one" >"$work/one.out" 2>&1 || { cat "$work/one.out"; exit 1; }; t1=$(now)
"$sd" -q drill run "${names[@]}" --concurrency "$N" --reports "$work/many" >/dev/null; t2=$(now)

python3 - "$work/one" "$work/many" "$t0" "$t1" "$t2" "$N" <<'PY'
import json, pathlib, sys
one, many, t0, t1, t2, n = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6]), int(sys.argv[6])
def calls(d):
    tot, desc, passed = 0, 0, 0
    for f in pathlib.Path(d).glob("*.json"):
        r = json.loads(f.read_text())
        passed += r["result"] == "passed"
        for p in r["phases"]:
            for op, c in p.get("api_calls", {}).items():
                tot += c
                desc += c if op.startswith("Describe") else 0
    return tot, desc, passed
a1, d1, p1 = calls(one)
an, dn, pn = calls(many)
w1, wn = t1 - t0, t2 - t1
print(f"one drill:    {w1:6.2f} s wall, {a1} API calls ({d1} describes), passed {p1}/1")
print(f"{n} at once:  {wn:6.2f} s wall, {an} API calls ({dn} describes), {an/n:.1f} calls per drill "
      f"({dn/n:.1f} describes), passed {pn}/{n}")
print(f"ratio: wall({n} at once) / wall(one) = {wn/w1:.2f}  (serial would be {n}.00); "
      f"describes per drill {dn/n:.1f} vs {d1} alone")
PY
