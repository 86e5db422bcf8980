"""Figures, anomalies, the results table and the closing JSON line.

Every figure is recorded under a dotted path ("s1.c32.gtx_per_s") as the
text it is printed with; the JSON line nests them by path, in the order
they were first recorded.  Text that reads as a number, and null, true and
false, go into the JSON as they are; anything else as a string.
"""

import json
import re

NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def fmt(value, decimals=3):
    """A number as text with the given decimals; None as null."""
    if value is None:
        return "null"
    return "%.*f" % (decimals, float(value))


def json_value(value):
    """The JSON text of a recorded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    if NUMBER.match(text) or text in ("null", "true", "false"):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"') \
        .replace("\t", " ").replace("\n", " ")


class Report:
    """The run's figures and anomalies."""

    def __init__(self):
        self.values = {}
        self.anomalies = []
        self.error = None
        self.printed = False

    def fig(self, path, value):
        """Records a figure (a later value for a path replaces the earlier)."""
        self.values[path] = value

    def get(self, path):
        """A figure's text, or "null"."""
        v = self.values.get(path)
        return "null" if v is None or v == "" else str(v)

    def anomaly(self, text):
        """Records and shows something wrong with the extension or the run."""
        print("ANOMALY: %s" % text, flush=True)
        self.anomalies.append(text)

    def json_line(self):
        """The figures as one JSON line, objects nested by path."""
        tree = {}
        for path, value in self.values.items():
            node = tree
            parts = path.split(".")
            for p in parts[:-1]:
                child = node.setdefault(p, {})
                if not isinstance(child, dict):
                    child = node[p] = {}
                node = child
            node[parts[-1]] = ("leaf", value)
        return self._emit(tree)

    def _emit(self, node):
        """JSON text of one level of the tree."""
        out = []
        for key, child in node.items():
            if isinstance(child, tuple):
                text = json_value(child[1])
            else:
                text = self._emit(child)
            out.append('"%s":%s' % (key, text))
        return "{" + ",".join(out) + "}"

    def print_json(self):
        """Prints the JSON line once, anomalies (and the error) last."""
        if self.printed:
            return
        self.printed = True
        self.values["anomalies"] = list(self.anomalies)
        if self.error:
            self.fig("error", self.error)
        print(self.json_line(), flush=True)

    def target(self, name, value, op, limit):
        """Checks a figure against a target and records it: "true"/"false"."""
        met = False
        if value not in (None, "", "null"):
            v = float(value)
            met = v >= limit if op == ">=" else v <= limit
        self.fig("targets.%s.value" % name,
                 "null" if value in (None, "") else value)
        self.fig("targets.%s.target" % name, "%s %s" % (op, limit))
        self.fig("targets.%s.met" % name, "true" if met else "false")
        return "true" if met else "false"


def row(label, value, unit, target="", met=""):
    """Prints a row of the results table."""
    verdict = {"true": "met", "false": "MISSED"}.get(met, "")
    print("%-34s %12s %-8s %-14s %s" % (label, value, unit, target, verdict))
