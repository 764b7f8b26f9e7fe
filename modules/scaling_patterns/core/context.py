"""What every construct of a pattern needs to know, in any ``TerraformStack``: `PatternContext`.

A pattern construct (``SqsToSagemakerEndpoint(...)``) builds one from its props and the stack
it is in, and the constructs inside it (functions, fleets, queues, roles) read it from the
construct tree (:func:`context_of`). So nothing depends on a stack class of this project:

- **names**: ``<name>-<suffix>``, where ``name`` is the prop, or ``<name_prefix>-<construct id>``:
  two instances in one stack get different names, and every name is checked against the
  limit of the resource it names;
- **region and partition**: the prop, or the literal region of the stack's AWS provider, or
  (a provider whose region is a token) the ``aws_region`` / ``aws_partition`` data sources,
  which read the provider's configuration without an API call;
- **tags** for what the provider's ``default_tags`` do not reach (instances launched by an
  Auto Scaling group, the group itself);
- **IAM**: a permissions boundary and a path for every role the pattern creates;
- **emulator**: leave out what the local emulator (moto) cannot create (``make deploy-local``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from constructs import Construct

from scaling_patterns.core.iam import partition_of

#: A name: lowercase letters, digits and '-', starting with a letter (fits every AWS name rule used).
NAME = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]")


@dataclass(frozen=True)
class PatternContext:
    name: str
    region: str  # a region, or a token
    partition: str  # aws, aws-cn, aws-us-gov, or a token
    tags: Mapping[str, str] = field(default_factory=dict)
    permissions_boundary_arn: str | None = None
    role_path: str | None = None
    emulator: bool = False

    def resource_name(self, suffix: str, max_length: int = 64) -> str:
        """``<name>-<suffix>``, checked against the resource's limit."""
        name = f"{self.name}-{suffix}"
        if len(name) > max_length:
            raise ValueError(f"resource name {name!r} is longer than {max_length} characters; use a shorter name or name_prefix")
        return name


def derive_name(name: str | None, name_prefix: str | None, construct_id: str) -> str:
    """The base of every resource name: ``name``, or ``<name_prefix>-<construct id>`` made name-safe."""
    if name is None:
        slug = re.sub(r"[^a-z0-9]+", "-", construct_id.lower()).strip("-") or "pattern"
        name = f"{name_prefix}-{slug}" if name_prefix else slug
    if not NAME.fullmatch(name):
        raise ValueError(f"name must be lowercase letters, digits and '-', starting with a letter (given {name!r})")
    return name


def provider_region(scope: Construct) -> str | None:
    """The literal region of the (default) AWS provider of ``scope``'s stack, if it has one."""
    from cdktf import TerraformStack, Token
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    stack = TerraformStack.of(scope)
    for child in stack.node.find_all():
        if isinstance(child, AwsProvider) and not child.alias:
            region = child.region
            if isinstance(region, str) and region and not Token.is_unresolved(region):
                return region
    return None


def build_context(scope: Construct, *, name: str, region: str | None, tags: Mapping[str, str] | None,
                  permissions_boundary_arn: str | None, role_path: str | None, emulator: bool) -> PatternContext:
    """The context of a pattern construct (``scope``): region from the prop, the provider, or data sources."""
    from cdktf import Token

    region = region or provider_region(scope)
    if region and not Token.is_unresolved(region):
        partition = partition_of(region)
    else:
        from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
        from cdktf_cdktf_provider_aws.data_aws_region import DataAwsRegion

        region = region or DataAwsRegion(scope, "region").name
        partition = DataAwsPartition(scope, "partition").partition
    return PatternContext(name=name, region=region, partition=partition, tags=dict(tags or {}),
                          permissions_boundary_arn=permissions_boundary_arn, role_path=role_path, emulator=emulator)


def context_of(scope: Construct) -> PatternContext:
    """The `PatternContext` of the nearest pattern construct at or above ``scope``."""
    node: Any = scope
    while node is not None:
        context = getattr(node, "pattern_context", None)
        if isinstance(context, PatternContext):
            return context
        node = node.node.scope
    raise LookupError(f"{scope.node.path} is not inside a scaling_patterns pattern construct")


def emulator_profile(scope: Construct) -> bool:
    """True when the pattern holding ``scope`` leaves out what the local emulator cannot create."""
    try:
        return context_of(scope).emulator
    except LookupError:
        return False
