"""scaling-patterns: five AI-workload scaling patterns on AWS as CDK for Terraform constructs.

Each pattern is one construct that works in any ``TerraformStack`` (the provider, backend and
state are your app's), with typed settings as props::

    from scaling_patterns import SqsToSagemakerEndpoint, QueueToSageMakerSettings

    pattern = SqsToSagemakerEndpoint(stack, "orders", {"endpoint": {"type": "existing", "name": endpoint.name}},
                                     name_prefix="team", permissions_boundary_arn=boundary.arn)

=============================================  ==========================================
construct                                      settings (props)
=============================================  ==========================================
``EventbridgeToScalingController``             ``LlmRequestScalingSettings``
``SqsToAutoScalingWorkers``                    ``QueueDepthScalingSettings``
``AlbToAutoScalingFleet``                      ``InferenceLoadBalancingSettings``
``LambdaWithPredictiveConcurrency``            ``PredictiveLambdaScalingSettings``
``SqsToSagemakerEndpoint``                     ``QueueToSageMakerSettings``
=============================================  ==========================================

Importing this package has no side effects and loads nothing heavy: a construct or settings
class is imported when it is first used (the constructs load the cdktf provider bindings).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.4.0"

#: Public name -> module. Each pattern's construct and settings class come from its spec in
#: the registry (a new pattern is exported without a line here).
_EXPORTS = {
    "Pattern": "scaling_patterns.core.pattern",
    "IamSettings": "scaling_patterns.core.settings",
    "SettingsError": "scaling_patterns.core.settings",
    "PATTERNS": "scaling_patterns.registry",
}


def _pattern_exports() -> dict[str, str]:
    from scaling_patterns.registry import PATTERNS

    exports = {}
    for spec in PATTERNS:
        for ref in (spec.construct, spec.settings):
            module, _, name = ref.partition(":")
            exports[name] = module
    return exports


_EXPORTS.update(_pattern_exports())

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scaling_patterns' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
