/* tcc--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tcc UPDATE TO '1.1'" to load this file. \quit

-- Version 1.1 of the SQL objects.  tcc--1.1.sql, the script a new install
-- runs, is built from tcc--1.0.sql followed by this file (Makefile), so a
-- fresh 1.1 and an updated 1.0 have the same objects by construction.
