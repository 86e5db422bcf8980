/*-------------------------------------------------------------------------
 *
 * http.c
 *	  All libcurl code: the participant protocol on the wire.
 *
 * Two users.  A backend calls the tries of one or more branches at once and
 * waits for all of them (TccHttpTryAll), through a per-session multi
 * handle so the connections are kept alive between calls and the wait can
 * be interrupted by statement_timeout or pg_cancel_backend.  The worker
 * drives confirm and cancel through one multi handle with socket callbacks:
 * curl's sockets live in an epoll set whose descriptor sits in the worker's
 * WaitEventSet, so the worker sleeps until a participant answers, a timer
 * fires or its latch is set.
 *
 * Every request is a POST with the headers of docs/protocol.md, the trace
 * context among them; redirects are never followed; only http and https are
 * spoken; TLS peers are verified, against tcc.ca_file when it is set, and
 * tcc.client_cert is presented to those that ask for a certificate.
 * A branch of protocol dtm also gets DTM's query parameters, and its answer
 * is read as DTM reads it (ReadAnswer).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "gid.h"
#include "http.h"
#include "protocol.h"
#include "tcc.h"

#include <curl/curl.h>

/* the response header read, the longest value of it read */
#define RETRY_AFTER_NAME "Retry-After:"
#define RETRY_AFTER_NAME_LEN (sizeof(RETRY_AFTER_NAME) - 1)
#define RETRY_AFTER_VALUE_LEN 128
/* the trace context header's name, and room for a line with tracestate */
#define TRACEPARENT_PREFIX "traceparent: "
#define TRACEPARENT_PREFIX_LEN (sizeof(TRACEPARENT_PREFIX) - 1)
#define TRACE_HEADER_LEN (64 + TCC_TRACESTATE_MAX)
#define MS_PER_SEC 1000
/* how long a backend waits for its tries between looks at interrupts */
#define INTERRUPT_CHECK_MS 10
/* socket events the worker takes from epoll in one go */
#define EPOLL_EVENTS_PER_WAIT 64
/* easy handles a backend creates at least; connections the worker keeps */
#define TRY_HANDLES_MIN 4
#define WORKER_CONNECTIONS_MIN 8
StaticAssertDecl(TCC_CALL_ERROR_LEN >= CURL_ERROR_SIZE,
				 "a call's error buffer is curl's error buffer");

static bool curl_ready = false;

/* backend: the multi handle and easy handle of this session's tries */
static CURLM *try_multi = NULL;
static CURL **try_easy = NULL;
static int	try_easy_alloc = 0;

/* worker: the multi handle, its epoll set, timer and finished calls */
static CURLM *worker_multi = NULL;
static int	worker_epoll = -1;
static TimestampTz timer_at = 0;
static bool timer_set = false;
static List *done_calls = NIL;
static List *idle_handles = NIL;
static int	in_flight = 0;

/* Initialises libcurl once per process. */
static void
EnsureCurl(void)
{
	if (curl_ready)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		elog(ERROR, "could not initialize libcurl");
	curl_ready = true;
}

/*
 * Collects the response body, keeping at most TCC_MAX_BODY bytes.  Called
 * inside curl, which an ERROR must not unwind: out of memory, it returns 0
 * (curl fails the transfer) and RecordOutcome reports it after curl.
 */
static size_t
CollectBody(char *data, size_t size, size_t nmemb, void *arg)
{
	TccCall    *call = arg;
	StringInfo	buf = &call->body_buf;
	size_t		n = size * nmemb;
	size_t		keep = Min(n, (size_t) (TCC_MAX_BODY - buf->len));

	if (buf->len + keep + 1 > (size_t) buf->maxlen)
	{
		/* past the first block: room for the largest body kept */
		char	   *bigger = MemoryContextAllocExtended(GetMemoryChunkContext(buf->data),
														TCC_MAX_BODY + 1,
														MCXT_ALLOC_NO_OOM);

		if (bigger == NULL)
		{
			call->body_oom = true;
			return 0;
		}
		memcpy(bigger, buf->data, buf->len + 1);
		pfree(buf->data);
		buf->data = bigger;
		buf->maxlen = TCC_MAX_BODY + 1;
	}
	memcpy(buf->data + buf->len, data, keep);
	buf->len += keep;
	buf->data[buf->len] = '\0';
	return n;
}

/* Watches response headers for Retry-After (seconds or an HTTP date). */
static size_t
CollectHeader(char *data, size_t size, size_t nitems, void *arg)
{
	TccCall    *call = arg;
	size_t		n = size * nitems;
	char		value[RETRY_AFTER_VALUE_LEN];
	size_t		len;
	char	   *p;
	long		secs;
	time_t		when;

	if (n <= RETRY_AFTER_NAME_LEN ||
		pg_strncasecmp(data, RETRY_AFTER_NAME, RETRY_AFTER_NAME_LEN) != 0)
		return n;
	len = Min(n - RETRY_AFTER_NAME_LEN, sizeof(value) - 1);
	memcpy(value, data + RETRY_AFTER_NAME_LEN, len);
	value[len] = '\0';
	p = value;
	while (*p == ' ' || *p == '\t')
		p++;
	p[strcspn(p, "\r\n")] = '\0';
	if (*p >= '0' && *p <= '9')
		secs = strtol(p, NULL, 10);
	else if ((when = curl_getdate(p, NULL)) > 0)
		secs = Max(when - time(NULL), 0);
	else
		return n;
	call->retry_after_ms = (int) Min(secs, INT_MAX / MS_PER_SEC) * MS_PER_SEC;
	return n;
}

/*
 * Appends the trace context headers of a call (docs/protocol.md#trace-context):
 * traceparent with a span id of the call's own, and tracestate when given.
 * A call without a trace (an all-zero id) carries neither.
 */
static void
AppendTrace(struct curl_slist **list, const TccTrace *trace)
{
	static const uint8 none[TCC_TRACE_ID_LEN];
	char		line[TRACE_HEADER_LEN];

	if (memcmp(trace->id, none, TCC_TRACE_ID_LEN) == 0)
		return;
	strlcpy(line, TRACEPARENT_PREFIX, sizeof(line));
	TccTraceParent(trace, line + TRACEPARENT_PREFIX_LEN,
				   sizeof(line) - TRACEPARENT_PREFIX_LEN);
	*list = curl_slist_append(*list, line);
	if (trace->state != NULL)
	{
		snprintf(line, sizeof(line), "tracestate: %s", trace->state);
		*list = curl_slist_append(*list, line);
	}
}

/* Builds the request headers of the participant protocol. */
static struct curl_slist *
ProtocolHeaders(TccCall *call)
{
	struct curl_slist *list = NULL;
	char	   *gid = TccGidText(&call->gid);
	const char *op = TccProtocolOpName(call->op);

	list = curl_slist_append(list, "Content-Type: application/json");
	list = curl_slist_append(list, psprintf("Tcc-Gid: %s", gid));
	list = curl_slist_append(list, psprintf("Tcc-Branch: %d", call->branch));
	list = curl_slist_append(list, psprintf("Tcc-Op: %s", op));
	list = curl_slist_append(list, psprintf("Idempotency-Key: %s.%d.%s",
											gid, call->branch, op));
	/* no "Expect: 100-continue" round trip for larger payloads */
	list = curl_slist_append(list, "Expect:");
	AppendTrace(&list, &call->trace);
	for (int i = 0; i < call->nheaders; i++)
		list = curl_slist_append(list, call->headers[i]);
	if (list == NULL)
		elog(ERROR, "out of memory building HTTP headers");
	return list;
}

/*
 * Sets the URL to call: the branch's own, and for the DTM protocol with
 * DTM's query parameters appended to the URL's own query.
 */
static void
SetUrl(CURL *h, TccCall *call)
{
	CURLU	   *u;
	char	   *params[4];
	char	   *url = NULL;
	CURLUcode	rc;

	if (call->protocol != TCC_PROTOCOL_DTM)
	{
		curl_easy_setopt(h, CURLOPT_URL, call->url);
		return;
	}
	params[0] = psprintf("gid=%s", TccGidText(&call->gid));
	params[1] = "trans_type=tcc";
	params[2] = psprintf("branch_id=%02d", call->branch);
	params[3] = psprintf("op=%s", TccProtocolOpName(call->op));
	u = curl_url();
	if (u == NULL)
		elog(ERROR, "out of memory building a URL");
	rc = curl_url_set(u, CURLUPART_URL, call->url, 0);
	for (int i = 0; i < lengthof(params) && rc == CURLUE_OK; i++)
		rc = curl_url_set(u, CURLUPART_QUERY, params[i], CURLU_APPENDQUERY);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_URL, &url, 0);
	curl_url_cleanup(u);
	/* the URL was checked when the branch was recorded: curl parses it */
	curl_easy_setopt(h, CURLOPT_URL, rc == CURLUE_OK ? url : call->url);
	if (url)
		curl_free(url);
}

/* Sets an easy handle up for one call. */
static void
SetupHandle(CURL *h, TccCall *call)
{
	struct curl_slist *headers = ProtocolHeaders(call);

	call->header_list = headers;
	call->handle = h;
	call->http_status = 0;
	call->retry_after_ms = -1;
	call->error[0] = '\0';
	call->answer = TCC_ANSWER_UNKNOWN;
	call->body = NULL;
	call->body_len = 0;
	call->body_oom = false;
	initStringInfo(&call->body_buf);

	SetUrl(h, call);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->payload);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) call->payload_len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tcc/" TCC_VERSION);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	/* tcc.ca_file replaces the system's CAs, bundle and directory alike */
	if (tcc_ca_file != NULL && tcc_ca_file[0] != '\0')
	{
		curl_easy_setopt(h, CURLOPT_CAINFO, tcc_ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (tcc_client_cert != NULL && tcc_client_cert[0] != '\0')
		curl_easy_setopt(h, CURLOPT_SSLCERT, tcc_client_cert);
	if (tcc_client_key != NULL && tcc_client_key[0] != '\0')
		curl_easy_setopt(h, CURLOPT_SSLKEY, tcc_client_key);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) call->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectBody);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, CollectHeader);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, call->error);
	curl_easy_setopt(h, CURLOPT_PRIVATE, call);
	call->started_at = GetCurrentTimestamp();
}

/*
 * Reads an HTTP answer as the branch's protocol does: what it means is
 * protocol.c's to say.
 */
static void
ReadAnswer(TccCall *call)
{
	call->answer = TccProtocolReadAnswer(call->protocol, call->http_status,
										 call->body_buf.data,
										 call->body_buf.len, call->error,
										 sizeof(call->error));
}

/* Fills a call's outcome once curl has finished it. */
static void
RecordOutcome(TccCall *call, CURLcode rc)
{
	call->duration_ms =
		(double) (GetCurrentTimestamp() - call->started_at) / 1000.0;
	if (rc == CURLE_OK)
	{
		long		code = 0;

		curl_easy_getinfo(call->handle, CURLINFO_RESPONSE_CODE, &code);
		call->http_status = (int) code;
		call->error[0] = '\0';
		/* Retry-After means something only with these (docs/protocol.md) */
		if (code != 425 && code != 429 && code != 503)
			call->retry_after_ms = -1;
		if (code < 200 || code > 299)
			snprintf(call->error, sizeof(call->error), "HTTP %ld", code);
		ReadAnswer(call);
	}
	else
	{
		call->http_status = 0;
		call->answer = TCC_ANSWER_UNKNOWN;
		call->retry_after_ms = -1;
		if (call->body_oom)
			strlcpy(call->error, "out of memory reading the answer",
					sizeof(call->error));
		else if (call->error[0] == '\0')
			strlcpy(call->error, curl_easy_strerror(rc), sizeof(call->error));
	}
	if (call->body_buf.len > 0)
	{
		call->body = call->body_buf.data;
		call->body_len = call->body_buf.len;
	}
	curl_slist_free_all(call->header_list);
	call->header_list = NULL;
}

/* Makes sure the backend's multi handle and n easy handles exist. */
static void
EnsureTryHandles(int n)
{
	EnsureCurl();
	if (try_multi == NULL)
	{
		try_multi = curl_multi_init();
		if (try_multi == NULL)
			elog(ERROR, "could not create a libcurl multi handle");
	}
	if (n > try_easy_alloc)
	{
		int			alloc = Max(n, TRY_HANDLES_MIN);

		try_easy = try_easy == NULL ?
			MemoryContextAllocZero(TopMemoryContext, sizeof(CURL *) * alloc) :
			repalloc(try_easy, sizeof(CURL *) * alloc);
		for (int i = try_easy_alloc; i < alloc; i++)
			try_easy[i] = NULL;
		try_easy_alloc = alloc;
	}
	for (int i = 0; i < n; i++)
	{
		if (try_easy[i] == NULL)
		{
			try_easy[i] = curl_easy_init();
			if (try_easy[i] == NULL)
				elog(ERROR, "could not create a libcurl handle");
		}
		else
			curl_easy_reset(try_easy[i]);
	}
}

/* Takes every call of the backend's multi handle off it, unanswered. */
static void
AbandonTries(TccCall **calls, int ncalls)
{
	for (int i = 0; i < ncalls; i++)
	{
		if (calls[i]->handle == NULL)
			continue;
		curl_multi_remove_handle(try_multi, calls[i]->handle);
		curl_slist_free_all(calls[i]->header_list);
		calls[i]->header_list = NULL;
	}
}

/*
 * Sends the tries of several branches at once and waits until every one
 * has answered (or failed), checking for interrupts every few milliseconds
 * so that statement_timeout and pg_cancel_backend stop the wait.  The
 * connections stay open for the next call.
 */
void
TccHttpTryAll(TccCall **calls, int ncalls)
{
	CURLMsg    *msg;
	int			left;

	EnsureTryHandles(ncalls);
	for (int i = 0; i < ncalls; i++)
		calls[i]->handle = NULL;
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	PG_TRY();
	{
		for (int i = 0; i < ncalls; i++)
		{
			if (calls[i]->held)
				continue;		/* answered already: not sent */
			SetupHandle(try_easy[i], calls[i]);
			if (curl_multi_add_handle(try_multi, try_easy[i]) != CURLM_OK)
				elog(ERROR, "could not start a participant call");
		}
		for (;;)
		{
			int			running = 0;
			int			nfds;

			curl_multi_perform(try_multi, &running);
			if (running == 0)
				break;
			curl_multi_wait(try_multi, NULL, 0, INTERRUPT_CHECK_MS, &nfds);
			if (!PostmasterIsAlive())
				proc_exit(1);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		pgstat_report_wait_end();
		AbandonTries(calls, ncalls);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pgstat_report_wait_end();

	while ((msg = curl_multi_info_read(try_multi, &left)) != NULL)
	{
		TccCall    *call = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &call);
		RecordOutcome(call, msg->data.result);
		curl_multi_remove_handle(try_multi, msg->easy_handle);
		call->handle = NULL;
	}
	/* a call curl did not report has no answer */
	for (int i = 0; i < ncalls; i++)
	{
		if (calls[i]->handle == NULL)
			continue;
		curl_multi_remove_handle(try_multi, calls[i]->handle);
		strlcpy(calls[i]->error, "no answer", sizeof(calls[i]->error));
		RecordOutcome(calls[i], CURLE_RECV_ERROR);
		calls[i]->handle = NULL;
	}
}

/*
 * curl socket callback: keeps the worker's epoll set in step with curl.  A
 * socket curl watches carries a mark (socketp) once it is in the set, so
 * that each change costs one epoll_ctl.
 */
static int
WatchSocket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socketp)
{
	struct epoll_event ev;
	static char in_set;

	memset(&ev, 0, sizeof(ev));
	ev.data.fd = fd;
	if (what == CURL_POLL_REMOVE)
	{
		(void) epoll_ctl(worker_epoll, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (socketp != NULL &&
		epoll_ctl(worker_epoll, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (epoll_ctl(worker_epoll, EPOLL_CTL_ADD, fd, &ev) != 0 &&
		(errno != EEXIST ||
		 epoll_ctl(worker_epoll, EPOLL_CTL_MOD, fd, &ev) != 0))
		elog(WARNING, "tcc: epoll_ctl failed for socket %d: %m", fd);
	else
		curl_multi_assign(worker_multi, fd, &in_set);
	return 0;
}

/* curl timer callback: remembers when curl wants to be called again. */
static int
WatchTimer(CURLM *multi, long timeout_ms, void *arg)
{
	if (timeout_ms < 0)
		timer_set = false;
	else
	{
		timer_set = true;
		timer_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   timeout_ms);
	}
	return 0;
}

/* Worker: creates the multi handle and the epoll set. */
void
TccHttpInitWorker(void)
{
	EnsureCurl();
	worker_epoll = epoll_create1(EPOLL_CLOEXEC);
	if (worker_epoll < 0)
		elog(ERROR, "could not create epoll set: %m");
	worker_multi = curl_multi_init();
	if (worker_multi == NULL)
		elog(ERROR, "could not create a libcurl multi handle");
	curl_multi_setopt(worker_multi, CURLMOPT_SOCKETFUNCTION, WatchSocket);
	curl_multi_setopt(worker_multi, CURLMOPT_TIMERFUNCTION, WatchTimer);
	curl_multi_setopt(worker_multi, CURLMOPT_MAXCONNECTS,
					  (long) Max(tcc_max_concurrency, WORKER_CONNECTIONS_MIN));
}

/* Worker: the descriptor that becomes readable when a socket is ready. */
int
TccHttpEventFd(void)
{
	return worker_epoll;
}

/*
 * Worker: starts a call; its outcome arrives through TccHttpNextDone.  What
 * the call needs is allocated in the call's own memory context, which
 * TccHttpFinishCall deletes.
 */
void
TccHttpStart(TccCall *call)
{
	CURL	   *h;
	MemoryContext old;

	if (idle_handles != NIL)
	{
		h = linitial(idle_handles);
		idle_handles = list_delete_first(idle_handles);
		curl_easy_reset(h);
	}
	else
	{
		h = curl_easy_init();
		if (h == NULL)
			elog(ERROR, "could not create a libcurl handle");
	}
	old = MemoryContextSwitchTo(GetMemoryChunkContext(call));
	SetupHandle(h, call);
	MemoryContextSwitchTo(old);
	if (curl_multi_add_handle(worker_multi, h) != CURLM_OK)
		elog(ERROR, "could not start a participant call");
	in_flight++;
}

/* Worker: lets curl act on ready sockets and expired timers. */
void
TccHttpProcess(void)
{
	struct epoll_event events[EPOLL_EVENTS_PER_WAIT];
	int			n;
	int			running;
	CURLMsg    *msg;
	int			left;

	do
	{
		n = epoll_wait(worker_epoll, events, lengthof(events), 0);
		for (int i = 0; i < n; i++)
		{
			int			flags = 0;

			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(worker_multi, events[i].data.fd, flags,
									 &running);
		}
	} while (n == lengthof(events));

	if (timer_set && GetCurrentTimestamp() >= timer_at)
	{
		timer_set = false;
		curl_multi_socket_action(worker_multi, CURL_SOCKET_TIMEOUT, 0,
								 &running);
	}

	while ((msg = curl_multi_info_read(worker_multi, &left)) != NULL)
	{
		TccCall    *call = NULL;
		MemoryContext old;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &call);
		RecordOutcome(call, msg->data.result);
		curl_multi_remove_handle(worker_multi, msg->easy_handle);
		in_flight--;
		old = MemoryContextSwitchTo(TopMemoryContext);
		done_calls = lappend(done_calls, call);
		MemoryContextSwitchTo(old);
	}
}

/* Worker: returns the next finished call, or NULL. */
TccCall *
TccHttpNextDone(void)
{
	TccCall    *call;

	if (done_calls == NIL)
		return NULL;
	call = linitial(done_calls);
	done_calls = list_delete_first(done_calls);
	return call;
}

/*
 * Worker: ends a call, finished or never started.  Its handle goes back to
 * the pool (which keeps no more than tcc.max_concurrency handles), and
 * everything the call held -- URL, payload, headers, response -- is freed
 * with its memory context, so the worker's memory follows what is in
 * flight, not what has finished.
 */
void
TccHttpFinishCall(TccCall *call)
{
	if (call->header_list)
		curl_slist_free_all(call->header_list);
	call->header_list = NULL;
	if (call->handle)
	{
		if (list_length(idle_handles) < tcc_max_concurrency)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			idle_handles = lappend(idle_handles, call->handle);
			MemoryContextSwitchTo(old);
		}
		else
			curl_easy_cleanup(call->handle);
	}
	call->handle = NULL;
	MemoryContextDelete(GetMemoryChunkContext(call));
}

/*
 * The destination of a URL, "scheme://host:port" (the port made explicit,
 * the host in lower case), into dest; calls to one destination share its
 * slots and its pause (schedule.c).  A URL libcurl cannot parse is its own
 * destination.
 */
void
TccHttpDestination(const char *url, char *dest, size_t len)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *port = NULL;

	if (u != NULL &&
		curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
	{
		/* host names are case-insensitive: one destination whatever case */
		for (char *p = host; *p; p++)
			*p = pg_ascii_tolower((unsigned char) *p);
		snprintf(dest, len, "%s://%s:%s", scheme, host, port);
	}
	else
		strlcpy(dest, url, len);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* Worker: milliseconds until curl's timer fires; -1 when none is set. */
long
TccHttpTimeoutMs(void)
{
	long		ms;

	if (!timer_set)
		return -1;
	ms = (long) ((timer_at - GetCurrentTimestamp()) / 1000);
	return Max(ms, 0);
}

/* Worker: calls in flight. */
int
TccHttpInFlight(void)
{
	return in_flight;
}

/* Returns a part of a parsed URL in palloc'd memory, or NULL. */
static char *
UrlPart(CURLU *u, CURLUPart what, unsigned int flags, CURLUcode *rc)
{
	char	   *part = NULL;
	char	   *copy;

	*rc = curl_url_get(u, what, &part, flags);
	if (*rc != CURLUE_OK)
		return NULL;
	copy = pstrdup(part);
	curl_free(part);
	return copy;
}

/*
 * Parses a URL with libcurl's parser, the one that also reads the URL of a
 * call: so what is checked is what is called.  Fills parts with the scheme,
 * host, port (the scheme's default when none is given) and the path with
 * its dot segments resolved, as libcurl sends it ("/" when empty).  On
 * failure puts the reason into why and returns false.
 */
bool
TccHttpParseUrl(const char *url, TccUrl *parts, char *why, size_t whylen)
{
	CURLU	   *u = curl_url();
	CURLUcode	rc;
	char	   *port;

	if (u == NULL)
		elog(ERROR, "out of memory parsing a URL");
	memset(parts, 0, sizeof(TccUrl));
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK)
		parts->scheme = UrlPart(u, CURLUPART_SCHEME, 0, &rc);
	if (rc == CURLUE_OK)
		parts->host = UrlPart(u, CURLUPART_HOST, 0, &rc);
	if (rc == CURLUE_OK)
	{
		port = UrlPart(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, &rc);
		if (port)
			parts->port = atoi(port);
	}
	if (rc == CURLUE_OK)
		parts->path = UrlPart(u, CURLUPART_PATH, 0, &rc);
	curl_url_cleanup(u);
	if (rc != CURLUE_OK)
	{
		strlcpy(why, curl_url_strerror(rc), whylen);
		return false;
	}
	if (parts->path == NULL || parts->path[0] == '\0')
		parts->path = pstrdup("/");
	return true;
}
