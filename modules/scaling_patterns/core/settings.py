"""Settings base: typed, immutable, validated objects, and the settings-file loader.

Every pattern's settings class derives from :class:`Settings` (unknown keys are errors,
values are not coerced across types, objects are frozen). Field descriptions are the
documentation: ``python -m tooling.settings_doc`` renders them into the README.

This module imports no cdktf code, so a bad settings file is reported in well under a
second, before the provider bindings load and before anything is written.
"""

from __future__ import annotations

import functools
import re
import tomllib
import types
import typing
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# ---------------------------------------------------------------------------------------
# Base model and reusable field types
# ---------------------------------------------------------------------------------------


class Settings(BaseModel):
    """Base for all settings objects: strict types, no unknown keys, immutable, finite numbers.

    ``strict``: a TOML float is not an integer (``3.0`` is rejected where AWS takes an integer),
    a string is not a number. ``allow_inf_nan=False``: ``inf`` and ``nan`` are never a setting.
    Every number also has explicit bounds in its field (tests/test_settings_ranges.py checks that
    every numeric field has a finite lower and upper bound).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


#: How cdktf writes a value that is not known until apply (a string token, or a list token's
#: element): ``${TfToken[TOKEN.12]}`` / ``#{TfToken[TOKEN.12]}``.
_TOKEN = re.compile(r"[$#]\{TfToken\[[A-Z_]+\.\d+\]\}")


def is_token(value: Any) -> bool:
    """True for a cdktf token (a reference to another resource, e.g. ``vpc.id``) or a string holding one.

    Settings accept tokens wherever they take an ID, a name or an ARN of something that exists
    elsewhere, so a construct can be given a VPC or a topic created in the same app; such a
    value is checked by Terraform and AWS, not here.
    """
    return isinstance(value, str) and bool(_TOKEN.search(value))


def _regex(pattern: str, rule: str, *examples: str):
    """A string rule; ``examples`` are valid values (checked here) that tools use as sample
    input, e.g. ``make rollout-check`` changing a setting to see what AWS would do. Tokens pass
    (see :func:`is_token`)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if is_token(value):
            return value
        if not compiled.fullmatch(value):
            raise ValueError(rule)
        return value

    for example in examples:
        if not compiled.fullmatch(example):
            raise AssertionError(f"example {example!r} does not match its own rule: {rule}")
    check.rule = rule  # type: ignore[attr-defined]  # shown in the README settings reference
    check.examples = examples  # type: ignore[attr-defined]
    return AfterValidator(check)


#: CloudWatch Logs retention periods that AWS accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


_retention.rule = "one of the CloudWatch Logs retention periods (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)"  # type: ignore[attr-defined]
_retention.choices = LOG_RETENTION_DAYS  # type: ignore[attr-defined]  # a finite set: bounded (tests/test_settings_ranges.py)


LogRetentionDays = Annotated[int, AfterValidator(_retention)]

#: The regions the pinned provider (hashicorp/aws 5.100.0) accepts as ``region``: every region of
#: its partitions (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc), opt-in
#: regions included. Source: each region name found in the provider binary (its partition data)
#: was given to ``terraform plan`` with that provider (2026-12-03); these passed, anything else
#: (us-east-9, ap-southeast-6, eu-central-3, ...) fails there with "invalid AWS Region". Update this
#: list when the provider pin moves (docs/settings.md).
AWS_REGIONS = (
    # aws (commercial; af-, ap-east-1/2, ap-south-2, ap-southeast-3..7, ca-west-1, eu-central-2,
    # eu-south-1/2, il-, me-, mx- are opt-in regions)
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
    "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
    "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    # aws-cn (China)
    "cn-north-1", "cn-northwest-1",
    # aws-us-gov (GovCloud)
    "us-gov-east-1", "us-gov-west-1",
    # aws-iso, aws-iso-b, aws-iso-e, aws-iso-f (isolated partitions)
    "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-east-1", "us-isof-south-1",
    # aws-eusc (AWS European Sovereign Cloud)
    "eusc-de-east-1",
)


def _region(value: str) -> str:
    if is_token(value) or value in AWS_REGIONS:
        return value
    import difflib

    close = difflib.get_close_matches(value, AWS_REGIONS, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ValueError(f"must be an AWS region the provider knows, such as us-east-1 (docs/settings.md lists them){hint}")


_region.rule = "an AWS region of the pinned provider (list below), e.g. us-east-1"  # type: ignore[attr-defined]
_region.examples = ("us-east-1", "eu-west-1")  # type: ignore[attr-defined]

AwsRegion = Annotated[str, AfterValidator(_region)]

NamePrefix = Annotated[str, _regex(r"[a-z][a-z0-9-]{0,11}", "must be 1-12 characters: lowercase letters, digits, '-', starting with a letter", "aiscale", "team2")]

EventBusName = Annotated[str, _regex(r"[/.\-_A-Za-z0-9]{1,256}", "must be 1-256 characters of A-Z a-z 0-9 . - _ /", "inference", "llm-events")]

SageMakerName = Annotated[str, _regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "must be 1-63 alphanumeric characters or '-', not starting or ending with '-'", "Chat-Endpoint", "blue")]

AutoScalingGroupName = Annotated[str, _regex(r"[^:*\s][^:*]{0,254}", "must be 1-255 characters without ':' or '*'", "llm-workers", "inference-fleet")]

MetricNamespace = Annotated[str, _regex(r"(?!AWS/)[A-Za-z0-9.\-_/#:]{1,255}", "must be 1-255 characters of A-Z a-z 0-9 . - _ / # : and must not start with 'AWS/'", "LLM/Inference", "Team/LLM")]

VpcId = Annotated[str, _regex(r"vpc-[0-9a-f]{8}([0-9a-f]{9})?", "must be a VPC ID such as vpc-0123456789abcdef0", "vpc-0123456789abcdef0", "vpc-0fedcba9876543210")]

SubnetId = Annotated[str, _regex(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?", "must be a subnet ID such as subnet-0123456789abcdef0", "subnet-0123456789abcdef0", "subnet-0123456789abcdef1")]

AvailabilityZone = Annotated[str, _regex(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]", "must be an availability zone name such as us-east-1a", "us-east-1a", "us-east-1c")]

Ipv4Cidr = Annotated[str, _regex(r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)/(3[0-2]|[12]?\d)",
                                 "must be an IPv4 CIDR block such as 10.0.0.0/16", "10.0.0.0/16", "10.20.0.0/16")]

Ec2InstanceType = Annotated[str, _regex(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "must be an EC2 instance type such as t3.micro or g5.xlarge", "t3.micro", "g5.xlarge")]

SsmParameterName = Annotated[str, _regex(r"/[A-Za-z0-9_.\-/]{1,2047}", "must be an SSM parameter name starting with '/', e.g. /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id")]


LambdaAliasName = Annotated[str, _regex(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}", "must be 1-128 characters of A-Z a-z 0-9 - _ and not only digits", "live", "prod")]

EmailAddress = Annotated[str, _regex(r"[^@\s]+@[^@\s]+\.[^@\s]+", "must be an email address such as ops@example.com", "ops@example.com", "oncall@example.com")]

DynamoDbTableName = Annotated[str, _regex(r"[a-zA-Z0-9_.-]{3,255}", "must be 3-255 characters of A-Z a-z 0-9 _ . -", "inference-sessions", "feature-store")]

#: An image in ECR (the only registry SageMaker pulls from without VPC configuration).
EcrImageUri = Annotated[str, _regex(
    r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]{1,128}|@sha256:[0-9a-f]{64})?",
    "must be an ECR image URI like 123456789012.dkr.ecr.us-east-1.amazonaws.com/repository:tag", "111122223333.dkr.ecr.us-east-1.amazonaws.com/llm-server:1.4.0", "111122223333.dkr.ecr.us-east-1.amazonaws.com/llm-server:1.5.0")]

#: One S3 object (not a prefix), e.g. a model archive.
S3ObjectUrl = Annotated[str, _regex(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]*[^/\s]",
                                    "must be an S3 object URL like s3://bucket/path/model.tar.gz", "s3://ml-artifacts-111122223333/llm/v7/model.tar.gz", "s3://ml-artifacts-111122223333/llm/v8/model.tar.gz")]

S3BucketName = Annotated[str, _regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "must be a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')", "inference-results", "inference-results-2")]


SageMakerInstanceType = Annotated[str, _regex(r"ml\.[a-z0-9-]+\.[a-z0-9]+", "must be a SageMaker instance type such as ml.m5.large or ml.g5.xlarge", "ml.m5.large", "ml.g5.xlarge")]

MediaType = Annotated[str, _regex(r"[\w.+-]+/[\w.+-]+(; ?[\w.+-]+=[\w.+-]+)*", "must be a media type such as application/json or text/csv", "application/json", "text/csv")]

S3KeyPrefix = Annotated[str, _regex(r"([A-Za-z0-9!_.*'()=-]+/){0,20}", "must be empty or path segments ending in '/', e.g. results/ (A-Z a-z 0-9 ! _ . * ' ( ) = -)", "results/", "scores/v2/")]


@functools.cache
def _time_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("must be an IANA time zone name such as UTC, Europe/Berlin or America/New_York")
    return value


_time_zone.examples = ("UTC", "Europe/Berlin")  # type: ignore[attr-defined]

#: An IANA (zoneinfo) time zone name, as Application Auto Scaling scheduled actions accept.
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]


def arn_type(service: str, example: str, resource: str = r".+", examples: tuple[str, ...] = ()):
    """An ARN of one service, e.g. ``arn_type("acm", "arn:aws:acm:us-east-1:123456789012:certificate/...")``;
    ``examples``: valid ARNs for tools (``example`` is the one shown in the rule, often abbreviated)."""
    pattern = rf"arn:aws[a-z-]*:{service}:[a-z0-9-]*:\d{{12}}:{resource}"
    return Annotated[str, _regex(pattern, f"must be an ARN like {example}", *examples)]


KmsKeyArn = arn_type("kms", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", r"key/[A-Za-z0-9-]+",
                     ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                      "arn:aws:kms:us-east-1:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"))

SqsQueueArn = arn_type("sqs", "arn:aws:sqs:us-east-1:123456789012:requests", r"[A-Za-z0-9_-]{1,80}(\.fifo)?",
                       ("arn:aws:sqs:us-east-1:123456789012:requests", "arn:aws:sqs:us-east-1:123456789012:requests-dlq"))

SnsTopicArn = arn_type("sns", "arn:aws:sns:us-east-1:123456789012:alerts", r"[A-Za-z0-9_-]{1,256}(\.fifo)?",
                       ("arn:aws:sns:us-east-1:123456789012:alerts", "arn:aws:sns:us-east-1:123456789012:platform-alerts"))

TargetGroupArn = arn_type("elasticloadbalancing", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/inference/0123456789abcdef",
                          r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}",
                          ("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/inference/0123456789abcdef",
                           "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/inference-v2/fedcba9876543210"))

ApplicationLoadBalancerArn = arn_type(
    "elasticloadbalancing", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/inference/0123456789abcdef",
    r"loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}",
    ("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/inference/0123456789abcdef",
     "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/platform/fedcba9876543210"))

SecurityGroupId = Annotated[str, _regex(r"sg-[0-9a-f]{8}([0-9a-f]{9})?", "must be a security group ID such as sg-0123456789abcdef0",
                                        "sg-0123456789abcdef0", "sg-0fedcba9876543210")]


def numeric_bounds(metadata: list[Any]) -> tuple[float | None, float | None, bool, bool]:
    """``(low, high, low_open, high_open)`` of a numeric field from its pydantic metadata (``ge``/``gt``/``le``/``lt``)."""
    low = high = None
    low_open = high_open = False
    for item in metadata:
        if getattr(item, "ge", None) is not None:
            low = item.ge
        if getattr(item, "gt", None) is not None:
            low, low_open = item.gt, True
        if getattr(item, "le", None) is not None:
            high = item.le
        if getattr(item, "lt", None) is not None:
            high, high_open = item.lt, True
    return low, high, low_open, high_open


# ---------------------------------------------------------------------------------------
# Tags (AWS tagging rules, the same for every service the stacks tag)
# ---------------------------------------------------------------------------------------

#: AWS: at most 50 user tags per resource (``aws:`` tags do not count).
MAX_TAGS_PER_RESOURCE = 50
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_TAG_CHARACTERS = "Unicode letters, digits, spaces and _ . : / = + - @"


def _tag_text(value: Any, what: str, least: int, most: int) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not least <= len(value) <= most:
        raise ValueError(f"{what} must be {least}-{most} characters (given {len(value)} characters: {_given(value)})")
    bad = "".join(sorted({c for c in value if not (unicodedata.category(c)[0] in "LNZ" or c in _TAG_PUNCTUATION)}))
    if bad:
        raise ValueError(f"{what} may contain only {_TAG_CHARACTERS} (not {bad!r})")
    return value


def _tag_key(value: Any) -> str:
    _tag_text(value, "a tag key", 1, 128)
    if value.lower().startswith("aws:"):
        raise ValueError("a tag key must not start with 'aws:' (reserved for AWS)")
    return value


def _tag_filter_key(value: Any) -> str:
    return _tag_text(value, "a tag key", 1, 128)


def _tag_value(value: Any) -> str:
    return _tag_text(value, "a tag value", 0, 256)


def _tag_filter_value(value: Any) -> str:
    return _tag_text(value, "a tag value", 1, 256)


_tag_key.rule = f"tag keys: 1-128 characters of {_TAG_CHARACTERS}, not starting with 'aws:'"  # type: ignore[attr-defined]
_tag_filter_key.rule = f"1-128 characters of {_TAG_CHARACTERS}"  # type: ignore[attr-defined]
_tag_value.rule = f"tag values: strings of 0-256 characters of {_TAG_CHARACTERS}"  # type: ignore[attr-defined]
_tag_filter_value.rule = f"1-256 characters of {_TAG_CHARACTERS}"  # type: ignore[attr-defined]
_tag_filter_key.examples = ("Application", "Team")  # type: ignore[attr-defined]

#: A tag key the stacks set on resources; a tag value. Both must be strings (no coercion of 5 to "5").
TagKey = Annotated[str, BeforeValidator(_tag_key)]
TagValue = Annotated[str, BeforeValidator(_tag_value)]
#: A tag key that finds resources (a filter: ``aws:`` keys such as ``aws:cloudformation:stack-name`` are fine).
TagFilterKey = Annotated[str, BeforeValidator(_tag_filter_key)]
TagFilterValue = Annotated[str, BeforeValidator(_tag_filter_value)]


def tag_map(added: tuple[str, ...] = ()):
    """The type of a table of tags (``{Team = "ml"}``) put on every resource, beside the tags in ``added``
    that the stacks set themselves: together at most :data:`MAX_TAGS_PER_RESOURCE` distinct keys."""
    room = MAX_TAGS_PER_RESOURCE - len(set(added))

    def check(tags: dict[str, str]) -> dict[str, str]:
        total = len(set(tags) | set(added))
        if total > MAX_TAGS_PER_RESOURCE:
            besides = f" with the {len(set(added))} the stacks add ({', '.join(added)})" if added else ""
            raise ValueError(f"at most {MAX_TAGS_PER_RESOURCE} tags per resource{besides} "
                             f"(given {len(tags)} tags, {total} in all)")
        return tags

    check.rule = (f"at most {room} tags besides the {len(set(added))} the stacks add ({', '.join(added)})" if added  # type: ignore[attr-defined]
                  else f"at most {MAX_TAGS_PER_RESOURCE} tags")
    return Annotated[dict[TagKey, TagValue], AfterValidator(check)]


# ---------------------------------------------------------------------------------------
# IAM of every role a pattern creates
# ---------------------------------------------------------------------------------------

IamPolicyArn = arn_type("iam", "arn:aws:iam::123456789012:policy/boundaries/workload", r"policy/[\w+=,.@/-]{1,128}",
                        ("arn:aws:iam::123456789012:policy/boundaries/workload", "arn:aws:iam::123456789012:policy/PlatformBoundary"))

RolePath = Annotated[str, _regex(r"/([\x21-\x7e]{1,510}/)?", "must begin and end with '/', e.g. /workloads/ (at most 512 characters)",
                                 "/workloads/", "/teams/inference/")]


class IamSettings(Settings):
    """Required by many enterprise accounts on every role a workload creates."""

    permissions_boundary_arn: IamPolicyArn | None = Field(None, description="Managed policy set as the permissions boundary of every IAM role the stacks create; unset = none.")
    role_path: RolePath | None = Field(None, description="Path of every IAM role the stacks create (e.g. `/workloads/`); unset = `/`. With a path, role names end in a hash of it (`-<hash8>`: names are unique in the account whatever the path), so a new path replaces the roles create-before-destroy.")


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


class SettingsError(Exception):
    """Bad settings: carries one human-readable line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Table:
    """Marks a ``dict[str, X]`` field in :func:`_walk`: the next location item is a key the user wrote."""

    def __init__(self, value: Any):
        self.value = value


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any]:
    """Readable dotted path for a pydantic error location, and the model it ends in.

    Discriminated-union tags (``scaling_target.autoscaling_group.name``) and validator
    branch names are dropped: the reader wrote ``scaling_target.name``. Keys of a table of
    values (``tags``) are kept, quoted as TOML quotes them when they are not bare keys
    (``tags.Name``, ``tags."aws:x"``).
    """
    path = ""
    current: Any = model
    for item in loc:
        if isinstance(current, _Table):
            if item == "[key]":  # pydantic's marker of a problem with the key itself
                continue
            key = str(item)
            path += "." + (key if _BARE_KEY.fullmatch(key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')
            current = _model_of(current.value)
            continue
        if isinstance(item, int):
            path += f"[{item}]"  # a list's item: the field step already resolved the list to its item's model
            continue
        fields = current.model_fields if _is_model(current) else {}
        if str(item) in fields:
            path += ("." if path else "") + str(item)
            annotation = fields[str(item)].annotation
            table, item_type = _container_of(annotation, dict), _container_of(annotation, list)
            if table is not None:
                current = _Table(table)
            elif item_type is not None:  # list[Model], list[Annotated[A | B, Field(discriminator=...)]], list[str]
                current = _model_of(item_type)
            else:
                current = _model_of(annotation)
        elif _is_model(current) or current is None:
            continue  # a union tag or a validator name, not something the user wrote
        else:
            member = _union_member(current, str(item))
            if member is not None:
                current = member
    return path, current


def _container_of(annotation: Any, kind: type) -> Any:
    """The value type of a ``dict[str, X]`` (``kind=dict``) or the item type of a ``list[X]`` (``kind=list``)
    annotation, also inside ``Annotated`` or ``| None``; else None."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is kind:
        return typing.get_args(annotation)[-1]
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(members) == 1:
        return _container_of(members[0], kind)
    return None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_of(annotation: Any) -> Any:
    """The model inside an annotation (``Foo | None`` -> Foo); unions of models stay unions."""
    while getattr(annotation, "__metadata__", None) is not None:  # Annotated[Foo | Bar, Field(discriminator=...)]
        annotation = annotation.__origin__
    if _is_model(annotation):
        return annotation
    members = [a for a in getattr(annotation, "__args__", ()) if _is_model(a)]
    if len(members) == 1:
        return members[0]
    return annotation if members else None


def _union_member(union: Any, tag: str) -> Any:
    for member in getattr(union, "__args__", ()):
        if _is_model(member):
            tag_field = member.model_fields.get("type")
            if tag_field is not None and tag in getattr(tag_field.annotation, "__args__", ()):
                return member
    return None


def _given(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_validation_error(section: str, exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem: ``[section] field: rule (given value)``."""
    lines = []
    for err in exc.errors(include_url=False):
        where, _ = _walk(model, err["loc"])
        where = where or "(section)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            lines.append(f"[{section}] {where}: required setting is missing")
            continue
        if err["type"] == "extra_forbidden":
            parent_path, parent = _walk(model, err["loc"][:-1])
            where = f"{parent_path}.{err['loc'][-1]}" if parent_path else str(err["loc"][-1])
            known = sorted(parent.model_fields) if _is_model(parent) else []
            msg = "unknown setting" + (f" (known: {', '.join(known)})" if known else "")
        if "(given " in msg:
            lines.append(f"[{section}] {where}: {msg}")
        else:
            lines.append(f"[{section}] {where}: {msg} (given {_given(err.get('input'))})")
    return lines


# ---------------------------------------------------------------------------------------
# Loading the settings file
# ---------------------------------------------------------------------------------------


def read_toml(path: Path, shown: str | None = None) -> dict[str, Any]:
    """Parse a TOML settings file; ``shown`` names it in errors (default: ``path`` as given).

    A file that does not exist, is a directory, cannot be read, is not UTF-8 or not TOML is a
    :class:`SettingsError` with one line naming the file: a file someone named is never
    silently "all defaults". Callers with an optional file check ``path.exists()`` first.
    """
    shown = shown or str(path)
    if not path.exists():
        raise SettingsError([f"{shown}: settings file not found"])
    if path.is_dir():
        raise SettingsError([f"{shown}: is a directory, not a settings file"])
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise SettingsError([f"{shown}: not UTF-8 text (line {line} has byte {exc.object[exc.start]:#04x}); save it as UTF-8"]) from None
    except OSError as exc:
        raise SettingsError([f"{shown}: cannot read the settings file: {exc.strerror or exc}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{shown}: not valid TOML: {exc}"]) from None


def read_input_file(path: Path, context: dict[str, Any] | None) -> str:
    """The UTF-8 text of a file a setting names (a CSV profile, ...), recorded in the validation
    context's ``inputs`` list when it has one: what the settings read shapes the synthesized
    output, so `make synth`'s cache (app/synth_cache.py) hashes it with the settings file."""
    text = path.read_text(encoding="utf-8")
    if context is not None and isinstance(context.get("inputs"), list):
        context["inputs"].append(path.resolve())
    return text


def validate_section(section: str, model: type[Settings], data: Any, context: dict[str, Any] | None = None) -> Settings:
    """``data`` validated by ``model``; problems as one line each, ``[section] field: rule (given value)``.

    ``context`` reaches validators (``{"base_dir": <folder of the settings file>}``: relative
    paths in the section are resolved against it; default: the working directory).
    """
    if not isinstance(data, dict):
        raise SettingsError([f"[{section}] must be a table of settings (given {_given(data)})"])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(section, exc, model)) from None
