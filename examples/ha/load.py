#!/usr/bin/python3
"""Transfers under load for the high-availability example (examples/ha).

Each client thread runs transfers one after the other: in one local
transaction of the coordinator database it begins a global transaction,
tries bank1 (A pays) and bank2 (B receives) through the transfer example's
services, records the transfer in its own table, decides and commits.  It
connects with a multi-host connection string and target_session_attrs=
read-write, so after a failover it finds the new leader by itself; while
there is none it retries.

It runs until the file given with --stop-file exists, then writes what the
clients saw to --out (JSON):

  committed   [[gid, business_key, amount], ...] whose COMMIT returned
  unknown     number of transfers cut off by the failover (COMMIT or an
              earlier call failed with a lost connection): their outcome
              is the coordinator's to tell
  refused     number of transfers that failed with an SQL error

Run with Debian's python3 (psycopg2).
"""

import argparse
import json
import os
import random
import threading
import time

import psycopg2

lock = threading.Lock()
committed = []
counts = {"unknown": 0, "refused": 0, "connect_failures": 0}


def transfer(conn, client, n, args):
    """One transfer in one local transaction; returns (gid, key, amount)."""
    key = "c%d-%d-%d" % (client, n, int(time.time() * 1000))
    amount = "%d.00" % random.randint(1, 9)
    with conn.cursor() as cur:
        cur.execute("SELECT tcc_begin(timeout => '30 s', kind => 'transfer',"
                    " business_key => %s)::text", (key,))
        gid = cur.fetchone()[0]
        for bank, account in ((args.bank1, 1), (args.bank2, 2)):
            cur.execute("SELECT tcc_branch(%s, %s, %s, %s,"
                        " jsonb_build_object('account', %s, 'amount', %s))",
                        (gid, bank + "/try", bank + "/confirm",
                         bank + "/cancel", account, amount))
        cur.execute("INSERT INTO transfers (gid, business_key, amount)"
                    " VALUES (%s, %s, %s)", (gid, key, amount))
        cur.execute("SELECT tcc_finish(%s)", (gid,))
    conn.commit()
    return gid, key, amount


def client(i, args, stop):
    """Transfers until stopped, reconnecting after a lost connection."""
    n = 0
    conn = None
    while not stop.is_set():
        if conn is None or conn.closed:
            try:
                conn = psycopg2.connect(args.dsn, connect_timeout=3,
                                        application_name="ha load")
            except psycopg2.OperationalError:
                with lock:
                    counts["connect_failures"] += 1
                time.sleep(0.2)
                continue
        n += 1
        try:
            done = transfer(conn, i, n, args)
            with lock:
                committed.append(done)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            with lock:
                counts["unknown"] += 1
            try:
                conn.close()
            except psycopg2.Error:
                pass
            conn = None
        except psycopg2.Error:
            with lock:
                counts["refused"] += 1
            try:
                conn.rollback()
            except psycopg2.Error:
                conn = None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", required=True)
    p.add_argument("--bank1", required=True, help="bank1's base URL")
    p.add_argument("--bank2", required=True, help="bank2's base URL")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(i, args, stop),
                                daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    last = -1
    while not os.path.exists(args.stop_file):
        time.sleep(0.1)
        with lock:
            now = len(committed)
        if now // 50 != last // 50:
            print("load: %d transfers committed" % now, flush=True)
        last = now
    stop.set()
    for t in threads:
        t.join(30)
    with lock:
        result = dict(counts, committed=list(committed))
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(args.out + ".tmp", args.out)
    print("load: stopped; %d committed, %d cut off by the failover,"
          " %d refused" % (len(result["committed"]), result["unknown"],
                          result["refused"]), flush=True)


if __name__ == "__main__":
    main()
