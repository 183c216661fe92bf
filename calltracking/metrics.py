"""Prometheus metrics of one service process (its own registry, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class AmiEventCounts(Collector):
    """`calltracking_ami_events_total`, read from each PBX connection's own count when scraped: the AMI
    dispatcher must not take a metric's lock for every event."""

    def __init__(self) -> None:
        self._sources: dict[str, Callable[[], int]] = {}

    def watch(self, pbx: str, count: Callable[[], int]) -> None:
        self._sources[pbx] = count

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("calltracking_ami_events", "AMI events received", labels=["pbx"])
        for pbx, count in sorted(self._sources.items()):
            family.add_metric([pbx], count())
        yield family


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "calltracking_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.ami_events = AmiEventCounts()
        self.registry.register(self.ami_events)
        self.calls = Counter(
            "calltracking_calls_total",
            "Calls written to the database",
            ["pbx", "status"],
            registry=self.registry,
        )
        self.spool_depth = Gauge(
            "calltracking_spool_depth", "Calls accepted but not yet in the database", registry=self.registry
        )
        self.pbx_connected = Gauge(
            "calltracking_pbx_connected", "1 when the AMI session is up", ["pbx"], registry=self.registry
        )
        self.pbx_listening = Gauge(
            "calltracking_pbx_listening",
            "1 when this process listens to the PBX, 0 on a hot standby (another process holds its lease)",
            ["pbx"],
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "calltracking_webhook_failures_total", "Failed webhook delivery attempts", registry=self.registry
        )
        self.recordings = Counter(
            "calltracking_recordings_total",
            "Recordings the worker finished, by outcome (ready, empty, missing, quarantined, refused)",
            ["pbx", "state"],
            registry=self.registry,
        )
        self.recordings_missing = Counter(
            "calltracking_recordings_missing_total",
            "Calls whose recording file never appeared (alert on any increase)",
            ["pbx"],
            registry=self.registry,
        )
        self.tracking_pool_exhausted = Counter(
            "calltracking_tracking_pool_exhausted_total",
            "Number requests answered with the fallback number: every pool number was held (add numbers)",
            registry=self.registry,
        )
        self.transcription_jobs = Gauge(
            "calltracking_transcription_jobs",
            "Transcription jobs by state (pending, done, dead, unavailable), read from the database",
            ["state"],
            registry=self.registry,
        )
        self.transcriptions = Counter(
            "calltracking_transcriptions_total",
            "Transcription attempts by outcome (done, retry, dead, unavailable) in this process",
            ["outcome"],
            registry=self.registry,
        )
        self.transcription_audio_seconds = Counter(
            "calltracking_transcription_audio_seconds_total",
            "Seconds of recorded audio transcribed by this process (throughput)",
            registry=self.registry,
        )
