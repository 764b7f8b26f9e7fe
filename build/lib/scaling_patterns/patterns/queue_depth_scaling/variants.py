"""Variants of `queue-depth-scaling` synthesized once per session (see tests/conftest.py)."""

VARIANTS = {
    # The reference's alarms and policies, with every number at its default.
    "queue-alarm-steps": ("queue-depth-scaling", {
        "scaling": {"type": "alarm_steps"},
    }),
    # The alarms with every scale-in number changed: they must reach the metric-math alarm.
    "queue-alarm-steps-tuned": ("queue-depth-scaling", {
        "scaling": {"type": "alarm_steps", "scale_in_threshold": 0, "scale_in_adjustment": -2, "statistic": "Average",
                    "period_seconds": 300, "evaluation_periods": 3},
    }),
    # Existing subnets, a real job command, a warm minimum and a tuned backlog target.
    "queue-tuned": ("queue-depth-scaling", {
        "job_timeout_seconds": 1800,
        "max_receive_count": 3,
        "worker_command": ["/opt/app/run-job", "--model", "${MODEL}", "say \"hi\""],
        "network": {"vpc_id": "vpc-0123456789abcdef0",
                    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]},
        "fleet": {"instance_type": "g5.xlarge", "min_size": 1, "max_size": 20, "root_volume_gb": 200,
                  "ami_ssm_parameter": "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"},
        "scaling": {"type": "backlog_per_instance", "target_latency_seconds": 600, "seconds_per_job": 45.0,
                    "disable_scale_in": True},
    }),
}
