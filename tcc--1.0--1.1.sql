/* tcc--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tcc UPDATE TO '1.1'" to load this file. \quit

-- Version 1.1 of the SQL objects.  tcc--1.1.sql, the script a new install
-- runs, is built from tcc--1.0.sql followed by this file (Makefile), so a
-- fresh 1.1 and an updated 1.0 have the same objects by construction.

-- ---------------------------------------------------------------------
-- Several branches in one call, one-call transactions, DTM participants
-- (SPEC sections 3 and 4)
-- ---------------------------------------------------------------------

-- how each branch's participant speaks; the worker reads it for every
-- confirm and cancel
ALTER TABLE tcc._branch
    ADD COLUMN protocol text NOT NULL DEFAULT 'tcc'
        CONSTRAINT _branch_protocol CHECK (protocol IN ('tcc', 'dtm'));

-- tcc_branch takes a last parameter, protocol.  An overload beside the old
-- signature would make every call that leaves protocol out ambiguous, so
-- the function is replaced; the EXECUTE grants given on the old one are
-- given again on the new one.
DO $$
DECLARE
    grantees text[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT a.grantee::regrole::text)
      INTO grantees
      FROM pg_catalog.pg_proc p,
           LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = 'tcc_branch(uuid, text, text, text, jsonb, text, jsonb)'::regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0
       AND a.grantee <> p.proowner;

    DROP FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb);
    CREATE FUNCTION tcc_branch(gid uuid,
                               try_url text, confirm_url text, cancel_url text,
                               payload jsonb DEFAULT '{}',
                               name text DEFAULT NULL,
                               headers jsonb DEFAULT NULL,
                               protocol text DEFAULT 'tcc')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'tcc_branch'
    LANGUAGE C VOLATILE;
    REVOKE ALL ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text) FROM PUBLIC;
    IF grantees IS NOT NULL THEN
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text) TO %s',
            pg_catalog.array_to_string(grantees, ', '));
    END IF;
END
$$;
COMMENT ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text) IS 'records a branch durably, calls its try and returns the answer; protocol tcc or dtm';

CREATE FUNCTION tcc_branches(gid uuid, branches jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tcc_branches'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_branches(uuid, jsonb) IS 'records several branches with one durable write, calls all their tries at once and returns the answers as an array in branch order';
REVOKE ALL ON FUNCTION tcc_branches(uuid, jsonb) FROM PUBLIC;

CREATE FUNCTION tcc_run(branches jsonb,
                        timeout interval DEFAULT NULL,
                        kind text DEFAULT NULL,
                        business_key text DEFAULT NULL,
                        parallel boolean DEFAULT false,
                        OUT gid uuid, OUT responses jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'tcc_run'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_run(jsonb, interval, text, text, boolean) IS 'begins a global transaction, tries every branch at once and decides confirm at the commit of the calling transaction';
REVOKE ALL ON FUNCTION tcc_run(jsonb, interval, text, text, boolean) FROM PUBLIC;
