"""Load profile -> scheduled actions (modules/predictive_lambda_scaling/schedule.py): pure, no synth."""

from __future__ import annotations

import pytest

from scaling_patterns.patterns.predictive_lambda_scaling.schedule import (
    ProfileError,
    ScheduledChange,
    derive_schedule,
    peak_windows,
    profile_from_csv,
    profile_from_peaks,
    render_table,
)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKDAYS = [MON, TUE, WED, THU, FRI]
EVERY_DAY = list(range(7))


def schedule(peaks, baseline=10, lead=15, gap=1):
    changes = derive_schedule(profile_from_peaks(peaks), baseline, lead_minutes=lead, merge_gap_hours=gap)
    return [(c.kind, c.cron, c.min_capacity) for c in changes]


def test_no_hour_above_the_baseline_means_no_schedule():
    assert schedule([(WEEKDAYS, [9, 10], 10)], baseline=10) == []
    assert schedule([]) == []


def test_one_peak_raises_the_minimum_a_lead_time_before_and_lowers_it_at_the_end():
    assert schedule([([WED], [14], 30)], lead=15) == [
        ("raise", "cron(45 13 ? * WED *)", 30),
        ("lower", "cron(0 15 ? * WED *)", 10),
    ]


def test_adjacent_peak_hours_merge_into_one_window_at_their_highest_level():
    assert schedule([([MON], [9, 10], 20), ([MON], [11], 35)], lead=0) == [
        ("raise", "cron(0 9 ? * MON *)", 35),
        ("lower", "cron(0 12 ? * MON *)", 10),
    ]


def test_the_same_window_on_several_days_is_one_action_with_a_day_list():
    assert schedule([(WEEKDAYS, [9, 10, 11], 40)]) == [
        ("raise", "cron(45 8 ? * MON-FRI *)", 40),
        ("lower", "cron(0 12 ? * MON-FRI *)", 10),
    ]


def test_a_peak_every_day_uses_every_day_of_the_week():
    assert schedule([(EVERY_DAY, [18], 25)], lead=30) == [
        ("raise", "cron(30 17 ? * * *)", 25),
        ("lower", "cron(0 19 ? * * *)", 10),
    ]


def test_several_peaks_separated_by_more_than_the_gap_stay_separate():
    assert schedule([(WEEKDAYS, [8, 9], 30), (WEEKDAYS, [17, 18], 50)], gap=1) == [
        ("raise", "cron(45 7 ? * MON-FRI *)", 30),
        ("lower", "cron(0 10 ? * MON-FRI *)", 10),
        ("raise", "cron(45 16 ? * MON-FRI *)", 50),
        ("lower", "cron(0 19 ? * MON-FRI *)", 10),
    ]


def test_peaks_within_merge_gap_hours_become_one_window():
    merged = schedule([([TUE], [9], 30), ([TUE], [11], 20)], gap=1, lead=0)
    assert merged == [("raise", "cron(0 9 ? * TUE *)", 30), ("lower", "cron(0 12 ? * TUE *)", 10)]
    separate = schedule([([TUE], [9], 30), ([TUE], [11], 20)], gap=0, lead=0)
    assert len(separate) == 4


def test_a_gap_shorter_than_the_lead_time_merges_so_no_raise_precedes_the_previous_lower():
    # Lower at 10:00 and raise for 11:00 at 09:30 would undo the raise: one window instead.
    assert schedule([([THU], [9], 30), ([THU], [11], 30)], gap=0, lead=90) == [
        ("raise", "cron(30 7 ? * THU *)", 30),
        ("lower", "cron(0 12 ? * THU *)", 10),
    ]


def test_a_peak_around_midnight_is_one_window_across_the_day_boundary():
    assert schedule([([FRI], [22, 23], 40), ([SAT], [0, 1], 40)], lead=15) == [
        ("raise", "cron(45 21 ? * FRI *)", 40),
        ("lower", "cron(0 2 ? * SAT *)", 10),
    ]


def test_a_lead_time_before_a_midnight_peak_moves_the_raise_to_the_previous_day():
    assert schedule([([TUE], [0, 1], 20)], lead=20) == [
        ("raise", "cron(40 23 ? * MON *)", 20),
        ("lower", "cron(0 2 ? * TUE *)", 10),
    ]


def test_a_peak_across_the_week_boundary_is_one_window_from_sunday_to_monday():
    assert schedule([([SUN], [23], 30), ([MON], [0], 30)], lead=15) == [
        ("lower", "cron(0 1 ? * MON *)", 10),
        ("raise", "cron(45 22 ? * SUN *)", 30),
    ]
    assert peak_windows(profile_from_peaks([([SUN], [23], 30), ([MON], [0], 30)]), 10,
                        lead_minutes=15, merge_gap_hours=0)[0].start == SUN * 24 + 23


def test_a_monday_midnight_peak_is_raised_on_sunday_evening():
    assert schedule([([MON], [0], 20)], lead=30)[1] == ("raise", "cron(30 23 ? * SUN *)", 20)


def test_weekend_days_are_listed_not_written_as_a_wrapping_range():
    changes = derive_schedule(profile_from_peaks([([SAT, SUN], [12], 20)]), 10, lead_minutes=0, merge_gap_hours=0)
    assert {c.cron for c in changes} == {"cron(0 12 ? * SUN,SAT *)", "cron(0 13 ? * SUN,SAT *)"}


def test_different_levels_on_different_days_are_separate_actions_with_distinct_keys():
    changes = derive_schedule(profile_from_peaks([(WEEKDAYS, [9], 40), ([SAT], [9], 20)]), 10,
                              lead_minutes=0, merge_gap_hours=0)
    raises = {c.day_expression: c.min_capacity for c in changes if c.kind == "raise"}
    assert raises == {"MON-FRI": 40, "SAT": 20}
    assert len({c.key for c in changes}) == len(changes) == 3  # one lower for all six days


def test_a_profile_above_the_baseline_all_week_is_rejected_with_the_level_to_use():
    with pytest.raises(ProfileError, match="raise the minimum to 30"):
        derive_schedule(profile_from_peaks([(EVERY_DAY, list(range(24)), 30)]), 10)


def test_windows_that_merge_around_the_whole_week_are_rejected():
    # Peaks every day at 00:00-22:00, a one-hour gap, merge_gap_hours=1: one endless window.
    with pytest.raises(ProfileError, match="cover the whole week"):
        derive_schedule(profile_from_peaks([(EVERY_DAY, list(range(23)), 30)]), 10, merge_gap_hours=1)


def test_key_and_description_are_readable():
    change = ScheduledChange("raise", (0, 1, 2, 3, 4), 8, 45, 40)
    assert change.key == "raise_mon_fri_0845"
    assert change.describe() == "MON-FRI      08:45  raise minimum to 40"
    assert ScheduledChange("lower", tuple(range(7)), 0, 0, 5).key == "lower_daily_0000"


def test_render_table_lists_every_action_with_its_cron():
    table = render_table(derive_schedule(profile_from_peaks([(WEEKDAYS, [9], 20)]), 10), "Europe/Berlin")
    assert "| MON-FRI | 08:45 | raise minimum to 20 | `cron(45 8 ? * MON-FRI *)` |" in table
    assert table.splitlines()[0] == "| days | time (Europe/Berlin) | action | cron |"


# --- CSV of observed hourly peaks ----------------------------------------------------------


def test_csv_by_day_and_hour_keeps_the_highest_observation_and_rounds_up():
    profile = profile_from_csv("day,hour,concurrency\nMon,9,20\nmon,9,31.2\ntuesday,23,7\n", "UTC")
    assert profile[MON * 24 + 9] == 32
    assert profile[TUE * 24 + 23] == 7
    assert sum(1 for value in profile if value) == 2


def test_csv_timestamps_are_converted_to_the_schedule_time_zone():
    # 2024-05-06 is a Monday; 07:00Z is 03:00 in New York (EDT) and 09:00 in Berlin (CEST).
    text = "timestamp,concurrency\n2024-05-06T07:00:00Z,40\n"
    assert profile_from_csv(text, "America/New_York")[MON * 24 + 3] == 40
    assert profile_from_csv(text, "Europe/Berlin")[MON * 24 + 9] == 40
    assert profile_from_csv("timestamp,concurrency\n2024-05-06T09:00:00+02:00,40\n", "Europe/Berlin")[MON * 24 + 9] == 40


def test_csv_timestamps_across_midnight_land_on_the_local_day():
    # Sunday 02:00Z is Saturday 22:00 in New York.
    assert profile_from_csv("timestamp,concurrency\n2024-05-12T02:00:00Z,15\n", "America/New_York")[SAT * 24 + 22] == 15


@pytest.mark.parametrize("text, message", [
    ("when,value\n1,2\n", "header must be 'day,hour,concurrency' or 'timestamp,concurrency'"),
    ("day,hour,concurrency\nfunday,9,3\n", "line 2: day must be one of"),
    ("day,hour,concurrency\nmon,24,3\n", "line 2: hour must be 0-23 (given '24')"),
    ("day,hour,concurrency\nmon,9,lots\n", "line 2: concurrency must be a number (given 'lots')"),
    ("timestamp,concurrency\nyesterday,3\n", "line 2: timestamp must be ISO 8601"),
    ("timestamp,concurrency\n", "no data rows"),
])
def test_csv_problems_name_the_line_and_the_value(text, message):
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        profile_from_csv(text, "UTC")
