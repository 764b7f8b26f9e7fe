"""Markdown summaries of Terraform plans, for reviewers (pure Python, no Terraform needed).

    python -m tooling.plan_summary plans/llm-request-scaling.json [...] [--out plans/]

Input is ``terraform show -json <planfile>`` output. Each stack's summary, in this order:

1. **what is destroyed or replaced**, in bold (the changes that lose data or cause downtime);
2. the counts, ``N to add, N to change, N to destroy`` (a replacement counts as one add and
   one destroy, as Terraform counts);
3. a table of resource changes: address, type, action and, for updates and replacements, the
   attributes that change, old -> new (sensitive values are shown as ``(sensitive)``, values
   known only after apply as ``(known after apply)``);
4. the scaling settings that change, in plain words, old -> new, from :data:`SCALING_LABELS`.

Between 1 and 2, **what running resources will do** that the plan's actions do not say
(instances replaced by an instance refresh, an endpoint's blue/green update), from
tooling/runtime_effects.py.

Patterns add rows to :data:`SCALING_LABELS` (and a noun to :data:`RESOURCE_NOUNS`) for the
settings their reviewers care about; a row is (resource type, attribute path, words), where
the path is dotted (``target_tracking_configuration.0.target_value``) and ``*`` stands for
any one segment (a list index or a map key).

:func:`redact_plan` returns a copy of a plan with every sensitive value replaced, for plan
JSON that leaves the machine (CI artifacts).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from tooling.runtime_effects import NONE, UPDATE_TRIGGERS, effect_of

SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"
ABSENT = "(none)"
#: Values longer than this are cut in tables (full values are in the plan JSON).
MAX_VALUE = 80
#: Attribute changes listed per resource in the table before "... and N more".
MAX_ATTRIBUTES = 12
#: Attributes every AWS resource carries that repeat what the resource's own change says.
NOISE = {"tags_all"}

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Label:
    """A scaling setting in plain words: ``(resource type, attribute path) -> words``."""

    type: str
    path: str  # dotted; "*" matches one segment
    words: str

    def matches(self, type_: str, path: Path_) -> bool:
        wanted = self.path.split(".")
        return self.type == type_ and len(wanted) == len(path) and all(
            w == "*" or w == str(p) for w, p in zip(wanted, path))


#: The scaling settings reviewers look for. Add rows for new resource types or attributes.
SCALING_LABELS: tuple[Label, ...] = (
    # EC2 Auto Scaling
    Label("aws_autoscaling_group", "min_size", "minimum instances"),
    Label("aws_autoscaling_group", "max_size", "maximum instances"),
    Label("aws_autoscaling_group", "desired_capacity", "desired instances"),
    Label("aws_autoscaling_group", "default_cooldown", "cooldown between scaling activities (s)"),
    Label("aws_autoscaling_group", "default_instance_warmup", "instance warm-up (s)"),
    Label("aws_autoscaling_group", "health_check_grace_period", "health check grace period (s)"),
    Label("aws_autoscaling_group", "warm_pool.*.min_size", "warm pool minimum size"),
    Label("aws_autoscaling_group", "warm_pool.*.max_group_prepared_capacity", "warm pool maximum prepared capacity"),
    Label("aws_autoscaling_policy", "policy_type", "policy type"),
    Label("aws_autoscaling_policy", "adjustment_type", "adjustment type"),
    Label("aws_autoscaling_policy", "scaling_adjustment", "simple scaling adjustment"),
    Label("aws_autoscaling_policy", "cooldown", "cooldown (s)"),
    Label("aws_autoscaling_policy", "estimated_instance_warmup", "estimated instance warm-up (s)"),
    Label("aws_autoscaling_policy", "min_adjustment_magnitude", "minimum adjustment"),
    Label("aws_autoscaling_policy", "target_tracking_configuration.*.target_value", "target value"),
    Label("aws_autoscaling_policy", "target_tracking_configuration.*.disable_scale_in", "scale-in disabled"),
    Label("aws_autoscaling_policy", "target_tracking_configuration.*.predefined_metric_specification.*.predefined_metric_type", "tracked metric"),
    Label("aws_autoscaling_policy", "target_tracking_configuration.*.customized_metric_specification.*.metric_name", "tracked metric"),
    Label("aws_autoscaling_policy", "step_adjustment.*.scaling_adjustment", "step adjustment"),
    Label("aws_autoscaling_policy", "step_adjustment.*.metric_interval_lower_bound", "step lower bound"),
    Label("aws_autoscaling_policy", "step_adjustment.*.metric_interval_upper_bound", "step upper bound"),
    Label("aws_autoscaling_policy", "predictive_scaling_configuration.*.mode", "predictive scaling mode"),
    Label("aws_autoscaling_policy", "predictive_scaling_configuration.*.scheduling_buffer_time", "predictive scaling buffer time (s)"),
    Label("aws_autoscaling_policy", "predictive_scaling_configuration.*.max_capacity_breach_behavior", "predictive scaling max capacity breach behaviour"),
    Label("aws_autoscaling_policy", "predictive_scaling_configuration.*.max_capacity_buffer", "predictive scaling max capacity buffer (%)"),
    Label("aws_autoscaling_policy", "predictive_scaling_configuration.*.metric_specification.*.target_value", "predictive scaling target value"),
    Label("aws_autoscaling_schedule", "recurrence", "schedule (cron)"),
    Label("aws_autoscaling_schedule", "time_zone", "schedule time zone"),
    Label("aws_autoscaling_schedule", "start_time", "schedule start"),
    Label("aws_autoscaling_schedule", "end_time", "schedule end"),
    Label("aws_autoscaling_schedule", "min_size", "scheduled minimum instances"),
    Label("aws_autoscaling_schedule", "max_size", "scheduled maximum instances"),
    Label("aws_autoscaling_schedule", "desired_capacity", "scheduled desired instances"),
    # CloudWatch alarms that drive scaling
    Label("aws_cloudwatch_metric_alarm", "threshold", "threshold"),
    Label("aws_cloudwatch_metric_alarm", "comparison_operator", "comparison"),
    Label("aws_cloudwatch_metric_alarm", "evaluation_periods", "evaluation periods"),
    Label("aws_cloudwatch_metric_alarm", "datapoints_to_alarm", "datapoints to alarm"),
    Label("aws_cloudwatch_metric_alarm", "period", "period (s)"),
    Label("aws_cloudwatch_metric_alarm", "statistic", "statistic"),
    Label("aws_cloudwatch_metric_alarm", "extended_statistic", "statistic"),
    Label("aws_cloudwatch_metric_alarm", "metric_name", "metric"),
    Label("aws_cloudwatch_metric_alarm", "treat_missing_data", "missing data treated as"),
    # Application Auto Scaling (SageMaker variants, ECS services, Lambda provisioned concurrency)
    Label("aws_appautoscaling_target", "min_capacity", "minimum capacity"),
    Label("aws_appautoscaling_target", "max_capacity", "maximum capacity"),
    Label("aws_appautoscaling_policy", "policy_type", "policy type"),
    Label("aws_appautoscaling_policy", "target_tracking_scaling_policy_configuration.*.target_value", "target value"),
    Label("aws_appautoscaling_policy", "target_tracking_scaling_policy_configuration.*.scale_in_cooldown", "scale-in cooldown (s)"),
    Label("aws_appautoscaling_policy", "target_tracking_scaling_policy_configuration.*.scale_out_cooldown", "scale-out cooldown (s)"),
    Label("aws_appautoscaling_policy", "target_tracking_scaling_policy_configuration.*.disable_scale_in", "scale-in disabled"),
    Label("aws_appautoscaling_policy", "target_tracking_scaling_policy_configuration.*.predefined_metric_specification.*.predefined_metric_type", "tracked metric"),
    Label("aws_appautoscaling_policy", "target_tracking_scaling_policy_configuration.*.customized_metric_specification.*.metric_name", "tracked metric"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.adjustment_type", "adjustment type"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.cooldown", "cooldown (s)"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.metric_aggregation_type", "metric aggregation"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.min_adjustment_magnitude", "minimum adjustment"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.step_adjustment.*.scaling_adjustment", "step adjustment"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.step_adjustment.*.metric_interval_lower_bound", "step lower bound"),
    Label("aws_appautoscaling_policy", "step_scaling_policy_configuration.*.step_adjustment.*.metric_interval_upper_bound", "step upper bound"),
    Label("aws_appautoscaling_scheduled_action", "schedule", "schedule"),
    Label("aws_appautoscaling_scheduled_action", "timezone", "schedule time zone"),
    Label("aws_appautoscaling_scheduled_action", "start_time", "schedule start"),
    Label("aws_appautoscaling_scheduled_action", "end_time", "schedule end"),
    Label("aws_appautoscaling_scheduled_action", "scalable_target_action.*.min_capacity", "scheduled minimum capacity"),
    Label("aws_appautoscaling_scheduled_action", "scalable_target_action.*.max_capacity", "scheduled maximum capacity"),
    # Lambda
    Label("aws_lambda_provisioned_concurrency_config", "provisioned_concurrent_executions", "provisioned concurrency"),
    Label("aws_lambda_provisioned_concurrency_config", "qualifier", "provisioned concurrency alias/version"),
    Label("aws_lambda_function", "reserved_concurrent_executions", "reserved concurrency (-1 = none)"),
    Label("aws_lambda_event_source_mapping", "batch_size", "batch size"),
    Label("aws_lambda_event_source_mapping", "maximum_batching_window_in_seconds", "batching window (s)"),
    Label("aws_lambda_event_source_mapping", "scaling_config.*.maximum_concurrency", "maximum concurrent invocations"),
    Label("aws_lambda_event_source_mapping", "enabled", "enabled"),
    # Schedules and fleets
    Label("aws_cloudwatch_event_rule", "schedule_expression", "schedule"),
    Label("aws_scheduler_schedule", "schedule_expression", "schedule"),
    Label("aws_scheduler_schedule", "schedule_expression_timezone", "schedule time zone"),
    Label("aws_sagemaker_endpoint_configuration", "production_variant.*.initial_instance_count", "initial instances"),
    Label("aws_sagemaker_endpoint_configuration", "production_variant.*.instance_type", "instance type"),
    Label("aws_sagemaker_endpoint_configuration", "production_variant.*.serverless_config.*.max_concurrency", "serverless maximum concurrency"),
    Label("aws_sagemaker_endpoint_configuration", "production_variant.*.serverless_config.*.provisioned_concurrency", "serverless provisioned concurrency"),
    Label("aws_ecs_service", "desired_count", "desired tasks"),
    Label("aws_launch_template", "instance_type", "instance type"),
)

#: Labels each pattern adds for settings outside the generic ones (its spec's ``plan_labels``,
#: e.g. a controller configured through its environment).
def _pattern_labels() -> tuple[Label, ...]:
    from scaling_patterns.registry import PATTERNS

    return tuple(Label(*row) for spec in PATTERNS for row in spec.plan_labels)


SCALING_LABELS += _pattern_labels()

#: What a resource type is called in plain words (scaling section).
RESOURCE_NOUNS: dict[str, str] = {
    "aws_autoscaling_group": "Auto Scaling group",
    "aws_autoscaling_policy": "scaling policy",
    "aws_autoscaling_schedule": "scheduled action",
    "aws_cloudwatch_metric_alarm": "alarm",
    "aws_appautoscaling_target": "scalable target",
    "aws_appautoscaling_policy": "scaling policy",
    "aws_appautoscaling_scheduled_action": "scheduled action",
    "aws_lambda_provisioned_concurrency_config": "provisioned concurrency",
    "aws_lambda_function": "Lambda function",
    "aws_lambda_event_source_mapping": "event source mapping",
    "aws_cloudwatch_event_rule": "EventBridge rule",
    "aws_scheduler_schedule": "EventBridge schedule",
    "aws_sagemaker_endpoint_configuration": "endpoint configuration",
    "aws_ecs_service": "ECS service",
    "aws_launch_template": "launch template",
}


# ---------------------------------------------------------------------------------------
# Reading a plan
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeChange:
    path: Path_
    before: str  # rendered: a value, SENSITIVE, UNKNOWN or ABSENT
    after: str
    forces_replacement: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    actions: tuple[str, ...]
    reason: str | None
    attributes: tuple[AttributeChange, ...]
    previous_address: str | None = None
    importing: bool = False

    @property
    def action(self) -> str:
        return ACTION_WORDS.get(self.actions, "/".join(self.actions))

    @property
    def destructive(self) -> bool:
        return "delete" in self.actions


@dataclass(frozen=True)
class ScalingChange:
    address: str
    type: str
    words: str
    before: str
    after: str
    path: Path_ = ()

    def sentence(self) -> str:
        noun = RESOURCE_NOUNS.get(self.type, self.type)
        return f"{noun} `{self.address}`: {self.words}: {_plain(self.before)} -> {_plain(self.after)}"


def _plain(rendered: str) -> str:
    """A rendered value in plain words: a short string without its quotes ("8" -> 8)."""
    if len(rendered) >= 2 and rendered[0] == rendered[-1] == '"':
        return rendered[1:-1]
    return rendered


@dataclass
class StackSummary:
    stack: str
    changes: list[ResourceChange] = field(default_factory=list)
    scaling: list[ScalingChange] = field(default_factory=list)
    outputs: list[tuple[str, str, str]] = field(default_factory=list)  # (name, before, after)
    drift: list[str] = field(default_factory=list)
    errored: bool = False
    #: (address, interruption level, what happens) for running resources (tooling/runtime_effects.py).
    rollouts: list[tuple[str, str, str]] = field(default_factory=list)
    #: Emulator plans (:func:`mark_emulator_gaps`): addresses whose whole change the emulator causes
    #: (on AWS: no change), and (address, top-level attribute) differences it causes inside other changes.
    gap_only: frozenset[str] = frozenset()
    gap_attributes: frozenset[tuple[str, str]] = frozenset()

    @property
    def real_changes(self) -> list[ResourceChange]:
        """The changes a plan against AWS makes too: every change except the emulator gaps."""
        return [c for c in self.changes if c.address not in self.gap_only]

    @property
    def gap_changes(self) -> list[ResourceChange]:
        """Changes only the emulator causes (what moto reads back), not the configuration."""
        return [c for c in self.changes if c.address in self.gap_only]

    @property
    def has_gaps(self) -> bool:
        return bool(self.gap_only or self.gap_attributes)

    def is_gap(self, address: str, attribute: str | int | None = None) -> bool:
        return address in self.gap_only or (attribute is not None and (address, str(attribute)) in self.gap_attributes)

    def is_gap_effect(self, address: str) -> bool:
        """The runtime effect of ``address`` comes from emulator gaps only (the resource or the attributes that cause it)."""
        if address in self.gap_only:
            return True
        type_ = next((c.type for c in self.changes if c.address == address), "")
        triggers = [key for key in UPDATE_TRIGGERS.get(type_, ()) if self._changed_attribute(address, key)]
        return bool(triggers) and all(self.is_gap(address, key) for key in triggers)

    def _changed_attribute(self, address: str, key: str) -> bool:
        change = next((c for c in self.changes if c.address == address), None)
        return change is not None and any(a.path and str(a.path[0]) == key for a in change.attributes)

    @property
    def real_scaling(self) -> list[ScalingChange]:
        return [s for s in self.scaling if not self.is_gap(s.address, s.path[0] if s.path else None)]

    @property
    def gap_scaling(self) -> list[ScalingChange]:
        return [s for s in self.scaling if self.is_gap(s.address, s.path[0] if s.path else None)]

    @property
    def add(self) -> int:
        return _count(self.real_changes, "add")

    @property
    def change(self) -> int:
        return _count(self.real_changes, "change")

    @property
    def destroy(self) -> int:
        return _count(self.real_changes, "destroy")

    @property
    def imports(self) -> int:
        return _count(self.real_changes, "import")

    @property
    def forget(self) -> int:
        return _count(self.real_changes, "forget")

    @property
    def destructive(self) -> list[ResourceChange]:
        """Destroyed or replaced resources, emulator gaps left out (see :attr:`gap_changes`)."""
        return [c for c in self.real_changes if c.destructive]

    def counts(self) -> str:
        """``N to add, N to change, N to destroy`` of the real changes (emulator gaps: :meth:`gap_counts`)."""
        return _counts(self.real_changes)

    def gap_counts(self) -> str:
        return _counts(self.gap_changes)

    @property
    def has_changes(self) -> bool:
        return bool(self.real_changes or self.outputs)


def _count(changes: Sequence[ResourceChange], kind: str) -> int:
    test = {"add": lambda c: "create" in c.actions, "change": lambda c: c.actions == ("update",),
            "destroy": lambda c: "delete" in c.actions, "import": lambda c: c.importing,
            "forget": lambda c: "forget" in c.actions}[kind]
    return sum(1 for c in changes if test(c))


def _counts(changes: Sequence[ResourceChange]) -> str:
    parts = [f"{_count(changes, 'import')} to import"] if _count(changes, "import") else []
    parts += [f"{_count(changes, kind)} to {kind}" for kind in ("add", "change", "destroy")]
    if _count(changes, "forget"):
        parts.append(f"{_count(changes, 'forget')} to forget")
    return ", ".join(parts)


def mark_emulator_gaps(summary: StackSummary, gap_only: Iterable[str], gap_attributes: Iterable[tuple[str, str]]) -> None:
    """Mark what the emulator causes (tooling/deploy_local.py ``emulator_gaps``): the headline and the
    counts then say what would happen on AWS, and the gaps are listed as gaps, never hidden."""
    summary.gap_only = frozenset(gap_only)
    summary.gap_attributes = frozenset(gap_attributes)


ACTION_WORDS: dict[tuple[str, ...], str] = {
    ("create",): "create",
    ("update",): "update",
    ("delete",): "destroy",
    ("delete", "create"): "replace (destroy, then create)",
    ("create", "delete"): "replace (create, then destroy)",
    ("forget",): "forget (stays in AWS, leaves state)",
    ("create", "forget"): "replace (create, then forget)",
    ("read",): "read",
}
#: Table order: what loses data first.
ACTION_ORDER = {("delete",): 0, ("delete", "create"): 1, ("create", "delete"): 1, ("create", "forget"): 1,
                ("forget",): 2, ("update",): 3, ("create",): 4}

REASON_WORDS = {
    "replace_because_cannot_update": "an attribute that cannot change in place changes",
    "replace_because_tainted": "the resource is tainted",
    "replace_by_request": "replacement was requested (-replace)",
    "replace_by_triggers": "replace_triggered_by",
    "delete_because_no_resource_config": "it is no longer in the configuration",
    "delete_because_no_module": "its module is no longer in the configuration",
    "delete_because_wrong_repetition": "its count/for_each changed",
    "delete_because_count_index": "its count index is gone",
    "delete_because_each_key": "its for_each key is gone",
    "delete_because_no_move_target": "its moved target does not exist",
}


def _is_empty(value: Any) -> bool:
    """Null, "", [] and {}: the provider reports an unset attribute as any of them."""
    return value is None or value == "" or value == [] or value == {}


def _parse_json_string(value: Any) -> Any:
    """A string holding a JSON object or array (policies, event patterns), parsed; else None."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, (dict, list)) else None
    return None


def _at(mask: Any, key: str | int) -> Any:
    """The part of a sensitivity/unknown mask for a child (a mask of ``True`` covers all children)."""
    if mask is True:
        return True
    if isinstance(mask, dict):
        return mask.get(key, False)
    if isinstance(mask, list) and isinstance(key, int) and key < len(mask):
        return mask[key]
    return False


def render_value(value: Any, limit: int = MAX_VALUE) -> str:
    """A value as a reviewer reads it: strings quoted, JSON compact, long ones cut."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = f'"{value}"' if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = " ".join(text.split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _leaf(value: Any, sensitive: Any, unknown: Any = False) -> str:
    if unknown is True:
        return UNKNOWN
    if sensitive is True:
        return SENSITIVE
    return render_value(value)


def diff_values(before: Any, after: Any, before_sensitive: Any = False, after_sensitive: Any = False,
                after_unknown: Any = False, path: Path_ = ()) -> list[tuple[Path_, str, str]]:
    """Leaf-level differences between two attribute values: [(path, old, new)].

    Null, ``""``, ``[]`` and ``{}`` count as the same (Terraform's plan output hides those too).
    JSON documents inside strings (IAM policies, event patterns) are compared as JSON, so a
    policy change shows the statement that changes rather than two long strings.
    """
    if after_unknown is True:
        if _is_empty(before) and before_sensitive is not True:
            return [(path, ABSENT, UNKNOWN)]
        return [(path, _leaf(before, before_sensitive), UNKNOWN)]
    if before_sensitive is True or after_sensitive is True:
        if before == after and before_sensitive == after_sensitive:
            return []
        old = SENSITIVE if before_sensitive is True else (ABSENT if _is_empty(before) else render_value(before))
        new = SENSITIVE if after_sensitive is True else (ABSENT if _is_empty(after) else render_value(after))
        return [(path, old, new)]
    if _is_empty(before) and _is_empty(after):
        return []
    if isinstance(before, dict) or isinstance(after, dict):
        if not (isinstance(before, dict) or _is_empty(before)) or not (isinstance(after, dict) or _is_empty(after)):
            return [(path, render_value(before), render_value(after))]
        before, after = before or {}, after or {}
        out: list[tuple[Path_, str, str]] = []
        for key in sorted(set(before) | set(after)):
            if not path and key in NOISE:
                continue
            out += _child(before, after, key, before_sensitive, after_sensitive, after_unknown, path)
        return out
    if isinstance(before, list) or isinstance(after, list):
        if not (isinstance(before, list) or _is_empty(before)) or not (isinstance(after, list) or _is_empty(after)):
            return [(path, render_value(before), render_value(after))]
        before, after = before or [], after or []
        out = []
        for index in range(max(len(before), len(after))):
            out += _child(before, after, index, before_sensitive, after_sensitive, after_unknown, path)
        return out
    if before == after or (_is_empty(before) and _is_empty(after)):
        return []
    parsed_before, parsed_after = _parse_json_string(before), _parse_json_string(after)
    if parsed_before is not None and parsed_after is not None:
        return diff_values(parsed_before, parsed_after, path=path)
    return [(path, ABSENT if _is_empty(before) else render_value(before), ABSENT if _is_empty(after) else render_value(after))]


def _child(before: Any, after: Any, key: str | int, bs: Any, as_: Any, au: Any, path: Path_) -> list[tuple[Path_, str, str]]:
    def get(container: Any) -> Any:
        if isinstance(container, dict):
            return container.get(key)
        return container[key] if isinstance(key, int) and key < len(container) else None

    return diff_values(get(before), get(after), _at(bs, key), _at(as_, key), _at(au, key), path + (key,))


def _forces(path: Path_, replace_paths: Sequence[Sequence[Any]]) -> bool:
    return any(tuple(rp) == path[: len(rp)] for rp in replace_paths if rp)


def _resource_change(rc: dict[str, Any]) -> ResourceChange:
    change = rc["change"]
    actions = tuple(change["actions"])
    attributes: list[AttributeChange] = []
    if actions not in (("create",), ("delete",), ("forget",)):
        replace_paths = change.get("replace_paths") or []
        for path, old, new in diff_values(change.get("before"), change.get("after"), change.get("before_sensitive", False),
                                          change.get("after_sensitive", False), change.get("after_unknown", False)):
            attributes.append(AttributeChange(path, old, new, _forces(path, replace_paths)))
    return ResourceChange(
        address=rc["address"], type=rc["type"], actions=actions, reason=rc.get("action_reason"),
        attributes=tuple(attributes), previous_address=rc.get("previous_address"),
        importing=bool(change.get("importing")))


def _scaling_changes(rc: dict[str, Any]) -> list[ScalingChange]:
    """Scaling settings of one resource change: updated ones old -> new, new ones (none) -> value,
    those of a destroyed resource value -> (removed)."""
    type_ = rc["type"]
    labels = [label for label in SCALING_LABELS if label.type == type_]
    if not labels:
        return []
    change = rc["change"]
    actions = change["actions"]
    gone = actions in (["delete"], ["forget"])
    new = actions == ["create"]
    found: list[tuple[Label, Path_, str, str]] = []
    for path, old, after in diff_values(
            None if new else change.get("before"), None if gone else change.get("after"),
            False if new else change.get("before_sensitive", False), False if gone else change.get("after_sensitive", False),
            False if gone else change.get("after_unknown", False)):
        label = next((label for label in labels if label.matches(type_, path)), None)
        if label is not None:
            found.append((label, path, old, "(removed)" if gone else after))
    # Number repeated blocks (step adjustments, variants) when there is more than the first.
    numbered = {label for label, path, _, _ in found if any(isinstance(p, int) and p > 0 for p in _wild(label, path))}
    changes = []
    for label, path, old, after in found:
        words = label.words
        if label in numbered:
            words += " #" + ".".join(str(p + 1) for p in _wild(label, path) if isinstance(p, int))
        changes.append(ScalingChange(rc["address"], type_, words, old, after, path))
    return changes


def _wild(label: Label, path: Path_) -> list[str | int]:
    """The path segments that the label's ``*`` matched."""
    return [p for w, p in zip(label.path.split("."), path) if w == "*"]


def _outputs(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, change in sorted((plan.get("output_changes") or {}).items()):
        actions = change.get("actions") or []
        if actions in (["no-op"], []):
            continue
        before = ABSENT if "create" in actions and "delete" not in actions else _leaf(change.get("before"), change.get("before_sensitive"))
        after = ABSENT if actions == ["delete"] else _leaf(change.get("after"), change.get("after_sensitive"), change.get("after_unknown"))
        rows.append((name, before, after))
    return rows


def summarize(plan: dict[str, Any], stack: str) -> StackSummary:
    """The review summary of one stack's plan (``terraform show -json`` output)."""
    summary = StackSummary(stack, errored=bool(plan.get("errored")))
    for rc in plan.get("resource_changes") or []:
        if rc.get("mode", "managed") != "managed":
            continue  # data sources are read, not changed
        actions = rc["change"]["actions"]
        moved = rc.get("previous_address") and rc.get("previous_address") != rc["address"]
        if actions == ["no-op"] and not moved and not rc["change"].get("importing"):
            continue
        summary.changes.append(_resource_change(rc))
        summary.scaling += _scaling_changes(rc)
        effect = effect_of(rc["change"], rc["type"])
        if effect is not None and "delete" not in actions:  # replacements are listed in the lead already
            summary.rollouts.append((rc["address"], effect.level, effect.words))
    summary.changes.sort(key=lambda c: (ACTION_ORDER.get(c.actions, 5), c.address))
    summary.outputs = _outputs(plan)
    # Like Terraform, report drift only where it matters to this plan (relevant_attributes).
    relevant: dict[str, list[Path_]] = {}
    for item in plan.get("relevant_attributes") or []:
        relevant.setdefault(item["resource"], []).append(tuple(item.get("attribute") or ()))
    for rc in plan.get("resource_drift") or []:
        if rc.get("mode", "managed") != "managed" or rc["address"] not in relevant:
            continue
        drift = rc["change"]
        if drift["actions"] == ["delete"]:
            summary.drift.append(f"{rc['address']} (deleted outside Terraform)")
            continue
        changed = [path for path, _, _ in diff_values(drift.get("before"), drift.get("after"),
                                                      drift.get("before_sensitive", False), drift.get("after_sensitive", False))]
        if any(path[: len(r)] == r or r[: len(path)] == path for path in changed for r in relevant[rc["address"]]):
            summary.drift.append(rc["address"])
    return summary


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _attribute_cell(change: ResourceChange, summary: StackSummary | None = None) -> str:
    if change.actions == ("create",):
        return "new" + (" (imported)" if change.importing else "")
    if change.actions == ("delete",):
        return "removed" + (f": {REASON_WORDS.get(change.reason or '', change.reason or '')}" if change.reason else "")
    parts = []
    for attr in change.attributes[:MAX_ATTRIBUTES]:
        line = f"{_code(attr.dotted or '(whole value)')}: {_shown(attr.before)} -> {_shown(attr.after)}"
        if attr.forces_replacement:
            line += " **(forces replacement)**"
        if summary is not None and attr.path and summary.is_gap(change.address, attr.path[0]):
            line += " (emulator gap)"
        parts.append(line)
    if len(change.attributes) > MAX_ATTRIBUTES:
        parts.append(f"... and {len(change.attributes) - MAX_ATTRIBUTES} more")
    if change.previous_address and change.previous_address != change.address:
        parts.insert(0, f"moved from {_code(change.previous_address)}")
    if change.importing:
        parts.insert(0, "imported")
    return "<br>".join(_cell(p) for p in parts) or "(no attribute changes)"


def _shown(rendered: str) -> str:
    """A value in a table: in a code span, except the markers (sensitive, unknown, none)."""
    return rendered if rendered in (SENSITIVE, UNKNOWN, ABSENT, "(removed)") else _code(rendered)


def _destructive_line(change: ResourceChange, stack: str | None = None) -> str:
    verb = "destroy" if change.actions == ("delete",) else "replace"
    forcing = [a.dotted for a in change.attributes if a.forces_replacement]
    why = ""
    if forcing:
        why = " because " + ", ".join(_code(f) for f in forcing) + (" changes" if len(forcing) == 1 else " change")
    elif change.reason in REASON_WORDS:
        why = f" because {REASON_WORDS[change.reason]}"
    where = f"stack `{stack}`: " if stack else ""
    return f"- {where}**{verb} {_code(change.address)}** ({change.type}){why}"


def _rollout_line(address: str, level: str, words: str, stack: str | None = None) -> str:
    where = f"stack `{stack}`: " if stack else ""
    lead = f"**{_code(address)}**" if level != NONE else _code(address)
    return f"- {where}{lead} ({level}): {words}"


def _lead(summaries: Sequence[StackSummary], destructive: Sequence[tuple[str | None, ResourceChange]], gap_changes: int,
          combined: bool = False) -> list[str]:
    """The headline: what is destroyed or replaced (on AWS, when the plan has emulator gaps), and how
    many more changes are emulator gaps."""
    on_aws = " on AWS" if any(s.has_gaps for s in summaries) else ""
    gaps = (f"{gap_changes} {'more ' if destructive else ''}change{'s are' if gap_changes != 1 else ' is an'} "
            f"emulator gap{'s' if gap_changes != 1 else ''} (listed below), not yours.") if gap_changes else ""
    lines: list[str] = []
    if destructive:
        lines.append(f"**{len(destructive)} resource{'s' if len(destructive) != 1 else ''} will be destroyed or replaced{on_aws}:**")
        lines += [_destructive_line(c, stack) for stack, c in destructive]
        lines.append("")
        if gaps:
            lines += [gaps, ""]
    elif gaps:
        lines += [f"Nothing is destroyed or replaced{on_aws}; {gaps}", ""]
    elif combined and any(s.has_changes for s in summaries):
        lines += ["Nothing is destroyed or replaced.", ""]
    return lines


def render_stack(summary: StackSummary, heading: str = "##") -> str:
    """One stack's summary as Markdown."""
    lines = [f"{heading} {summary.stack}", ""]
    if summary.errored:
        lines += ["**The plan did not complete (errored); what follows is partial.**", ""]
    lines += _lead([summary], [(None, c) for c in summary.destructive], len(summary.gap_changes))
    rollouts = [r for r in summary.rollouts if not summary.is_gap_effect(r[0])]
    if rollouts:
        lines.append("**What running resources will do:**")
        lines += [_rollout_line(*r) for r in rollouts]
        lines.append("")
    if not summary.has_changes:
        lines += ["No changes" + (" on AWS" if summary.has_gaps else "") + ". The infrastructure matches the configuration.", ""]
    else:
        lines += [f"Plan: {summary.counts()}" + (" on AWS" if summary.has_gaps else "") + ".", ""]
    if summary.gap_changes:
        lines += [f"Emulator gaps (not yours): {summary.gap_counts()}.", ""]
    if summary.changes:
        lines += ["| address | type | action | changes (old -> new) |", "|---|---|---|---|"]
        for change in summary.changes:
            if summary.is_gap(change.address):
                action = f"{change.action} (emulator gap)"
            else:
                action = f"**{change.action}**" if change.destructive else change.action
            lines.append(f"| {_code(change.address)} | {change.type} | {action} | {_attribute_cell(change, summary)} |")
        lines.append("")
    if summary.real_scaling:
        lines.append("**Scaling settings that change:**")
        lines += [f"- {s.sentence()}" for s in summary.real_scaling]
        lines.append("")
    gap_effects = [f"- {_code(r[0])}: {r[2]}" for r in summary.rollouts if summary.is_gap_effect(r[0])]
    if summary.gap_scaling or gap_effects:
        lines.append("Scaling values and effects that only the emulator shows (emulator gaps: what moto reads back, not your change):")
        lines += [f"- {s.sentence()}" for s in summary.gap_scaling] + gap_effects
        lines.append("")
    if summary.outputs:
        lines.append("Outputs: " + "; ".join(f"{_code(n)}: {_shown(b)} -> {_shown(a)}" for n, b, a in summary.outputs))
        lines.append("")
    if summary.drift:
        lines.append("Changed outside Terraform since the last apply (drift, refreshed into this plan): "
                     + ", ".join(_code(d) for d in summary.drift))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_combined(summaries: Sequence[StackSummary], title: str = "Terraform plan summary", note: str = "") -> str:
    """All stacks: destroyed/replaced resources of every stack first, a counts table, then each stack."""
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    destructive = [(s.stack, c) for s in summaries for c in s.destructive]
    gap_changes = [c for s in summaries for c in s.gap_changes]
    lines += _lead(summaries, destructive, len(gap_changes), combined=True)
    rollouts = [(s.stack, r) for s in summaries for r in s.rollouts if not s.is_gap_effect(r[0])]
    if rollouts:
        lines.append("**What running resources will do:**")
        lines += [_rollout_line(*r, stack=stack) for stack, r in rollouts]
        lines.append("")
    gaps = any(s.has_gaps for s in summaries)
    stacks = f"{len(summaries)} stack{'s' if len(summaries) != 1 else ''}"
    lines += [f"Plan: {_counts([c for s in summaries for c in s.real_changes])} in {stacks}" + (" on AWS" if gaps else "") + ".", ""]
    if gap_changes:
        lines += [f"Emulator gaps (not yours): {_counts(gap_changes)}.", ""]
    header = "| stack | to add | to change | to destroy | scaling settings changed |"
    lines += [header + (" emulator gaps |" if gaps else ""), "|---|---:|---:|---:|---:|" + ("---:|" if gaps else "")]
    for s in summaries:
        flag = " (errored)" if s.errored else ""
        row = f"| {s.stack}{flag} | {s.add} | {s.change} | {s.destroy} | {len(s.real_scaling)} |"
        lines.append(row + (f" {len(s.gap_changes)} |" if gaps else ""))
    lines.append("")
    for s in summaries:
        lines.append(render_stack(s, heading="##"))
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------
# Redaction (plan JSON that leaves the machine)
# ---------------------------------------------------------------------------------------


def _redact(value: Any, mask: Any) -> Any:
    if mask is True:
        return SENSITIVE
    if isinstance(value, dict):
        return {k: _redact(v, _at(mask, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, _at(mask, i)) for i, v in enumerate(value)]
    return value


def _redact_module(module: dict[str, Any]) -> None:
    for resource in module.get("resources", []):
        if "values" in resource:
            resource["values"] = _redact(resource["values"], resource.get("sensitive_values", False))
    for child in module.get("child_modules", []):
        _redact_module(child)


def redact_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``plan`` with every value Terraform marks sensitive replaced by ``(sensitive)``.

    Covers resource changes and drift (before/after), planned values, prior state, output
    changes and outputs, and sensitive root variables. (Terraform writes them in clear.)
    """
    plan = json.loads(json.dumps(plan))
    for key in ("resource_changes", "resource_drift"):
        for rc in plan.get(key) or []:
            change = rc.get("change", {})
            if "before" in change:
                change["before"] = _redact(change["before"], change.get("before_sensitive", False))
            if "after" in change:
                change["after"] = _redact(change["after"], change.get("after_sensitive", False))
    for name, change in (plan.get("output_changes") or {}).items():
        if "before" in change:
            change["before"] = _redact(change["before"], change.get("before_sensitive", False))
        if "after" in change:
            change["after"] = _redact(change["after"], change.get("after_sensitive", False))
    for section in ("planned_values", "prior_state"):
        values = plan.get(section) or {}
        values = values.get("values", values)  # prior_state nests under "values"
        if "root_module" in values:
            _redact_module(values["root_module"])
        for output in (values.get("outputs") or {}).values():
            if output.get("sensitive"):
                output["value"] = SENSITIVE
    sensitive_vars = {name for name, var in ((plan.get("configuration") or {}).get("root_module", {}).get("variables") or {}).items()
                      if var.get("sensitive")}
    for name in sensitive_vars & set(plan.get("variables") or {}):
        plan["variables"][name]["value"] = SENSITIVE
    return plan


# ---------------------------------------------------------------------------------------
# Command line: summarize saved plan JSON files
# ---------------------------------------------------------------------------------------


def write_summaries(plans: Iterable[tuple[str, dict[str, Any]]], outdir: Path, note: str = "") -> list[StackSummary]:
    """``<outdir>/<stack>.md`` for each (stack, plan) and ``<outdir>/summary.md`` for all."""
    outdir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for stack, plan in plans:
        summary = summarize(plan, stack)
        (outdir / f"{stack}.md").write_text(render_stack(summary, heading="#"))
        summaries.append(summary)
    (outdir / "summary.md").write_text(render_combined(summaries, note=note))
    return summaries


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.plan_summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("plans", nargs="+", type=Path, help="`terraform show -json` output files; the stack is the file name")
    parser.add_argument("--out", type=Path, default=None, help="write <stack>.md and summary.md here (default: print)")
    args = parser.parse_args(argv)
    plans = [(path.stem, json.loads(path.read_text())) for path in args.plans]
    if args.out:
        write_summaries(plans, args.out)
        print(f"wrote {args.out / 'summary.md'}")
    else:
        print(render_combined([summarize(plan, stack) for stack, plan in plans]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
