-- schema.sql - the initiator's own table in the coordinator database.  Each
-- client of examples/clients/ records its transfer here in the same local
-- transaction as tcc_finish: the row exists exactly when the transfer was
-- decided to confirm.
--
--   psql -d coord -f examples/clients/schema.sql

CREATE TABLE transfers (
    business_key text PRIMARY KEY,
    gid uuid NOT NULL,
    from_account integer NOT NULL,
    to_account integer NOT NULL,
    amount numeric(12,2) NOT NULL
);
