#!/usr/bin/python3
# The code layout docs/layout.md describes holds: every src/*.c file is built,
# and the Makefile makes each object depend on exactly the headers it
# includes (directly or through another header), so that no object is left
# stale; a file includes only the module headers whose names it uses, and
# uses none it does not include; calls between files only go down the
# layers of docs/layout.md; no C file is over 900 lines and no script or
# program outside the test files over 500; comments cite the
# documents of the repository (docs/, README.md), every anchor they cite
# exists and every rule R<n> they name is a heading of docs/guarantees.md.
# Reads the source tree only: no server is needed.

import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import diag, done_testing, is_, ok  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def no_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


cfiles = sorted(os.path.basename(p) for p in glob.glob(SRC + "/*.c"))
headers = sorted(os.path.basename(p) for p in glob.glob(SRC + "/*.h"))
text = {f: read("src/" + f) for f in cfiles + headers}


def includes(f):
    return [h for h in re.findall(r'^#include "([a-z_]+\.h)"', text[f], re.M)
            if h in headers]


def closure(f, seen=None):
    seen = set() if seen is None else seen
    for h in includes(f):
        if h not in seen:
            seen.add(h)
            closure(h, seen)
    return seen


# the Makefile: every file built, each object's dependencies exact
makefile = read("Makefile").replace("\\\n", " ")
objs = re.search(r"^OBJS\s*=(.*)$", makefile, re.M).group(1).split()
is_(sorted(objs), ["src/%s.o" % f[:-2] for f in cfiles],
    "OBJS lists every src/*.c")
for f in cfiles:
    m = re.search(r"^src/%s\.o\s*:(.*)$" % re.escape(f[:-2]), makefile, re.M)
    got = sorted(m.group(1).split()) if m else None
    is_(got, sorted("src/" + h for h in closure(f)),
        "the Makefile makes src/%s.o depend on the headers it includes" %
        f[:-2])

# names a header declares for others (what it includes does not count)
NAME = r"\b(Tcc\w+|TCC_\w+|ERRCODE_TCC_\w+|tcc_[a-z_]+|STMT|Stmt)\b"
declares = {}
for h in headers:
    own = set(re.findall(NAME, no_comments(text[h])))
    for inc in includes(h):
        own -= set(re.findall(NAME, no_comments(text[inc])))
    declares[h] = own

for f in cfiles:
    body = re.sub(r"^#include.*$", "", no_comments(text[f]), flags=re.M)
    used = set(re.findall(NAME, body))
    defined = set(re.findall(r"^(\w+)\(", body, re.M))
    inc = includes(f)
    unused = [h for h in inc if h != f[:-2] + ".h" and not declares[h] & used]
    is_(unused, [], "%s includes no module header it does not use" % f)
    missing = sorted(h for h in headers
                     if h not in inc and (declares[h] & used) - defined)
    is_(missing, [], "%s includes the module headers it uses" % f)

# calls only go down the layers of docs/layout.md
layer = {}
for number, files in re.findall(r"^\| (\d) \w+ \| ((?:`\w+\.c`(?:, )?)+) \|",
                                read("docs/layout.md"), re.M):
    for f in re.findall(r"`(\w+\.c)`", files):
        layer[f] = int(number)
is_(sorted(layer), cfiles, "docs/layout.md puts every src/*.c in a layer")
exported = {}
for f in cfiles:
    for name in re.findall(r"^(?!static)\w.*\n(Tcc\w+|tcc_\w+)\(",
                           no_comments(text[f]), re.M):
        exported[name] = f
upward = []
for f in cfiles:
    body = no_comments(text[f])
    for name, home in exported.items():
        if home != f and f in layer and home in layer and \
                layer[f] >= layer[home] and \
                re.search(r"\b%s\s*\(" % name, body):
            upward.append("%s calls %s of %s" % (f, name, home))
is_(upward, [], "every call between files goes down the layers")

for f in cfiles:
    n = text[f].count("\n")
    ok(n <= 900, "src/%s has at most 900 lines (%d)" % (f, n))

# scripts and programs other than C: the test files themselves are left out
# (each is one test, however long it is)
scripts = sorted(
    p for pat in ("*/*.sh", "*/*/*.sh", "*/*.py", "*/*/*.py", "*/*/*/*.py",
                  ".ci/run")
    for p in glob.glob(os.path.join(ROOT, pat))
    if not re.search(r"/test/integration/t\d+\w*\.py$", p))
ok(len(scripts) > 20, "scripts found outside the test files (%d)" % len(scripts))
for p in scripts:
    n = open(p, encoding="utf-8").read().count("\n")
    ok(n <= 500, "%s has at most 500 lines (%d)" % (os.path.relpath(p, ROOT), n))

# citations
cited = [p for pat in ("src/*.[ch]", "sql/*.sql", "expected/*.out",
                       "test/integration/*.py", "test/pgtap/*.sql",
                       "tcc--1.0--1.1.sql")
         for p in sorted(glob.glob(os.path.join(ROOT, pat)))]
spec = ["%s:%d" % (os.path.relpath(p, ROOT), i + 1)
        for p in cited
        for i, line in enumerate(open(p, encoding="utf-8"))
        if re.search(r"\bSPEC\b", line) and "t611_code_layout" not in p]
is_(spec, [], "no comment cites SPEC: they cite docs/")


def anchors(md):
    found = set()
    for line in read(md).splitlines():
        m = re.match(r"^#+\s+(.*)", line)
        if m:
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
                      .replace(" ", "-"))
    return found


bad = []
for p in cited:
    body = open(p, encoding="utf-8").read()
    for doc, anchor in re.findall(r"((?:docs/[a-z]+|README)\.md)#([\w\-]+)",
                                  body):
        if not os.path.exists(os.path.join(ROOT, doc)) or \
                anchor not in anchors(doc):
            bad.append("%s: %s#%s" % (os.path.relpath(p, ROOT), doc, anchor))
is_(bad, [], "every docs anchor cited exists")

rules = set(re.findall(r"^## (R\d+) ", read("docs/guarantees.md"), re.M))
named = set()
for f in cfiles + headers:
    named |= set(re.findall(r"\b(R\d+)\b", text[f]))
is_(sorted(named - rules), [],
    "every rule the code names is a heading of docs/guarantees.md")
diag("%d C files, %d headers, %d exported functions" %
     (len(cfiles), len(headers), len(exported)))

done_testing()
