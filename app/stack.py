"""`ProjectStack`: the stack one pattern runs in, in this project's app.

What the library leaves to an app, decided here: the AWS provider (region, ``default_tags``),
the backend (a local state file beside the project, or S3 with native locking), resource
names (``<name_prefix>-<short>-<suffix>``: unchanged since the first release, they are in
every deployed state), and the pattern's outputs as Terraform outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdktf import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from app.config import PROJECT_ROOT, ProjectSettings
from app.config import S3Backend as S3BackendSettings
from scaling_patterns.spec import PatternSpec

#: Local state files live beside the project (absolute, so they survive re-synthesis of cdktf.out).
STATE_DIR = PROJECT_ROOT


class ProjectStack(TerraformStack):
    def __init__(self, scope: Construct, name: str, project: ProjectSettings, spec: PatternSpec, settings: Any,
                 state_dir: Path = STATE_DIR):
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
            LocalBackend(self, path=str(state_dir / f"terraform.{name}.tfstate"))

        self.pattern = spec.load("construct")(
            self, spec.construct_id, settings,
            name=f"{project.name_prefix}-{spec.short}",
            region=project.region,
            # What the provider's default_tags do not reach (instances, Auto Scaling groups).
            tags={"Project": "scaling-patterns", "Stack": name, **project.tags},
            permissions_boundary_arn=project.iam.permissions_boundary_arn,
            role_path=project.iam.role_path,
            emulator=project.emulator,
        )
        for output, (value, description) in self.pattern.outputs().items():
            TerraformOutput(self, output, value=value, description=description)
