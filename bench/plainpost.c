/*-------------------------------------------------------------------------
 *
 * plainpost.c
 *	  The baseline of benchmark scenario S2: N sequential HTTP POSTs on one
 *	  libcurl easy handle (one kept-alive connection), each timed.
 *
 * It sends what tcc sends for a try (docs/protocol.md: the same headers, the
 * same payload, no "Expect: 100-continue"), so the difference between its
 * latencies and those of tcc_branch is what the coordinator adds: the SQL
 * round trip, the durable intent written by the worker, and the bookkeeping.
 *
 * Usage: plainpost URL N [PAYLOAD]
 * Prints one latency per line, in microseconds, for the N requests in
 * order.  Exits 1 if a request fails or answers anything but 2xx.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  bench/plainpost.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

/* Discards the response body. */
static size_t
discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void) data;
	(void) arg;
	return size * nmemb;
}

/* Returns a monotonic clock reading in microseconds. */
static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int
main(int argc, char **argv)
{
	const char *url;
	const char *payload = "{\"amount\": 1}";
	long		n;
	CURL	   *h;
	struct curl_slist *headers = NULL;
	char		errbuf[CURL_ERROR_SIZE];
	double	   *lat;

	if (argc < 3 || argc > 4)
	{
		fprintf(stderr, "usage: %s URL N [PAYLOAD]\n", argv[0]);
		return 2;
	}
	url = argv[1];
	n = strtol(argv[2], NULL, 10);
	if (argc == 4)
		payload = argv[3];
	if (n <= 0)
	{
		fprintf(stderr, "plainpost: N must be positive\n");
		return 2;
	}
	lat = calloc(n, sizeof(double));
	if (lat == NULL || curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
	{
		fprintf(stderr, "plainpost: initialisation failed\n");
		return 2;
	}

	/* the headers of a try, with a fixed gid */
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Tcc-Gid: 00000000-0000-4000-8000-000000000000");
	headers = curl_slist_append(headers, "Tcc-Branch: 1");
	headers = curl_slist_append(headers, "Tcc-Op: try");
	headers = curl_slist_append(headers,
								"Idempotency-Key: 00000000-0000-4000-8000-000000000000.1.try");
	headers = curl_slist_append(headers, "Expect:");

	h = curl_easy_init();
	if (h == NULL || headers == NULL)
	{
		fprintf(stderr, "plainpost: initialisation failed\n");
		return 2;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(payload));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tcc-bench-plainpost");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	for (long i = 0; i < n; i++)
	{
		double		t0 = now_us();
		CURLcode	rc;
		long		status = 0;

		errbuf[0] = '\0';
		rc = curl_easy_perform(h);
		lat[i] = now_us() - t0;
		if (rc != CURLE_OK)
		{
			fprintf(stderr, "plainpost: request %ld failed: %s\n", i + 1,
					errbuf[0] ? errbuf : curl_easy_strerror(rc));
			return 1;
		}
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status < 200 || status > 299)
		{
			fprintf(stderr, "plainpost: request %ld answered HTTP %ld\n",
					i + 1, status);
			return 1;
		}
	}

	for (long i = 0; i < n; i++)
		printf("%.1f\n", lat[i]);

	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	free(lat);
	return 0;
}
