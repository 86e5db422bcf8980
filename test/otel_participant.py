"""A participant instrumented with the OpenTelemetry SDK, for the trace
context test (test/integration/t812_trace_context.py).

Runs with the Python of a virtual environment that holds opentelemetry-api
and opentelemetry-sdk (the test makes it).  Every POST is handled in a span
of kind SERVER whose parent is read from the request's traceparent and
tracestate headers by the SDK's W3C propagator, as an instrumented service
would; the spans are kept in memory, and GET /spans answers them as JSON:
name, trace_id, span_id, parent_span_id (hex), trace_state.  A POST answers
200 {}; one whose path ends in /flaky answers 503 every other time.

  python otel_participant.py        prints "port N" once it listens;
                                    SIGTERM stops it
"""

import http.server
import json
import signal
import sys
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import \
    InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import \
    TraceContextTextMapPropagator

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("tcc-test-participant")
propagator = TraceContextTextMapPropagator()
flaky_calls = {}
lock = threading.Lock()


def span_json(span):
    """What the test reads of a finished span."""
    parent = span.parent
    return {"name": span.name,
            "trace_id": trace.format_trace_id(span.context.trace_id),
            "span_id": trace.format_span_id(span.context.span_id),
            "parent_span_id": (trace.format_span_id(parent.span_id)
                               if parent is not None else None),
            "trace_state": span.context.trace_state.to_header()}


class Handler(http.server.BaseHTTPRequestHandler):
    """POST: a span per call; GET /spans: the spans so far."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, [span_json(s) for s in exporter.get_finished_spans()])

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        carrier = {k.lower(): v for k, v in self.headers.items()}
        parent = propagator.extract(carrier)
        with tracer.start_as_current_span(
                "%s %s" % (self.headers.get("Tcc-Op"), self.path),
                context=parent, kind=trace.SpanKind.SERVER):
            code = 200
            if self.path.endswith("/flaky"):
                with lock:
                    n = flaky_calls[self.path] = flaky_calls.get(self.path,
                                                                 0) + 1
                code = 503 if n % 2 == 1 else 200
        self.reply(code, {})


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(
    target=server.shutdown).start())
print("port %d" % server.server_address[1], flush=True)
server.serve_forever()
sys.exit(0)
