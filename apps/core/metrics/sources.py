"""What upper apps hand the scrape-time collector (apps.core imports none of them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

# Set by apps.notifications (its AppConfig.ready): the breaker state of each channel,
# "closed", "half-open" or "open".
breaker_states: Callable[[], Mapping[str, str]] | None = None


def breaker_states_source_set(read: Callable[[], Mapping[str, str]] | None) -> None:
    global breaker_states
    breaker_states = read
