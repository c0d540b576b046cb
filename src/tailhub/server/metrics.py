"""``GET /metrics``: the hub's counters in the Prometheus text format, names prefixed ``tailhub_``.

The hot path never touches Prometheus: the node and hub bump plain integers in
:class:`~tailhub.core.stats.Stats`, and :class:`HubCollector` turns them into metric families
when scraped. The one exception is the store, which reports once per committed batch (not per
message) through :meth:`StoreMetrics.on_batch`, possibly from its writer thread; Prometheus
histograms are thread-safe, so it uses them directly.

Every registry is the application's own (no module-level state), so two hubs in one process,
as in tests, never share a counter. Label values come from bounded, hub-defined sets (message
types, error codes, session states and statuses); a value outside them is reported as
``other``, so nothing a container sends, and no token, ever becomes a label.

``/metrics`` needs the hub's shared token (or an admin token; a scoped one gets 403):
Prometheus sends it with ``authorization: {credentials: <token>}`` (or ``bearer_token_file``)
in the scrape config.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tailhub import __version__
from tailhub.core.node import Node
from tailhub.core.stats import Histogram as StatsHistogram
from tailhub.engine import EngineError
from tailhub.notify import RESULTS, Notifier
from tailhub.protocol import ROUTED_TYPES, STATUSES, ErrorCode
from tailhub.server.api import ApiError, count_error, error_response, require_admin
from tailhub.server.state import STATE
from tailhub.store.base import StoreError

__all__ = ["REGISTRY_KEY", "HubCollector", "NotifyCollector", "StoreMetrics", "setup"]

_OTHER: Final = "other"
_MESSAGE_TYPES: Final = tuple(sorted(ROUTED_TYPES))
_ERROR_CODES: Final = tuple(code.value for code in ErrorCode)
_STORE_SECONDS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_SIZES: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

REGISTRY_KEY: Final = web.AppKey("tailhub_metrics_registry", CollectorRegistry)


class StoreMetrics:
    """Store write latency and batch sizes, observed once per committed batch.

    Built before the store (whose constructor takes :meth:`on_batch`), registered on the
    application's registry by :func:`setup`.
    """

    def __init__(self) -> None:
        self.write_seconds = Histogram(
            "tailhub_store_write_seconds",
            "Seconds one history batch took to write and commit.",
            buckets=_STORE_SECONDS,
            registry=None,
        )
        self.batch_messages = Histogram(
            "tailhub_store_batch_messages",
            "Messages per committed history batch.",
            buckets=_BATCH_SIZES,
            registry=None,
        )

    def on_batch(self, rows: int, seconds: float) -> None:
        """Record one committed batch of ``rows`` messages that took ``seconds``.

        Safe to call from any thread.
        """
        self.write_seconds.observe(seconds)
        self.batch_messages.observe(rows)

    def collect(self) -> Iterable[Metric]:
        yield from self.write_seconds.collect()
        yield from self.batch_messages.collect()


def _bounded(counts: Counter[str], allowed: Iterable[str]) -> dict[str, int]:
    """``counts`` over ``allowed`` (zeros included, so every series exists from the start)."""
    values = dict.fromkeys(allowed, 0)
    for key, count in counts.items():
        label = key if key in values else _OTHER
        values[label] = values.get(label, 0) + count
    return values


def _histogram(name: str, documentation: str, source: StatsHistogram) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    for bound, count in zip(source.bounds, source.counts, strict=False):
        cumulative += count
        buckets.append((repr(float(bound)), cumulative))
    buckets.append(("+Inf", source.count))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=source.total)


class HubCollector:
    """Reads the node's counters, connections and sessions at scrape time.

    Runs on the event loop (the scrape handler calls it), so what it reads is consistent:
    nothing changes while it runs.
    """

    def __init__(self, node: Node) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        node = self._node
        stats = node.stats
        hub = node.hub

        info = GaugeMetricFamily("tailhub_info", "The hub's version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily(
            "tailhub_start_time_seconds", "Unix time the hub started.", value=node.started_at
        )

        connections = hub.connections.values()
        yield GaugeMetricFamily(
            "tailhub_connections",
            "Open connections: WebSocket, and HTTP log followers.",
            value=len(hub.connections),
        )
        yield CounterMetricFamily(
            "tailhub_connections_opened", "Connections opened.", value=stats.connections_opened
        )
        yield CounterMetricFamily(
            "tailhub_connections_closed", "Connections closed.", value=stats.connections_closed
        )
        yield GaugeMetricFamily(
            "tailhub_subscriptions",
            "Subscriptions held (containers, patterns, and those still sending backlog).",
            value=sum(c.subscription_count + len(c.catching_up) for c in connections),
        )

        sessions = GaugeMetricFamily(
            "tailhub_sessions",
            "Sessions by state (active, or ended and still listed) and last reported status.",
            labels=["state", "status"],
        )
        by_state: dict[str, Counter[str]] = {"active": Counter(), "ended": Counter()}
        for (state, status), count in node.session_counts.items():
            by_state[state][status] += count
        for state, group in by_state.items():
            for status, count in _bounded(group, STATUSES).items():
                sessions.add_metric([state, status], count)
        yield sessions
        yield CounterMetricFamily(
            "tailhub_sessions_started",
            "Sessions started since the hub started.",
            value=stats.sessions_started,
        )
        ended = CounterMetricFamily(
            "tailhub_sessions_ended", "Sessions ended, by reason.", labels=["reason"]
        )
        for reason, count in _bounded(stats.sessions_ended, ("complete", "timeout")).items():
            ended.add_metric([reason], count)
        yield ended
        yield GaugeMetricFamily(
            "tailhub_sessions_max",
            "Most sessions active at once (MAX_SESSIONS).",
            value=node.settings.max_sessions,
        )

        messages_in = CounterMetricFamily(
            "tailhub_messages_in", "Messages published and accepted, by type.", labels=["type"]
        )
        for kind, count in _bounded(stats.messages_in, _MESSAGE_TYPES).items():
            messages_in.add_metric([kind], count)
        yield messages_in
        messages_out = CounterMetricFamily(
            "tailhub_messages_out",
            "Routed messages delivered, by type (once per receiving connection).",
            labels=["type"],
        )
        for kind, count in _bounded(stats.messages_out, _MESSAGE_TYPES).items():
            messages_out.add_metric([kind], count)
        yield messages_out
        yield CounterMetricFamily(
            "tailhub_bytes_in", "Bytes of accepted messages, as stored.", value=stats.bytes_in
        )
        yield CounterMetricFamily(
            "tailhub_bytes_out", "Bytes written to connections.", value=stats.bytes_out
        )
        yield GaugeMetricFamily(
            "tailhub_store_pending_messages",
            "Messages accepted but not yet durable in history (the store's lag; acks wait).",
            value=node.not_durable(),
        )
        yield GaugeMetricFamily(
            "tailhub_store_pending_bytes",
            "Bytes of the messages accepted but not yet durable in history.",
            value=node.not_durable_bytes(),
        )
        yield CounterMetricFamily(
            "tailhub_queue_drops",
            "Frames not sent because their connection was being closed.",
            value=stats.queue_drops,
        )
        yield CounterMetricFamily(
            "tailhub_slow_closes",
            "Connections closed with 4429 for falling too far behind.",
            value=stats.slow_closes,
        )
        yield CounterMetricFamily(
            "tailhub_duplicates",
            "Published messages dropped as repeats of a producer id already stored.",
            value=stats.duplicates,
        )
        errors = CounterMetricFamily(
            "tailhub_errors", "Error replies sent, by code.", labels=["code"]
        )
        for code, count in _bounded(stats.errors, _ERROR_CODES).items():
            errors.add_metric([code], count)
        yield errors
        yield _histogram(
            "tailhub_deliver_latency_seconds",
            "Seconds from a message being received to its frames being written to subscribers.",
            stats.deliver_latency,
        )


class NotifyCollector:
    """``tailhub_notifications_total{result, destination, format}``: notices by what became
    of them. ``destination`` is the index of the ``--notify`` URL (0, 1, ...), never the URL,
    which is a secret."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def collect(self) -> Iterator[Metric]:
        notifier = self._notifier
        family = CounterMetricFamily(
            "tailhub_notifications",
            "Notifications by result (sent, retried, failed, dropped, cooldown), per "
            "destination index and format.",
            labels=["result", "destination", "format"],
        )
        for dest in notifier.destinations:
            for result in RESULTS:
                count = notifier.counts.get((result, dest.index), 0)
                family.add_metric([result, str(dest.index), dest.format], count)
        yield family


def setup(app: web.Application, store: StoreMetrics) -> CollectorRegistry:
    """Give ``app`` its own metrics registry and the ``GET /metrics`` route.

    Args:
        app: the hub application; must hold its :data:`~tailhub.server.state.STATE`.
        store: the store's batch metrics, already passed to the store.

    Returns:
        The application's registry (also kept on the app).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(app[STATE].node))
    registry.register(store)
    notifier = app[STATE].notifier
    if notifier is not None:
        registry.register(NotifyCollector(notifier))
    ProcessCollector(namespace="tailhub", registry=registry)
    app[REGISTRY_KEY] = registry

    async def metrics(request: web.Request) -> web.StreamResponse:
        try:
            require_admin(request)
        except ApiError as exc:
            count_error(request, exc.code)
            return error_response(exc.status, exc.code, exc.words)
        node = request.app[STATE].node
        with contextlib.suppress(EngineError, StoreError):
            await node.count_sessions()
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    app.router.add_get("/metrics", metrics)
    return registry
