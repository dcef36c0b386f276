"""Prometheus metrics shared by every service (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPENDED = Counter("score_events_appended_total", "Events appended to the store", ["type"])
EVENTS_PUBLISHED = Counter(
    "score_events_published_total", "Events the relay had acknowledged by JetStream"
)
OUTBOX_PENDING = Gauge("score_outbox_pending", "Events appended but not yet acknowledged")
EVENTS_CONSUMED = Counter(
    "score_events_consumed_total", "Events handled by a consumer", ["consumer", "outcome"]
)
DEAD_LETTERS = Counter("score_dead_letters_total", "Messages dead-lettered", ["consumer"])
# Not `score_dead_letters`: the counter above holds that name (prometheus_client gives a
# counter's name without `_total` to the counter too).
DEAD_LETTERS_NOW = Gauge(
    "score_dead_letters_kept", "Dead letters kept now, waiting for an operator", ["consumer"]
)
CONSUMER_LAG = Gauge("score_consumer_lag", "Messages pending for a durable consumer", ["consumer"])
HTTP_REQUESTS = Histogram(
    "score_http_request_seconds", "HTTP request latency", ["method", "route", "status"]
)
