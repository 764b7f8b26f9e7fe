"""Variants of `inference-load-balancing` synthesized once per session (see tests/conftest.py)."""

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/platform-inference/0123456789abcdef"
LOAD_BALANCER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/platform/fedcba9876543210"
EXISTING_NETWORK = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}

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
        "network": EXISTING_NETWORK,
        "fleet": {"instance_type": "g5.2xlarge", "min_size": 2, "max_size": 10},
    }),
    # The fleet behind a load balancer the platform team already runs: no load balancer here.
    "infer-existing-target-group": ("inference-load-balancing", {
        "target_port": 8080,
        "network": EXISTING_NETWORK,
        "existing_target_group": {"arn": TARGET_GROUP, "load_balancer_arn": LOAD_BALANCER,
                                  "load_balancer_security_group_id": "sg-0123456789abcdef0"},
    }),
}
