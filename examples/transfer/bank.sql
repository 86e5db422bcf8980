-- bank.sql - one bank's database: tcc for the participant barrier (no
-- preloading needed here) and the accounts, with one account to start:
--
--   psql -d bank1 -v id=1 -v name=A -v balance=1000.00 -f bank.sql
--
-- balance is what the owner can spend; frozen is money held by a transfer
-- that is tried but not yet confirmed or cancelled.

CREATE EXTENSION tcc;

CREATE TABLE accounts (
    id integer PRIMARY KEY,
    name text NOT NULL,
    balance numeric(12,2) NOT NULL CHECK (balance >= 0),
    frozen numeric(12,2) NOT NULL DEFAULT 0 CHECK (frozen >= 0)
);

INSERT INTO accounts (id, name, balance) VALUES (:id, :'name', :balance);
