"""The patterns of this library, one line each (their knowledge lives in their packages).

Importing this module imports each pattern's ``PATTERN`` spec only: no cdktf, no pydantic
models, no boto3. Order is the order of stacks in the project's app, tables and docs.
"""

from __future__ import annotations

from scaling_patterns.patterns.inference_load_balancing import PATTERN as INFERENCE_LOAD_BALANCING
from scaling_patterns.patterns.llm_request_scaling import PATTERN as LLM_REQUEST_SCALING
from scaling_patterns.patterns.predictive_lambda_scaling import PATTERN as PREDICTIVE_LAMBDA_SCALING
from scaling_patterns.patterns.queue_depth_scaling import PATTERN as QUEUE_DEPTH_SCALING
from scaling_patterns.patterns.queue_to_sagemaker import PATTERN as QUEUE_TO_SAGEMAKER
from scaling_patterns.spec import PatternSpec

PATTERNS: tuple[PatternSpec, ...] = (
    LLM_REQUEST_SCALING,
    QUEUE_DEPTH_SCALING,
    INFERENCE_LOAD_BALANCING,
    PREDICTIVE_LAMBDA_SCALING,
    QUEUE_TO_SAGEMAKER,
)


def pattern(stack: str) -> PatternSpec:
    """The pattern of stack ``stack``; KeyError names the known ones."""
    for spec in PATTERNS:
        if spec.name == stack:
            return spec
    raise KeyError(f"unknown stack {stack!r} (known: {', '.join(p.name for p in PATTERNS)})")
