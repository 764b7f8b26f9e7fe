"""`make simulate` (tooling/simulate): policy models against hand-computed cases, traces, diff, CLI.

Fast and pure: no synth fixture, no cdktf import. Settings go through the real loader
(``load_config(data=...)``), so every case is "these settings, this load -> this capacity".
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.config import load_config
from scaling_patterns.registry import PATTERNS
from scaling_patterns.simulation.models import Minute, QueueWorkload, Step, TargetTracking, simulate
from scaling_patterns.simulation.scenario import SimulationError, scenario_for
from scaling_patterns.simulation.traces import Trace, TraceError, parse_trace, read_trace
from tooling.simulate import __main__ as cli
from tooling.simulate.base import settings_at_ref
from tooling.simulate.make_traces import generate
from tooling.simulate.report import Options, diff_report, queue_waits, run_stack, simulate_stacks, stack_markdown

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2024, 5, 6, 0, 0, tzinfo=timezone.utc)  # a Monday


def settings(stack: str, data: dict) -> object:
    return load_config(data={stack: data}).stacks[stack]


def trace(arrivals: list[float], start: datetime = START, name: str = "t") -> Trace:
    return Trace(name=name, start=start, arrivals=tuple(float(a) for a in arrivals))


def desired(timeline) -> list[int]:
    return [int(v) for v in timeline.series("desired")]


class VisibleIsTheTrace:
    """Test workload: the trace *is* the queue depth each minute (nothing is served), so the
    alarm policy sees exactly the samples written in the test."""

    def step(self, backlog: float, arrivals: float, serving: int) -> Step:
        return Step(served=0.0, backlog=arrivals, throughput=0.0)


class Scripted:
    """Test policy: set the capacity at given minutes."""

    def __init__(self, plan: dict[int, int]):
        self.plan = plan

    def decide(self, minute: Minute) -> int:
        return self.plan.get(minute.index, minute.desired)


# ----------------------------------------------------------------------------------------
# Alarm steps (queue-depth-scaling, the reference's policy)
# ----------------------------------------------------------------------------------------


def test_reference_alarm_policy_plus_two_minus_one_gives_the_hand_computed_capacity_curve():
    s = settings("queue-depth-scaling", {"scaling": {"type": "alarm_steps"}, "fleet": {"min_size": 1, "max_size": 10}})
    scenario = scenario_for("queue-depth-scaling", s)
    assert scenario.policy[0].startswith("alarm: visible jobs (Sum, 60 s) >= 10 for 2 periods -> +2 workers; visible + in flight "
                                         "<= 2 and no worker starting (in service >= desired) -> -1")
    # Visible messages: 0 for minutes 0-1, 20 for minutes 2-19, 0 for minutes 20-39.
    load = [0] * 2 + [20] * 18 + [0] * 20
    timeline = replace(scenario, workload=VisibleIsTheTrace()).run(trace(load))
    # Sum over 60 s = the minute's sample; 2 evaluation periods; cooldown 300 s = 5 minutes;
    # a decision at the end of minute t counts from minute t+1.
    #  t=1: [0, 0] <= 2 -> -1, but 1 is the minimum: no change, so no cooldown starts
    #  t=3: [20, 20] >= 10 -> +2 = 3 (from minute 4); cooldown until the end of minute 8
    #  t=8: still in ALARM -> 5 (from 9); t=13 -> 7 (from 14); t=18 -> 9 (from 19); next allowed t=23
    #  t=21: [0, 0] and the last two workers serve from minute 21 on (in service >= desired only
    #        from t=21): scale-in ALARM at t=22, but cooling down until t=23
    #  t=23: -1 -> 8 (from 24); t=28 -> 7 (from 29); t=33 -> 6 (from 34); t=38 -> 5 (from 39)
    expected = [1] * 4 + [3] * 5 + [5] * 5 + [7] * 5 + [9] * 5 + [8] * 5 + [7] * 5 + [6] * 5 + [5]
    assert desired(timeline) == expected


def test_alarm_steps_serve_a_single_job_at_an_empty_group_instead_of_removing_the_booting_worker():
    # Defaults (min 0, warm-up 120 s, 30 s a job): one job arrives at an empty group.
    s = settings("queue-depth-scaling", {"scaling": {"type": "alarm_steps"}})
    scenario = scenario_for("queue-depth-scaling", s)
    one_job = trace([1] + [0] * 19)
    timeline = scenario.run(one_job)
    # t=0: wake -> 1 (from minute 1, serving from 3; wake cooldown 60 s). The scale-in alarm
    # (1 job <= 2) breaches at t=0 (desired 0 = in service 0) but not at t=1, 2 (a worker is
    # starting): never two breaches in a row until the worker serves. t=3: the job is done;
    # t=3, 4 breach -> -1 from minute 5.
    assert desired(timeline) == [0, 1, 1, 1, 1] + [0] * 15
    assert timeline.series("served")[3] == 1.0 and timeline.series("backlog")[-1] == 0.0
    # The reference's scale-in alarm (visible <= 2) takes the booting worker away at t=1, and
    # its 300 s cooldown holds off the wake alarm: the worker never starts, the job waits on.
    reference = scenario.run(one_job, scenario.comparison.policies)
    assert desired(reference)[:8] == [0, 1, 0, 0, 0, 0, 0, 1]
    assert sum(reference.series("served")) == 0.0 and reference.series("backlog")[-1] == 1.0


def test_alarm_steps_scale_in_counts_jobs_in_flight():
    # Three busy workers and nothing waiting: the reference's alarm (visible 0 <= 2) removes one
    # every cooldown although all three are working; jobs waiting + in flight = 3 > 2 keeps them.
    s = settings("queue-depth-scaling", {"scaling": {"type": "alarm_steps"},
                                         "fleet": {"min_size": 1, "max_size": 4, "default_instance_warmup_seconds": 0}})
    scenario = scenario_for("queue-depth-scaling", s)
    steady = trace([6] * 30)  # 3 workers x 2 jobs a minute
    start = replace(scenario, initial=3)
    assert desired(start.run(steady)) == [3] * 30
    reference = desired(start.run(steady, scenario.comparison.policies))
    assert reference[:3] == [3, 3, 2]  # t=1: two datapoints of 0 visible -> -1


def test_in_flight_jobs_are_the_busy_workers():
    step = QueueWorkload(per_unit_per_minute=2.0).step(backlog=0.0, arrivals=3.0, serving=2)
    assert (step.served, step.in_flight) == (3.0, 1.5)  # two workers, 4 a minute, 3 done: 1.5 busy on average
    assert QueueWorkload(2.0).step(backlog=10.0, arrivals=0.0, serving=2).in_flight == 2.0


def test_default_backlog_metric_counting_in_flight_stops_the_overnight_flapping_on_diurnal():
    # Default settings (min 0); the shipped diurnal trace at its example scale (x0.05).
    scenario = scenario_for("queue-depth-scaling", settings("queue-depth-scaling", {}))
    day = read_trace(ROOT / "traces" / "diurnal.csv").scaled(0.05)
    now = run_stack(scenario, [day])
    (deployed,), (visible_only,) = now.runs, now.compared
    # Measured: 210 actions a day with AWS's visible-only metric (0 <-> 1 every few minutes
    # overnight), 82 with in-flight jobs counted (all of them daytime target tracking 1..4).
    assert visible_only.metrics.scaling_actions == pytest.approx(210, abs=10)
    assert deployed.metrics.scaling_actions == pytest.approx(82, abs=10)
    night = deployed.timeline.minutes[2:480]  # 00:02-08:00: one worker, never 0
    assert {m.desired for m in night} == {1}
    assert sum(1 for a, b in zip(visible_only.timeline.minutes[2:480], visible_only.timeline.minutes[3:480])
               if a.desired != b.desired) > 100
    # No job waits forever: every minute's backlog is worked off before the trace ends, within 6 minutes.
    waits = queue_waits(deployed.timeline.series("backlog"), deployed.timeline.series("throughput"))
    assert not any(censored for _, censored in waits[:-10])
    assert max(seconds for seconds, _ in waits) <= 6 * 60
    assert deployed.metrics.minutes_above_goal < visible_only.metrics.minutes_above_goal


def test_report_shows_scaling_actions_a_day_visible_only_then_with_in_flight():
    run = run_stack(scenario_for("queue-depth-scaling", settings("queue-depth-scaling", {})),
                    [read_trace(ROOT / "traces" / "diurnal.csv").scaled(0.05)])
    markdown = stack_markdown(run)
    assert "Each cell: visible only (AWS's example) -> visible + in flight (deployed), same traces." in markdown
    assert "| trace | scaling actions a day | minutes wait > 5.0 min | peak wait | worker-hours |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| diurnal x0.05 |") and "->" in line)
    before, after = (int(n) for n in re.match(r"\| diurnal x0.05 \| (\d+) -> \*\*(\d+)\*\*", row).groups())
    assert (before, after) == (run.compared[0].metrics.scaling_actions, run.runs[0].metrics.scaling_actions)


def test_backlog_target_tracking_keeps_a_booting_worker_and_a_busy_one():
    # min 0, warm-up 120 s, 2 jobs a minute per worker; 1 job a minute for 40 minutes, then nothing.
    scenario = scenario_for("queue-depth-scaling", settings("queue-depth-scaling", {}))
    timeline = scenario.run(trace([1] * 40 + [0] * 30))
    # The worker woken at t=0 serves from minute 3 (no scale-in while it warms up although the
    # low alarm has 15 minutes below 9 at t=14); busy half of each minute (0.5 jobs in flight),
    # it holds ceil(1 x 0.5 / 10) = 1 while jobs come. t=40: nothing waiting or in flight -> 0.
    assert desired(timeline) == [0] + [1] * 40 + [0] * 29
    # AWS's metric: each minute that ends with an empty queue reads 0, and the busy worker goes.
    visible_only = desired(scenario.run(trace([1] * 40 + [0] * 30), scenario.comparison.policies))
    assert visible_only[:22] == [0] + [1] * 14 + [0] + [1] * 5 + [0]


def _minute(index: int, desired: int, serving: int) -> Minute:
    return Minute(index=index, arrivals=0.0, served=0.0, backlog=0.0, throughput=0.0, desired=desired, serving=serving,
                  minimum=0, maximum=4)


@pytest.mark.parametrize("hold, expected", [(True, [2, 0]), (False, [0, 0])])
def test_ec2_target_tracking_does_not_scale_in_while_a_worker_warms_up(hold, expected):
    # 14 minutes at metric 0 with one worker; then a second one is starting (desired 2, serving 1).
    # AWS blocks target-tracking scale-in until new instances finish warming up.
    policy = TargetTracking(10.0, lambda m: 0.0, hold_scale_in_while_warming=hold)
    assert [policy.decide(_minute(t, 1, 1)) for t in range(14)] == [1] * 14
    assert [policy.decide(_minute(14, 2, 1)), policy.decide(_minute(15, 2, 2))] == expected


def test_alarm_statistic_over_a_longer_period_sums_the_minute_samples():
    # Sum over 300 s of a queue holding 3 messages is 15 >= 10: the reference's Sum statistic
    # with a 5-minute period scales out on a queue that never reaches the threshold.
    s = settings("queue-depth-scaling", {"scaling": {"type": "alarm_steps", "period_seconds": 300, "evaluation_periods": 1},
                                         "fleet": {"min_size": 1, "max_size": 10}})
    timeline = replace(scenario_for("queue-depth-scaling", s), workload=VisibleIsTheTrace()).run(trace([3] * 10))
    # First datapoint at the end of minute 4 (samples 0-4); +2 from minute 5; cooldown 300 s.
    assert desired(timeline) == [1] * 5 + [3] * 5


# ----------------------------------------------------------------------------------------
# Target tracking
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("load, expected", [(250, 5), (130, 3), (60, 1)])
def test_request_count_target_tracking_converges_to_ceil_load_over_target(load, expected):
    s = settings("inference-load-balancing", {"requests_per_target_per_minute": 60.0,
                                              "fleet": {"min_size": 1, "max_size": 10, "default_instance_warmup_seconds": 0}})
    scenario = scenario_for("inference-load-balancing", s, {"seconds_per_request": 0.1})
    timeline = scenario.run(trace([load] * 60))
    # 3 minutes above 60 per target -> ceil(1 * load / 60); then load/n sits between 90% of the
    # target and the target (or scale-in proposes the same n), so it stays.
    assert desired(timeline)[-1] == expected
    if expected > 1:
        assert desired(timeline) == [1, 1, 1] + [expected] * 57


def test_backlog_target_tracking_wakes_from_zero_and_warm_up_delays_the_first_worker():
    # Defaults: min 0, warm-up 120 s, 30 s per job (2 a minute), target 10 jobs per worker.
    scenario = scenario_for("queue-depth-scaling", settings("queue-depth-scaling", {}))
    timeline = scenario.run(trace([5] + [0] * 19))
    # t=0: 5 visible, desired 0 -> wake alarm sets 1 (from minute 1), serving from minute 3;
    # 15 minutes below 9 jobs per worker (t=0..14) -> scale in to ceil(1 * 0 / 10) = 0 from minute 15.
    assert desired(timeline) == [0] + [1] * 14 + [0] * 5
    assert timeline.series("serving")[:5] == [0, 0, 0, 1, 1]
    assert timeline.series("backlog")[:6] == [5, 5, 5, 3, 1, 0]
    metrics_wait = queue_waits(timeline.series("backlog"), timeline.series("throughput"))
    # The 5th job: minutes 1-2 serve nothing, 3 and 4 serve 2 each, the last one in half of minute 5.
    assert metrics_wait[0] == (pytest.approx(4.5 * 60), False)


def test_provisioned_concurrency_counts_spillover_and_tracks_utilization():
    s = settings("predictive-lambda-scaling", {})  # 10 provisioned, 10..100, target 0.7, out cooldown 60 s
    scenario = scenario_for("predictive-lambda-scaling", s, {"seconds_per_invocation": 6.0})
    timeline = scenario.run(trace([150] * 20))
    # 150 a minute x 6 s = 15 concurrent; 10 provisioned -> 5/15 of 150 = 50 spill each minute.
    # t=2: utilization 1.0 for 3 minutes -> ceil(10 / 0.7) = 15 from minute 3, ready at 5 (120 s);
    # t=5: 15/15 = 1.0 -> ceil(15 / 0.7) = 22 from minute 6; 15/22 = 0.68 stays between 0.63 and 0.7.
    assert desired(timeline) == [10] * 3 + [15] * 3 + [22] * 14
    assert timeline.series("spillover") == [50.0] * 5 + [0.0] * 15


def test_scheduled_action_raises_the_minimum_at_the_right_minute():
    s = settings("predictive-lambda-scaling", {"schedule": {"timezone": "Europe/Berlin", "lead_minutes": 15,
                                                            "peaks": [{"hours": [9], "concurrency": 40}]}})
    scenario = scenario_for("predictive-lambda-scaling", s)
    # Raise to 40 at 08:45 and back to 10 at 10:00 Berlin time = 06:45 and 08:00 UTC in May (UTC+2).
    timeline = scenario.run(trace([0] * 120, start=datetime(2024, 5, 6, 6, 30, tzinfo=timezone.utc)))
    assert timeline.series("minimum") == [10] * 15 + [40] * 75 + [10] * 30
    # The raise lifts the capacity in its own minute; after the lower, target tracking (idle for
    # more than 15 minutes, no scale-in yet) scales in at the end of minute 90.
    assert desired(timeline) == [10] * 15 + [40] * 76 + [10] * 29


def test_warm_up_delays_service_of_added_capacity():
    timeline = simulate([30.0] * 6, initial=1, minimum=1, maximum=4, warmup_minutes=2,
                        workload=QueueWorkload(10.0), policies=[Scripted({0: 2})])
    assert timeline.series("desired") == [1, 2, 2, 2, 2, 2]
    assert timeline.series("serving") == [1, 1, 1, 2, 2, 2]  # added at minute 1, serves from 3
    assert timeline.series("served") == [10, 10, 10, 20, 20, 20]
    assert timeline.series("backlog") == [20, 40, 60, 70, 80, 90]


def test_llm_scaler_reuses_the_lambda_decision_and_scales_in_after_traffic_stops():
    scenario = scenario_for("llm-request-scaling", settings("llm-request-scaling", {}))  # 60/instance, window 5, cooldown 300 s
    timeline = scenario.run(trace([120] * 10 + [0] * 20))
    # Rate = sum of the last 5 minutes / 5: 24, 48, 72 -> ceil(72 / 60) = 2 at the end of minute 2.
    # The schedule runs the scaler every minute, requests or not: after traffic stops (minute 10)
    # the window empties, 96, 72, 48 -> 1 at the end of minute 12 (600 s after the scale-out > 300 s).
    assert desired(timeline) == [1, 1, 1] + [2] * 10 + [1] * 17


def test_llm_scaler_is_back_at_the_minimum_after_the_shipped_stop_trace_goes_quiet():
    scenario = scenario_for("llm-request-scaling", settings("llm-request-scaling", {}))
    d = desired(scenario.run(read_trace(ROOT / "traces" / "stop.csv")))  # 120 a minute for an hour, then nothing
    assert d[59] > 1  # scaled out while requests arrived
    # Window (5 min) + cooldown (300 s) after the last request, the scaler is at the minimum and stays there.
    assert d[70:] == [1] * (len(d) - 70)


def test_queue_wait_is_the_fifo_time_to_work_off_the_backlog():
    # 20 waiting at the end of minute 0, 10 a minute from then on: gone after two more minutes.
    assert queue_waits([20, 10, 0], [10, 10, 10])[0] == (pytest.approx(120.0), False)
    assert queue_waits([0, 0], [5, 5]) == [(0.0, False), (0.0, False)]
    # Never worked off by the end of the trace: a lower bound.
    assert queue_waits([5, 5, 5], [0, 0, 0])[0] == (120.0, True)


# ----------------------------------------------------------------------------------------
# Every stack is simulated
# ----------------------------------------------------------------------------------------


def test_every_registered_stack_has_a_scenario_that_runs_on_its_defaults():
    assert all(spec.simulation for spec in PATTERNS)
    config = load_config(data={})
    runs = simulate_stacks(config.stacks, [spec.name for spec in PATTERNS], [trace([0] * 5 + [100] * 20)], Options())
    for name, run in runs.items():
        assert run.runs[0].metrics.minutes == 25, name
        assert run.runs[0].metrics.capacity_hours > 0, name


def test_unknown_assumption_is_an_error_naming_the_known_ones():
    with pytest.raises(SimulationError, match=r"--assume inference-load-balancing.seconds_per_job: unknown assumption "
                                              r"\(known: latency_goal_seconds, seconds_per_request\)"):
        scenario_for("inference-load-balancing", settings("inference-load-balancing", {}), {"seconds_per_job": 2.0})
    with pytest.raises(SimulationError, match=r"--assume inference-load-balancing.seconds_per_request: must be > 0 \(given 0\)"):
        scenario_for("inference-load-balancing", settings("inference-load-balancing", {}), {"seconds_per_request": 0.0})
    with pytest.raises(SimulationError, match=r"--assume llm.x=1: unknown stack 'llm'"):
        cli.parse_options([], ["llm.x=1"], [spec.name for spec in PATTERNS])


# ----------------------------------------------------------------------------------------
# Comparing settings versions
# ----------------------------------------------------------------------------------------


def test_diff_against_base_settings_shows_changed_settings_and_metrics():
    base = load_config(data={"inference-load-balancing": {"fleet": {"max_size": 10}}})
    current = load_config(data={"inference-load-balancing": {"fleet": {"max_size": 10}, "requests_per_target_per_minute": 30.0}})
    traces = [trace([250] * 30, name="steady")]
    runs = simulate_stacks(current.stacks, [s.name for s in PATTERNS], traces, Options())
    markdown, base_runs = diff_report("main", base.stacks, current.stacks, runs, traces, Options())
    assert list(base_runs) == ["inference-load-balancing"]  # only the stack whose settings differ is re-run
    assert "| `requests_per_target_per_minute` | `60.0` | `30.0` |" in markdown
    # ceil(250 / 60) = 5 before, ceil(250 / 30) = 9 now.
    assert "| peak instances | 5 -> **9** (+80%) |" in markdown
    assert "Settings unchanged (not simulated again): `llm-request-scaling`, `queue-depth-scaling`" in markdown


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


def test_settings_at_a_git_ref(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README").write_text("x")
    _git(repo, "add", "README")
    _git(repo, "commit", "-q", "-m", "no settings yet")
    (repo / "settings.toml").write_text('[inference-load-balancing]\nrequests_per_target_per_minute = 30.0\n')
    _git(repo, "add", "settings.toml")
    _git(repo, "commit", "-q", "-m", "settings")
    (repo / "settings.toml").write_text("[inference-load-balancing]\nrequests_per_target_per_minute = 45.0\n")

    at_head = settings_at_ref("HEAD", repo / "settings.toml")
    assert at_head.existed and at_head.data == {"inference-load-balancing": {"requests_per_target_per_minute": 30.0}}
    before = settings_at_ref("HEAD~1", repo / "settings.toml")
    assert not before.existed and before.data == {}  # did not exist: defaults
    with pytest.raises(SimulationError, match=r"--base no-such-branch: no such commit, branch or tag"):
        settings_at_ref("no-such-branch", repo / "settings.toml")


def test_cli_base_writes_diff_md_and_rejects_base_settings_that_no_longer_validate(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    settings_file = repo / "settings.toml"
    settings_file.write_text("[inference-load-balancing]\nfleet = { max_size = 10 }\n")
    _git(repo, "add", "settings.toml")
    _git(repo, "commit", "-q", "-m", "base")
    settings_file.write_text("[inference-load-balancing]\nfleet = { max_size = 10 }\nrequests_per_target_per_minute = 30.0\n")
    steady = tmp_path / "steady.csv"
    steady.write_text("timestamp,arrivals\n" + "".join(f"2024-05-06T00:{m:02d}:00Z,250\n" for m in range(30)))
    monkeypatch.setenv("SCALING_PATTERNS_SETTINGS", str(settings_file))
    out = tmp_path / "out"
    args = ["--base", "HEAD", "--trace", str(steady), "--stack", "inference-load-balancing", "--no-plots", "--out", str(out)]
    assert cli.main(args) == 0
    diff = (out / "diff.md").read_text()
    assert diff.startswith("## Scaling simulation: `HEAD` -> working tree")
    assert "| peak instances | 5 -> **9** (+80%) |" in diff

    settings_file.write_text("[llm-request-scaling]\nmemory_mb = 64\n")
    _git(repo, "commit", "-q", "-am", "bad settings")
    settings_file.write_text("")
    assert cli.main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["Settings are not valid; nothing was simulated:",
                   f"  at HEAD: {settings_file}: [llm-request-scaling] memory_mb: Input should be greater than or equal to 128 (given 64)"]


def test_cli_bad_ref_is_one_clear_line(tmp_path, capsys):
    assert cli.main(["--base", "no-such-ref-for-simulate", "--stack", "queue-depth-scaling", "--no-plots", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Cannot simulate: --base no-such-ref-for-simulate: no such commit, branch or tag")


# ----------------------------------------------------------------------------------------
# Traces
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("timestamp,arrivals\n2024-05-06T00:00:00Z,3\n2024-05-06T00:01:00Z,lots\n",
     "bad.csv, line 3, column arrivals: must be a number >= 0 (given 'lots')"),
    ("timestamp,arrivals\n2024-05-06T00:00:00Z,-1\n", "bad.csv, line 2, column arrivals: must be a number >= 0 (given '-1')"),
    ("timestamp,arrivals\nmonday,3\n", "bad.csv, line 2, column timestamp: must be an ISO 8601 time"),
    ("timestamp,arrivals\n2024-05-06T00:00:00Z,3\n2024-05-06T00:01:30Z,3\n",
     "bad.csv, line 3, column timestamp: must be 2024-05-06T00:01:00Z (60 s after the previous row)"),
    ("time,count\n2024-05-06T00:00:00Z,3\n", "bad.csv, line 1: header must name the columns timestamp,arrivals"),
    ("timestamp,arrivals\n", "bad.csv: no data rows"),
])
def test_bad_trace_csv_names_file_line_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    assert message in str(caught.value)


def test_cli_reports_a_bad_trace_in_one_line(tmp_path, capsys):
    path = tmp_path / "mine.csv"
    path.write_text("timestamp,arrivals\n2024-05-06T00:00:00Z,3\n2024-05-06T00:01:00Z,x\n")
    assert cli.main(["--trace", str(path), "--no-plots", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"Cannot simulate: {path}, line 3, column arrivals: must be a number >= 0 (given 'x')"]


def test_trace_gaps_of_whole_minutes_are_zero_arrivals():
    parsed = parse_trace("timestamp,arrivals\n2024-05-06T00:00:00+02:00,3\n2024-05-06T00:03:00+02:00,4.5\n", "t")
    assert parsed.start == datetime(2024, 5, 5, 22, 0, tzinfo=timezone.utc)
    assert parsed.arrivals == (3.0, 0.0, 0.0, 4.5) and parsed.filled_minutes == 2
    assert parsed.time(3) == parsed.start + timedelta(minutes=3)


def test_shipped_traces_are_what_the_documented_generator_writes():
    for name, text in generate().items():
        assert (ROOT / "traces" / f"{name}.csv").read_text() == text, f"traces/{name}.csv: run python -m tooling.simulate.make_traces"


# ----------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------


def test_cli_writes_tables_and_one_png_per_stack_and_trace(tmp_path, capsys):
    path = tmp_path / "steady.csv"
    path.write_text("timestamp,arrivals\n" + "".join(f"2024-05-06T00:{m:02d}:00Z,{200 if m >= 5 else 20}\n" for m in range(30)))
    out = tmp_path / "out"
    assert cli.main(["--trace", str(path), "--stack", "inference-load-balancing", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "### `inference-load-balancing`" in printed
    assert "| trace | minutes | peak backlog | peak wait | minutes wait > 10 s | instance-hours | scaling actions |" in printed
    png = out / "inference-load-balancing" / "steady.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "summary.md").read_text().count("### `") == 1


# ----------------------------------------------------------------------------------------
# Charts: a lower bound is drawn as one
# ----------------------------------------------------------------------------------------


def _backlog_outlasts_the_trace():
    # A burst at the end of the trace that a fleet of at most 2 workers cannot work off in time.
    stack_settings = settings("queue-depth-scaling", {"fleet": {"max_size": 2}})
    return run_stack(scenario_for("queue-depth-scaling", stack_settings), [trace([0] * 10 + [400] * 30 + [0] * 5)])


def test_the_chart_draws_a_wait_lower_bound_as_a_bound_never_as_a_drop_to_zero():
    from tooling.simulate.report import duration, wait_series

    stack = _backlog_outlasts_the_trace()
    run = stack.runs[0]
    backlog = [m.backlog for m in run.timeline.minutes]
    assert run.metrics.peak_wait_is_lower_bound and backlog[-1] > 100  # jobs still wait at the end
    series = wait_series(run)
    for minute, jobs in enumerate(backlog):
        exact, bound = series.exact[minute], series.lower_bound[minute]
        assert (exact is None) != (bound is None)  # each minute is one or the other
        if jobs > 0:
            assert bound is not None or exact > 0, f"minute {minute}: {jobs} jobs wait, plotted wait {exact}"
    censored = [i for i, bound in enumerate(run.wait_is_lower_bound) if bound]
    assert censored and all(series.exact[i] is None for i in censored)
    assert series.lower_bound[-1] is not None  # the last minute is a bound (0 or more), not an exact 0
    # The label is the table's ">= ..." value, at the minute of the largest bound.
    assert series.label == ">= " + duration(run.metrics.peak_wait_seconds)
    assert series.label in stack_markdown(stack)
    assert series.lower_bound[series.label_at] == pytest.approx(run.metrics.peak_wait_seconds / 60)


def test_the_png_plots_that_series_a_hatched_band_and_the_label():
    import math

    from tooling.simulate.plots import _pyplot, figure
    from tooling.simulate.report import wait_series

    stack = _backlog_outlasts_the_trace()
    run = stack.runs[0]
    series = wait_series(run)
    fig = figure(stack, run, stack.compared[0])
    try:
        wait_axis = next(ax for ax in fig.axes if ax.get_ylabel() == "wait (min)")
        line = next(line for line in wait_axis.get_lines() if line.get_label() == "wait (min)")
        plotted = list(line.get_ydata())
        assert [None if math.isnan(v) else v for v in plotted] == list(series.exact)
        assert [c.get_gid() for c in wait_axis.collections] == ["wait-lower-bound"]
        assert [t.get_text() for t in wait_axis.texts] == [series.label]
        assert wait_axis.get_ylim()[1] > max(w for w in series.lower_bound if w is not None)
    finally:
        _pyplot().close(fig)


def test_a_chart_without_a_lower_bound_has_no_band():
    from tooling.simulate.report import wait_series

    run = run_stack(scenario_for("queue-depth-scaling", settings("queue-depth-scaling", {})), [trace([0] * 5 + [20] * 10 + [0] * 30)])
    series = wait_series(run.runs[0])
    assert series.label_at is None and all(w is None for w in series.lower_bound)
    assert [w for w in series.exact] == pytest.approx([w / 60 for w in run.runs[0].waits])


# ----------------------------------------------------------------------------------------
# Output: replaced only when complete
# ----------------------------------------------------------------------------------------


def _steady(tmp_path) -> Path:
    path = tmp_path / "steady.csv"
    path.write_text("timestamp,arrivals\n" + "".join(f"2024-05-06T00:{m:02d}:00Z,{200 if m >= 5 else 20}\n" for m in range(30)))
    return path


def _previous_simulation(out: Path) -> dict[str, bytes]:
    (out / "inference-load-balancing").mkdir(parents=True)
    (out / "summary.md").write_text("previous summary\n")
    (out / "diff.md").write_text("previous diff\n")
    (out / "inference-load-balancing" / "steady.png").write_bytes(b"previous png")
    (out / "queue-depth-scaling").mkdir()
    (out / "queue-depth-scaling" / "old.png").write_bytes(b"previous png")
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_a_simulation_that_fails_while_writing_leaves_the_previous_results(tmp_path, monkeypatch):
    from tooling.simulate import plots

    out = tmp_path / "simulation"
    before = _previous_simulation(out)

    def fails_after_one_png(runs, outdir):
        stack, run = next(iter(runs.values())), next(iter(runs.values())).runs[0]
        plots.plot_run(stack, run, outdir / stack.scenario.stack / f"{run.trace.name}.png")
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(plots, "plot_all", fails_after_one_png)
    with pytest.raises(RuntimeError):
        cli.main(["--trace", str(_steady(tmp_path)), "--stack", "inference-load-balancing", "--out", str(out)])
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".simulation")] == []


def test_bad_arguments_leave_the_previous_results(tmp_path):
    out = tmp_path / "simulation"
    before = _previous_simulation(out)
    assert cli.main(["--trace", str(_steady(tmp_path)), "--stack", "nope", "--out", str(out)]) == 2
    assert _files(out) == before


def test_a_complete_simulation_replaces_every_previous_result_and_nothing_else(tmp_path):
    out = tmp_path / "simulation"
    _previous_simulation(out)
    (out / "notes.txt").write_text("mine")
    assert cli.main(["--trace", str(_steady(tmp_path)), "--stack", "inference-load-balancing", "--out", str(out)]) == 0
    after = _files(out)
    assert sorted(after) == ["inference-load-balancing/steady.png", "notes.txt", "summary.md"]  # no stale diff.md, old.png
    assert after["inference-load-balancing/steady.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert after["summary.md"] != b"previous summary\n"
