"""Variants of `inference-load-balancing` synthesized once per session (see tests/conftest.py)."""

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef"

VARIANTS = {
    # Internal, HTTPS, access logs, deletion protection, existing subnets, every knob moved.
    "infer-https-internal": ("inference-load-balancing", {
        "internal": True,
        "ingress_cidrs": ["10.0.0.0/8", "192.168.0.0/16"],
        "certificate_arn": CERTIFICATE,
        "access_logs": True,
        "access_log_retention_days": 30,
        "deletion_protection": True,
        "idle_timeout_seconds": 900,
        "target_port": 8080,
        "health_check": {"path": "/health", "healthy_threshold": 3, "unhealthy_threshold": 5, "timeout_seconds": 10,
                         "interval_seconds": 15, "matcher": "200-299"},
        "deregistration_delay_seconds": 120,
        "load_balancing_algorithm": "round_robin",
        "requests_per_target_per_minute": 120.0,
        "user_data": "#!/bin/bash\nsystemctl start my-model-server\n",
        "network": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]},
        "fleet": {"instance_type": "g5.2xlarge", "min_size": 2, "max_size": 10},
    }),
}
