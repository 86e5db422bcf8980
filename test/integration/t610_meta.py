#!/usr/bin/python3
# META.json, the distribution's metadata for PGXN: valid JSON that follows
# the PGXN Meta Spec 1.0.0 (required keys, SemVer versions, a known license,
# prereqs by phase and relation), and its versions agree with the control
# file's default_version and the Debian package's (README.md#upgrading-from-10;
# README.md#installation).

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import diag, done_testing, is_, like, ok  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SEMVER = (r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
          r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
RANGE_ITEM = r"((==|!=|<=|>=|<|>)\s*)?" + SEMVER[1:-1]
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2",
            "bsd", "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2",
            "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0",
            "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0",
            "ssleay", "sun", "zlib", "open_source", "restricted",
            "unrestricted", "unknown"}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}


def is_version_range(v):
    """A prereq version: 0, a SemVer, or comma-separated ranges of them."""
    if v == 0 or v == "0":
        return True
    return isinstance(v, str) and all(
        re.match("^" + RANGE_ITEM + "$", part.strip())
        for part in v.split(","))


def term(v):
    """A PGXN term: a string of 2+ characters, no space, slash or colon."""
    return isinstance(v, str) and len(v) >= 2 and \
        re.search(r"[\s/\\:]", v) is None


try:
    with open(os.path.join(ROOT, "META.json"), encoding="utf-8") as f:
        meta = json.load(f)
except ValueError as e:
    meta = None
    diag(str(e))
if not ok(isinstance(meta, dict), "META.json is a JSON object"):
    done_testing()
    sys.exit(0)

missing = [k for k in ("name", "abstract", "version", "maintainer",
                       "license", "provides", "meta-spec") if k not in meta]
is_(missing, [], "every key the spec requires is there")
ok(term(meta.get("name")), "name is a term")
ok(isinstance(meta.get("abstract"), str) and meta["abstract"].strip() != "",
   "abstract is a non-empty string")
like(meta.get("version"), SEMVER, "version is a SemVer")
m = meta.get("maintainer")
ok((isinstance(m, str) and m) or
   (isinstance(m, list) and m and all(isinstance(x, str) and x for x in m)),
   "maintainer is a string or a list of strings")
lic = meta.get("license")
ok(lic in LICENSES or
   (isinstance(lic, list) and lic and all(x in LICENSES for x in lic)) or
   (isinstance(lic, dict) and lic and
    all(isinstance(u, str) for u in lic.values())),
   "license is one the spec knows (or a name-to-URL map)")
is_(meta.get("meta-spec", {}).get("version"), "1.0.0",
    "meta-spec version 1.0.0")

provides = meta.get("provides") or {}
ok(isinstance(provides, dict) and "tcc" in provides,
   "provides the extension tcc")
bad = []
for ext, p in provides.items():
    if not term(ext) or not isinstance(p, dict):
        bad.append((ext, "not a term or not an object"))
        continue
    if not re.match(SEMVER, str(p.get("version"))):
        bad.append((ext, "version %r" % p.get("version")))
    for k in ("file", "docfile"):
        if k in p and not os.path.isfile(os.path.join(ROOT, p[k])):
            bad.append((ext, "%s %s does not exist" % (k, p[k])))
is_(bad, [], "each extension provided has a SemVer and existing files")

bad = []
for phase, rels in (meta.get("prereqs") or {}).items():
    if phase not in PHASES or not isinstance(rels, dict):
        bad.append(phase)
        continue
    for rel, reqs in rels.items():
        if rel not in RELATIONS or not isinstance(reqs, dict):
            bad.append("%s.%s" % (phase, rel))
            continue
        bad += ["%s.%s.%s" % (phase, rel, name)
                for name, v in reqs.items() if not is_version_range(v)]
is_(bad, [], "prereqs: known phases and relations, valid version ranges")
like(meta.get("prereqs", {}).get("runtime", {}).get("requires", {})
     .get("PostgreSQL"), r"^15\.", "runtime requires PostgreSQL 15")
ok(meta.get("release_status", "stable") in ("stable", "testing",
                                             "unstable"),
   "release_status is stable, testing or unstable")
ok(isinstance(meta.get("resources", {}), dict) and all(
    k in ("homepage", "bugtracker", "repository") or k.lower().startswith("x_")
    for k in meta.get("resources", {})), "resources has known keys only")

# the versions everyone else states
with open(os.path.join(ROOT, "tcc.control")) as f:
    control = re.search(r"default_version\s*=\s*'([^']+)'", f.read())
control = control.group(1) if control else None
is_(meta.get("version"), "%s.0" % control,
    "version is the control file's default_version (%s) as SemVer" % control)
is_(provides.get("tcc", {}).get("version"), meta.get("version"),
    "the extension's version is the distribution's")
changelog = os.path.join(ROOT, "debian", "changelog")
if os.path.exists(changelog):
    with open(changelog) as f:
        first = f.readline()
    like(first, r"^postgresql-tcc \(%s-\d+\) " % re.escape(control or "?"),
         "debian/changelog's newest entry packages the same version")

done_testing()
