"""Settings of the `queue-to-sagemaker` stack (section `[queue-to-sagemaker]`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scaling_patterns.core.settings import (
    EcrImageUri,
    KmsKeyArn,
    LogRetentionDays,
    MediaType,
    S3BucketName,
    S3KeyPrefix,
    S3ObjectUrl,
    SageMakerInstanceType,
    SageMakerName,
    Settings,
    SqsQueueArn,
)

#: Default of `endpoint.image_uri`: a placeholder that synthesizes and validates but can never
#: run; `make preflight` and a Terraform precondition stop a plan against AWS that still uses it.
PLACEHOLDER_IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:latest"

#: Seconds the invoker needs beside one inference: connect (2), one result write (2 + 3), the
#: batch response (1) and 2 s of slack for a cold start (functions/sagemaker_invoker/handler.py;
#: tests/test_sagemaker_invoker_handler.py checks the two agree).
INVOKER_OVERHEAD_SECONDS = 10

#: AWS: "set the source queue's visibility timeout to at least six times the timeout that you
#: configure on your function" (plus the batching window, during which messages are in flight).
VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT = 6


class InputQueue(Settings):
    """The request queue (the reference's attributes are the defaults) and its dead-letter queue."""

    delay_seconds: int = Field(0, ge=0, le=900, description="Delivery delay of new messages (s).")
    max_message_size: int = Field(262144, ge=1024, le=262144, description="Largest message (bytes).")
    message_retention_seconds: int = Field(345600, ge=60, le=1209600, description="How long unprocessed messages are kept (s; 4 days).")
    receive_wait_time_seconds: int = Field(0, ge=0, le=20, description="Long-polling wait of ReceiveMessage (s); Lambda's poller long-polls anyway.")
    visibility_timeout_seconds: int | None = Field(
        None, ge=1, le=43200,
        description="How long a received message stays hidden (s), so also how long a failed message waits for its retry. "
                    "Unset = AWS's recommendation for Lambda event sources: 6 x `timeout_seconds` + `max_batching_window_seconds` "
                    "(420 s with the defaults); at least `timeout_seconds` when set.")
    max_receive_count: int = Field(5, ge=1, le=1000, description="Receives before SQS moves a message to the dead-letter queue (bounds retries of retryable failures).")
    kms_key_arn: KmsKeyArn | None = Field(None, description="Customer-managed KMS key of the queues; unset = SQS-managed encryption (SSE-SQS).")
    existing_queue_arn: SqsQueueArn | None = Field(None, description="Consume an existing queue (an ARN, or a token of a queue in your app) instead of creating one; its attributes above do not apply. Needs `existing_dead_letter_queue_arn`.")
    existing_dead_letter_queue_arn: SqsQueueArn | None = Field(None, description="Where the invoker sends poison messages when `existing_queue_arn` is set (the existing queue's own dead-letter queue).")

    @model_validator(mode="after")
    def _existing_together(self) -> "InputQueue":
        if (self.existing_queue_arn is None) != (self.existing_dead_letter_queue_arn is None):
            raise ValueError("existing_queue_arn and existing_dead_letter_queue_arn must be set together (given "
                             f"existing_queue_arn={self.existing_queue_arn!r}, existing_dead_letter_queue_arn={self.existing_dead_letter_queue_arn!r})")
        return self


class NewEndpoint(Settings):
    """Create model, endpoint configuration and endpoint in this stack."""

    type: Literal["create"] = Field(description="`create`.")
    image_uri: EcrImageUri = Field(PLACEHOLDER_IMAGE_URI,
                                   description="Inference container image in ECR (placeholder default: set yours; a plan against AWS stops while it is the placeholder). The model may pull only this repository.")
    model_data_url: S3ObjectUrl | None = Field(None, description="Model archive in S3 (`model.tar.gz`); the model may read only this object. Unset = the weights are in the image.")
    environment: dict[str, str] = Field(default_factory=dict, description="Environment of the inference container.")
    instance_type: SageMakerInstanceType = Field("ml.m5.large", description="Instance type of the production variant.")
    initial_instance_count: int = Field(1, ge=1, le=100, description="Instances at creation; autoscaling moves it between its min and max.")
    variant_name: SageMakerName = Field("AllTraffic", description="Production variant name.")
    kms_key_arn: KmsKeyArn | None = Field(None, description="KMS key encrypting the instances' ML storage volumes (not for instance types with only instance storage).")


class ExistingEndpoint(Settings):
    """Use an endpoint managed elsewhere; nothing SageMaker is created."""

    type: Literal["existing"] = Field(description="`existing`.")
    name: SageMakerName = Field(description="Name of the existing endpoint.")
    variant_name: SageMakerName = Field("AllTraffic", description="Variant that `autoscaling` scales.")


class VariantAutoscaling(Settings):
    """Application Auto Scaling of the endpoint variant's instance count."""

    enabled: bool = Field(True, description="Register the variant with Application Auto Scaling (turn off if it is scaled elsewhere).")
    min_capacity: int = Field(1, ge=1, le=100, description="Fewest instances (real-time variants cannot run zero).")
    max_capacity: int = Field(4, ge=1, le=100, description="Most instances.")
    target_invocations_per_instance: float = Field(100.0, gt=0, le=100000, description="Target of SageMakerVariantInvocationsPerInstance (invocations per instance per minute).")
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600, description="Wait after a scale-in before the next one (s).")
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600, description="Wait after a scale-out before the next one (s).")

    @model_validator(mode="after")
    def _min_le_max(self) -> "VariantAutoscaling":
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity must be <= max_capacity (given min_capacity={self.min_capacity}, max_capacity={self.max_capacity})")
        return self


class QueueResults(Settings):
    """Results go to an output queue created here (encrypted, with its own dead-letter queue)."""

    type: Literal["queue"] = Field(description="`queue`.")
    message_retention_seconds: int = Field(345600, ge=60, le=1209600, description="How long results wait for a consumer (s).")


class S3Results(Settings):
    """Results go to objects ``<prefix><message id>.json`` in an existing bucket."""

    type: Literal["s3"] = Field(description="`s3`.")
    bucket: S3BucketName = Field(description="Existing bucket (its default encryption applies); the function may write only under `prefix`.")
    prefix: S3KeyPrefix = Field("results/", description="Key prefix ending in '/' (or empty).")


class QueueToSageMakerSettings(Settings):
    """SQS queue -> Lambda (partial batch responses) -> SageMaker endpoint, results to a destination."""

    queue: InputQueue = Field(default_factory=InputQueue, description="Request queue and its dead-letter queue.")
    memory_mb: int = Field(512, ge=128, le=10240, description="Function memory (MB).")
    timeout_seconds: int = Field(70, ge=1, le=900, description=f"Function timeout (s); at least `invocation_timeout_seconds` + {INVOKER_OVERHEAD_SECONDS}, "
                                                                  "so one full inference, its result write and the batch response fit in one invocation.")
    invocation_timeout_seconds: int = Field(60, ge=1, le=60, description="Longest wait for one InvokeEndpoint response (s; SageMaker real-time endpoints allow 60). "
                                                                           "Each call waits at most this, and never longer than what is left of the invocation minus the time kept to write its result.")
    log_retention_days: LogRetentionDays = Field(30, description="Retention of the function's log group (and the endpoint's).")
    batch_size: int = Field(10, ge=1, le=10000, description="Messages per invocation (more than 10 needs `max_batching_window_seconds`).")
    max_batching_window_seconds: int = Field(0, ge=0, le=300, description="Wait up to this long to fill a batch (s).")
    max_concurrency: int = Field(5, ge=2, le=1000, description="Most concurrent invocations the queue may drive, so a burst cannot flood the endpoint.")
    content_type: MediaType = Field("application/json", description="ContentType of InvokeEndpoint; with JSON, bodies that are not JSON are rejected as poison.")
    accept: MediaType = Field("application/json", description="Accept of InvokeEndpoint.")
    endpoint: NewEndpoint | ExistingEndpoint = Field(default_factory=lambda: NewEndpoint(type="create"), discriminator="type",
                                                     description="`{type = \"create\", image_uri = ..., model_data_url = ...}` or `{type = \"existing\", name = ...}`.")
    autoscaling: VariantAutoscaling = Field(default_factory=VariantAutoscaling, description="Target tracking on invocations per instance.")
    results: QueueResults | S3Results = Field(default_factory=lambda: QueueResults(type="queue"), discriminator="type",
                                              description="Where results go: `{type = \"queue\"}` (created) or `{type = \"s3\", bucket = ...}`.")

    @property
    def visibility_timeout_seconds(self) -> int:
        """The request queue's visibility timeout: the setting, or AWS's recommendation when unset."""
        if self.queue.visibility_timeout_seconds is not None:
            return self.queue.visibility_timeout_seconds
        return VISIBILITY_TIMEOUTS_PER_FUNCTION_TIMEOUT * self.timeout_seconds + self.max_batching_window_seconds

    @model_validator(mode="after")
    def _cross_checks(self) -> "QueueToSageMakerSettings":
        if self.timeout_seconds < self.invocation_timeout_seconds + INVOKER_OVERHEAD_SECONDS:
            raise ValueError(f"timeout_seconds must be >= invocation_timeout_seconds + {INVOKER_OVERHEAD_SECONDS}, so one full "
                             f"inference, its result write and the batch response fit in one invocation "
                             f"(given timeout_seconds={self.timeout_seconds}, invocation_timeout_seconds={self.invocation_timeout_seconds})")
        if self.queue.visibility_timeout_seconds is not None and self.queue.visibility_timeout_seconds < self.timeout_seconds:
            raise ValueError(f"queue.visibility_timeout_seconds must be >= timeout_seconds, or messages are received again while "
                             f"still being processed (given visibility_timeout_seconds={self.queue.visibility_timeout_seconds}, "
                             f"timeout_seconds={self.timeout_seconds})")
        if self.batch_size > 10 and self.max_batching_window_seconds < 1:
            raise ValueError(f"batch_size above 10 needs max_batching_window_seconds >= 1 "
                             f"(given batch_size={self.batch_size}, max_batching_window_seconds={self.max_batching_window_seconds})")
        a = self.autoscaling
        if isinstance(self.endpoint, NewEndpoint) and a.enabled and not a.min_capacity <= self.endpoint.initial_instance_count <= a.max_capacity:
            raise ValueError(f"endpoint.initial_instance_count must be between autoscaling.min_capacity and autoscaling.max_capacity "
                             f"(given initial_instance_count={self.endpoint.initial_instance_count}, "
                             f"min_capacity={a.min_capacity}, max_capacity={a.max_capacity})")
        return self
