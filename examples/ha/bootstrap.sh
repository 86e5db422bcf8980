#!/bin/sh
# examples/ha/bootstrap.sh - Patroni's post_bootstrap for the HA example.
#
#   sh bootstrap.sh PGBIN CONNSTRING
#
# Patroni runs it once, on the node that initialised the cluster, as soon as
# that node accepts connections (the replicas copy the result).  It creates
# the coordinator database coord (tcc.database), the extension in it, and
# the table the example's clients write their own rows to.

set -eu
PGBIN=$1
CONN=$2

"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$CONN" -c 'CREATE DATABASE coord'
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$CONN" <<'SQL'
\c coord
CREATE EXTENSION tcc;
CREATE TABLE transfers (
    gid uuid PRIMARY KEY,
    business_key text NOT NULL,
    amount numeric(12,2) NOT NULL
);
SQL
