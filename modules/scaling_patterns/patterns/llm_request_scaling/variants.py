"""Variants of `llm-request-scaling` synthesized once per session (see tests/conftest.py)."""

VARIANTS = {
    "llm-asg-target": ("llm-request-scaling", {
        "event_bus_name": "inference-bus",
        "create_event_bus": True,
        "metric_namespace": "Team/LLM",
        "detail_types": ["Inference Request", "Batch Inference Request"],
        "scaling_target": {"type": "autoscaling_group", "name": "llm-workers"},
        "scaling": {"min_capacity": 2, "max_capacity": 12, "requests_per_instance_per_minute": 30.0,
                    "cooldown_seconds": 120},
        "max_retry_attempts": 5,
        "log_retention_days": 90,
    }),
    "llm-sagemaker-target": ("llm-request-scaling", {
        "event_pattern": {"source": ["acme.llm"], "detail": {"priority": ["high"]}},
        "scaling_target": {"type": "sagemaker_variant", "endpoint_name": "Chat-Endpoint", "variant_name": "blue"},
    }),
    # An existing custom bus (not created here), a reserved scaler and a longer scaler timeout.
    "llm-existing-bus-reserved": ("llm-request-scaling", {
        "event_bus_name": "shared-bus",
        "scaling_target": {"type": "autoscaling_group", "name": "gpu-pool"},
        "scaler_reserved_concurrency": True,
        "scaler_timeout_seconds": 45,
    }),
}
