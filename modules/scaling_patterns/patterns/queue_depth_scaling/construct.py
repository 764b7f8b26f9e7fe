"""Pattern 2: an SQS backlog drives an EC2 Auto Scaling group of workers.

``SqsToAutoScalingWorkers`` wires:
job-intake Lambda (``functions/job_intake``, SendMessage on this queue only) -> encrypted
work queue (+ DLQ after ``max_receive_count`` receives, visibility timeout = job timeout +
margin) -> Auto Scaling group of workers (``functions/queue_worker`` installed by user data;
the instance role may receive/delete/change visibility on this queue and set scale-in
protection on this group, nothing else) -> scaling on queue depth:

- ``backlog_per_instance``: target tracking on the metric-math jobs (waiting + in flight) per
  in-service worker;
- ``alarm_steps``: the reference's two alarms and simple scaling policies; the scale-in alarm
  also counts jobs in flight and never fires while a worker is still starting.

With ``fleet.min_size = 0`` an extra alarm ("jobs waiting, desired capacity zero") sets the
group to one instance, so an empty group always wakes up for the first job.
"""

from __future__ import annotations

import base64
import gzip
import json

from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicy,
    AutoscalingPolicyTargetTrackingConfiguration,
)
from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecification as CustomizedMetric,
)
from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetrics as MetricQuery,
)
from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricsMetricStat as MetricStat,
)
from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricsMetricStatMetric as Metric,
)
from cdktf_cdktf_provider_aws.autoscaling_policy import (
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricsMetricStatMetricDimensions as Dimension,
)
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from scaling_patterns.core.fleet import Fleet
from scaling_patterns.core.iam import Statement, grant_send_messages, policy_document
from scaling_patterns.core.lambda_function import FUNCTIONS_DIR, PythonFunction
from scaling_patterns.core.network import Network
from scaling_patterns.core.pattern import Pattern
from scaling_patterns.core.queue import QueueWithDeadLetter
from scaling_patterns.patterns.queue_depth_scaling.settings import (
    AlarmStepScaling,
    BacklogPerInstanceScaling,
    QueueDepthScalingSettings,
)

#: SQS long-poll wait of the queue and the workers (the maximum: fewest empty receives).
LONG_POLL_SECONDS = 20

#: Jobs per in-service worker: waiting (visible) plus in flight (received, not yet deleted:
#: the job each busy worker holds), as KEDA's SQS scaler counts by default. AWS's example
#: divides the visible messages only; then a queue that one worker keeps empty reads 0 and
#: target tracking scales that busy worker in (with min_size 0 the group flaps 0 <-> 1).
#: With no worker in service, the whole count (no division by zero; the queue stays seen).
BACKLOG_EXPRESSION = "IF(in_service > 0, (visible + in_flight) / in_service, visible + in_flight)"

#: 1 while jobs wait and the group's desired capacity is zero (pending workers do not
#: retrigger it, so it never fights the scaling policy). Visible only: a job in flight
#: at desired 0 belongs to a worker that is finishing it (scale-in protection) or waits
#: out its retry delay; it wakes the group when it is visible again.
WAKE_EXPRESSION = "IF(visible > 0 AND desired == 0, 1, 0)"


def scale_in_expression(threshold: int) -> str:
    """``alarm_steps`` scale-in: 1 when at most ``threshold`` jobs are waiting or in flight and
    no worker is starting (every desired instance in service all period). The reference's
    alarm (visible <= threshold) is in ALARM right after the wake alarm started a worker for
    a waiting job, and EC2 Auto Scaling repeats its action every minute: it took the
    booting instance away once the cooldown ended."""
    return f"IF(in_service >= desired AND visible + in_flight <= {threshold}, 1, 0)"

#: Actions the worker instances need on the queue: exactly these.
WORKER_QUEUE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]


def worker_user_data(config: dict, packages: list[str], stop_timeout_seconds: int) -> str:
    """Boot script: install boto3, the worker code (gzip+base64, from functions/queue_worker) and its service."""
    code = (FUNCTIONS_DIR / "queue_worker" / "handler.py").read_bytes()
    packed = base64.b64encode(gzip.compress(code, mtime=0)).decode()
    install = f"dnf install -y {' '.join(packages)}\n" if packages else ""
    return (
        "#!/bin/bash\n"
        "# Queue worker bootstrap (stack queue-depth-scaling); generated, do not edit.\n"
        "set -euo pipefail\n"
        f"{install}"
        "install -d -m 0755 /opt/queue-worker /etc/queue-worker\n"
        f"echo '{packed}' | base64 -d | gunzip > /opt/queue-worker/worker.py\n"
        "cat > /etc/queue-worker/config.json <<'CONFIG'\n"
        f"{json.dumps(config, sort_keys=True)}\n"
        "CONFIG\n"
        "cat > /etc/systemd/system/queue-worker.service <<'UNIT'\n"
        "[Unit]\n"
        "Description=SQS queue worker\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "[Service]\n"
        "ExecStart=/usr/bin/python3 /opt/queue-worker/worker.py /etc/queue-worker/config.json\n"
        "DynamicUser=yes\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        # A stop (shutdown, scale-in, refresh) sends SIGTERM to the worker only, not to the job's
        # subprocess (the default KillMode=control-group signals both): the worker finishes the
        # job in hand, deletes its message and exits. Whatever is left after TimeoutStopSec
        # (the job timeout + 30 s) gets SIGKILL.
        "KillMode=mixed\n"
        f"TimeoutStopSec={stop_timeout_seconds}\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
        "UNIT\n"
        "systemctl daemon-reload\n"
        "systemctl enable --now queue-worker.service\n"
    )


class SqsToAutoScalingWorkers(Pattern):
    """SQS work queue -> EC2 worker Auto Scaling group scaled on jobs per worker; job-intake Lambda.

    Attributes: ``queue`` (work queue with ``dead_letter_queue``), ``intake`` (job-intake function),
    ``network``, ``workers`` (the :class:`Fleet`: group, launch template, role), ``backlog_policy``
    (target tracking) or ``scale_out_policy`` / ``scale_in_policy`` with ``scale_out_alarm`` /
    ``scale_in_alarm`` (alarm steps), ``wake_policy`` / ``wake_alarm`` (from zero); None where the
    settings do not create them. Helpers: :meth:`grant_submit_jobs`, :meth:`metric_backlog_per_worker`.
    """

    settings_class = QueueDepthScalingSettings

    def __init__(self, scope: Construct, id_: str, settings: QueueDepthScalingSettings | dict | None = None, **props):
        super().__init__(scope, id_, settings, **props)
        s: QueueDepthScalingSettings = self.settings
        name = self.resource_name
        group_name = name("workers")
        # Which of these exist depends on scaling.type and min_size (None otherwise).
        self.backlog_policy: AutoscalingPolicy | None = None
        self.scale_out_policy: AutoscalingPolicy | None = None
        self.scale_in_policy: AutoscalingPolicy | None = None
        self.scale_out_alarm: CloudwatchMetricAlarm | None = None
        self.scale_in_alarm: CloudwatchMetricAlarm | None = None
        self.wake_policy: AutoscalingPolicy | None = None
        self.wake_alarm: CloudwatchMetricAlarm | None = None

        self.queue = QueueWithDeadLetter(
            self, "jobs",
            name=name("jobs"),
            max_receive_count=s.max_receive_count,
            visibility_timeout_seconds=s.visibility_timeout_seconds,
            message_retention_seconds=s.message_retention_seconds,
            receive_wait_time_seconds=LONG_POLL_SECONDS,
        )

        self.intake = PythonFunction(
            self, "intake",
            function_name=name("intake"),
            source="job_intake",
            description="Validates a job and puts it on the work queue",
            statements=[grant_send_messages(self.queue.arn, sid="EnqueueJobs")],
            memory_mb=s.intake_memory_mb,
            timeout_seconds=s.intake_timeout_seconds,
            environment={"QUEUE_URL": self.queue.url, "MAX_JOB_BYTES": str(s.max_job_bytes)},
            log_retention_days=s.log_retention_days,
        )

        self.network = Network(self, "network", s.network)
        worker_config = {
            "queue_url": self.queue.url,
            "group_name": group_name,  # a literal: the group itself depends on this launch template
            "region": self.context.region,
            "job_timeout_seconds": s.job_timeout_seconds,
            "retry_delay_seconds": s.retry_delay_seconds,
            "wait_seconds": LONG_POLL_SECONDS,
            "command": list(s.worker_command) if s.worker_command else None,
        }
        self.workers = Fleet(
            self, "workers",
            name=group_name,
            settings=s.fleet,
            vpc_id=self.network.vpc_id,
            subnet_ids=self.network.subnet_ids,
            user_data=worker_user_data(worker_config, s.worker_packages, s.job_timeout_seconds + 30),
            description="queue workers",
            statements=[Statement(sid="ConsumeJobs", actions=WORKER_QUEUE_ACTIONS, resources=[self.queue.arn])],
            # A busy worker is protected from scale-in: an instance refresh replaces it only once
            # it has finished its job and cleared the protection (AWS gives up after an hour).
            protected_instances="Wait",
        )
        # Named by the group's ARN, so in a second policy created after the group.
        self.workers.grant("scale_in_protection", [Statement(
            sid="ProtectSelfWhileBusy", actions=["autoscaling:SetInstanceProtection"], resources=[self.workers.group_arn])])

        if isinstance(s.scaling, BacklogPerInstanceScaling):
            self._backlog_per_instance(s.scaling)
        else:
            self._alarm_steps(s.scaling)
        if s.fleet.min_size == 0:
            self._wake_from_zero()

    # --- scaling -------------------------------------------------------------------------

    def _queue_dimension(self) -> dict[str, str]:
        return {"QueueName": self.queue.name}

    def _group_dimension(self) -> dict[str, str]:
        return {"AutoScalingGroupName": self.workers.group_name}

    def _alarm_metric(self, id_: str, namespace: str, metric_name: str, dimensions: dict[str, str], stat: str,
                      period: int) -> CloudwatchMetricAlarmMetricQuery:
        return CloudwatchMetricAlarmMetricQuery(id=id_, return_data=False, metric=CloudwatchMetricAlarmMetricQueryMetric(
            namespace=namespace, metric_name=metric_name, dimensions=dimensions, stat=stat, period=period))

    def _backlog_per_instance(self, scaling: BacklogPerInstanceScaling) -> None:
        self.backlog_policy = AutoscalingPolicy(
            self, "backlog_per_instance",
            name=self.resource_name("backlog-per-instance"),
            autoscaling_group_name=self.workers.group_name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=AutoscalingPolicyTargetTrackingConfiguration(
                target_value=scaling.target_backlog_per_instance,
                disable_scale_in=scaling.disable_scale_in,
                customized_metric_specification=CustomizedMetric(metrics=[
                    MetricQuery(id="visible", return_data=False, metric_stat=MetricStat(stat="Sum", metric=Metric(
                        namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
                        dimensions=[Dimension(name="QueueName", value=self.queue.name)]))),
                    MetricQuery(id="in_flight", return_data=False, metric_stat=MetricStat(stat="Sum", metric=Metric(
                        namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesNotVisible",
                        dimensions=[Dimension(name="QueueName", value=self.queue.name)]))),
                    MetricQuery(id="in_service", return_data=False, metric_stat=MetricStat(stat="Average", metric=Metric(
                        namespace="AWS/AutoScaling", metric_name="GroupInServiceInstances",
                        dimensions=[Dimension(name="AutoScalingGroupName", value=self.workers.group_name)]))),
                    MetricQuery(id="backlog_per_instance", return_data=True, expression=BACKLOG_EXPRESSION,
                                label="Jobs waiting or in flight per in-service worker"),
                ]),
            ),
        )

    def _alarm_steps(self, scaling: AlarmStepScaling) -> None:
        name = self.resource_name
        self.scale_out_policy, self.scale_in_policy = (
            AutoscalingPolicy(
                self, f"{direction}_policy",
                name=name(f"{direction.replace('_', '-')}"),
                autoscaling_group_name=self.workers.group_name,
                policy_type="SimpleScaling",
                adjustment_type="ChangeInCapacity",
                scaling_adjustment=adjustment,
                cooldown=scaling.cooldown_seconds,
            )
            for direction, adjustment in (("scale_out", scaling.scale_out_adjustment),
                                          ("scale_in", scaling.scale_in_adjustment))
        )
        self.scale_out_alarm = CloudwatchMetricAlarm(
            self, "scale_out_alarm",
            alarm_name=name("queue-deep"),
            alarm_description=f"Jobs visible >= {scaling.scale_out_threshold}: add {scaling.scale_out_adjustment} workers",
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=scaling.scale_out_threshold,
            alarm_actions=[self.scale_out_policy.arn],
            namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible", dimensions=self._queue_dimension(),
            statistic=scaling.statistic, period=scaling.period_seconds, evaluation_periods=scaling.evaluation_periods,
        )
        # Metric math instead of the reference's "visible <= threshold": jobs in flight count
        # (busy workers are not work-free), and no instance may still be starting: in service
        # (lowest in the period) must reach desired (highest in the period).
        period = scaling.period_seconds
        self.scale_in_alarm = CloudwatchMetricAlarm(
            self, "scale_in_alarm",
            alarm_name=name("queue-shallow"),
            alarm_description=(f"Jobs visible + in flight <= {scaling.scale_in_threshold} and no worker starting: "
                               f"remove {-scaling.scale_in_adjustment} workers"),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=scaling.evaluation_periods,
            # No data is no reason to remove a worker.
            treat_missing_data="notBreaching",
            alarm_actions=[self.scale_in_policy.arn],
            metric_query=[
                self._alarm_metric("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", self._queue_dimension(),
                                   scaling.statistic, period),
                self._alarm_metric("in_flight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", self._queue_dimension(),
                                   scaling.statistic, period),
                self._alarm_metric("in_service", "AWS/AutoScaling", "GroupInServiceInstances", self._group_dimension(),
                                   "Minimum", period),
                self._alarm_metric("desired", "AWS/AutoScaling", "GroupDesiredCapacity", self._group_dimension(),
                                   "Maximum", period),
                CloudwatchMetricAlarmMetricQuery(id="few_jobs_none_starting", return_data=True,
                                                 label="Few jobs, no worker starting",
                                                 expression=scale_in_expression(scaling.scale_in_threshold)),
            ],
        )

    def _wake_from_zero(self) -> None:
        name = self.resource_name
        self.wake_policy = AutoscalingPolicy(
            self, "wake_from_zero_policy",
            name=name("wake-from-zero"),
            autoscaling_group_name=self.workers.group_name,
            policy_type="SimpleScaling",
            adjustment_type="ExactCapacity",
            scaling_adjustment=1,
            cooldown=60,
        )
        self.wake_alarm = CloudwatchMetricAlarm(
            self, "wake_from_zero_alarm",
            alarm_name=name("jobs-waiting-no-worker"),
            alarm_description="Jobs are waiting and the group is at zero: start one worker",
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
            alarm_actions=[self.wake_policy.arn],
            metric_query=[
                self._alarm_metric("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", self._queue_dimension(),
                                   "Maximum", 60),
                self._alarm_metric("desired", "AWS/AutoScaling", "GroupDesiredCapacity", self._group_dimension(),
                                   "Maximum", 60),
                CloudwatchMetricAlarmMetricQuery(id="waiting_without_worker", return_data=True, label="Jobs waiting, group at zero",
                                                 expression=WAKE_EXPRESSION),
            ],
        )

    # --- what a composing app needs ---------------------------------------------------------

    def grant_submit_jobs(self, scope: Construct, id_: str, role_name: str) -> IamRolePolicy:
        """Let another role submit jobs: invoke the intake function (which validates them)."""
        return IamRolePolicy(scope, id_, name=id_.replace("_", "-"), role=role_name, policy=policy_document([
            Statement(sid="SubmitJobs", actions=["lambda:InvokeFunction"], resources=[self.intake.arn])]))

    def metric_backlog_per_worker(self) -> dict[str, object]:
        """The metric math the group tracks: jobs waiting or in flight per in-service worker."""
        return {"expression": BACKLOG_EXPRESSION, "metrics": {
            "visible": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": self.queue.name}),
            "in_flight": ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", {"QueueName": self.queue.name}),
            "in_service": ("AWS/AutoScaling", "GroupInServiceInstances", {"AutoScalingGroupName": self.workers.group_name})}}

    def outputs(self) -> dict[str, tuple[object, str]]:
        return {
            "queue_url": (self.queue.url, "Work queue URL (send jobs through the intake function)"),
            "queue_name": (self.queue.name, "Work queue name"),
            "dead_letter_queue_url": (self.queue.dead_letter_queue.url, "Jobs that failed max_receive_count times"),
            "autoscaling_group_name": (self.workers.group_name, "Worker Auto Scaling group"),
            "intake_function_name": (self.intake.name, "Job-intake Lambda function"),
        }

