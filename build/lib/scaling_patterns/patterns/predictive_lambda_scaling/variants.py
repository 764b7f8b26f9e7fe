"""Variants of `predictive-lambda-scaling` synthesized once per session (see tests/conftest.py)."""

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]

VARIANTS = {
    # A weekday business-hours profile in Berlin time, an alarm topic with email, and a scaling plan.
    "pred-scheduled": ("predictive-lambda-scaling", {
        "alias_name": "prod",
        "provisioned_concurrency": 5,
        "scaling": {"min_capacity": 5, "max_capacity": 80, "target_utilization": 0.6},
        "schedule": {
            "timezone": "Europe/Berlin",
            "lead_minutes": 20,
            "peaks": [
                {"days": WEEKDAYS, "hours": [9, 10, 11], "concurrency": 40},
                {"days": WEEKDAYS, "hours": [12, 13], "concurrency": 25},
                {"days": ["sat"], "hours": [23], "concurrency": 30},
                {"days": ["sun"], "hours": [0], "concurrency": 30},
            ],
        },
        "spillover_alarm": {"create_topic": True, "email_subscriptions": ["oncall@example.com"], "threshold": 5},
        "scaling_plan": {
            "tag_key": "Application",
            "tag_values": ["inference"],
            "resources": [
                {"type": "autoscaling_group", "name": "feature-workers", "min_capacity": 2, "max_capacity": 8},
                {"type": "dynamodb_table", "name": "inference-sessions", "dimension": "write"},
            ],
        },
    }),
    # Observed hourly peaks from a CSV (UTC timestamps), scheduled in New York time.
    "pred-csv": ("predictive-lambda-scaling", {
        "schedule": {"timezone": "America/New_York", "csv_path": "examples/settings/observed-hourly-peaks.csv",
                     "merge_gap_hours": 0, "lead_minutes": 30},
        "spillover_alarm": {"topic_arn": "arn:aws:sns:us-east-1:123456789012:platform-alerts"},
    }),
}
