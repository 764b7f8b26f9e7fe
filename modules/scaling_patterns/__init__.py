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

#: Public name -> "module:attribute".
_EXPORTS = {
    "EventbridgeToScalingController": "scaling_patterns.patterns.llm_request_scaling.construct",
    "LlmRequestScalingSettings": "scaling_patterns.patterns.llm_request_scaling.settings",
    "SqsToAutoScalingWorkers": "scaling_patterns.patterns.queue_depth_scaling.construct",
    "QueueDepthScalingSettings": "scaling_patterns.patterns.queue_depth_scaling.settings",
    "AlbToAutoScalingFleet": "scaling_patterns.patterns.inference_load_balancing.construct",
    "InferenceLoadBalancingSettings": "scaling_patterns.patterns.inference_load_balancing.settings",
    "LambdaWithPredictiveConcurrency": "scaling_patterns.patterns.predictive_lambda_scaling.construct",
    "PredictiveLambdaScalingSettings": "scaling_patterns.patterns.predictive_lambda_scaling.settings",
    "SqsToSagemakerEndpoint": "scaling_patterns.patterns.queue_to_sagemaker.construct",
    "QueueToSageMakerSettings": "scaling_patterns.patterns.queue_to_sagemaker.settings",
    "Pattern": "scaling_patterns.core.pattern",
    "IamSettings": "scaling_patterns.core.settings",
    "SettingsError": "scaling_patterns.core.settings",
    "PATTERNS": "scaling_patterns.registry",
}

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
