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
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

# ---------------------------------------------------------------------------------------
# Base model and reusable field types
# ---------------------------------------------------------------------------------------


class Settings(BaseModel):
    """Base for all settings objects: strict types, no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


LogRetentionDays = Annotated[int, AfterValidator(_retention)]

AwsRegion = Annotated[str, _regex(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", "must be an AWS region such as us-east-1", "us-east-1", "eu-west-1")]

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


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any]:
    """Readable dotted path for a pydantic error location, and the model it ends in.

    Discriminated-union tags (``scaling_target.autoscaling_group.name``) and validator
    branch names are dropped: the reader wrote ``scaling_target.name``.
    """
    path = ""
    current: Any = model
    for item in loc:
        if isinstance(item, int):
            path += f"[{item}]"
            if not _is_model(current):  # list[Model] already resolved to Model by the field step
                current = _model_of(getattr(current, "__args__", (None,))[0]) if current is not None else None
            continue
        fields = current.model_fields if _is_model(current) else {}
        if str(item) in fields:
            path += ("." if path else "") + str(item)
            current = _model_of(fields[str(item)].annotation)
        elif _is_model(current) or current is None:
            continue  # a union tag or a validator name, not something the user wrote
        else:
            member = _union_member(current, str(item))
            if member is not None:
                current = member
    return path, current


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_of(annotation: Any) -> Any:
    """The model inside an annotation (``Foo | None`` -> Foo); unions of models stay unions."""
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


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML settings file; a missing file means "all defaults"."""
    if not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{path.name}: not valid TOML: {exc}"]) from None


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
