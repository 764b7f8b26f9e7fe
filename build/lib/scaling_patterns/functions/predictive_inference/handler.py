"""Inference function of the `predictive-lambda-scaling` stack (invoked through its alias).

A stand-in for an AI workload whose cold start is expensive: the model is loaded once per
execution environment, at import time, which is exactly the work provisioned concurrency
does ahead of traffic. Replace ``load_model``/``predict`` with your model; keep the shape:

- ``load_model()`` runs at init (outside the handler), so warm invocations skip it;
- ``predict(model, inputs)`` is pure and unit-testable;
- the handler parses the request (direct invoke payload or a Function URL / API Gateway
  body), logs one structured record per request and returns JSON.

Request: ``{"inputs": [[float, ...], ...]}`` (or a single vector). Response:
``{"predictions": [...], "model_version": ..., "cold_start": bool}``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

logger = logging.getLogger("predictive_inference")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))


class BadRequest(ValueError):
    """The request cannot be scored (the caller's fault, not worth a retry)."""


def load_model() -> dict[str, Any]:
    """Load weights once per execution environment (here: a small logistic model)."""
    return {"version": os.environ.get("MODEL_VERSION", "demo-1"), "weights": [0.8, -0.4, 0.25], "bias": -0.1}


def predict(model: dict[str, Any], inputs: list[list[float]]) -> list[float]:
    """Probability per input vector; vectors must match the model's width."""
    weights, bias = model["weights"], model["bias"]
    scores = []
    for vector in inputs:
        if len(vector) != len(weights):
            raise BadRequest(f"each input needs {len(weights)} values (given {len(vector)})")
        z = bias + sum(w * x for w, x in zip(weights, vector))
        scores.append(round(1.0 / (1.0 + math.exp(-z)), 6))
    return scores


def parse_inputs(event: dict[str, Any]) -> list[list[float]]:
    """Input vectors from a direct payload or an HTTP body (JSON)."""
    payload: Any = event
    if isinstance(event.get("body"), str):
        try:
            payload = json.loads(event["body"])
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not JSON: {exc.msg}") from None
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if isinstance(inputs, list) and inputs and all(isinstance(x, (int, float)) for x in inputs):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(
            isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in inputs):
        raise BadRequest("'inputs' must be a non-empty list of number vectors")
    return [[float(x) for x in v] for v in inputs]


_started = time.monotonic()
MODEL = load_model()
_cold = True


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global _cold
    cold, _cold = _cold, False
    request_id = getattr(context, "aws_request_id", None)
    try:
        predictions = predict(MODEL, parse_inputs(event))
    except BadRequest as exc:
        logger.warning("rejected request", extra={"request_id": request_id, "error": str(exc), "cold_start": cold})
        return {"statusCode": 400, "error": str(exc)}
    logger.info("scored request", extra={"request_id": request_id, "inputs": len(predictions), "cold_start": cold,
                                         "model_version": MODEL["version"]})
    return {"predictions": predictions, "model_version": MODEL["version"], "cold_start": cold}
