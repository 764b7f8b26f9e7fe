"""`make preflight`: can these settings be applied in this AWS account? Checked before any plan.

    python -m tooling.preflight [--stack NAME ...] [--settings FILE] [--strict]

A new AWS account cannot apply the default stacks, and Terraform only finds out during the
apply: a SageMaker endpoint whose placeholder image never starts, provisioned concurrency
Lambda refuses, an Auto Scaling group that cannot launch a GPU instance. The preflight reads
the settings (``--settings``, ``$SCALING_PATTERNS_SETTINGS`` or ``settings.toml``) and the
account's facts, read-only, with the credentials of the environment, and prints one line per
shortfall saying what to set or which quota to raise. ``make plan TARGET=aws`` runs it
first, before anything is synthesized, planned or deleted. Only the stacks selected with
``--stack`` (all by default) count.

What it checks, per stack (quota codes and rules are cited where they are used below):

* ``queue-to-sagemaker``: ``endpoint.image_uri`` is not the placeholder, is in ECR in the
  endpoint's region and exists there; the "ml.<type> for endpoint usage" quota covers the
  variant's largest instance count; an ``existing`` endpoint exists and has the variant.
* ``predictive-lambda-scaling``: the account's unreserved concurrency leaves room for the
  provisioned concurrency (start value and ``scaling.max_capacity``).
* ``queue-depth-scaling``, ``inference-load-balancing``: the EC2 On-Demand vCPU quota of each
  instance family in use covers ``fleet.max_size`` of every fleet in that family together,
  less what other instances use now (when the quota's usage metric is readable).

Exit codes: 0 = nothing is short (a table of what was checked); 2 = something is short, the
settings are invalid or there are no credentials. A check that cannot run (AccessDenied, an
API or quota the region does not have) is a ``warning:`` line naming the permission; it does
not fail the preflight (the apply is still the final word), unless ``--strict`` is given.

Layers: :func:`needs` (settings -> which facts to read, pure), :func:`gather` (the boto3
adapters; every AWS error becomes an :class:`Unknown`), :func:`check` (settings + facts ->
problems, warnings and the table; pure, so tests give facts directly).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from app.config import SETTINGS_ENV, ProjectConfig, ProjectSettings, load_config, settings_path
from scaling_patterns.core.settings import SettingsError
from scaling_patterns.registry import PATTERNS

# ---------------------------------------------------------------------------------------
# AWS rules and quota codes
# ---------------------------------------------------------------------------------------

#: The image the settings ship with; it does not exist (123456789012 is AWS's documentation account).
PLACEHOLDER_ACCOUNT = "123456789012"

#: EC2 On-Demand instance quotas are counted in vCPUs, one quota per group of instance
#: families, shared by every running On-Demand instance of those families in the region
#: (Amazon EC2 User Guide, "Amazon EC2 service quotas" -> "On-Demand Instance quotas";
#: Service Quotas service code ``ec2``). Spot has separate quotas; the fleets here are On-Demand.
EC2_ON_DEMAND_QUOTAS: dict[str, tuple[str, str]] = {
    "standard": ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "p": ("L-417A185B", "Running On-Demand P instances"),
    "inf": ("L-1945791B", "Running On-Demand Inf instances"),
    "trn": ("L-2C3B7624", "Running On-Demand Trn instances"),
    "dl": ("L-6E869C2A", "Running On-Demand DL instances"),
    "f": ("L-74FC7D96", "Running On-Demand F instances"),
    "x": ("L-7295265B", "Running On-Demand X instances"),
    "u": ("L-43DA4232", "Running On-Demand High Memory instances"),
}
_FAMILY_PREFIXES = {"inf": "inf", "trn": "trn", "dl": "dl", "vt": "g"}  # before the one-letter rule
_STANDARD_LETTERS = "acdhimrtz"

#: Lambda "Concurrent executions" (Service Quotas service code ``lambda``): the Region's pool.
LAMBDA_CONCURRENCY_QUOTA = ("L-B99A9384", "Concurrent executions")
#: Lambda keeps 100 of the unreserved concurrency for functions without reserved concurrency;
#: reserved and provisioned concurrency may take only "the unreserved account concurrency minus
#: 100" (Lambda Developer Guide, "Configuring reserved concurrency" / "Configuring provisioned
#: concurrency"). Accounts whose whole quota is below 100 (new accounts get 10) cannot go below
#: their quota: Lambda answers "... decreases account's UnreservedConcurrentExecution below its
#: minimum value of [10]", so nothing can be reserved or provisioned there.
LAMBDA_MIN_UNRESERVED = 100

#: SageMaker real-time endpoint instances: one quota per instance type, named
#: "<instance type> for endpoint usage" (Service Quotas service code ``sagemaker``; the codes
#: differ per type, e.g. L-1928E07B for ml.g5.xlarge, so the preflight finds them by name).
SAGEMAKER_QUOTA_NAME = "{} for endpoint usage"


def ec2_quota(instance_type: str) -> tuple[str, str] | None:
    """(quota code, quota name) of the On-Demand vCPU quota ``instance_type`` counts against;
    None for families without one here (``hpc``, ``mac``: not Auto Scaling fleet types)."""
    letters = re.match(r"[a-z]*", instance_type).group(0)  # "g" of g5.xlarge, "inf" of inf2.xlarge
    if letters in _FAMILY_PREFIXES:
        return EC2_ON_DEMAND_QUOTAS[_FAMILY_PREFIXES[letters]]
    if not letters or letters in ("hpc", "mac"):
        return None
    if letters[0] in _STANDARD_LETTERS:
        return EC2_ON_DEMAND_QUOTAS["standard"]
    return EC2_ON_DEMAND_QUOTAS.get(letters[0])


def lambda_min_unreserved(concurrent_executions: int) -> int:
    return min(LAMBDA_MIN_UNRESERVED, concurrent_executions)


# ---------------------------------------------------------------------------------------
# Names of what the stacks deploy (tests/test_preflight.py compares them with the synthesized JSON)
# ---------------------------------------------------------------------------------------


def fleet_group_names(project: ProjectSettings) -> dict[str, str]:
    """Auto Scaling group name per fleet stack (``<name_prefix>-<short>-<suffix>``, as PatternStack names them)."""
    return {"queue-depth-scaling": f"{project.name_prefix}-queue-workers",
            "inference-load-balancing": f"{project.name_prefix}-infer-fleet"}


def provisioned_function_name(project: ProjectSettings) -> str:
    return f"{project.name_prefix}-pred-inference"


# ---------------------------------------------------------------------------------------
# Facts: what the account says (filled by `gather`, or given directly by tests)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unknown:
    """A fact that could not be read: the call (its IAM action) and why."""

    action: str  # e.g. "servicequotas:GetServiceQuota"
    reason: str  # e.g. "AccessDenied", "not available in eu-south-2"

    def __str__(self) -> str:
        return f"{self.action}: {self.reason}"


@dataclass(frozen=True)
class Quota:
    code: str
    name: str
    value: float
    #: What is in use now, from the quota's usage metric (CloudWatch AWS/Usage); None = not known.
    usage: float | None = None
    #: Why the usage is not known (no usage metric, or the metric could not be read).
    usage_note: str = ""


@dataclass(frozen=True)
class LambdaAccount:
    concurrent_executions: int  # AccountLimit.ConcurrentExecutions: the Region's quota
    unreserved: int  # AccountLimit.UnreservedConcurrentExecutions: not reserved or provisioned


@dataclass(frozen=True)
class Endpoint:
    """An existing SageMaker endpoint: its variants and their instance types."""

    variants: dict[str, str | None]  # variant name -> instance type (None: serverless)


@dataclass
class Facts:
    region: str
    account: str = ""
    lambda_account: LambdaAccount | Unknown | None = None
    #: Provisioned concurrency our own alias holds now ("function:alias"): counted in the
    #: account's unreserved figure already, so it is added back (day two: re-planning a running stack).
    provisioned: dict[str, int | Unknown] = field(default_factory=dict)
    #: vCPUs per EC2 instance type; None = the type is not offered in the region.
    vcpus: dict[str, int | None | Unknown] = field(default_factory=dict)
    #: EC2 vCPU quotas by quota code.
    ec2_quotas: dict[str, Quota | Unknown] = field(default_factory=dict)
    #: Instances our own Auto Scaling groups run now (group name -> instance type -> count); {} = no such group.
    own_instances: dict[str, dict[str, int] | Unknown] = field(default_factory=dict)
    #: SageMaker endpoint-usage quotas by instance type; None = no such quota in the region.
    sagemaker_quotas: dict[str, Quota | None | Unknown] = field(default_factory=dict)
    #: ECR images: exists?
    images: dict[str, bool | Unknown] = field(default_factory=dict)
    #: Existing SageMaker endpoints by name; None = not found.
    endpoints: dict[str, Endpoint | None | Unknown] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Which facts the settings need (pure)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Needs:
    region: str
    lambda_functions: tuple[tuple[str, str], ...] = ()  # (function name, alias) with provisioned concurrency
    fleet_types: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    sagemaker_types: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageRef:
    account: str
    region: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, uri: str) -> "ImageRef":
        registry, _, rest = uri.partition("/")
        account, _, _, region, *_ = registry.split(".")
        digest = tag = None
        if "@" in rest:
            rest, _, digest = rest.partition("@")
        elif ":" in rest:
            rest, _, tag = rest.rpartition(":")
        return cls(account, region, rest, tag if digest is None else None, digest)


def is_placeholder(uri: str) -> bool:
    return ImageRef.parse(uri).account == PLACEHOLDER_ACCOUNT


def selected(stacks: list[str] | None) -> list[str]:
    names = [spec.name for spec in PATTERNS]
    if not stacks:
        return names
    unknown = sorted(set(stacks) - set(names))
    if unknown:
        raise SystemExit(f"unknown stack(s): {', '.join(unknown)} (known: {', '.join(names)})")
    return [n for n in names if n in stacks]


def needs(config: ProjectConfig, stacks: list[str] | None = None) -> Needs:
    from scaling_patterns.patterns.queue_to_sagemaker.settings import NewEndpoint

    names = selected(stacks)
    project = config.project
    functions, types, groups, ml_types, images, endpoints = [], [], [], [], [], []
    if "predictive-lambda-scaling" in names:
        functions.append((provisioned_function_name(project), config.stacks["predictive-lambda-scaling"].alias_name))
    for stack, group in fleet_group_names(project).items():
        if stack in names:
            types.append(config.stacks[stack].fleet.instance_type)
            groups.append(group)
    if "queue-to-sagemaker" in names:
        s = config.stacks["queue-to-sagemaker"]
        if isinstance(s.endpoint, NewEndpoint):
            ml_types.append(s.endpoint.instance_type)
            ref = ImageRef.parse(s.endpoint.image_uri)
            if ref.account != PLACEHOLDER_ACCOUNT and ref.region == project.region:
                images.append(s.endpoint.image_uri)
        else:
            endpoints.append(s.endpoint.name)
    return Needs(project.region, tuple(functions), tuple(dict.fromkeys(types)), tuple(groups),
                 tuple(ml_types), tuple(images), tuple(endpoints))


# ---------------------------------------------------------------------------------------
# The checks (pure): settings + facts -> problems, warnings, rows
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    stack: str
    check: str
    needs: str
    account: str
    result: str  # "ok", "SHORT", "not checked"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    def short(self, row: Row, line: str) -> None:
        self.rows.append(row)
        self.problems.append(line)

    def unchecked(self, row: Row, line: str) -> None:
        self.rows.append(row)
        self.warnings.append(line)


def _n(value: float) -> str:
    return f"{value:g}"


def check(config: ProjectConfig, facts: Facts, stacks: list[str] | None = None) -> Report:
    names = selected(stacks)
    report = Report()
    # In the registry's order (the fleets are its second and third stacks), so lines and rows agree.
    _check_fleets(config, facts, report, [n for n in names if n in fleet_group_names(config.project)])
    if "predictive-lambda-scaling" in names:
        _check_provisioned_concurrency(config, facts, report)
    if "queue-to-sagemaker" in names:
        _check_sagemaker(config, facts, report)
    for name in names:
        if not any(name in row.stack.split(" + ") for row in report.rows):
            report.rows.append(Row(name, "nothing account-specific", "-", "-", "ok"))
    order = {name: index for index, name in enumerate(names)}
    report.rows.sort(key=lambda row: order[row.stack.split(" + ")[0]])  # stable: a stack's rows keep their order
    return report


def _check_sagemaker(config: ProjectConfig, facts: Facts, report: Report) -> None:
    from scaling_patterns.patterns.queue_to_sagemaker.settings import NewEndpoint

    stack = "queue-to-sagemaker"
    s = config.stacks[stack]
    region = config.project.region
    endpoint = s.endpoint
    if isinstance(endpoint, NewEndpoint):
        uri, ref = endpoint.image_uri, ImageRef.parse(endpoint.image_uri)
        row = Row(stack, "endpoint.image_uri", "an image in ECR", "", "ok")
        if ref.account == PLACEHOLDER_ACCOUNT:
            report.short(Row(stack, row.check, row.needs, "the placeholder", "SHORT"),
                         f"{stack}: endpoint.image_uri is the placeholder {uri} (account {PLACEHOLDER_ACCOUNT} is AWS's "
                         f"documentation example; the endpoint would never start); set [{stack}] endpoint.image_uri to your "
                         f"model image in ECR")
        elif ref.region != region:
            report.short(Row(stack, row.check, f"an image in ECR {region}", f"in ECR {ref.region}", "SHORT"),
                         f"{stack}: endpoint.image_uri is in ECR {ref.region} but the endpoint runs in {region} (SageMaker "
                         f"pulls the image from its own region); push or replicate the image to {region} and set "
                         f"[{stack}] endpoint.image_uri to it")
        else:
            found = facts.images.get(uri)
            if isinstance(found, Unknown) or found is None:
                report.unchecked(Row(stack, row.check, row.needs, "not readable", "not checked"),
                                 f"warning: {stack}: could not look up endpoint.image_uri {uri} ({found or 'not read'}); not checked")
            elif not found:
                wanted = f"@{ref.digest}" if ref.digest else f":{ref.tag or 'latest'}"
                report.short(Row(stack, row.check, row.needs, "not found", "SHORT"),
                             f"{stack}: endpoint.image_uri {uri}: no image {ref.repository}{wanted} in ECR "
                             f"(registry {ref.account}, {region}); push the image or set [{stack}] endpoint.image_uri "
                             f"to one that exists")
            else:
                report.rows.append(Row(stack, row.check, row.needs, "found", "ok"))
        count, count_field = ((s.autoscaling.max_capacity, "autoscaling.max_capacity") if s.autoscaling.enabled
                              else (endpoint.initial_instance_count, "endpoint.initial_instance_count"))
        _check_sagemaker_quota(facts, report, endpoint.instance_type, count, count_field, "")
        return

    # An existing endpoint: it must exist with the variant; autoscaling then needs its quota.
    found = facts.endpoints.get(endpoint.name)
    row = Row(stack, "endpoint.name", f"endpoint {endpoint.name}", "", "ok")
    if isinstance(found, Unknown) or (found is None and endpoint.name not in facts.endpoints):
        report.unchecked(Row(stack, row.check, row.needs, "not readable", "not checked"),
                         f"warning: {stack}: could not look up endpoint.name = {endpoint.name!r} ({found or 'not read'}); not checked")
        return
    if found is None:
        report.short(Row(stack, row.check, row.needs, "not found", "SHORT"),
                     f"{stack}: endpoint.name = {endpoint.name!r}: no such SageMaker endpoint in {region}; create it first "
                     f"or set [{stack}] endpoint to {{type = \"create\", image_uri = ...}}")
        return
    if endpoint.variant_name not in found.variants:
        report.short(Row(stack, "endpoint.variant_name", f"variant {endpoint.variant_name}", "not found", "SHORT"),
                     f"{stack}: endpoint.variant_name = {endpoint.variant_name!r} is not a variant of endpoint "
                     f"{endpoint.name} (variants: {', '.join(sorted(found.variants))}); set [{stack}] endpoint.variant_name")
        return
    report.rows.append(Row(stack, row.check, row.needs, "found", "ok"))
    instance_type = found.variants[endpoint.variant_name]
    if s.autoscaling.enabled and instance_type:
        _check_sagemaker_quota(facts, report, instance_type, s.autoscaling.max_capacity, "autoscaling.max_capacity",
                               f" (the instance type of endpoint {endpoint.name})")


def _check_sagemaker_quota(facts: Facts, report: Report, instance_type: str, count: int, count_field: str,
                           whose: str) -> None:
    stack = "queue-to-sagemaker"
    quota_name = SAGEMAKER_QUOTA_NAME.format(instance_type)
    quota = facts.sagemaker_quotas.get(instance_type)
    needs_text = f"{count} x {instance_type} ({count_field})"
    if isinstance(quota, Unknown) or instance_type not in facts.sagemaker_quotas:
        report.unchecked(Row(stack, f'"{quota_name}"', needs_text, "not readable", "not checked"),
                         f'warning: {stack}: could not read the quota "{quota_name}" ({quota or "not read"}); not checked')
        return
    if quota is None:
        report.unchecked(Row(stack, f'"{quota_name}"', needs_text, "no such quota", "not checked"),
                         f'warning: {stack}: Service Quotas has no quota "{quota_name}" in {facts.region}: {instance_type} '
                         f"may not be offered for real-time endpoints there; not checked")
        return
    # Instances of other endpoints are not counted (no cheap figure); the quota is compared with our maximum.
    has = f"quota {_n(quota.value)} (other endpoints not counted)"
    if count > quota.value:
        report.short(Row(stack, f'"{quota_name}" ({quota.code})', needs_text, has, "SHORT"),
                     f'{stack}: {count_field} = {count} x {instance_type}{whose} needs {count} of "{quota.name}"; the quota '
                     f"is {_n(quota.value)}: request an increase (Service Quotas {quota.code}) to at least {count} "
                     f"or lower {count_field}")
    else:
        report.rows.append(Row(stack, f'"{quota_name}" ({quota.code})', needs_text, has, "ok"))


def _check_provisioned_concurrency(config: ProjectConfig, facts: Facts, report: Report) -> None:
    stack = "predictive-lambda-scaling"
    s = config.stacks[stack]
    code, quota_name = LAMBDA_CONCURRENCY_QUOTA
    check_name = "provisioned concurrency"
    needs_text = f"{s.provisioned_concurrency} at apply, up to {s.scaling.max_capacity} (scaling.max_capacity)"
    account = facts.lambda_account
    key = f"{provisioned_function_name(config.project)}:{s.alias_name}"
    own = facts.provisioned.get(key, 0)
    if not isinstance(account, LambdaAccount):
        report.unchecked(Row(stack, check_name, needs_text, "not readable", "not checked"),
                         f"warning: {stack}: could not read the account's Lambda concurrency ({account or 'not read'}); not checked")
        return
    if isinstance(own, Unknown):
        report.warnings.append(f"warning: {stack}: could not read the provisioned concurrency {key} holds now ({own}); "
                               "counted as 0, so a running stack may look short")
        own = 0
    keep = lambda_min_unreserved(account.concurrent_executions)
    room = max(0, account.unreserved + own - keep)
    reserved_elsewhere = account.concurrent_executions - account.unreserved - own
    has = (f"{room} can be provisioned (quota {account.concurrent_executions}, unreserved {account.unreserved}"
           + (f" + {own} ours" if own else "") + f", {keep} stay unreserved)")
    row = Row(stack, f"{check_name} (\"{quota_name}\" {code})", needs_text, has, "ok")
    need = s.scaling.max_capacity
    if need <= room:
        report.rows.append(row)
        return
    at_least = need + LAMBDA_MIN_UNRESERVED + max(0, reserved_elsewhere)
    increase = f'request an increase of "{quota_name}" (Service Quotas {code}) to at least {at_least}'
    why = (f"Lambda keeps {keep} of the account's {account.unreserved} unreserved concurrency free"
           + (f" (plus {own} this alias holds now)" if own else "") + f", so {room} can be provisioned")
    short = Row(stack, row.check, row.needs, row.account, "SHORT")
    if room == 0:
        report.short(short, f"{stack}: provisioned_concurrency = {s.provisioned_concurrency} cannot be allocated: {why} "
                            f"(quota {account.concurrent_executions}); {increase}")
    elif s.provisioned_concurrency > room:
        report.short(short, f"{stack}: provisioned_concurrency = {s.provisioned_concurrency} (and scaling.max_capacity = "
                            f"{need}) exceed what can be provisioned: {why}; {increase} or lower provisioned_concurrency, "
                            f"scaling.min_capacity and scaling.max_capacity to at most {room}")
    else:
        report.short(short, f"{stack}: scaling.max_capacity = {need} needs {need} provisioned concurrency: {why} "
                            f"(scaling out stops there); {increase} or lower scaling.max_capacity to at most {room}")


def _check_fleets(config: ProjectConfig, facts: Facts, report: Report, stacks: list[str]) -> None:
    groups = fleet_group_names(config.project)
    by_quota: dict[tuple[str, str], list[tuple[str, int, str, int]]] = {}
    for stack in stacks:
        fleet = config.stacks[stack].fleet
        type_ = fleet.instance_type
        vcpus = facts.vcpus.get(type_)
        if isinstance(vcpus, Unknown) or type_ not in facts.vcpus:
            report.unchecked(Row(stack, "fleet.instance_type", type_, "not readable", "not checked"),
                             f"warning: {stack}: could not look up fleet.instance_type = {type_} ({vcpus or 'not read'}); "
                             "its vCPU quota is not checked")
            continue
        if vcpus is None:
            report.short(Row(stack, "fleet.instance_type", type_, f"not offered in {facts.region}", "SHORT"),
                         f"{stack}: fleet.instance_type = {type_} is not offered in {facts.region}; set [{stack}] "
                         f"fleet.instance_type to a type offered there")
            continue
        quota = ec2_quota(type_)
        if quota is None:
            report.unchecked(Row(stack, "fleet.instance_type", type_, "no known vCPU quota", "not checked"),
                             f"warning: {stack}: fleet.instance_type = {type_}: no On-Demand vCPU quota known for its "
                             "family; not checked")
            continue
        by_quota.setdefault(quota, []).append((stack, fleet.max_size, type_, vcpus))

    for (code, name), fleets in by_quota.items():
        stacks_text = " + ".join(stack for stack, *_ in fleets)
        need = sum(size * vcpus for _, size, _, vcpus in fleets)
        if len(fleets) == 1:
            _, size, type_, _ = fleets[0]
            what = f"fleet.max_size = {size} x {type_}"
        else:
            what = "fleet.max_size = " + " + ".join(f"{size} x {type_} in {stack}" for stack, size, type_, _ in fleets)
        needs_text = f"{need} vCPUs ({what.removeprefix('fleet.max_size = ')})"
        quota = facts.ec2_quotas.get(code)
        if isinstance(quota, Unknown) or quota is None:
            report.unchecked(Row(stacks_text, f'"{name}" ({code})', needs_text, "not readable", "not checked"),
                             f'warning: {stacks_text}: could not read the EC2 quota "{name}" ({quota or "not read"}); not checked')
            continue
        others, has, own_unknown = _others_usage(quota, facts, [groups[s] for s, *_ in fleets], code)
        if own_unknown:
            report.warnings.append(f"warning: {stacks_text}: could not read the instances our groups run now "
                                   f"({own_unknown}); all {_n(quota.usage or 0)} vCPUs in use are counted as others'")
        available = quota.value - (others or 0)
        row = Row(stacks_text, f'"{quota.name}" ({code})', needs_text, has, "ok")
        if need <= available:
            report.rows.append(row)
            continue
        in_use = f" and {_n(others)} are in use by other instances" if others else ""
        if others is None:
            in_use = f" ({quota.usage_note or 'instances running now not counted'})"
        report.short(Row(row.stack, row.check, row.needs, row.account, "SHORT"),
                     f'{stacks_text}: {what} need{"s" if len(fleets) == 1 else ""} {need} vCPUs of "{quota.name}"; '
                     f"the quota is {_n(quota.value)}{in_use}: request an increase (Service Quotas {code}) to at least "
                     f"{_n(math.ceil(need + (others or 0)))} or lower fleet.max_size")


def _others_usage(quota: Quota, facts: Facts, groups: list[str], code: str) -> tuple[float | None, str, str]:
    """vCPUs of this quota in use by instances other than our groups' (None = not known), the
    account column, and why our own instances could not be read (empty when they could)."""
    if quota.usage is None:
        return None, f"quota {_n(quota.value)} ({quota.usage_note or 'usage not known'})", ""
    own = 0.0
    unknown = ""
    for group in groups:
        instances = facts.own_instances.get(group, {})
        if isinstance(instances, Unknown):
            unknown = str(instances)
            continue
        for type_, count in instances.items():
            vcpus = facts.vcpus.get(type_)
            if ec2_quota(type_) is not None and ec2_quota(type_)[0] == code and isinstance(vcpus, int):
                own += count * vcpus
    others = max(0.0, quota.usage - own)
    has = f"quota {_n(quota.value)}, {_n(quota.usage)} in use" + (f" ({_n(own)} by these fleets)" if own else "")
    return others, has, unknown


# ---------------------------------------------------------------------------------------
# The adapters (boto3): needs -> facts; no AWS error escapes
# ---------------------------------------------------------------------------------------

ClientFactory = Callable[[str], Any]


def _error(exc: Exception) -> tuple[str, str]:
    """(error code, message) of a botocore error."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", "")), str(error.get("Message", ""))
    return type(exc).__name__, str(exc)


def _unknown(action: str, exc: Exception, region: str) -> Unknown:
    code, message = _error(exc)
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"):
        return Unknown(action, f"{code}: the identity needs {action}")
    if code == "NoSuchResourceException":
        return Unknown(action, f"not available in {region}")
    title = re.search(r"<title>(.*?)</title>", message, re.S | re.I)
    if title or "<html" in message.lower():  # an HTML error page (a proxy, or an emulator without the call)
        message = title.group(1) if title else "an HTML error page"
    message = " ".join(message.split())
    if len(message) > 160:
        message = message[:157] + "..."
    return Unknown(action, f"{'HTTP ' if code.isdigit() else ''}{code or 'error'}: {message}".rstrip(": "))


def _call(action: str, region: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, or an Unknown naming ``action`` for any AWS or connection error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        return _unknown(action, exc, region)
    except NotImplementedError as exc:  # moto in-process for calls it lacks
        return Unknown(action, f"not implemented: {exc}")


def gather(wanted: Needs, client: ClientFactory, now: dt.datetime | None = None) -> Facts:
    region = wanted.region
    facts = Facts(region=region)
    if wanted.lambda_functions:
        facts.lambda_account = read_lambda_account(client("lambda"), region)
        for function, alias in wanted.lambda_functions:
            facts.provisioned[f"{function}:{alias}"] = read_provisioned(client("lambda"), region, function, alias)
    if wanted.groups:
        facts.own_instances = read_group_instances(client("autoscaling"), region, list(wanted.groups))
    own_types = {t for found in facts.own_instances.values() if isinstance(found, dict) for t in found}
    types = list(dict.fromkeys([*wanted.fleet_types, *sorted(own_types)]))
    if types:
        facts.vcpus = read_vcpus(client("ec2"), region, types)
    codes = sorted({ec2_quota(t)[0] for t in wanted.fleet_types if ec2_quota(t) and isinstance(facts.vcpus.get(t), int)})
    for code in codes:
        facts.ec2_quotas[code] = read_quota(client("service-quotas"), client("cloudwatch"), region, "ec2", code, now)
    if wanted.endpoints:
        facts.endpoints = {name: read_endpoint(client("sagemaker"), region, name) for name in wanted.endpoints}
    ml_types = list(wanted.sagemaker_types)
    for endpoint in facts.endpoints.values():
        if isinstance(endpoint, Endpoint):
            ml_types.extend(t for t in endpoint.variants.values() if t)
    if ml_types:
        facts.sagemaker_quotas = read_sagemaker_quotas(client("service-quotas"), region, list(dict.fromkeys(ml_types)))
    for uri in wanted.images:
        facts.images[uri] = read_image(client("ecr"), region, uri)
    return facts


def read_lambda_account(lam: Any, region: str) -> LambdaAccount | Unknown:
    found = _call("lambda:GetAccountSettings", region, lam.get_account_settings)
    if isinstance(found, Unknown):
        return found
    limit = found["AccountLimit"]
    return LambdaAccount(int(limit["ConcurrentExecutions"]), int(limit["UnreservedConcurrentExecutions"]))


def read_provisioned(lam: Any, region: str, function: str, alias: str) -> int | Unknown:
    from botocore.exceptions import ClientError

    try:
        found = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier=alias)
    except ClientError as exc:
        if _error(exc)[0] in ("ProvisionedConcurrencyConfigNotFoundException", "ResourceNotFoundException"):
            return 0  # not deployed yet, or deployed without provisioned concurrency
        return _unknown("lambda:GetProvisionedConcurrencyConfig", exc, region)
    except Exception as exc:  # noqa: BLE001 - connection errors become a warning, never a traceback
        return _unknown("lambda:GetProvisionedConcurrencyConfig", exc, region)
    return int(found.get("RequestedProvisionedConcurrentExecutions") or 0)


def read_group_instances(autoscaling: Any, region: str, groups: list[str]) -> dict[str, dict[str, int] | Unknown]:
    found = _call("autoscaling:DescribeAutoScalingGroups", region,
                  lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=groups))
    if isinstance(found, Unknown):
        return {group: found for group in groups}
    result: dict[str, dict[str, int] | Unknown] = {group: {} for group in groups}
    for group in found.get("AutoScalingGroups", []):
        counts: dict[str, int] = {}
        for instance in group.get("Instances", []):
            if instance.get("LifecycleState") != "Terminated" and instance.get("InstanceType"):
                counts[instance["InstanceType"]] = counts.get(instance["InstanceType"], 0) + 1
        result[group["AutoScalingGroupName"]] = counts
    return result


def read_vcpus(ec2: Any, region: str, types: list[str]) -> dict[str, int | None | Unknown]:
    """DescribeInstanceTypes lists only the types offered in the region; one call per type, so
    an unknown type (InvalidInstanceType) does not hide the others."""
    from botocore.exceptions import ClientError

    result: dict[str, int | None | Unknown] = {}
    for type_ in types:
        try:
            found = ec2.describe_instance_types(InstanceTypes=[type_])["InstanceTypes"]
        except ClientError as exc:
            result[type_] = None if _error(exc)[0] == "InvalidInstanceType" else _unknown("ec2:DescribeInstanceTypes", exc, region)
            continue
        except Exception as exc:  # noqa: BLE001
            result[type_] = _unknown("ec2:DescribeInstanceTypes", exc, region)
            continue
        result[type_] = int(found[0]["VCpuInfo"]["DefaultVCpus"]) if found else None
    return result


def read_quota(quotas: Any, cloudwatch: Any, region: str, service: str, code: str,
               now: dt.datetime | None = None) -> Quota | Unknown:
    """The applied quota (or AWS's default when no value is applied), with its current usage
    from the quota's usage metric when it has one (one GetMetricData call)."""
    from botocore.exceptions import ClientError

    try:
        found = quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
    except ClientError as exc:
        if _error(exc)[0] != "NoSuchResourceException":
            return _unknown("servicequotas:GetServiceQuota", exc, region)
        found = _call("servicequotas:GetAWSDefaultServiceQuota", region,
                      lambda: quotas.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code))
        if isinstance(found, Unknown):
            return found
        found = found["Quota"]
    except Exception as exc:  # noqa: BLE001
        return _unknown("servicequotas:GetServiceQuota", exc, region)
    usage, note = read_usage(cloudwatch, region, found.get("UsageMetric"), now)
    return Quota(code, found.get("QuotaName", code), float(found["Value"]), usage, note)


def read_usage(cloudwatch: Any, region: str, metric: dict | None, now: dt.datetime | None = None) -> tuple[float | None, str]:
    """Latest value of a quota's usage metric over the last hour; (None, why) when not known.
    No data point in that hour means nothing is in use (AWS/Usage reports only what runs)."""
    if not metric or not metric.get("MetricName"):
        return None, "the quota has no usage metric; instances running now not counted"
    end = now or dt.datetime.now(dt.timezone.utc)
    query = {"Id": "usage", "MetricStat": {
        "Metric": {"Namespace": metric["MetricNamespace"], "MetricName": metric["MetricName"],
                   "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(metric.get("MetricDimensions", {}).items())]},
        "Period": 300, "Stat": metric.get("MetricStatisticRecommendation") or "Maximum"}}
    found = _call("cloudwatch:GetMetricData", region, lambda: cloudwatch.get_metric_data(
        MetricDataQueries=[query], StartTime=end - dt.timedelta(hours=1), EndTime=end, ScanBy="TimestampDescending"))
    if isinstance(found, Unknown):
        return None, f"usage not readable: {found}"
    values = (found.get("MetricDataResults") or [{}])[0].get("Values") or []
    return (float(values[0]) if values else 0.0), ""


def read_sagemaker_quotas(quotas: Any, region: str, types: list[str]) -> dict[str, Quota | None | Unknown]:
    """The "<type> for endpoint usage" quotas, by name: applied values, else AWS's defaults."""
    wanted = {SAGEMAKER_QUOTA_NAME.format(t): t for t in types}
    found: dict[str, Quota] = {}
    for action, method in (("servicequotas:ListServiceQuotas", "list_service_quotas"),
                           ("servicequotas:ListAWSDefaultServiceQuotas", "list_aws_default_service_quotas")):
        listed = _call(action, region, lambda: [q for page in quotas.get_paginator(method).paginate(ServiceCode="sagemaker")
                                                for q in page.get("Quotas", [])])
        if isinstance(listed, Unknown):
            if method == "list_service_quotas":
                return {t: listed for t in types}
            break  # applied values were read; defaults fill only quotas without one
        for q in listed:
            name = q.get("QuotaName")
            if name in wanted and wanted[name] not in found:
                found[wanted[name]] = Quota(q["QuotaCode"], name, float(q["Value"]))
        if len(found) == len(types):
            break
    return {t: found.get(t) for t in types}


def read_image(ecr: Any, region: str, uri: str) -> bool | Unknown:
    from botocore.exceptions import ClientError

    ref = ImageRef.parse(uri)
    image_id = {"imageDigest": ref.digest} if ref.digest else {"imageTag": ref.tag or "latest"}
    try:
        found = ecr.describe_images(registryId=ref.account, repositoryName=ref.repository, imageIds=[image_id])
    except ClientError as exc:
        if _error(exc)[0] in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        return _unknown("ecr:DescribeImages", exc, region)
    except Exception as exc:  # noqa: BLE001
        return _unknown("ecr:DescribeImages", exc, region)
    return bool(found.get("imageDetails"))


def read_endpoint(sagemaker: Any, region: str, name: str) -> Endpoint | None | Unknown:
    from botocore.exceptions import ClientError

    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        code, message = _error(exc)
        if code == "ValidationException" and "Could not find endpoint" in message:
            return None
        return _unknown("sagemaker:DescribeEndpoint", exc, region)
    except Exception as exc:  # noqa: BLE001
        return _unknown("sagemaker:DescribeEndpoint", exc, region)
    config = _call("sagemaker:DescribeEndpointConfig", region,
                   lambda: sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"]))
    if isinstance(config, Unknown):
        return config
    return Endpoint({v["VariantName"]: v.get("InstanceType") for v in config.get("ProductionVariants", [])})


# ---------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _settings_env(settings: Path) -> Iterator[None]:
    """``$SCALING_PATTERNS_SETTINGS`` = ``settings`` while loading, so paths in the file
    (``schedule.csv_path``) resolve against it, as they do in synthesis."""
    before = os.environ.get(SETTINGS_ENV)
    os.environ[SETTINGS_ENV] = str(settings)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SETTINGS_ENV, None)
        else:
            os.environ[SETTINGS_ENV] = before


def session_clients(region: str) -> ClientFactory:
    """boto3 clients in ``region`` with the environment's credentials (short timeouts, few retries)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"})
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, config=config)
        return cache[service]

    return client


def render(report: Report) -> str:
    lines = ["| stack | check | needs | account | result |", "|---|---|---|---|---|"]
    lines += [f"| {r.stack} | {r.check} | {r.needs} | {r.account} | {r.result} |" for r in report.rows]
    return "\n".join(lines) + "\n"


def run(settings: Path | None = None, stacks: list[str] | None = None, strict: bool = False,
        client: ClientFactory | None = None, out: Any = None, err: Any = None) -> int:
    """The preflight as `make preflight` and `make plan TARGET=aws` run it; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    path = (settings or settings_path()).resolve()
    try:
        with _settings_env(path):
            config = load_config(path)
    except SettingsError as exc:
        print("Settings are not valid; nothing was checked:", file=err)
        for line in exc.problems:
            print(f"  {line}", file=err)
        return 2
    names = selected(stacks)
    client = client or session_clients(config.project.region)
    identity = _call("sts:GetCallerIdentity", config.project.region, lambda: client("sts").get_caller_identity())
    if isinstance(identity, Unknown):
        print(f"preflight: cannot reach AWS as any identity ({identity.reason}); set AWS credentials (AWS_PROFILE, "
              "SSO or a CI role) and try again; nothing was checked", file=err)
        return 2
    facts = gather(needs(config, names), client)
    facts.account = identity.get("Account", "")
    report = check(config, facts, names)
    where = f"account {facts.account}, {facts.region}"
    print(f"Preflight ({where}, settings {path.name}, stacks: {', '.join(names)}):\n", file=out)
    print(render(report), file=out)
    for line in report.warnings:
        print(line, file=err)
    if report.problems:
        print(f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''} before this can be applied "
              f"in {where}:", file=err)
        for line in report.problems:
            print(f"  {line}", file=err)
        return 2
    if report.warnings and strict:
        print(f"{len(report.warnings)} check(s) could not run and --strict is set", file=err)
        return 2
    print(f"preflight passed ({len(report.rows)} checks" + (f", {len(report.warnings)} not run: see the warnings" if report.warnings else "")
          + ")", file=out)
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tooling.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="append", help="check only this stack (repeatable), as `make plan --stack`")
    parser.add_argument("--settings", type=Path, default=None, help=f"settings file (default ${SETTINGS_ENV} or settings.toml)")
    parser.add_argument("--strict", action="store_true", help="a check that cannot run (e.g. AccessDenied) fails too")
    args = parser.parse_args(argv)
    return run(args.settings, args.stack, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
