-- test/participant.sql
--
-- Schema "tp" of the test participant (test/participant.py).  The participant
-- runs this file itself at start, so it must stay idempotent: it is the one
-- place where the schema is defined.
--
-- rules     what the participant answers, per exact request path
-- requests  every request it received, committed before it answered
-- config    the participant's port (one row), used by tp.url()
-- state     whether the participant currently refuses connections (one row)

CREATE SCHEMA IF NOT EXISTS tp;

CREATE TABLE IF NOT EXISTS tp.rules (
    path         text PRIMARY KEY,
    status       int NOT NULL DEFAULT 200,
    body         text DEFAULT '{"ok":true}',
    delay_ms     int NOT NULL DEFAULT 0,
    retry_after  text,
    fail_next    int NOT NULL DEFAULT 0,
    fail_status  int NOT NULL DEFAULT 503,
    content_type text DEFAULT 'application/json'
);

COMMENT ON TABLE tp.rules IS
    'test participant: answer per exact request path; no rule means 200 {"ok":true}; status 0 closes the connection without answering';

CREATE TABLE IF NOT EXISTS tp.requests (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    method  text,
    path    text,
    headers jsonb,
    body    text,
    gid     uuid,
    branch  int,
    op      text,
    idem    text,
    status  int
);

CREATE INDEX IF NOT EXISTS requests_gid_idx ON tp.requests (gid);
CREATE INDEX IF NOT EXISTS requests_path_idx ON tp.requests (path);

COMMENT ON TABLE tp.requests IS
    'test participant: one row per request received, committed before the answer is sent';

CREATE TABLE IF NOT EXISTS tp.config (
    port int NOT NULL,
    one  boolean PRIMARY KEY DEFAULT true CHECK (one)
);

CREATE TABLE IF NOT EXISTS tp.state (
    down boolean NOT NULL DEFAULT false,
    one  boolean PRIMARY KEY DEFAULT true CHECK (one)
);

INSERT INTO tp.state (down) VALUES (false) ON CONFLICT (one) DO NOTHING;

-- Create or replace the rule for one path.
CREATE OR REPLACE FUNCTION tp.set_rule(
    path text,
    status int DEFAULT 200,
    body text DEFAULT '{"ok":true}',
    delay_ms int DEFAULT 0,
    retry_after text DEFAULT NULL,
    fail_next int DEFAULT 0,
    fail_status int DEFAULT 503,
    content_type text DEFAULT 'application/json')
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO tp.rules AS r
        (path, status, body, delay_ms, retry_after, fail_next, fail_status,
         content_type)
    VALUES (set_rule.path, set_rule.status, set_rule.body, set_rule.delay_ms,
            set_rule.retry_after, set_rule.fail_next, set_rule.fail_status,
            set_rule.content_type)
    ON CONFLICT ON CONSTRAINT rules_pkey DO UPDATE
        SET status = excluded.status,
            body = excluded.body,
            delay_ms = excluded.delay_ms,
            retry_after = excluded.retry_after,
            fail_next = excluded.fail_next,
            fail_status = excluded.fail_status,
            content_type = excluded.content_type;
$$;

-- Forget all rules and all recorded requests.
CREATE OR REPLACE FUNCTION tp.reset()
RETURNS void
LANGUAGE sql
AS $$
    TRUNCATE tp.rules, tp.requests RESTART IDENTITY;
$$;

-- The participant's URL for a path, e.g. tp.url('/acct/try').
CREATE OR REPLACE FUNCTION tp.url(path text)
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT 'http://127.0.0.1:' || c.port || url.path FROM tp.config c;
$$;

-- Ask the participant to close its listening socket (connections refused).
-- Takes effect once the calling transaction commits; see tp.wait_state().
CREATE OR REPLACE FUNCTION tp.down()
RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_notify('tp_control', 'down');
$$;

-- Ask the participant to listen again on the same port.
CREATE OR REPLACE FUNCTION tp.up()
RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_notify('tp_control', 'up');
$$;

-- Poll until tp.state.down equals want, or the timeout passes; true if reached.
CREATE OR REPLACE FUNCTION tp.wait_state(want boolean,
                                         timeout interval DEFAULT '10 s')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    LOOP
        IF (SELECT s.down FROM tp.state s) = want THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

-- Poll until the boolean SQL expression cond is true, or the timeout passes;
-- true if reached.  Example: tp.wait_until($$(SELECT count(*) FROM
-- tp.requests WHERE op = 'confirm') = 2$$).
CREATE OR REPLACE FUNCTION tp.wait_until(cond text,
                                         timeout interval DEFAULT '10 s')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    reached boolean;
BEGIN
    LOOP
        EXECUTE 'SELECT (' || cond || ')::boolean' INTO reached;
        IF reached THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
