"""Sustained runs: the duration grammar and the throttling analysis on synthetic series
(hand-computed answers)."""

import pytest

from edgebench.errors import ConfigError
from edgebench.harness.sustain import parse_duration, rolling_median, summarize


@pytest.mark.parametrize("text, seconds", [
    ("10m", 600.0), ("90s", 90.0), ("1h", 3600.0), ("1h30m", 5400.0), ("2.5m", 150.0),
    ("45", 45.0), ("0.5", 0.5), (" 10M ", 600.0), ("24h", 86400.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m", "10m10m", "-5m", "0", "0s", "25h",
                                  "nan", "inf", "10 m", "1h-30m", "1e9"])
def test_nonsense_durations_are_one_line_errors(text):
    with pytest.raises(ConfigError, match=r"^--sustain: expected a duration") as e:
        parse_duration(text)
    assert "\n" not in str(e.value)


def test_rolling_median():
    assert rolling_median([1, 5, 3, 4, 2, 10, 0], k=3) == [1, 3, 3, 4, 3, 4, 2]


def test_steady_series_has_no_onset():
    t = [10.0 * (i + 1) for i in range(30)]  # 30 windows of 10 s: 5 min
    s = summarize(t, [20.0] * 30)
    assert (s.first_minute_tok_s, s.steady_tok_s, s.throttle_onset_s, s.windows) == \
        (20.0, 20.0, None, 30)


def test_throttling_from_three_minutes_on():
    # 10 s windows; 20 tok/s for 3 min, then 15 tok/s (25 % below) to the end at 6 min.
    t = [10.0 * (i + 1) for i in range(36)]
    v = [20.0] * 18 + [15.0] * 18
    s = summarize(t, v)
    assert s.first_minute_tok_s == 20.0 and s.steady_tok_s == 15.0
    # rolling median over 5 windows turns to 15 at the third low window: the 21st, ending at
    # 210 s, and stays there
    assert s.throttle_onset_s == 210.0


def test_a_dip_that_recovers_is_no_onset():
    t = [10.0 * (i + 1) for i in range(30)]
    v = [20.0] * 10 + [15.0] * 10 + [20.0] * 10
    assert summarize(t, v).throttle_onset_s is None


def test_one_slow_window_is_no_onset_and_a_drop_of_under_ten_percent_neither():
    t = [10.0 * (i + 1) for i in range(30)]
    assert summarize(t, [20.0] * 29 + [5.0]).throttle_onset_s is None  # median of 5 ignores it
    assert summarize(t, [20.0] * 15 + [18.5] * 15).throttle_onset_s is None  # -7.5 %


def test_first_minute_and_steady_state_windows():
    # windows end at 30, 60, 90 ... 300 s: the first minute is the windows ending at 30 and 60;
    # the steady state the last 20 % of 10 windows: the last 2
    t = [30.0 * (i + 1) for i in range(10)]
    v = [22.0, 20.0, 19.0, 19.0, 18.0, 18.0, 17.0, 17.0, 16.0, 14.0]
    s = summarize(t, v)
    assert s.first_minute_tok_s == 21.0 and s.steady_tok_s == 15.0
    # limit 18.9: rolling medians 22, 21, 20, 19.5, 19, 19, 18, 18, 17, 17 -> below from the
    # 7th window (ends at 210 s) on
    assert s.throttle_onset_s == 210.0


def test_a_first_window_longer_than_a_minute_is_the_first_minute():
    s = summarize([90.0, 180.0], [12.0, 11.0])
    assert s.first_minute_tok_s == 12.0 and s.steady_tok_s == 11.0


@pytest.mark.parametrize("t, v", [([], []), ([1.0], [])])
def test_no_windows_is_an_error(t, v):
    with pytest.raises(ValueError):
        summarize(t, v)
