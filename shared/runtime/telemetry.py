"""OpenTelemetry tracing: one trace per request, a span per stage (DESIGN.md §7).

FastStream's Kafka telemetry middleware reads the W3C ``traceparent`` header of each
input and writes it on each output, so the spans of all stages join one trace. A batch
consumer is the exception: FastStream roots each batch in a new trace and only links the
records' traces, so batch stages add ``RecordSpans``: a span per record continued from the
record's own ``traceparent``, current while that record's outputs are published. Spans
are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; without
it the context still travels in the headers but nothing is exported or sent anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace import TracerProvider as TracerProviderApi
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.runtime.records import ReceivedRecord

__all__ = ["RecordSpans", "make_tracer_provider", "telemetry_middleware"]

_PROPAGATOR = TraceContextTextMapPropagator()


def make_tracer_provider(service_name: str) -> TracerProvider:
    """A tracer provider for one service; with an OTLP exporter when the standard env variable asks for one."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def telemetry_middleware(provider: TracerProvider) -> KafkaTelemetryMiddleware:
    """FastStream's middleware: a span per consumed and per published message, context in the headers."""
    return KafkaTelemetryMiddleware(tracer_provider=provider, include_messages_counters=False)


class RecordSpans:
    """A ``<topic> process`` span per record of a batch, in the trace the record's ``traceparent`` names.

    Example:
        >>> spans = RecordSpans(provider)
        >>> with spans.scope(record, started_at):
        ...     await publish(output)   # the output's traceparent continues the record's trace

    """

    def __init__(self, provider: TracerProviderApi) -> None:
        self.tracer = provider.get_tracer("llmops.messaging")

    @contextmanager
    def scope(self, record: ReceivedRecord, started_at: datetime) -> Iterator[None]:
        """The record's span, current for the block; it starts when the batch did (the record waited for it)."""
        parent = _PROPAGATOR.extract(record.header_map())
        with self.tracer.start_as_current_span(
            f"{record.topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            start_time=int(started_at.timestamp() * 1e9),
            attributes={
                "messaging.system": "kafka",
                "messaging.operation": "process",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
            },
        ):
            yield
