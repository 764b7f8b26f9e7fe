"""`service_role`: every IAM role of a pattern, with the pattern's permissions boundary and path.

Day two: AWS replaces a role whose path changes, and role names are unique in the account
whatever their path. With ``role_path`` set, the name carries a hash of the path
(``<name>-<hash8>``), so a new path gives a new role that is created before the old one is
deleted (its consumers move to it in place); without a path, names stay as they always were.
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.iam_role import IamRole
from constructs import Construct

from scaling_patterns.core.context import context_of
from scaling_patterns.core.iam import assume_role_policy
from scaling_patterns.core.naming import HASH_DIGITS, versioned

#: IAM: role names are at most 64 characters.
ROLE_NAME_LIMIT = 64


def role_name(name: str, role_path: str | None) -> str:
    """The role's name: ``name``, or ``<name>-<hash of the path>`` under a path."""
    if role_path is None:
        return name
    if len(name) > ROLE_NAME_LIMIT - HASH_DIGITS - 1:
        raise ValueError(f"role name {name!r} leaves no room for the role_path hash (at most "
                         f"{ROLE_NAME_LIMIT - HASH_DIGITS - 1} characters with role_path); use a shorter name or name_prefix")
    return versioned(name, {"path": role_path})


def service_role(scope: Construct, id_: str, *, name: str, service: str, description: str) -> IamRole:
    """A role only ``service`` (e.g. ``lambda.amazonaws.com``) may assume, with the pattern's
    ``permissions_boundary_arn`` and ``role_path`` (unset: none, and ``/``)."""
    context = context_of(scope)
    return IamRole(scope, id_, name=role_name(name, context.role_path), assume_role_policy=assume_role_policy(service),
                   description=description, permissions_boundary=context.permissions_boundary_arn, path=context.role_path,
                   lifecycle=TerraformResourceLifecycle(create_before_destroy=True))
