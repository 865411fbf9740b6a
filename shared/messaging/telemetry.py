"""OpenTelemetry tracing: one trace per request, a span per stage (DESIGN.md §7).

FastStream's Kafka telemetry middleware reads the W3C ``traceparent`` header of each
input and writes it on each output, so the spans of all stages join one trace. Spans
are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; without
it the context still travels in the headers but nothing is exported or sent anywhere.
"""

from __future__ import annotations

import os

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["make_tracer_provider", "telemetry_middleware"]


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
