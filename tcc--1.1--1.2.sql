/* tcc--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tcc UPDATE TO '1.2'" to load this file. \quit

-- Version 1.2 of the SQL objects.  tcc--1.2.sql, the script a new install
-- runs, is built from tcc--1.1.sql followed by this file (Makefile), so a
-- fresh 1.2 and an updated 1.1 have the same objects by construction.
