"""Tracing (OpenTelemetry, apps/core/tracing.py): on only when the standard OTEL_* variables
ask for it. The SDK and the exporter read the rest of them (OTEL_SERVICE_NAME,
OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*...) themselves; see
docs/observability.md."""

from django.core.exceptions import ImproperlyConfigured

from platform_site.env import env_bool, env_list, env_str

# The exporters, comma-separated: `otlp` (protobuf over HTTP), `console` (one JSON line
# per span on standard output) or `none`. Unset, an OTLP endpoint alone means `otlp`.
_otlp_endpoint = env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env_str(
    "OTEL_EXPORTER_OTLP_ENDPOINT"
)
TRACING_EXPORTERS = [
    name.lower()
    for name in env_list("OTEL_TRACES_EXPORTER", ["otlp"] if _otlp_endpoint else [])
    if name.lower() != "none"
]
if set(TRACING_EXPORTERS) - {"otlp", "console"}:
    raise ImproperlyConfigured(
        f"OTEL_TRACES_EXPORTER must list otlp, console or none (got {TRACING_EXPORTERS!r})."
    )
_otlp_protocol = env_str("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env_str(
    "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
)
if "otlp" in TRACING_EXPORTERS and _otlp_protocol != "http/protobuf":
    raise ImproperlyConfigured(
        f"OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is installed (got {_otlp_protocol!r})."
    )
# OTEL_SDK_DISABLED=true turns it all off, whatever else is set.
TRACING_ENABLED = bool(TRACING_EXPORTERS) and not env_bool("OTEL_SDK_DISABLED", False)
