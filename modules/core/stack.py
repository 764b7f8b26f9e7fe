"""`PatternStack`: what every stack shares: the AWS provider, default tags, the backend,
naming, and outputs."""

from __future__ import annotations

from typing import Any

from cdktf import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from modules.core.settings import ProjectSettings, S3Backend as S3BackendSettings
from modules.registry import PROJECT_ROOT

STATE_DIR = PROJECT_ROOT


class PatternStack(TerraformStack):
    """Base of the five stacks. Subclasses set ``SHORT`` (used in resource names)."""

    SHORT = "stack"

    def __init__(self, scope: Construct, name: str, project: ProjectSettings):
        super().__init__(scope, name)
        self.stack_name = name
        self.project = project
        AwsProvider(
            self, "aws",
            region=project.region,
            default_tags=[AwsProviderDefaultTags(tags={
                "Project": "scaling-patterns", "Stack": name, "ManagedBy": "cdktf", **project.tags})],
        )
        backend = project.backend
        if isinstance(backend, S3BackendSettings):
            S3Backend(self, bucket=backend.bucket, key=f"{backend.key_prefix}/{name}.tfstate",
                      region=backend.region or project.region, encrypt=backend.encrypt)
            # cdktf 0.21's S3Backend predates native S3 locking (Terraform >= 1.10).
            self.add_override("terraform.backend.s3.use_lockfile", backend.use_lockfile)
        else:
            # Absolute, so state survives re-synthesis of cdktf.out (as cdktf itself does).
            LocalBackend(self, path=str(STATE_DIR / f"terraform.{name}.tfstate"))

    def resource_name(self, suffix: str, max_length: int = 64) -> str:
        """``<name_prefix>-<stack short name>-<suffix>``, checked against the resource's limit."""
        name = f"{self.project.name_prefix}-{self.SHORT}-{suffix}"
        if len(name) > max_length:
            raise ValueError(f"resource name {name!r} is longer than {max_length} characters; shorten project.name_prefix")
        return name

    def output(self, name: str, value: Any, description: str) -> TerraformOutput:
        return TerraformOutput(self, name, value=value, description=description)


def emulator_profile(scope: Construct) -> bool:
    """True when ``project.emulator`` is set for the stack holding ``scope``: leave out what
    the local emulator cannot create (each such resource is listed in the README)."""
    stack = TerraformStack.of(scope)
    return isinstance(stack, PatternStack) and stack.project.emulator
