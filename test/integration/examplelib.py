"""Helpers for the tests that run an example end to end (t310, t520).

Each example is a script, examples/<name>/run.sh, that makes its own
cluster and services on the ports its environment names, checks what it
shows, ends with a line starting "RESULT ", and stops everything it started.
These helpers run it with the harness's installation (TCC_SKIP_SETUP=1) and
check that nothing it started still listens.
"""

import os
import socket
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def script(name):
    """The path of examples/<name>/run.sh."""
    return os.path.join(ROOT, "examples", name, "run.sh")


def example_env(**ports):
    """The environment for an example: the harness's, setup skipped, and
    the given variables (ports) as text."""
    return dict(os.environ, TCC_SKIP_SETUP="1",
                **{k: str(v) for k, v in ports.items()})


def run_example(name, env, timeout):
    """Run examples/<name>/run.sh to its end with env; its exit status
    (None if it ran past timeout seconds and was killed) and its output
    lines (stdout and stderr)."""
    try:
        res = subprocess.run(["bash", script(name)], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             timeout=timeout)
        return res.returncode, res.stdout.splitlines()
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        return None, out.splitlines()


def result_line(lines):
    """The last line starting "RESULT ", or None."""
    result = [line for line in lines if line.startswith("RESULT ")]
    return result[-1] if result else None


def listening(port):
    """True if something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
