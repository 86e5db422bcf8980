#!/usr/bin/python3
# The code layout docs/layout.md describes holds: every src/*.c file is built,
# and the compiler writes each object's header dependencies (so that no
# object is left stale); a file includes only the module headers whose
# names it uses, and uses none it does not include; includes and calls
# between files only go down the layers of docs/layout.md, the entry
# tcc.c among them; no function in src/ is over 120 lines, no C file over
# 800 and no script or program outside the test files over 500; the final
# states are listed once (src/states.h) and every other list of them says
# the same; comments cite the documents of the repository (docs/,
# README.md), every anchor they cite exists and every rule R<n> they name
# is a heading of docs/guarantees.md.
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


# the Makefile: every file built, each object's dependencies written by the
# compiler and read back
makefile = read("Makefile").replace("\\\n", " ")
objs = re.search(r"^OBJS\s*=(.*)$", makefile, re.M).group(1).split()
is_(sorted(objs), ["src/%s.o" % f[:-2] for f in cfiles],
    "OBJS lists every src/*.c")
ok(re.search(r"^override CPPFLAGS \+= -MMD -MP$", makefile, re.M),
   "the compiler writes each object's header dependencies")
ok(re.search(r"^-include \$\(OBJS:\.o=\.d\)", makefile, re.M),
   "the Makefile reads the dependencies back")
is_(re.findall(r"^src/\w+\.o\s*:.*$", makefile, re.M), [],
    "no dependencies written by hand")

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

# includes go down too: a module header is of its .c file's layer; tcc.h
# holds the settings, data every layer reads (docs/layout.md)
climbing = []
for f in cfiles + headers:
    home = f[:-2] + ".c"
    for h in includes(f):
        owner = h[:-2] + ".c"
        if h != "tcc.h" and home in layer and owner in layer and \
                layer[owner] < layer[home]:
            climbing.append("%s includes %s" % (f, h))
is_(climbing, [], "no file includes a header of a higher layer")

MAX_FUNCTION_LINES = 120
MAX_FILE_LINES = 800


def functions(body):
    """(name, lines) of each function defined in a C file: from the line of
    its return type to its closing brace."""
    lines = body.split("\n")
    found = []
    for i, line in enumerate(lines):
        if line != "{":
            continue
        j = i - 1
        while j > 0 and re.match(r"^\s+\S", lines[j]):
            j -= 1      # a parameter list over several lines
        if not re.match(r"^\w+\(", lines[j]):
            continue    # not a function: a struct, an array
        end = lines.index("}", i)
        found.append((re.match(r"^(\w+)\(", lines[j]).group(1),
                      end - j + 2))
    return found


ok(len(functions(text["api.c"])) > 10, "functions found in api.c")
for f in cfiles:
    long_ones = ["%s (%d)" % (name, n) for name, n in functions(text[f])
                 if n > MAX_FUNCTION_LINES]
    is_(long_ones, [], "src/%s has no function over %d lines" %
        (f, MAX_FUNCTION_LINES))
    n = text[f].count("\n")
    ok(n <= MAX_FILE_LINES, "src/%s has at most %d lines (%d)" %
       (f, MAX_FILE_LINES, n))

# the final states: src/states.h lists them; the console and every status
# list of the SQL scripts and of src/ say the same
final = re.search(r'^#define TCC_FINAL_STATES (.*)$', text["states.h"],
                  re.M).group(1)
final = sorted(re.findall(r'"(\w+)"', final))
is_(final, ["cancelled", "confirmed", "resolved"],
    "src/states.h lists the final states")
console = re.search(r"^FINAL = \((.*)\)$", read("console/transactions.py"),
                    re.M).group(1)
is_(sorted(re.findall(r'"(\w+)"', console)), final,
    "the console's final states are src/states.h's")
lists = [p for pat in ("*.sql", "src/*.c")
         for p in sorted(glob.glob(os.path.join(ROOT, pat)))]
differ = []
for p in lists:
    # a list of a global transaction's states names resolved (a branch's
    # final states are others)
    for m in re.finditer(r"status (?:NOT )?IN \(('[^)]*'resolved'[^)]*)\)",
                         open(p, encoding="utf-8").read()):
        if sorted(re.findall(r"'(\w+)'", m.group(1))) != final:
            differ.append("%s: %s" % (os.path.relpath(p, ROOT), m.group(0)))
is_(differ, [], "every list of the final states names the same ones")

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
