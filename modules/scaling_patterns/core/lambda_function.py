"""`PythonFunction`: a Lambda function from a folder under ``functions/``, done right once.

What every function in this project gets without asking:
- code packaged as a cdktf asset (``TerraformAsset``, a reproducible zip) built from a clean copy of
  ``functions/<name>/`` (no ``__pycache__``), and ``source_code_hash`` set from the asset's
  content hash, so a code change is a plan change and nothing else is;
- a log group ``/aws/lambda/<function name>`` with retention, created before the function,
  and the function's log format set to JSON (structured logs, ``extra`` keys as fields);
- an execution role trusted only by Lambda, with one inline policy: the statements the
  pattern passes plus writing to its own log group. No managed policies, no wildcards;
- active X-Ray tracing (and the trace-writing grant, which AWS offers only on ``*``), so a
  slow or failing invocation can be followed through the AWS calls it makes.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
)
from constructs import Construct

from scaling_patterns.core.functions import FUNCTIONS_DIR  # noqa: E402 - re-exported for the constructs
from scaling_patterns.core.iam import Statement, grant_write_logs, grant_write_traces, policy_document
from scaling_patterns.core.roles import service_role
from scaling_patterns.core.versions import LAMBDA_PYTHON_RUNTIME

RUNTIME = LAMBDA_PYTHON_RUNTIME
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "test_*", ".*")
_staging_root: Path | None = None


def _staging() -> Path:
    global _staging_root
    if _staging_root is None:
        _staging_root = Path(tempfile.mkdtemp(prefix="scaling-patterns-functions-"))
        atexit.register(shutil.rmtree, _staging_root, True)
    return _staging_root


def stage_source(name: str) -> Path:
    """A clean copy of ``functions/<name>`` (no tests, bytecode or dotfiles) to package."""
    source = FUNCTIONS_DIR / name
    if not (source / "handler.py").is_file():
        raise FileNotFoundError(f"functions/{name}/handler.py not found")
    target = _staging() / name
    if not target.exists():
        shutil.copytree(source, target, ignore=_IGNORED)
    return target


def package_source(name: str) -> Path:
    """``functions/<name>`` as a reproducible zip: same code, same bytes, same hash.

    Zipped here rather than by ``TerraformAsset(type=ARCHIVE)``, which spends ~0.2 s per
    function in a Node child process at synth. Entries are sorted, dated 1980-01-01 and
    mode 0644, so only a code change changes the archive (and so the plan).
    """
    folder = stage_source(name)
    archive = _staging() / f"{name}.zip"
    if not archive.exists():
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return archive


class PythonFunction(Construct):
    """One Lambda function with its role, policy, log group and packaged code."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        function_name: str,
        source: str,
        statements: Sequence[Statement],
        handler: str = "handler.handler",
        description: str | None = None,
        memory_mb: int = 256,
        timeout_seconds: int = 30,
        environment: Mapping[str, str] | None = None,
        log_retention_days: int = 30,
        reserved_concurrency: int | None = None,
        publish: bool = False,
        tracing: bool = True,
    ):
        super().__init__(scope, id_)
        self.function_name = function_name

        self.log_group = CloudwatchLogGroup(
            self, "log_group", name=f"/aws/lambda/{function_name}", retention_in_days=log_retention_days)

        self.role = service_role(self, "role", name=f"{function_name}-role", service="lambda.amazonaws.com",
                                 description=f"Execution role of Lambda function {function_name}")
        self.policy = IamRolePolicy(
            self, "policy", name="least-privilege", role=self.role.id,
            policy=policy_document([grant_write_logs(self.log_group.arn), *([grant_write_traces()] if tracing else []),
                                    *statements]))

        asset = TerraformAsset(self, "code", path=str(package_source(source)), type=AssetType.FILE)
        self.function = LambdaFunction(
            self, "function",
            function_name=function_name,
            description=description,
            role=self.role.arn,
            runtime=RUNTIME,
            handler=handler,
            filename=asset.path,
            source_code_hash=asset.asset_hash,
            memory_size=memory_mb,
            timeout=timeout_seconds,
            publish=publish,
            reserved_concurrent_executions=reserved_concurrency,
            environment=LambdaFunctionEnvironment(variables=dict(environment)) if environment else None,
            logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=self.log_group.name),
            tracing_config=LambdaFunctionTracingConfig(mode="Active" if tracing else "PassThrough"),
            depends_on=[self.log_group, self.policy],
        )

    @property
    def arn(self) -> str:
        return self.function.arn

    @property
    def name(self) -> str:
        return self.function.function_name
