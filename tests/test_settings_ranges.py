"""Every number has a finite range AWS accepts; regions and tags follow AWS's rules (issue 14).

The numeric fields are found by walking the settings classes, so a new field without bounds fails
``test_every_numeric_field_has_a_finite_lower_and_upper_bound`` and is then checked by the
parametrized tests. Validation only (no cdktf import), except the one exact-float test at the end,
which reads the session's synthesized stacks.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from app.config import STACK_TAG_KEYS, ProjectSettings, load_config
from scaling_patterns.core.settings import AWS_REGIONS, MAX_TAGS_PER_RESOURCE, Settings, SettingsError, numeric_bounds
from scaling_patterns.registry import PATTERNS

ROOT = Path(__file__).resolve().parent.parent

# --- every numeric field of every settings class -------------------------------------------


@dataclass(frozen=True)
class NumericField:
    section: str
    steps: tuple[tuple[Any, dict[str, Any]], ...]  # (key or list index, tag fields of the table holding it)
    kind: type
    low: float | None
    high: float | None
    low_open: bool
    high_open: bool
    choices: tuple[int, ...] | None

    @property
    def path(self) -> str:
        text = ""
        for key, _ in self.steps:
            text += f"[{key}]" if isinstance(key, int) else ("." if text else "") + key
        return text

    def data(self, value: Any) -> dict[str, Any]:
        """A section setting only this field (and the union tags on the way) to ``value``."""
        out: Any = value
        for key, extra in reversed(self.steps):
            out = [out] if isinstance(key, int) else {**extra, key: out}
        return {self.section: out}

    def __str__(self) -> str:
        return f"{self.section}.{self.path}"


def _strip(annotation: Any) -> tuple[Any, list[Any]]:
    meta: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, meta = args[0], meta + list(args[1:])
    flat: list[Any] = []
    for item in meta:  # Annotated[int, Field(ge=0, le=23)] keeps its bounds inside a FieldInfo
        flat += list(item.metadata) if isinstance(item, FieldInfo) else [item]
    return annotation, flat


def _tag_of(model: type[BaseModel]) -> dict[str, Any]:
    tag = model.model_fields.get("type")
    if tag is not None and typing.get_origin(tag.annotation) is Literal:
        return {"type": typing.get_args(tag.annotation)[0]}
    return {}


def _visit(section: str, annotation: Any, meta: list[Any], steps: tuple, extra: dict[str, Any], seen: set) -> list[NumericField]:
    base, more = _strip(annotation)
    meta = meta + more
    origin = typing.get_origin(base)
    if isinstance(base, type) and issubclass(base, BaseModel):
        return _fields(section, base, steps, seen)
    if origin in (typing.Union, types.UnionType):
        found = []
        for arg in typing.get_args(base):
            if arg is not type(None):
                found += _visit(section, arg, meta, steps, extra, seen)
        return found
    if origin in (list, tuple):
        (item,) = typing.get_args(base)[:1]
        return _visit(section, item, [], steps + ((0, {}),), {}, seen)
    if origin is dict:
        return []  # tables of strings (tags, environment): checked by their own tests
    if base in (int, float):
        low, high, low_open, high_open = numeric_bounds(meta)
        choices = next((tuple(item.func.choices) for item in meta if getattr(getattr(item, "func", None), "choices", None)), None)
        return [NumericField(section, steps, base, low, high, low_open, high_open, choices)]
    return []


def _fields(section: str, model: type[BaseModel], steps: tuple = (), seen: set | None = None) -> list[NumericField]:
    seen = set() if seen is None else seen
    extra = _tag_of(model)
    found = []
    for name, info in model.model_fields.items():
        found += _visit(section, info.annotation, list(info.metadata), steps + ((name, extra),), extra, seen)
    return found


def settings_classes() -> list[tuple[str, type[BaseModel]]]:
    return [("project", ProjectSettings)] + [(spec.name, spec.load_settings_class()) for spec in PATTERNS]


NUMERIC = [field for section, model in settings_classes() for field in _fields(section, model)]


def test_the_walk_finds_the_numeric_fields():
    """The walk itself: nested tables, unions, lists of tables and list items are reached."""
    paths = {str(f) for f in NUMERIC}
    assert {"llm-request-scaling.memory_mb", "queue-depth-scaling.scaling.scale_out_threshold",
            "predictive-lambda-scaling.schedule.peaks[0].hours[0]", "predictive-lambda-scaling.scaling_plan.resources[0].min_capacity",
            "queue-to-sagemaker.autoscaling.target_invocations_per_instance", "queue-depth-scaling.fleet.instance_refresh.min_healthy_percentage",
            "llm-request-scaling.log_retention_days"} <= paths
    assert len(NUMERIC) > 80


@pytest.mark.parametrize("field", NUMERIC, ids=str)
def test_every_numeric_field_has_a_finite_lower_and_upper_bound(field):
    """Convention: no number is unbounded (a threshold of 1e26 or a target of inf disables scaling)."""
    if field.choices:
        return
    assert field.low is not None and field.high is not None, f"{field}: give it ge/gt and le/lt (AWS's range)"
    assert math.isfinite(field.low) and math.isfinite(field.high) and field.low <= field.high


def test_every_settings_class_rejects_inf_and_nan_and_coercion():
    """``allow_inf_nan=False`` and ``strict`` reach every class (a subclass could override model_config)."""
    def classes(cls):
        yield cls
        for sub in cls.__subclasses__():
            yield from classes(sub)

    for cls in classes(Settings):
        assert cls.model_config.get("allow_inf_nan") is False and cls.model_config.get("strict") is True, cls


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_config(Path("settings.toml"), data=data)
    return caught.value.problems


def line_for(field: NumericField, value: Any) -> str:
    prefix = f"settings.toml: [{field.section}] {field.path}: "
    lines = problems(field.data(value))
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, f"no line for {field} in {lines}"
    return found[0]


def _above(field: NumericField) -> Any:
    if field.choices:
        return max(field.choices) + 1
    return field.high if field.high_open else field.high + 1


def _below(field: NumericField) -> Any:
    if field.choices:
        return min(field.choices) - 1
    return field.low if field.low_open else field.low - 1


@pytest.mark.parametrize("field", NUMERIC, ids=str)
def test_a_value_above_the_maximum_is_rejected_naming_field_rule_and_value(field):
    value = _above(field)
    line = line_for(field, value)
    assert line.endswith(f"(given {value!r})")
    if not field.choices:
        rule = "less than" if field.high_open else "less than or equal to"
        assert f"Input should be {rule} {field.high}" in line


@pytest.mark.parametrize("field", NUMERIC, ids=str)
def test_a_value_below_the_minimum_is_rejected(field):
    value = _below(field)
    assert line_for(field, value).endswith(f"(given {value!r})")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("field", NUMERIC, ids=str)
def test_inf_and_nan_are_rejected(field, value):
    line = line_for(field, value)
    expected = "Input should be a finite number" if field.kind is float else "Input should be a valid integer"
    assert expected in line and line.endswith(f"(given {value!r})")


@pytest.mark.parametrize("field", [f for f in NUMERIC if f.kind is int], ids=str)
def test_integer_fields_take_integers_only(field):
    """A TOML float is not an integer, even without a fraction (AWS takes an integer there)."""
    for value in (1.5, 2.0):
        assert "Input should be a valid integer" in line_for(field, value)


def test_the_reported_huge_threshold_is_rejected_not_written_as_1e26():
    (line,) = problems({"queue-depth-scaling": {"scaling": {"type": "alarm_steps", "scale_out_threshold": 99999999999999999999999999}}})
    assert line == ("settings.toml: [queue-depth-scaling] scaling.scale_out_threshold: Input should be less than or equal to 1000000 "
                    "(given 99999999999999999999999999)")


def test_the_reported_infinite_request_rate_is_rejected():
    (line,) = problems({"llm-request-scaling": {"scaling": {"requests_per_instance_per_minute": math.inf}}})
    assert line == ("settings.toml: [llm-request-scaling] scaling.requests_per_instance_per_minute: Input should be a finite number "
                    "(given inf)")


def test_inf_from_a_toml_file_is_rejected(tmp_path):
    """TOML spells it ``inf``/``nan``: the same lines from a file."""
    settings = tmp_path / "settings.toml"
    settings.write_text("[llm-request-scaling.scaling]\nrequests_per_instance_per_minute = inf\n"
                        "[queue-depth-scaling.scaling]\nseconds_per_job = nan\n")
    with pytest.raises(SettingsError) as caught:
        load_config(settings)
    assert caught.value.problems == [
        f"{settings}: [llm-request-scaling] scaling.requests_per_instance_per_minute: Input should be a finite number (given inf)",
        f"{settings}: [queue-depth-scaling] scaling.seconds_per_job: Input should be a finite number (given nan)",
    ]


# --- settings the project ships and uses still validate ---------------------------------------


def test_defaults_the_shipped_file_and_every_test_variant_validate():
    from app.config import DEFAULT_SETTINGS_FILE
    from scaling_patterns.core.settings import validate_section

    load_config(data={})
    load_config(DEFAULT_SETTINGS_FILE)
    specs = {spec.name: spec for spec in PATTERNS}
    count = 0
    for spec in PATTERNS:
        if spec.variants:
            for variant, (base, data) in spec.load("variants").items():
                validate_section(variant, specs[base].load_settings_class(), data, {"base_dir": ROOT})
                count += 1
    assert count >= 8


# --- region -------------------------------------------------------------------------------


@pytest.mark.parametrize("region", AWS_REGIONS)
def test_every_region_of_the_provider_is_accepted(region):
    assert load_config(data={"project": {"region": region}}).project.region == region


def test_the_region_list_covers_opt_in_govcloud_and_china():
    assert {"us-east-1", "mx-central-1", "ap-southeast-7", "ap-east-2", "us-gov-west-1", "cn-north-1", "eusc-de-east-1"} <= set(AWS_REGIONS)
    assert not {"us-east-9", "ap-southeast-6", "eu-central-3", "ap-northeast-4"} & set(AWS_REGIONS)  # the provider rejects these
    assert len(set(AWS_REGIONS)) == len(AWS_REGIONS)


@pytest.mark.parametrize("region, hint", [("us-east-9", "did you mean us-east-"), ("eu-wset-1", "did you mean eu-west-1?"),
                                          ("mars-1", None), ("US-EAST-1", None)])
def test_an_unknown_region_is_rejected_with_the_closest_match(region, hint):
    (line,) = problems({"project": {"region": region}})
    assert line.startswith("settings.toml: [project] region: must be an AWS region the provider knows, such as us-east-1")
    assert line.endswith(f"(given {region!r})")
    assert (hint in line) if hint else ("did you mean" not in line)


def test_the_backend_region_is_checked_the_same_way():
    (line,) = problems({"project": {"backend": {"type": "s3", "bucket": "state-bucket", "region": "eu-west-9"}}})
    assert line.startswith("settings.toml: [project] backend.region: must be an AWS region the provider knows")


# --- tags ---------------------------------------------------------------------------------


def tag_problems(tags: dict[str, Any]) -> list[str]:
    return problems({"project": {"tags": tags}})


def test_a_tag_value_that_is_not_a_string_names_the_key():
    assert tag_problems({"Name": 5}) == ["settings.toml: [project] tags.Name: must be a string (given 5)"]


@pytest.mark.parametrize("tags, where, rule", [
    ({"aws:team": "ml"}, 'tags."aws:team"', "a tag key must not start with 'aws:' (reserved for AWS)"),
    ({"AWS:Team": "ml"}, 'tags."AWS:Team"', "must not start with 'aws:'"),
    ({"k" * 129: "v"}, "tags." + "k" * 129, "a tag key must be 1-128 characters (given 129 characters"),
    ({"": "v"}, 'tags.""', "a tag key must be 1-128 characters (given 0 characters"),
    ({"Team": "v" * 257}, "tags.Team", "a tag value must be 0-256 characters"),
    ({"cost center!": "x"}, 'tags."cost center!"', "a tag key may contain only Unicode letters, digits, spaces and _ . : / = + - @ (not '!')"),
    ({"Team": "ml;prod"}, "tags.Team", "a tag value may contain only Unicode letters, digits, spaces and _ . : / = + - @ (not ';')"),
    ({"Team": "a\tb"}, "tags.Team", "(not '\\t')"),
    ({"Team": ["ml"]}, "tags.Team", "must be a string (given ['ml'])"),
])
def test_tags_follow_the_aws_tagging_rules(tags, where, rule):
    (line,) = tag_problems(tags)
    assert line.startswith(f"settings.toml: [project] {where}: ") and rule in line, line


def test_every_bad_tag_is_its_own_line():
    assert len(tag_problems({"Name": 5, "aws:x": "y", "ok": "no!"})) == 3


def test_valid_tags_pass_unchanged():
    tags = {"Team": "ml", "cost-center": "", "Owner": "ops@example.com", "Path": "a/b:c=d+e_f.g", "Équipe": "données 2"}
    assert load_config(data={"project": {"tags": tags}}).project.tags == tags


def test_tags_share_the_50_per_resource_with_the_stacks_own():
    room = MAX_TAGS_PER_RESOURCE - len(STACK_TAG_KEYS)
    assert len(load_config(data={"project": {"tags": {f"k{i}": "v" for i in range(room)}}}).project.tags) == room
    (line,) = tag_problems({f"k{i}": "v" for i in range(room + 1)})
    assert line == (f"settings.toml: [project] tags: at most 50 tags per resource with the {len(STACK_TAG_KEYS)} the stacks add "
                    f"({', '.join(STACK_TAG_KEYS)}) (given {room + 1} tags, 51 in all)")
    # Overriding a tag the stacks set does not take another slot.
    load_config(data={"project": {"tags": {"Project": "mine", **{f"k{i}": "v" for i in range(room)}}}})


def test_the_scaling_plan_tag_filter_uses_the_tag_rules():
    plan = {"tag_key": "Team!", "tag_values": ["x" * 257], "resources": [{"type": "autoscaling_group", "name": "workers"}]}
    lines = problems({"predictive-lambda-scaling": {"scaling_plan": plan}})
    assert any(line.startswith("settings.toml: [predictive-lambda-scaling] scaling_plan.tag_key: a tag key may contain only") for line in lines)
    assert any(line.startswith("settings.toml: [predictive-lambda-scaling] scaling_plan.tag_values[0]: a tag value must be 1-256") for line in lines)
    plan["tag_values"] = [""]
    assert any(line == ("settings.toml: [predictive-lambda-scaling] scaling_plan.tag_values[0]: a tag value must be 1-256 characters "
                        "(given 0 characters: '')") for line in problems({"predictive-lambda-scaling": {"scaling_plan": plan}}))


def test_a_table_value_error_names_its_key():
    """The same dotted key for any table of strings, e.g. a SageMaker container environment."""
    (line,) = problems({"queue-to-sagemaker": {"endpoint": {"type": "create", "environment": {"MODEL_ID": 7}}}})
    assert line == "settings.toml: [queue-to-sagemaker] endpoint.environment.MODEL_ID: Input should be a valid string (given 7)"


# --- floats reach the Terraform JSON exactly as given (the one synth test) -----------------------


#: (stack or variant, settings path, where the value is in cdk.tf.json, value in the variant's settings)
FLOATS = [
    ("infer-https-internal", "requests_per_target_per_minute",
     lambda s: s.one("aws_autoscaling_policy")["target_tracking_configuration"]["target_value"]),
    ("pred-scheduled", "scaling.target_utilization",
     lambda s: s.one("aws_appautoscaling_policy")["target_tracking_scaling_policy_configuration"]["target_value"]),
    ("q2sm-existing-endpoint", "autoscaling.target_invocations_per_instance",
     lambda s: s.one("aws_appautoscaling_policy")["target_tracking_scaling_policy_configuration"]["target_value"]),
    ("llm-asg-target", "scaling.requests_per_instance_per_minute",
     lambda s: [f for f in s.resources("aws_lambda_function").values()
                if "REQUESTS_PER_INSTANCE_PER_MINUTE" in f.get("environment", {}).get("variables", {})][0]
     ["environment"]["variables"]["REQUESTS_PER_INSTANCE_PER_MINUTE"]),
]


def _setting(name: str, path: str) -> Any:
    from tests.conftest import all_variants

    base, data = all_variants().get(name, (name, {}))
    value: Any = load_config(data={base: data}).stacks[base]
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("stack, path, found", FLOATS, ids=[f[0] for f in FLOATS])
def test_a_float_setting_is_written_exactly_as_given(synth, stack, path, found):
    given = _setting(stack, path)
    assert isinstance(given, float)
    written = found(synth.stack(stack))
    if isinstance(written, str):  # a Lambda environment variable: the function parses the text
        assert written == repr(given)
    else:
        assert written == given and repr(float(written)) == repr(given)
    raw = (synth.outdir / "stacks" / stack / "cdk.tf.json").read_text()
    assert json.dumps(written) in raw


def test_the_stacks_add_no_tags_beyond_those_counted_against_the_50(synth):
    """`project.tags` gets 50 minus STACK_TAG_KEYS: every tag key the synthesized stacks set must be in it."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("tags", "tags_all") and isinstance(item, dict):
                    found.update(item)
                elif key == "tag" and isinstance(item, list):
                    found.update(t["key"] for t in item if isinstance(t, dict) and "key" in t)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for name in synth.names():
        walk(synth.stack(name).doc)
    assert found and found <= set(STACK_TAG_KEYS), sorted(found - set(STACK_TAG_KEYS))
