"""Pattern 4: SQS queue -> Lambda -> SageMaker endpoint, with partial batch responses and variant autoscaling."""
