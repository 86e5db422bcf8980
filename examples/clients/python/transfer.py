#!/usr/bin/python3
"""The transfer initiator in Python, with psycopg 3 (Debian python3-psycopg).

    PGHOST=... PGPORT=... PGDATABASE=coord PGUSER=... \\
    BANK1_URL=http://127.0.0.1:18201 BANK2_URL=http://127.0.0.1:18202 \\
        /usr/bin/python3 transfer.py KEY

Moves 10.00 from account 1 (bank1) to account 2 (bank2) with business key
KEY-1, then tries the same to account 3, which bank2 does not have: its try
is refused (SQLSTATE TC001), the local transaction rolls back with the
transfers row, and the coordinator cancels bank1's branch.
"""

import os
import sys

import psycopg
from psycopg.types.json import Jsonb

BANK1 = os.environ["BANK1_URL"]
BANK2 = os.environ["BANK2_URL"]


def transfer(conn, key, from_account, to_account, amount):
    """One global transaction; returns its gid once the decision commits."""
    with conn.transaction():
        gid = conn.execute(
            "SELECT tcc_begin(kind => 'transfer', business_key => %s)",
            (key,)).fetchone()[0]
        for bank, account in ((BANK1, from_account), (BANK2, to_account)):
            conn.execute(
                "SELECT tcc_branch(%s, %s, %s, %s, %s, name => %s)",
                (gid, bank + "/try", bank + "/confirm", bank + "/cancel",
                 Jsonb({"account": account, "amount": amount}),
                 "account %d" % account))
        # the initiator's own write, committed together with the decision
        conn.execute(
            "INSERT INTO transfers (business_key, gid, from_account,"
            " to_account, amount) VALUES (%s, %s, %s, %s, %s)",
            (key, gid, from_account, to_account, amount))
        conn.execute("SELECT tcc_finish(%s)", (gid,))
    return gid


def main():
    key = sys.argv[1]
    with psycopg.connect(autocommit=True) as conn:
        gid = transfer(conn, key + "-1", 1, 2, "10.00")
        status = conn.execute("SELECT tcc_wait(%s)", (gid,)).fetchone()[0]
        print("%s-1: %s" % (key, status))
        try:
            transfer(conn, key + "-2", 1, 3, "10.00")
            print("%s-2: not refused" % key)
        except psycopg.Error as e:
            if e.sqlstate != "TC001":
                raise
            print("%s-2: refused (%s)" % (key, e.sqlstate))


if __name__ == "__main__":
    main()
