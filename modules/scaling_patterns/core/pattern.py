"""`Pattern`: the base of every pattern construct; the props all of them share.

Like an AWS Solutions Construct, a pattern works in any ``TerraformStack`` and leaves the
provider, the backend and the state to the app. It takes its settings (the pydantic class of
the pattern, or a plain mapping validated by it: documented defaults, then what you give) and:

``name`` / ``name_prefix``
    every resource is named ``<name>-<suffix>``; ``name`` defaults to ``<name_prefix>-<id>``
    (``QueueToSageMaker(stack, "orders", name_prefix="team")`` names its queue
    ``team-orders-requests``), so two instances in one stack never collide;
``region``
    for ARNs and zones; default: the stack's AWS provider region (or data sources for a token);
``tags``
    tags for what the provider's ``default_tags`` do not reach (instances, Auto Scaling groups);
``permissions_boundary_arn`` / ``role_path``
    applied to every IAM role the pattern creates (enterprise accounts require both);
``emulator``
    leave out what the local emulator cannot create (``make deploy-local`` only).

Each pattern exposes what a composing app needs (queues, functions, roles, groups, endpoints)
as attributes, ``grant_*`` methods that give another role the access the pattern's interface
needs, ``metric_*`` methods for the metrics that drive its scaling, and :meth:`outputs` (what
the project's stacks export).
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

from constructs import Construct

from scaling_patterns.core.context import PatternContext, build_context, derive_name
from scaling_patterns.core.settings import Settings, SettingsError, validate_section

S = TypeVar("S", bound=Settings)


class Pattern(Construct):
    #: The pattern's settings class (set by each pattern).
    settings_class: type[Settings] = Settings

    def __init__(self, scope: Construct, id_: str, settings: Settings | Mapping[str, Any] | None = None, *,
                 name: str | None = None, name_prefix: str | None = None, region: str | None = None,
                 tags: Mapping[str, str] | None = None, permissions_boundary_arn: str | None = None,
                 role_path: str | None = None, emulator: bool = False):
        super().__init__(scope, id_)
        self.settings = self.settings_of(settings)
        check_iam(permissions_boundary_arn, role_path)
        self.pattern_context: PatternContext = build_context(
            self, name=derive_name(name, name_prefix, id_), region=region, tags=tags,
            permissions_boundary_arn=permissions_boundary_arn, role_path=role_path, emulator=emulator)

    @classmethod
    def settings_of(cls, settings: Settings | Mapping[str, Any] | None) -> Any:
        """Settings as given, or a mapping validated by the pattern's class (errors name the field)."""
        if isinstance(settings, cls.settings_class):
            return settings
        if settings is None:
            return cls.settings_class()
        if isinstance(settings, Settings):
            raise TypeError(f"{cls.__name__} takes {cls.settings_class.__name__} (given {type(settings).__name__})")
        try:
            return validate_section(cls.__name__, cls.settings_class, dict(settings))
        except SettingsError as exc:
            raise ValueError("; ".join(exc.problems)) from None

    @property
    def context(self) -> PatternContext:
        return self.pattern_context

    def resource_name(self, suffix: str, max_length: int = 64) -> str:
        return self.pattern_context.resource_name(suffix, max_length)

    def outputs(self) -> dict[str, tuple[Any, str]]:
        """What a stack of this pattern exports: output name -> (value, description)."""
        return {}


def check_iam(permissions_boundary_arn: str | None, role_path: str | None) -> None:
    from scaling_patterns.core.settings import IamSettings

    IamSettings.model_validate({"permissions_boundary_arn": permissions_boundary_arn, "role_path": role_path})
