"""`QueueWithDeadLetter`: an encrypted SQS queue whose failures land in an encrypted DLQ.

Required by every queue in this project (Solutions Constructs style: a user can tune it,
not switch the DLQ off): SSE (SQS-managed keys by default, a KMS key if given), a redrive
policy after ``max_receive_count`` receives, a DLQ that only this queue may redrive into,
and a DLQ retention of 14 days so poison messages outlive the investigation.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_redrive_allow_policy import SqsQueueRedriveAllowPolicy
from constructs import Construct

from scaling_patterns.core.context import emulator_profile


class QueueWithDeadLetter(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        max_receive_count: int = 5,
        visibility_timeout_seconds: int = 30,
        message_retention_seconds: int = 345600,
        delay_seconds: int = 0,
        max_message_size: int = 262144,
        receive_wait_time_seconds: int = 0,
        dlq_retention_seconds: int = 1209600,
        kms_key_arn: str | None = None,
    ):
        super().__init__(scope, id_)
        encryption = ({"kms_master_key_id": kms_key_arn, "kms_data_key_reuse_period_seconds": 300}
                      if kms_key_arn else {"sqs_managed_sse_enabled": True})
        self.dead_letter_queue = SqsQueue(
            self, "dead_letter_queue", name=f"{name}-dlq", message_retention_seconds=dlq_retention_seconds, **encryption)
        self.queue = SqsQueue(
            self, "queue",
            name=name,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=message_retention_seconds,
            delay_seconds=delay_seconds,
            max_message_size=max_message_size,
            receive_wait_time_seconds=receive_wait_time_seconds,
            # Compact, as SQS itself returns it.
            redrive_policy=json.dumps({"deadLetterTargetArn": self.dead_letter_queue.arn,
                                       "maxReceiveCount": max_receive_count}, separators=(",", ":")),
            **encryption,
        )
        # moto 5.2.5 never stores RedriveAllowPolicy, so the provider would wait for it forever.
        if not emulator_profile(self):
            SqsQueueRedriveAllowPolicy(
                self, "dead_letter_queue_allow",
                queue_url=self.dead_letter_queue.url,
                redrive_allow_policy=json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}),
            )

    @property
    def arn(self) -> str:
        return self.queue.arn

    @property
    def url(self) -> str:
        return self.queue.url

    @property
    def name(self) -> str:
        return self.queue.name


class ExistingQueue:
    """A queue managed elsewhere, from its ARN (literal or a token): the same attributes as
    :class:`QueueWithDeadLetter` (``arn``, ``url``, ``name``, ``dead_letter_queue``).

    The URL is built from the ARN (``https://sqs.<region>.amazonaws.com/<account>/<name>``), so
    nothing is looked up at plan time. The queue's own redrive policy is its owner's business.
    """

    def __init__(self, arn: str, dead_letter_queue_arn: str | None = None):
        from cdktf import Fn

        from scaling_patterns.core.settings import is_token

        self.arn = arn
        if is_token(arn):
            parts = Fn.split(":", arn)
            region, account, self.name = Fn.element(parts, 3), Fn.element(parts, 4), Fn.element(parts, 5)
        else:
            _, _, _, region, account, self.name = arn.split(":", 5)
        self.url = f"https://sqs.{region}.amazonaws.com/{account}/{self.name}"
        self.dead_letter_queue = ExistingQueue(dead_letter_queue_arn) if dead_letter_queue_arn else None
