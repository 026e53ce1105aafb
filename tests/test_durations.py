"""Times for people to read (editor.core.durations)."""
import pytest

from editor.cli.outputs import format_eta
from editor.core.durations import clock_duration, rough_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0m00s"), (59.6, "1m00s"), (185, "3m05s"), (3599.4, "59m59s"), (3600, "1h00m"),
    (5239, "1h27m"), (3 * 86400 + 75, "72h01m"), (-3, "0m00s"),
])
def test_a_clock_duration_is_minutes_and_seconds_below_an_hour(seconds, text):
    assert clock_duration(seconds) == text


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), float("-inf")])
def test_no_rate_yet_is_dashes_not_a_crash(seconds):
    # int(nan) raised ValueError inside a progress line
    assert clock_duration(seconds) == "--"
    assert format_eta(seconds) == "ETA --"


def test_the_cli_progress_eta_is_the_clock_with_its_label():
    assert format_eta(None) == "ETA --" and format_eta(5239) == "ETA 1h27m"


@pytest.mark.parametrize(("seconds", "text"), [
    (42, "42 s"), (600, "10 min"), (3 * 3600, "3.0 h"), (66 * 86400, "66 days"),
    (1234 * 86400, "1,234 days"),
])
def test_a_rough_duration_is_in_the_unit_a_person_plans_with(seconds, text):
    assert rough_duration(seconds) == text
