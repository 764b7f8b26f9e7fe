"""`llm-request-scaling` in the simulator: its settings -> the scaling models it deploys (see scaling_patterns.simulation)."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Mapping

from scaling_patterns.core.functions import load_handler
from scaling_patterns.patterns.llm_request_scaling.settings import LlmRequestScalingSettings, SageMakerVariantTarget
from scaling_patterns.simulation.models import Minute, Policy, QueueWorkload, clamp
from scaling_patterns.simulation.scenario import Assumption, Scenario, resolve

#: Any fixed instant: the controller compares datetimes, the simulation counts minutes.
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def load_controller() -> ModuleType:
    """functions/scaling_controller/handler.py (stdlib only at import; boto3 is imported in ``handler``)."""
    return load_handler("scaling_controller")


class RateController:
    """The llm-request-scaling scaler: a schedule runs it at the end of every minute, traffic or not.

    The rate is the sum of the last ``window_minutes`` minutes / ``window_minutes``, empty
    minutes included (the handler's ``MatchedEvents`` query: minutes without requests have no
    datapoint and count 0), so the rate falls when traffic stops and the scaler scales in.
    ``desired_capacity`` turns it into a capacity and ``decide`` applies the cooldown since the
    target's last change (the scaler is its only writer, so that is the scaler's own last
    change) and, for a SageMaker variant (``busy_while_warming``), holds while new instances are
    still starting (endpoint ``Updating``).
    """

    def __init__(self, *, per_instance_per_minute: float, minimum: int, maximum: int, cooldown_seconds: int,
                 window_minutes: int, busy_while_warming: bool):
        self.controller = load_controller()
        self.per_instance_per_minute, self.minimum, self.maximum = per_instance_per_minute, minimum, maximum
        self.cooldown_seconds, self.window_minutes = cooldown_seconds, window_minutes
        self.busy_while_warming = busy_while_warming
        self._window: deque[float] = deque(maxlen=window_minutes)
        self._last_change: datetime | None = None

    def decide(self, minute: Minute) -> int:
        self._window.append(minute.arrivals)
        rate = self.controller.rate_per_minute(list(self._window), self.window_minutes)
        desired = self.controller.desired_capacity(rate, self.per_instance_per_minute, self.minimum, self.maximum)
        now = EPOCH + timedelta(minutes=minute.index + 1)
        busy = self.busy_while_warming and minute.serving < minute.desired
        state = self.controller.TargetState(current=minute.desired, last_change=self._last_change, busy=busy)
        decision = self.controller.decide(state, desired, now, self.cooldown_seconds)
        if decision.action != "scale":
            return minute.desired
        self._last_change = now
        return clamp(decision.desired, minute.minimum, minute.maximum)


def scenario(s: LlmRequestScalingSettings, overrides: Mapping[str, float]) -> Scenario:
    sagemaker = isinstance(s.scaling_target, SageMakerVariantTarget)
    a = resolve("llm-request-scaling", {
        "warmup_seconds": Assumption(300.0 if sagemaker else 120.0, "a new instance of the scaling target serves this long after the controller adds it"
                                     + (" (SageMaker adds instances in minutes)" if sagemaker else ""), allow_zero=True),
        "latency_goal_seconds": Assumption(10.0, "a request waiting longer than this for a free instance counts against the goal"),
    }, overrides)
    p = s.scaling
    target = ("SageMaker variant" if sagemaker else "Auto Scaling group" if s.scaling_target is not None
              else "no scaling_target set: metrics only; simulated as if a target were set")
    policy = (
        f"scaler Lambda every minute (schedule): desired = ceil(requests per minute over the last {p.rate_window_minutes} min, "
        f"empty minutes included, / {p.requests_per_instance_per_minute:g}), {p.min_capacity}..{p.max_capacity} instances, "
        f"no change within {p.cooldown_seconds} s of the last one" + ("; holds while the endpoint is updating" if sagemaker else ""),
        f"target: {target}",
        f"each instance serves {p.requests_per_instance_per_minute:g} requests a minute (settings: scaling.requests_per_instance_per_minute)",
    )

    def policies() -> list[Policy]:
        return [RateController(per_instance_per_minute=p.requests_per_instance_per_minute, minimum=p.min_capacity,
                               maximum=p.max_capacity, cooldown_seconds=p.cooldown_seconds,
                               window_minutes=p.rate_window_minutes, busy_while_warming=sagemaker)]

    return Scenario(
        stack="llm-request-scaling", kind="queue", unit="instances", policy=policy, assumptions=a,
        latency_goal_seconds=a["latency_goal_seconds"].value, initial=p.min_capacity, minimum=p.min_capacity,
        maximum=p.max_capacity, warmup_seconds=a["warmup_seconds"].value,
        workload=QueueWorkload(p.requests_per_instance_per_minute), policies=policies)
