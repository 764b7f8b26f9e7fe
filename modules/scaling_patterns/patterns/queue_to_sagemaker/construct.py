"""Pattern 4: SQS queue -> Lambda -> SageMaker real-time endpoint.

``SqsToSagemakerEndpoint`` wires:
request queue (encrypted, DLQ after ``max_receive_count`` receives, visibility timeout 6x the
function timeout unless set) -> event source mapping (batch of 10, partial batch responses,
maximum concurrency) -> invoker Lambda (``functions/sagemaker_invoker``; timeout >= one
``invocation_timeout_seconds`` + 10 s) -> ``InvokeEndpoint`` on one endpoint -> results queue
(encrypted, with its own DLQ) or S3 objects under a prefix, keyed by the source message id.
Poison messages are sent to the request queue's DLQ by the function at once.

``SageMakerModelEndpoint`` creates model, endpoint configuration and endpoint, with an
execution role that can pull only the model's ECR repository and read only its model
archive; with ``endpoint.type = "existing"`` nothing SageMaker is created. The variant's
instance count is scaled by Application Auto Scaling (target tracking on invocations per
instance) either way, unless ``autoscaling.enabled = false``.

Day two: SageMaker models and endpoint configurations cannot change in place. Their names
carry a hash of what they hold (modules/scaling_patterns/core/naming.py), and both are replaced
create-before-destroy: a new image, environment, instance type or count creates a new model
and configuration under new names, the endpoint is updated to the new configuration
(SageMaker's blue/green update: the old fleet serves until the new one is in service), then
the old ones are deleted. SageMaker refuses that update while an autoscaled variant changes
its instance type, so the scalable target is replaced (deregistered before the update,
registered after it) exactly when the instance type changes.
"""

from __future__ import annotations

import re

from cdktf import Fn, Precondition, TerraformLocal, TerraformResourceLifecycle, TerraformStack
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.sagemaker_endpoint import SagemakerEndpoint
from cdktf_cdktf_provider_aws.sagemaker_endpoint_configuration import (
    SagemakerEndpointConfiguration,
    SagemakerEndpointConfigurationProductionVariants,
)
from cdktf_cdktf_provider_aws.sagemaker_model import SagemakerModel, SagemakerModelPrimaryContainer
from constructs import Construct

from scaling_patterns.core.app_autoscaling import ScalableTarget
from scaling_patterns.core.context import context_of
from scaling_patterns.core.iam import (
    ANY_RESOURCE,
    Statement,
    grant_consume_messages,
    grant_put_metrics,
    grant_send_messages,
    partition_of,
    policy_document,
)
from scaling_patterns.core.lambda_function import PythonFunction
from scaling_patterns.core.naming import HASH_DIGITS, address, lowercase, versioned
from scaling_patterns.core.pattern import Pattern
from scaling_patterns.core.queue import ExistingQueue, QueueWithDeadLetter
from scaling_patterns.core.roles import role_name as execution_role_name
from scaling_patterns.core.roles import service_role
from scaling_patterns.core.settings import is_token
from scaling_patterns.patterns.queue_to_sagemaker.settings import (
    PLACEHOLDER_IMAGE_URI,
    ExistingEndpoint,
    NewEndpoint,
    QueueResults,
    QueueToSageMakerSettings,
    S3Results,
)

_ECR_IMAGE = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?/"
                        r"(?P<repository>[^:@]+)")


def ecr_repository_arn(image_uri: str, partition: str = "aws") -> str:
    """ARN of the ECR repository an image URI points at (account and region are in the URI);
    for a token (``repository.repository_url``), the same, worked out by Terraform."""
    if is_token(image_uri):
        parts = Fn.regex(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com[^/]*/([^:@]+)", image_uri)
        return Fn.format("arn:%s:ecr:%s:%s:repository/%s",
                         [partition, Fn.element(parts, 1), Fn.element(parts, 0), Fn.element(parts, 2)])
    match = _ECR_IMAGE.match(image_uri)
    if not match:
        raise ValueError(f"not an ECR image URI: {image_uri!r}")
    partition = "aws-cn" if match["cn"] else partition_of(match["region"])
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"


def s3_object_arn(url: str, partition: str) -> str:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return f"arn:{partition}:s3:::{bucket}/{key}"


#: moto returns an empty VpcConfig and a disabled DataCaptureConfig where none is configured,
#: which forces a replacement on every plan; replaced create-before-destroy under the same name,
#: the new copy would then be deleted with the old one. The emulator profile ignores both.
EMULATOR_IGNORED = {"model": ["vpc_config"], "config": ["data_capture_config"]}


class SageMakerModelEndpoint(Construct):
    """Model, endpoint configuration and endpoint, with a least-privilege execution role."""

    def __init__(self, scope: Construct, id_: str, settings: NewEndpoint, *, log_retention_days: int):
        super().__init__(scope, id_)
        s = settings
        context = context_of(self)
        stack_name = TerraformStack.of(self).node.id
        endpoint_name = context.resource_name("endpoint", max_length=63)
        partition = context.partition
        self.log_group = CloudwatchLogGroup(
            self, "log_group", name=f"/aws/sagemaker/Endpoints/{endpoint_name}", retention_in_days=log_retention_days)
        statements = [
            Statement(sid="PullModelImage",
                      actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                      resources=[ecr_repository_arn(s.image_uri, partition)]),
            # GetAuthorizationToken has no resource-level permission.
            Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=[ANY_RESOURCE]),
            Statement(sid="WriteEndpointLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      resources=[f"{self.log_group.arn}:*"]),
            grant_put_metrics("/aws/sagemaker/Endpoints"),
        ]
        if s.model_data_url:
            statements.append(Statement(sid="ReadModelData", actions=["s3:GetObject"],
                                        resources=[s3_object_arn(s.model_data_url, partition)]))
        role_name = context.resource_name("model-role")
        self.role = service_role(self, "execution_role", name=role_name, service="sagemaker.amazonaws.com",
                                 description=f"Execution role of the SageMaker model behind endpoint {endpoint_name}")
        self.policy = IamRolePolicy(self, "execution_policy", name="least-privilege", role=self.role.id,
                                    policy=policy_document(statements))
        image = s.image_uri
        checks = None
        if s.image_uri == PLACEHOLDER_IMAGE_URI and not context.emulator:
            # Synth and validate work with the placeholder; a plan against AWS stops here, with one line.
            local = TerraformLocal(self, "image_uri", s.image_uri)
            image = local.as_string
            checks = [Precondition(
                condition=f'${{{local.fqn} != "{PLACEHOLDER_IMAGE_URI}"}}',
                error_message=(f"{stack_name}: endpoint.image_uri is the placeholder {PLACEHOLDER_IMAGE_URI}; "
                               f"set [{stack_name}] endpoint.image_uri to your model image in ECR"))]
        container = {"image": s.image_uri, "model_data_url": s.model_data_url, "environment": dict(s.environment)}
        # Replaced create-before-destroy under a new name whenever what it runs changes.
        # The role's own name (with role_path it carries the path's hash): a new role, a new model.
        model_name = versioned(context.resource_name("model", max_length=62 - HASH_DIGITS),
                               {**container, "execution_role": execution_role_name(role_name, context.role_path)})
        self.model = SagemakerModel(
            self, "model",
            name=model_name,
            execution_role_arn=self.role.arn,
            primary_container=SagemakerModelPrimaryContainer(
                image=image, model_data_url=s.model_data_url, environment=dict(s.environment) or None),
            depends_on=[self.policy],  # the role can pull and read before SageMaker first tries
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True, precondition=checks,
                                                 ignore_changes=EMULATOR_IGNORED["model"] if context.emulator else None),
        )
        variant = {"variant_name": s.variant_name, "instance_type": s.instance_type,
                   "initial_instance_count": s.initial_instance_count, "initial_variant_weight": 1}
        self.endpoint_configuration = SagemakerEndpointConfiguration(
            self, "endpoint_configuration",
            name=versioned(context.resource_name("endpoint-config", max_length=62 - HASH_DIGITS),
                           {**variant, "model_name": model_name, "kms_key_arn": s.kms_key_arn}),
            kms_key_arn=s.kms_key_arn,
            production_variants=[SagemakerEndpointConfigurationProductionVariants(model_name=self.model.name, **variant)],
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True,
                                                 ignore_changes=EMULATOR_IGNORED["config"] if context.emulator else None),
        )
        #: Attributes whose change SageMaker refuses while the variant is registered for autoscaling.
        self.replace_scaling_when = [f"{address(self.endpoint_configuration)}.production_variants[0].instance_type"]
        self.endpoint = SagemakerEndpoint(
            self, "endpoint", name=endpoint_name, endpoint_config_name=self.endpoint_configuration.name,
            depends_on=[self.log_group])


class SqsToSagemakerEndpoint(Pattern):
    """SQS -> Lambda -> SageMaker endpoint, results to a queue or S3.

    Attributes: ``queue`` (requests, with ``dead_letter_queue``; an :class:`ExistingQueue` when
    ``queue.existing_queue_arn`` is set), ``function`` (the invoker), ``event_source``,
    ``model_endpoint`` (model, configuration, endpoint, role; None for an existing endpoint),
    ``endpoint_name``, ``results_queue`` (None with S3 results), ``scaling`` (the variant's
    scalable target, or None). Helpers: :meth:`grant_send_requests`, :meth:`grant_consume_results`,
    :meth:`metric_backlog`.
    """

    settings_class = QueueToSageMakerSettings

    def __init__(self, scope: Construct, id_: str, settings: QueueToSageMakerSettings | dict | None = None, **props):
        super().__init__(scope, id_, settings, **props)
        s: QueueToSageMakerSettings = self.settings
        name = self.resource_name
        partition, region = self.context.partition, self.context.region
        q = s.queue

        self.queue: QueueWithDeadLetter | ExistingQueue
        if q.existing_queue_arn is not None:
            assert q.existing_dead_letter_queue_arn is not None
            self.queue = ExistingQueue(q.existing_queue_arn, dead_letter_queue_arn=q.existing_dead_letter_queue_arn)
        else:
            self.queue = QueueWithDeadLetter(
                self, "requests",
                name=name("requests", max_length=76),  # SQS: 80 characters, "-dlq" appended
                max_receive_count=q.max_receive_count,
                visibility_timeout_seconds=s.visibility_timeout_seconds,  # set, or 6 x the function timeout + batching window
                message_retention_seconds=q.message_retention_seconds,
                delay_seconds=q.delay_seconds,
                max_message_size=q.max_message_size,
                receive_wait_time_seconds=q.receive_wait_time_seconds,
                kms_key_arn=q.kms_key_arn,
            )

        endpoint = s.endpoint
        self.model_endpoint: SageMakerModelEndpoint | None = None
        if isinstance(endpoint, NewEndpoint):
            self.model_endpoint = SageMakerModelEndpoint(
                self, "sagemaker", endpoint, log_retention_days=s.log_retention_days)
            self.endpoint_name = self.model_endpoint.endpoint.name
            endpoint_arn = self.model_endpoint.endpoint.arn
        else:
            assert isinstance(endpoint, ExistingEndpoint)
            self.endpoint_name = endpoint.name
            account = DataAwsCallerIdentity(self, "account").account_id
            # SageMaker ARNs carry the endpoint name in lower case.
            endpoint_arn = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{lowercase(endpoint.name)}"

        statements = [
            grant_consume_messages(self.queue.arn, sid="ConsumeRequests"),
            grant_send_messages(self.queue.dead_letter_queue.arn, sid="PoisonMessagesToDeadLetterQueue"),
            Statement(sid="InvokeEndpoint", actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arn]),
        ]
        environment = {
            "SAGEMAKER_ENDPOINT_NAME": self.endpoint_name,
            "CONTENT_TYPE": s.content_type,
            "ACCEPT": s.accept,
            "DEAD_LETTER_QUEUE_URL": self.queue.dead_letter_queue.url,
            "RESULTS_DESTINATION": s.results.type,
            # Each InvokeEndpoint waits at most this, and at most what the invocation has left.
            "INVOCATION_TIMEOUT_SECONDS": str(s.invocation_timeout_seconds),
        }
        self.results_queue: QueueWithDeadLetter | None = None
        if isinstance(s.results, QueueResults):
            self.results_queue = QueueWithDeadLetter(
                self, "results", name=name("results", max_length=76),
                message_retention_seconds=s.results.message_retention_seconds, kms_key_arn=q.kms_key_arn)
            statements.append(grant_send_messages(self.results_queue.arn, sid="SendResults"))
            environment["RESULTS_QUEUE_URL"] = self.results_queue.url
        else:
            assert isinstance(s.results, S3Results)
            statements.append(Statement(sid="WriteResults", actions=["s3:PutObject"],
                                        resources=[f"arn:{partition}:s3:::{s.results.bucket}/{s.results.prefix}*"]))
            environment.update(RESULTS_BUCKET=s.results.bucket, RESULTS_PREFIX=s.results.prefix)
        if q.kms_key_arn:
            statements.append(Statement(sid="UseQueueKey", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                        resources=[q.kms_key_arn]))

        self.function = PythonFunction(
            self, "invoker",
            function_name=name("invoker"),
            source="sagemaker_invoker",
            description="Invokes the SageMaker endpoint for each queued request",
            statements=statements,
            memory_mb=s.memory_mb,
            timeout_seconds=s.timeout_seconds,
            environment=environment,
            log_retention_days=s.log_retention_days,
        )
        self.event_source = LambdaEventSourceMapping(
            self, "event_source",
            event_source_arn=self.queue.arn,
            function_name=self.function.arn,
            batch_size=s.batch_size,
            maximum_batching_window_in_seconds=s.max_batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=s.max_concurrency),
            # A new queue gets its poller before the old poller goes (one mapping per queue and function).
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

        self.scaling: ScalableTarget | None = None
        a = s.autoscaling
        if a.enabled and not self.context.emulator:  # moto cannot create Application Auto Scaling resources
            self.scaling = ScalableTarget(
                self, "variant_scaling",
                service_namespace="sagemaker",
                resource_id=f"endpoint/{self.endpoint_name}/variant/{endpoint.variant_name}",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                min_capacity=a.min_capacity,
                max_capacity=a.max_capacity,
                replace_when=self.model_endpoint.replace_scaling_when if self.model_endpoint else (),
            )
            self.scaling.track(
                "invocations_tracking",
                name=name("invocations-per-instance"),
                predefined_metric="SageMakerVariantInvocationsPerInstance",
                target_value=a.target_invocations_per_instance,
                scale_in_cooldown_seconds=a.scale_in_cooldown_seconds,
                scale_out_cooldown_seconds=a.scale_out_cooldown_seconds,
            )


    # --- what a composing app needs ---------------------------------------------------------

    def grant_send_requests(self, scope: Construct, id_: str, role_name: str) -> IamRolePolicy:
        """Let another role (a producer) send requests to the queue (and use its key)."""
        statements = [grant_send_messages(self.queue.arn, sid="SendInferenceRequests")]
        if self.settings.queue.kms_key_arn:
            statements.append(Statement(sid="EncryptRequests", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                        resources=[self.settings.queue.kms_key_arn]))
        return IamRolePolicy(scope, id_, name=id_.replace("_", "-"), role=role_name, policy=policy_document(statements))

    def grant_consume_results(self, scope: Construct, id_: str, role_name: str) -> IamRolePolicy:
        """Let another role (a consumer) read results: receive from the results queue, or get the S3 objects."""
        s = self.settings
        if self.results_queue is not None:
            statements = [grant_consume_messages(self.results_queue.arn, sid="ConsumeResults")]
        else:
            assert isinstance(s.results, S3Results)
            statements = [Statement(sid="ReadResults", actions=["s3:GetObject"],
                                    resources=[f"arn:{self.context.partition}:s3:::{s.results.bucket}/{s.results.prefix}*"])]
        if s.queue.kms_key_arn and self.results_queue is not None:
            statements.append(Statement(sid="DecryptResults", actions=["kms:Decrypt"], resources=[s.queue.kms_key_arn]))
        return IamRolePolicy(scope, id_, name=id_.replace("_", "-"), role=role_name, policy=policy_document(statements))

    def metric_backlog(self) -> dict[str, object]:
        """The request queue's ``ApproximateNumberOfMessagesVisible`` (for an alarm or a dashboard)."""
        return {"namespace": "AWS/SQS", "metric_name": "ApproximateNumberOfMessagesVisible",
                "dimensions": {"QueueName": self.queue.name}, "statistic": "Maximum", "period": 60}

    def outputs(self) -> dict[str, tuple[object, str]]:
        out = {
            "sqs_queue_url": (self.queue.url, "URL of the request queue (send inference requests here)"),
            "lambda_function_name": (self.function.name, "Invoker Lambda function"),
            "sagemaker_endpoint_name": (self.endpoint_name, "SageMaker endpoint the function invokes"),
            "dead_letter_queue_url": (self.queue.dead_letter_queue.url, "Poison and repeatedly failing requests"),
        }
        if self.results_queue is not None:
            out["results_queue_url"] = (self.results_queue.url, "Inference results")
        if self.scaling is not None:
            out["scalable_target_id"] = (self.scaling.id, "Application Auto Scaling target of the endpoint variant")
        return out
