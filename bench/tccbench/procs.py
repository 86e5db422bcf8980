"""Processes of the run: the stub participants, and /proc readings.

The stub is Debian's nginx with a configuration of its own (every try,
confirm and cancel answers 200 {"ok":true} at once, connections kept
alive); the slow stub (bench/slowstub.py) answers after 50 ms; the hanging
participant accepts each connection and never answers.  Each is started
and stopped by its pid; stop_all() stops whatever still runs.
"""

import os
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """# stub participant for the tcc benchmark: every try, confirm and cancel
# answers 200 {"ok":true} at once; connections are kept alive
worker_processes %(workers)d;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type application/json;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location ~ /(try|confirm|cancel)$ {
            return 200 '{"ok":true}';
        }
        location / {
            return 404;
        }
    }
}
"""

HANG = """
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4096)
while True:
    c, _ = s.accept()
    threading.Timer(60, c.close).start()
"""


class Failed(Exception):
    """The run cannot go on (the message says why)."""


def port_busy(port):
    """Is something listening on 127.0.0.1:port?"""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(proc, timeout=5):
    """Stops a child process: SIGTERM, then SIGKILL after timeout seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_port(port, proc, what, seconds=5):
    """Waits until proc listens on port; Failed if it does not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_busy(port):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise Failed("%s did not start on port %d" % (what, port))


class Stubs:
    """The participants the run starts: nginx, the slow stub, the hang."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.dir = os.path.join(cfg.tmp, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        self.nginx = self.slow = self.hanging = None
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF % {"workers": cfg.nginx_workers, "dir": self.dir,
                                  "port": cfg.stub_port})
        self.cmd = ["/usr/sbin/nginx", "-p", self.dir, "-e",
                    os.path.join(self.dir, "error.log"), "-c",
                    os.path.join(self.dir, "nginx.conf")]
        r = subprocess.run(self.cmd + ["-t"], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            raise Failed("the nginx configuration does not load")

    def _spawn(self, cmd, log):
        """Starts a process with its output appended to a log file."""
        with open(os.path.join(self.cfg.tmp, log), "a") as out:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)

    def start_nginx(self):
        """Starts nginx and waits until it answers."""
        self.nginx = self._spawn(self.cmd, "nginx/stdout.log")
        try:
            wait_port(self.cfg.stub_port, self.nginx, "nginx")
        except Failed:
            with open(os.path.join(self.dir, "error.log")) as f:
                print(f.read())
            raise

    def stop_nginx(self):
        """Stops nginx: connections to the stub are refused from now on."""
        stop(self.nginx)
        self.nginx = None

    def start_slow(self):
        """Starts the slow stub (50 ms per answer) on the next port."""
        self.slow = self._spawn([sys.executable,
                                 os.path.join(self.cfg.root, "bench", "slowstub.py"),
                                 "--port", str(self.cfg.slow_port), "--delay-ms", "50"],
                                "slowstub.log")
        wait_port(self.cfg.slow_port, self.slow, "the slow stub")

    def stop_slow(self):
        """Stops the slow stub."""
        stop(self.slow)
        self.slow = None

    def start_hang(self):
        """Starts the participant that never answers: every call to it lasts
        tcc.request_timeout."""
        if port_busy(self.cfg.hang_port):
            raise Failed("port %d is in use (set BENCH_HANG_PORT)" % self.cfg.hang_port)
        self.hanging = self._spawn([sys.executable, "-c", HANG,
                                    str(self.cfg.hang_port)], "hang.log")
        wait_port(self.cfg.hang_port, self.hanging, "the hanging participant")

    def stop_hang(self):
        """Stops the hanging participant."""
        stop(self.hanging)
        self.hanging = None

    def stop_all(self):
        """Stops whatever still runs."""
        self.stop_nginx()
        self.stop_hang()
        self.stop_slow()


def proc_usage(pid):
    """(cpu seconds, VmRSS kB, RssAnon kB) of a process; Nones if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(") ", 1)[1].split()
        status = {}
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                status[k] = v.split()
    except (OSError, IndexError):
        return None, None, None
    # after "pid (comm) ": utime and stime are the 12th and 13th fields
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = int(status["VmRSS"][0]) if "VmRSS" in status else None
    anon = int(status["RssAnon"][0]) if "RssAnon" in status else None
    return cpu, rss, anon


def vm_hwm(pid):
    """VmHWM (peak resident size) of a process in kB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def host_cpu():
    """(total, idle, steal) jiffies of the whole machine (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4], v[7]


def load_1min():
    """The machine's load average over a minute, as its text."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def restart_cluster(cfg, seconds=120):
    """A fast restart of the bench cluster (new postmaster settings), as the
    postgres user; raises Failed when it does not come back."""
    pg_ctl = os.path.join(cfg.pgbin, "pg_ctl")
    r = subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl, "-D", cfg.pgdata,
                        "-l", cfg.pglog, "-w", "-t", str(seconds), "-m", "fast", "restart"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise Failed("the bench cluster did not restart: %s" % r.stderr.strip())
