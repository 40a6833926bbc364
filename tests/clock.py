"""The tests' clock: one present moment for every test, as a datetime and in unix seconds."""

from datetime import UTC, datetime

DAY = 86_400.0
# In the inline catalog (tests/conftest.py) `summer` has ended and `future` has not started.
NOW = datetime(2025, 1, 1, tzinfo=UTC)
NOW_SECONDS = NOW.timestamp()
