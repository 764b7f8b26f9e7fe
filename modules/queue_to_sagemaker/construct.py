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
carry a hash of what they hold (modules/core/naming.py), and both are replaced
create-before-destroy: a new image, environment, instance type or count creates a new model
and configuration under new names, the endpoint is updated to the new configuration
(SageMaker's blue/green update: the old fleet serves until the new one is in service), then
the old ones are deleted. SageMaker refuses that update while an autoscaled variant changes
its instance type, so the scalable target is replaced (deregistered before the update,
registered after it) exactly when the instance type changes.
"""

from __future__ import annotations

import re

from cdktf import Precondition, TerraformLocal, TerraformResourceLifecycle, TerraformStack
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.iam_role import IamRole
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

from modules.core.app_autoscaling import ScalableTarget
from modules.core.iam import (
    ANY_RESOURCE,
    Statement,
    assume_role_policy,
    grant_consume_messages,
    grant_put_metrics,
    grant_send_messages,
    partition_of,
    policy_document,
)
from modules.core.lambda_function import PythonFunction
from modules.core.naming import HASH_DIGITS, address, versioned
from modules.core.queue import QueueWithDeadLetter
from modules.core.settings import ProjectSettings
from modules.core.stack import PatternStack
from modules.queue_to_sagemaker.settings import (
    PLACEHOLDER_IMAGE_URI,
    ExistingEndpoint,
    NewEndpoint,
    QueueResults,
    QueueToSageMakerSettings,
    S3Results,
)

_ECR_IMAGE = re.compile(r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?/"
                        r"(?P<repository>[^:@]+)")


def ecr_repository_arn(image_uri: str) -> str:
    """ARN of the ECR repository an image URI points at (account and region are in the URI)."""
    match = _ECR_IMAGE.match(image_uri)
    if not match:
        raise ValueError(f"not an ECR image URI: {image_uri!r}")
    partition = "aws-cn" if match["cn"] else partition_of(match["region"])
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"


def s3_object_arn(url: str, partition: str) -> str:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return f"arn:{partition}:s3:::{bucket}/{key}"


class SageMakerModelEndpoint(Construct):
    """Model, endpoint configuration and endpoint, with a least-privilege execution role."""

    def __init__(self, scope: Construct, id_: str, settings: NewEndpoint, *, log_retention_days: int):
        super().__init__(scope, id_)
        s = settings
        stack: PatternStack = TerraformStack.of(self)  # type: ignore[assignment]
        endpoint_name = stack.resource_name("endpoint", max_length=63)
        partition = partition_of(stack.project.region)
        self.log_group = CloudwatchLogGroup(
            self, "log_group", name=f"/aws/sagemaker/Endpoints/{endpoint_name}", retention_in_days=log_retention_days)
        statements = [
            Statement(sid="PullModelImage",
                      actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                      resources=[ecr_repository_arn(s.image_uri)]),
            # GetAuthorizationToken has no resource-level permission.
            Statement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=[ANY_RESOURCE]),
            Statement(sid="WriteEndpointLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      resources=[f"{self.log_group.arn}:*"]),
            grant_put_metrics("/aws/sagemaker/Endpoints"),
        ]
        if s.model_data_url:
            statements.append(Statement(sid="ReadModelData", actions=["s3:GetObject"],
                                        resources=[s3_object_arn(s.model_data_url, partition)]))
        role_name = stack.resource_name("model-role")
        self.role = IamRole(
            self, "execution_role", name=role_name, assume_role_policy=assume_role_policy("sagemaker.amazonaws.com"),
            description=f"Execution role of the SageMaker model behind endpoint {endpoint_name}")
        self.policy = IamRolePolicy(self, "execution_policy", name="least-privilege", role=self.role.id,
                                    policy=policy_document(statements))
        image = s.image_uri
        checks = None
        if s.image_uri == PLACEHOLDER_IMAGE_URI and not stack.project.emulator:
            # Synth and validate work with the placeholder; a plan against AWS stops here, with one line.
            local = TerraformLocal(self, "image_uri", s.image_uri)
            image = local.as_string
            checks = [Precondition(
                condition=f'${{{local.fqn} != "{PLACEHOLDER_IMAGE_URI}"}}',
                error_message=(f"{stack.stack_name}: endpoint.image_uri is the placeholder {PLACEHOLDER_IMAGE_URI}; "
                               f"set [{stack.stack_name}] endpoint.image_uri to your model image in ECR"))]
        container = {"image": s.image_uri, "model_data_url": s.model_data_url, "environment": dict(s.environment)}
        # Replaced create-before-destroy under a new name whenever what it runs changes.
        model_name = versioned(stack.resource_name("model", max_length=62 - HASH_DIGITS), {**container, "execution_role": role_name})
        self.model = SagemakerModel(
            self, "model",
            name=model_name,
            execution_role_arn=self.role.arn,
            primary_container=SagemakerModelPrimaryContainer(
                image=image, model_data_url=s.model_data_url, environment=dict(s.environment) or None),
            depends_on=[self.policy],  # the role can pull and read before SageMaker first tries
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True, precondition=checks),
        )
        variant = {"variant_name": s.variant_name, "instance_type": s.instance_type,
                   "initial_instance_count": s.initial_instance_count, "initial_variant_weight": 1}
        self.endpoint_configuration = SagemakerEndpointConfiguration(
            self, "endpoint_configuration",
            name=versioned(stack.resource_name("endpoint-config", max_length=62 - HASH_DIGITS),
                           {**variant, "model_name": model_name, "kms_key_arn": s.kms_key_arn}),
            kms_key_arn=s.kms_key_arn,
            production_variants=[SagemakerEndpointConfigurationProductionVariants(model_name=self.model.name, **variant)],
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        #: Attributes whose change SageMaker refuses while the variant is registered for autoscaling.
        self.replace_scaling_when = [f"{address(self.endpoint_configuration)}.production_variants[0].instance_type"]
        self.endpoint = SagemakerEndpoint(
            self, "endpoint", name=endpoint_name, endpoint_config_name=self.endpoint_configuration.name,
            depends_on=[self.log_group])


class SqsToSagemakerEndpoint(Construct):
    def __init__(self, scope: PatternStack, id_: str, settings: QueueToSageMakerSettings):
        super().__init__(scope, id_)
        s = settings
        name = scope.resource_name
        partition, region = partition_of(scope.project.region), scope.project.region
        q = s.queue

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
            endpoint_arn = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{endpoint.name.lower()}"

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
        )

        self.scaling: ScalableTarget | None = None
        a = s.autoscaling
        if a.enabled and not scope.project.emulator:  # moto cannot create Application Auto Scaling resources
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


class QueueToSageMakerStack(PatternStack):
    SHORT = "q2sm"

    def __init__(self, scope: Construct, name: str, project: ProjectSettings, settings: QueueToSageMakerSettings):
        super().__init__(scope, name, project)
        pattern = SqsToSagemakerEndpoint(self, "queue_to_sagemaker", settings)
        self.pattern = pattern
        self.output("sqs_queue_url", pattern.queue.url, "URL of the request queue (send inference requests here)")
        self.output("lambda_function_name", pattern.function.name, "Invoker Lambda function")
        self.output("sagemaker_endpoint_name", pattern.endpoint_name, "SageMaker endpoint the function invokes")
        self.output("dead_letter_queue_url", pattern.queue.dead_letter_queue.url, "Poison and repeatedly failing requests")
        if pattern.results_queue is not None:
            self.output("results_queue_url", pattern.results_queue.url, "Inference results")
        if pattern.scaling is not None:
            self.output("scalable_target_id", pattern.scaling.id, "Application Auto Scaling target of the endpoint variant")
