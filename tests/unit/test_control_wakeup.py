"""Choosing the control signals: the fallback poll, and the channels a signal goes through."""

from __future__ import annotations

import pytest
from django.test import override_settings

from djtasks.control.wakeup import (
    FALLBACK_POLL_ENV,
    FALLBACK_POLL_SECONDS,
    Signals,
    fallback_poll_seconds,
)
from djtasks.exceptions import ConfigurationError

REDIS_URL = "redis://127.0.0.1:6379/0"  # never connected to here


def test_the_fallback_poll_is_five_seconds_unless_the_environment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FALLBACK_POLL_ENV, raising=False)
    assert fallback_poll_seconds() == FALLBACK_POLL_SECONDS == 5.0
    monkeypatch.setenv(FALLBACK_POLL_ENV, "3600")
    assert fallback_poll_seconds() == 3600.0


@pytest.mark.parametrize("text", ["0", "-1", "soon", "inf", "nan"])
def test_a_fallback_poll_that_is_not_a_positive_number_is_refused(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FALLBACK_POLL_ENV, text)
    with pytest.raises(ConfigurationError, match=f"{FALLBACK_POLL_ENV}="):
        fallback_poll_seconds()


def test_signals_go_through_every_broker_whose_workers_share_the_results_database() -> None:
    def backend(url: str, results: str = "postgresql") -> dict:
        return {"BACKEND": "djtasks.backend.DjTasksBackend",
                "OPTIONS": {"BROKER_URL": url, "RESULTS_DATABASE": results, "KEY_PREFIX": "signals"}}

    with override_settings(TASKS={"orm": backend("django://postgresql"), "redis": backend(REDIS_URL),
                                  "redis-too": backend(REDIS_URL), "elsewhere": backend("django://default", "default"),
                                  "memory": backend("memory://x")}):
        keys = [channel.key for channel in Signals.of_database("postgresql").channels]
        assert keys == [("postgresql", "postgresql"), ("redis", REDIS_URL, "signals")]
        assert Signals.of_database("default").channels == []  # SQLite: everyone polls
