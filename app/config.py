"""The settings file of the app: the ``[project]`` section and one section per stack.

``load_config(path)`` validates every section, collecting all problems before raising one
:class:`~scaling_patterns.core.settings.SettingsError` whose lines name the file; relative
paths inside the file (a schedule's ``csv_path``) are resolved against the file's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from scaling_patterns.core.settings import (
    AwsRegion,
    IamSettings,
    NamePrefix,
    S3BucketName,
    Settings,
    SettingsError,
    _regex,
    read_toml,
    tag_map,
    validate_section,
)
from scaling_patterns.registry import PATTERNS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_FILE = PROJECT_ROOT / "settings.toml"
SETTINGS_ENV = "SCALING_PATTERNS_SETTINGS"

#: Tags the stacks put on resources themselves (app/stack.py: Project, Stack, ManagedBy; the library:
#: Name on EC2 and load-balancer resources); `project.tags` shares AWS's 50 tags per resource with them.
STACK_TAG_KEYS = ("Project", "Stack", "ManagedBy", "Name")


class LocalBackend(Settings):
    """Terraform state in a local file per stack (the default)."""

    type: Literal["local"] = Field("local", description="`local`: state in `terraform.<stack>.tfstate` beside the project.")


class S3Backend(Settings):
    """Terraform state in S3 with native S3 locking (Terraform >= 1.10)."""

    type: Literal["s3"] = Field(description="`s3`: shared state for teams.")
    bucket: S3BucketName = Field(description="State bucket (must exist; versioning recommended).")
    key_prefix: Annotated[str, _regex(r"[A-Za-z0-9!_.*'()/-]{1,200}", "must be 1-200 characters of A-Z a-z 0-9 ! _ . * ' ( ) / -",
                                      "scaling-patterns", "teams/inference/prod")] = Field(
        "scaling-patterns", description="State object key is `<key_prefix>/<stack>.tfstate`.")
    region: AwsRegion | None = Field(None, description="Bucket region; defaults to `project.region`.")
    use_lockfile: bool = Field(True, description="Native S3 locking (a `.tflock` object beside the state).")
    encrypt: bool = Field(True, description="Server-side encryption of the state object.")


class ProjectSettings(Settings):
    """Settings shared by every stack."""

    region: AwsRegion = Field("us-east-1", description="AWS region of every stack.")
    name_prefix: NamePrefix = Field("aiscale", description="Prefix of every resource name; change it per environment sharing an account.")
    tags: tag_map(added=STACK_TAG_KEYS) = Field(  # type: ignore[valid-type]
        default_factory=dict, description="Extra tags on every resource (provider `default_tags`), e.g. `{Team = \"ml\"}`; keys and values are strings.")
    emulator: bool = Field(False, description="Leave out the resources the local emulator (moto) cannot create, as listed in docs/deploy.md; for `make deploy-local` only, never for real AWS.")
    backend: LocalBackend | S3Backend = Field(default_factory=LocalBackend, discriminator="type",
                                              description="Where Terraform keeps state: `{type = \"local\"}` or `{type = \"s3\", bucket = ...}`.")
    iam: IamSettings = Field(default_factory=IamSettings, description="Permissions boundary and path of every IAM role the stacks create.")


@dataclass(frozen=True)
class ProjectConfig:
    """Everything main.py needs: project settings and one validated settings object per stack."""

    source: Path
    project: ProjectSettings
    stacks: dict[str, Settings]
    #: Files the settings read besides the settings file (resolved; e.g. a CSV profile).
    inputs: tuple[Path, ...] = ()


def settings_path() -> Path:
    """The settings file: ``$SCALING_PATTERNS_SETTINGS`` or ``settings.toml`` in the project root."""
    return settings_source()[0]


def settings_source(path: Path | str | None = None) -> tuple[Path, str]:
    """The settings file to read (resolved) and its name for messages, as the user gave it:
    ``path``, else ``$SCALING_PATTERNS_SETTINGS`` (an empty value counts as unset), else the
    project's ``settings.toml``."""
    if path is not None:
        return Path(path).resolve(), str(path)
    named = os.environ.get(SETTINGS_ENV)
    if named:
        return Path(named).resolve(), named
    try:  # the project's file, named as a person in the project folder would name it
        return DEFAULT_SETTINGS_FILE, str(DEFAULT_SETTINGS_FILE.relative_to(Path.cwd().resolve()))
    except ValueError:
        return DEFAULT_SETTINGS_FILE, str(DEFAULT_SETTINGS_FILE)


def read_settings_file(path: Path | str | None = None) -> dict[str, Any]:
    """The parsed settings file (see :func:`settings_source`). Whether named or the default, it must
    exist: the project ships settings.toml (all defaults, with commented examples), so a missing
    one is an error too, never a silent "all defaults"."""
    resolved, shown = settings_source(path)
    try:
        return read_toml(resolved, shown)
    except SettingsError as exc:
        if resolved == DEFAULT_SETTINGS_FILE and not resolved.exists():
            raise SettingsError([f"{exc.problems[0]} (the project ships one: restore it with `git checkout settings.toml`, "
                                 f"or name a file with {SETTINGS_ENV})"]) from None
        raise


def load_config(path: Path | str | None = None, data: dict[str, Any] | None = None) -> ProjectConfig:
    """Validate every section of ``path`` (or of ``data``, read as if from ``path``); ``path``
    defaults to :func:`settings_source`. A file that cannot be read is one problem naming it."""
    raw = read_settings_file(path) if data is None else data
    path, shown = settings_source(path)
    known = {spec.name for spec in PATTERNS} | {"project"}
    problems: list[str] = []
    for section in raw:
        if section not in known:
            problems.append(f"[{section}] unknown section (known: {', '.join(sorted(known))})")

    context: dict[str, Any] = {"base_dir": path.parent, "inputs": []}
    project: ProjectSettings | None = None
    try:
        project = validate_section("project", ProjectSettings, raw.get("project", {}), context)  # type: ignore[assignment]
    except SettingsError as exc:
        problems.extend(exc.problems)

    stacks: dict[str, Settings] = {}
    for spec in PATTERNS:
        try:
            stacks[spec.name] = validate_section(spec.name, spec.load_settings_class(), raw.get(spec.name, {}), context)
        except SettingsError as exc:
            problems.extend(exc.problems)

    if problems:
        raise SettingsError([f"{shown}: {line}" for line in problems])
    assert project is not None
    return ProjectConfig(source=path, project=project, stacks=stacks, inputs=tuple(dict.fromkeys(context["inputs"])))
