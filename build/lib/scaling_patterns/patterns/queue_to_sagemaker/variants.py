"""Variants of `queue-to-sagemaker` synthesized once per session (see tests/conftest.py)."""

VARIANTS = {
    # An endpoint managed elsewhere; results to S3; customer-managed queue key; tuned polling.
    "q2sm-existing-endpoint": ("queue-to-sagemaker", {
        "endpoint": {"type": "existing", "name": "Fraud-Scorer", "variant_name": "blue"},
        "results": {"type": "s3", "bucket": "inference-results", "prefix": "fraud/scores/"},
        "queue": {"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                  "max_receive_count": 3, "visibility_timeout_seconds": 360},
        "timeout_seconds": 60,
        "invocation_timeout_seconds": 45,
        "max_concurrency": 20,
        "batch_size": 50,
        "max_batching_window_seconds": 5,
        "autoscaling": {"min_capacity": 2, "max_capacity": 10, "target_invocations_per_instance": 250.0},
    }),
    # A created endpoint with model data in S3, encrypted volumes, autoscaling off.
    "q2sm-custom-model": ("queue-to-sagemaker", {
        "endpoint": {"type": "create",
                     "image_uri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/llm-server@sha256:" + "a" * 64,
                     "model_data_url": "s3://ml-artifacts-111122223333/llm/v7/model.tar.gz",
                     "instance_type": "ml.g5.xlarge", "initial_instance_count": 2,
                     "environment": {"MAX_TOKENS": "512"},
                     "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"},
        "autoscaling": {"enabled": False},
        "content_type": "text/csv",
        # A short inference limit and no visibility timeout given: 6 x 40 + 2 = 242 s.
        "invocation_timeout_seconds": 20,
        "timeout_seconds": 40,
        "max_batching_window_seconds": 2,
    }),
}
