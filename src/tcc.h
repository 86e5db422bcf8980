/*-------------------------------------------------------------------------
 *
 * tcc.h
 *	  What every file of the tcc extension needs: the version, the
 *	  SQLSTATEs, the settings and the limits on names.
 *
 * tcc coordinates Try-Confirm-Cancel global transactions from inside
 * PostgreSQL.  The SQL API (api.c) runs in the initiator's backend; the
 * coordinator worker (worker.c) writes intents durably on the backends'
 * behalf (request.c, intent.c), drives confirm and cancel over HTTP
 * (http.c) when they are due (schedule.c, backoff.c) and keeps the
 * coordinator tables (store.c, settle.c).  Participants use the barrier
 * (barrier.c).  Each module declares its own functions in its own header;
 * docs/layout.md draws the map.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/tcc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_H
#define TCC_H

#define TCC_VERSION "1.2"

/* SQLSTATEs of docs/api.md#sqlstates */
#define ERRCODE_TCC_TRY_REFUSED		MAKE_SQLSTATE('T','C','0','0','1')
#define ERRCODE_TCC_TRY_UNKNOWN		MAKE_SQLSTATE('T','C','0','0','2')
#define ERRCODE_TCC_BAD_DECISION	MAKE_SQLSTATE('T','C','0','0','3')
#define ERRCODE_TCC_UNKNOWN_GID		MAKE_SQLSTATE('T','C','0','0','4')

/* settings (tcc.c) */
extern char *tcc_database;
extern int	tcc_workers;
extern int	tcc_max_concurrency;
extern int	tcc_destination_share;
extern int	tcc_default_timeout;
extern int	tcc_request_timeout;
extern int	tcc_retry_interval;
extern int	tcc_retry_max_interval;
extern int	tcc_max_attempts;
extern int	tcc_retention;
extern char *tcc_allowed_urls;
extern int	tcc_max_payload_size;
extern int	tcc_max_branches_per_call;
extern char *tcc_traceparent;
extern char *tcc_ca_file;
extern char *tcc_client_cert;
extern char *tcc_client_key;
extern bool tcc_preloaded;
extern bool tcc_in_worker;

/* longest name, kind or business key */
#define TCC_MAX_NAME 1000

/* longest destination name ("scheme://host:port") kept apart from others */
#define TCC_DEST_LEN 320

#endif							/* TCC_H */
