"""`service_role`: every IAM role of a pattern, with the pattern's permissions boundary and path."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.iam_role import IamRole
from constructs import Construct

from scaling_patterns.core.context import context_of
from scaling_patterns.core.iam import assume_role_policy


def service_role(scope: Construct, id_: str, *, name: str, service: str, description: str) -> IamRole:
    """A role only ``service`` (e.g. ``lambda.amazonaws.com``) may assume, with the pattern's
    ``permissions_boundary_arn`` and ``role_path`` (unset: none, and ``/``)."""
    context = context_of(scope)
    return IamRole(scope, id_, name=name, assume_role_policy=assume_role_policy(service), description=description,
                   permissions_boundary=context.permissions_boundary_arn, path=context.role_path)
