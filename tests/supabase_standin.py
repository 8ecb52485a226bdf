#!/usr/bin/env python3
"""A stand-in for the Supabase Management API endpoints a `supabase-branch` drill calls, answering as the
OpenAPI document the Supabase CLI publishes specifies them (supabase/cli, packages/api/src/generated/openapi.json,
info.version "1.0.0", at commit 1d1e7191268e068fe9cb6aba524d1c619a9c727b of 2026-06-01):

  GET    /v1/projects/{ref}                    v1-get-project        (region, status, ...; a branch's too)
  GET    /v1/projects/{ref}/database/backups   v1-list-all-backups   (region, pitr_enabled, backups, ...)
  POST   /v1/projects/{ref}/branches           v1-create-a-branch    (201, a BranchResponse: project_ref, with_data...)
  GET    /v1/projects/{ref}/branches           v1-list-all-branches
  GET    /v1/branches/{branch_id_or_ref}       v1-get-a-branch-config (status, db_host, db_port, db_user, db_pass)
  DELETE /v1/branches/{branch_id_or_ref}       v1-delete-a-branch    ({"message": "ok"})
  GET    /v1/projects/{ref}/actions            v1-list-action-runs   (a branch's runs: steps clone, migrate, ...)
  GET    /v1/projects/{ref}/config/database/pooler  v1-get-supavisor-config (the session pooler)
  GET    /v1/projects                          v1-list-all-projects  (the source and every restored project)
  DELETE /v1/projects/{ref}                    v1-delete-a-project   ({"id", "ref", "name"}; a restored one only)

The dashboard's "Restore to a new project" (no API has it) is POST /_dashboard/pitr-to-new-project
{"name", "target"}: it checks the target is inside the PITR window and creates a project of that name
(COMING_UP for --healthy-after GETs, then ACTIVE_HEALTHY) whose database is the one given on the command
line — the demo's PostgreSQL, which holds the state at the target when nothing was written since.

A 429 carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (seconds until the reset), and
no Retry-After (the document does not have it). A branch is addressed by its project_ref (20 lowercase
letters) or its deprecated uuid; its database status walks COMING_UP to --final-status, its action run's
clone step RUNNING to --clone-status.

Every other path (the in-place restore endpoints included) answers 500 and is logged, so a test can assert
it was never called. The branch database is a real local PostgreSQL given on the command line (the test's
demo source). Every request is logged as a JSON line to --log. Prints "PORT <n>" once listening.
"""
import argparse
import datetime
import json
import random
import re
import string
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--token", required=True)
p.add_argument("--ref", required=True)
p.add_argument("--region", default="ap-southeast-1")
p.add_argument("--db-host", default="127.0.0.1")
p.add_argument("--db-port", type=int, required=True)
p.add_argument("--db-user", default="postgres")
p.add_argument("--db-pass-file")
p.add_argument("--healthy-after", type=int, default=2, help="GETs of a branch before it is ACTIVE_HEALTHY; -1: never")
p.add_argument("--rate-limit", type=int, default=0, help="answer the first N requests 429 (X-RateLimit-Reset)")
p.add_argument("--rate-limit-reset", default="1", help="X-RateLimit-Reset of those 429s (seconds until the reset)")
p.add_argument("--final-status", default="ACTIVE_HEALTHY", help="the branch database's status after --healthy-after GETs")
p.add_argument("--clone-status", default="EXITED", help="the clone step's status after --healthy-after GETs")
p.add_argument("--without-data", action="store_true", help="create branches with_data: false whatever is asked")
p.add_argument("--branch-region", help="the region a branch is created in (default: the one asked for)")
p.add_argument("--pooler-user", help="the pooler's db_user (default: --db-user)")
p.add_argument("--restore-region", help="the region the dashboard puts a restored project in (default --region)")
p.add_argument("--project", action="append", default=[], help="an existing project: NAME,REF,AGE_HOURS")
p.add_argument("--branch", action="append", default=[], help="an existing branch: NAME,AGE_HOURS,PERSISTENT")
p.add_argument("--pitr", default="true", help="pitr_enabled (and walg_enabled) in the backups answer")
p.add_argument("--walg", default="true", help="walg_enabled in the backups answer")
p.add_argument("--backup-age-hours", type=float, default=3.0, help="age of the newest backup")
p.add_argument("--backup-status", default="COMPLETED", help="status of the newest backup")
p.add_argument("--pitr-lag-seconds", type=float, default=60.0, help="how far the window's latest point trails now")
p.add_argument("--pitr-window-days", type=float, default=7.0, help="how far back the window's earliest point is")
p.add_argument("--log", required=True)
args = p.parse_args()

lock = threading.Lock()
now = lambda: datetime.datetime.now(datetime.timezone.utc)
iso = lambda t: t.isoformat().replace("+00:00", "Z")
branches = {}  # by project_ref
projects = {}  # restored (and --project) projects by ref: name, region, created_at, polls, target
regions = {}
polls = {}
requests_seen = [0]


def new_ref():
    return "".join(random.choice(string.ascii_lowercase) for _ in range(20))


def new_branch(name, created, persistent, region=None):
    bid = new_ref()
    uid = str(uuid.uuid4())
    regions[bid] = args.branch_region or region or args.region
    branches[bid] = {
        "id": uid,
        "name": name,
        "project_ref": bid,
        "parent_project_ref": args.ref,
        "is_default": False,
        "persistent": persistent,
        "status": "CREATING_PROJECT",
        "git_branch": "",
        "created_at": iso(created),
        "updated_at": iso(created),
        "with_data": True,
        "preview_project_status": "COMING_UP",
    }
    polls[bid] = 0
    return branches[bid]


for spec in args.project:
    pname, pref, age = spec.split(",")
    projects[pref] = {"name": pname, "region": args.region, "polls": 0, "target": None,
                      "created_at": iso(now() - datetime.timedelta(hours=float(age)))}

for spec in args.branch:
    name, age, persistent = spec.split(",")
    new_branch(name, now() - datetime.timedelta(hours=float(age)), persistent == "true")


def backups_answer():
    """V1BackupsResponse: region, walg_enabled, pitr_enabled, backups (id, is_physical_backup, status,
    inserted_at), physical_backup_data (the PITR window's ends in Unix seconds; {} without PITR)."""
    pitr = args.pitr == "true"
    newest = now() - datetime.timedelta(hours=args.backup_age_hours)
    backups = [{"id": 100 + i, "is_physical_backup": pitr, "status": "COMPLETED" if i else args.backup_status,
                "inserted_at": iso(newest - datetime.timedelta(days=i))} for i in range(3)]
    physical = {}
    if pitr:
        physical = {"earliest_physical_backup_date_unix": int((now() - datetime.timedelta(days=args.pitr_window_days)).timestamp()),
                    "latest_physical_backup_date_unix": int((now() - datetime.timedelta(seconds=args.pitr_lag_seconds)).timestamp())}
    return {"region": args.region, "walg_enabled": args.walg == "true", "pitr_enabled": pitr, "backups": backups,
            "physical_backup_data": physical}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return status

    def handle_any(self, method):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with lock:
            requests_seen[0] += 1
            status = self.route(method, body)
            with open(args.log, "a") as f:
                f.write(json.dumps({"t": time.time(), "method": method, "path": self.path, "status": status,
                                    "body": body}) + "\n")

    def route(self, method, body):
        if self.headers.get("authorization") != f"Bearer {args.token}":
            return self.answer(401, {"message": "Unauthorized"})
        if requests_seen[0] <= args.rate_limit:
            return self.answer(429, {"message": "Rate limit exceeded"},
                               [("x-ratelimit-limit", "120"), ("x-ratelimit-remaining", "0"),
                                ("x-ratelimit-reset", args.rate_limit_reset)])
        path = self.path.split("?")[0]
        if method == "POST" and path == "/_dashboard/pitr-to-new-project":
            return self.dashboard(body or {})
        if method == "GET" and path == "/v1/projects":
            return self.answer(200, [self.source_project()] + [self.project_answer(r) for r in projects])
        ref = re.fullmatch(r"/v1/projects/([^/]+)(/.*)?", path)
        if ref and ref.group(1) in projects:
            return self.restored_project(method, ref.group(1), ref.group(2) or "")
        if ref and ref.group(1) != args.ref and ref.group(1) not in branches:
            return self.answer(404, {"message": "Project not found"})
        if ref and ref.group(1) in branches:
            return self.branch_project(method, ref.group(1), ref.group(2) or "")
        if method == "GET" and path == f"/v1/projects/{args.ref}":
            return self.answer(200, self.source_project())
        if method == "GET" and path == f"/v1/projects/{args.ref}/database/backups":
            return self.answer(200, backups_answer())
        if method == "POST" and path == f"/v1/projects/{args.ref}/branches":
            if not body or "branch_name" not in body:
                return self.answer(400, {"message": "branch_name is required"})
            b = new_branch(body["branch_name"], now(), bool(body.get("persistent", False)), body.get("region"))
            b["with_data"] = bool(body.get("with_data", False)) and not args.without_data
            return self.answer(201, b)
        if method == "GET" and path == f"/v1/projects/{args.ref}/branches":
            return self.answer(200, list(branches.values()))
        m = re.fullmatch(r"/v1/branches/([^/]+)", path)
        if m:
            key = m.group(1)
            bref = key if key in branches else next((r for r, b in branches.items() if b["id"] == key), None)
            if bref is None:
                return self.answer(404, {"message": "Branch not found"})
            if method == "GET":
                polls[bref] += 1
                healthy = args.healthy_after >= 0 and polls[bref] > args.healthy_after
                password = open(args.db_pass_file).read().strip() if args.db_pass_file else None
                return self.answer(200, {"ref": bref, "postgres_version": "15.8",
                                         "postgres_engine": "15", "release_channel": "ga",
                                         "status": args.final_status if healthy else "COMING_UP",
                                         "db_host": args.db_host, "db_port": args.db_port, "db_user": args.db_user,
                                         "db_pass": password, "jwt_secret": "not-used"})
            if method == "DELETE":
                del branches[bref]
                return self.answer(200, {"message": "ok"})
        return self.answer(500, {"message": f"the stand-in does not serve {method} {path}"})

    def source_project(self):
        return {"id": args.ref, "ref": args.ref, "organization_id": "org", "organization_slug": "acme",
                "name": "acme-prod", "region": args.region, "created_at": "2025-01-01T00:00:00Z",
                "status": "ACTIVE_HEALTHY", "database": {"host": f"db.{args.ref}.supabase.co",
                "version": "15.8", "postgres_engine": "15", "release_channel": "ga"}}

    def project_answer(self, r):
        p = projects[r]
        healthy = args.healthy_after >= 0 and p["polls"] > args.healthy_after
        return {"id": r, "ref": r, "organization_id": "org", "organization_slug": "acme", "name": p["name"],
                "region": p["region"], "created_at": p["created_at"],
                "status": args.final_status if healthy else "COMING_UP",
                "database": {"host": f"db.{r}.supabase.co", "version": "15.8", "postgres_engine": "15",
                             "release_channel": "ga"}}

    def dashboard(self, body):
        """The dashboard's Restore to a new project: a PITR of the source at `target` into a new project."""
        if "name" not in body or "target" not in body:
            return self.answer(400, {"message": "name and target are required"})
        t = datetime.datetime.fromisoformat(body["target"].replace("Z", "+00:00"))
        window = backups_answer()["physical_backup_data"]
        if not window or not (window["earliest_physical_backup_date_unix"] <= t.timestamp()
                              <= window["latest_physical_backup_date_unix"] + 5):
            return self.answer(400, {"message": "the target is outside the PITR window"})
        r = new_ref()
        projects[r] = {"name": body["name"], "region": args.restore_region or args.region, "polls": 0,
                       "target": body["target"], "created_at": iso(now())}
        return self.answer(201, {"ref": r, "name": body["name"]})

    def restored_project(self, method, r, rest):
        p = projects[r]
        if method == "GET" and rest == "":
            p["polls"] += 1
            return self.answer(200, self.project_answer(r))
        if method == "DELETE" and rest == "":
            del projects[r]
            return self.answer(200, {"id": 1, "ref": r, "name": p["name"]})
        if method == "GET" and rest == "/config/database/pooler":
            user = args.pooler_user or args.db_user
            return self.answer(200, [{"identifier": r, "database_type": "PRIMARY", "is_using_scram_auth": True,
                                      "db_user": user, "db_host": args.db_host, "db_port": args.db_port,
                                      "db_name": "postgres", "pool_mode": "session",
                                      "connection_string": f"postgresql://{user}@{args.db_host}:{args.db_port}/postgres",
                                      "connectionString": "", "default_pool_size": 15, "max_client_conn": 200}])
        return self.answer(500, {"message": f"the stand-in does not serve {method} /v1/projects/{r}{rest}"})

    def branch_project(self, method, bref, rest):
        """A branch is a project of its own: GET /v1/projects/{branch_ref}, its action runs, its pooler."""
        b = branches[bref]
        if method == "GET" and rest == "":
            healthy = args.healthy_after >= 0 and polls[bref] > args.healthy_after
            return self.answer(200, {"id": bref, "ref": bref, "organization_id": "org", "organization_slug": "acme",
                                     "name": b["name"], "region": regions[bref], "created_at": b["created_at"],
                                     "status": args.final_status if healthy else "COMING_UP",
                                     "database": {"host": f"db.{bref}.supabase.co", "version": "15.8",
                                                  "postgres_engine": "15", "release_channel": "ga"}})
        if method == "GET" and rest == "/actions":
            done = args.healthy_after >= 0 and polls[bref] > args.healthy_after
            steps = [{"name": "clone", "status": args.clone_status if done else "RUNNING",
                      "created_at": b["created_at"], "updated_at": iso(now())}]
            if done:
                steps.append({"name": "migrate", "status": "EXITED", "created_at": b["created_at"],
                              "updated_at": iso(now())})
            if not b["with_data"]:
                steps = [s for s in steps if s["name"] != "clone"]
            return self.answer(200, [{"id": "run-" + bref, "branch_id": b["id"], "run_steps": steps,
                                      "git_config": None, "workdir": None, "check_run_id": None,
                                      "created_at": b["created_at"], "updated_at": iso(now())}])
        if method == "GET" and rest == "/config/database/pooler":
            user = args.pooler_user or args.db_user
            return self.answer(200, [{"identifier": bref, "database_type": "PRIMARY", "is_using_scram_auth": True,
                                      "db_user": user, "db_host": args.db_host, "db_port": args.db_port,
                                      "db_name": "postgres", "pool_mode": "session",
                                      "connection_string": f"postgresql://{user}@{args.db_host}:{args.db_port}/postgres",
                                      "connectionString": "", "default_pool_size": 15, "max_client_conn": 200}])
        return self.answer(500, {"message": f"the stand-in does not serve {method} /v1/projects/{bref}{rest}"})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PATCH(self):
        self.handle_any("PATCH")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
