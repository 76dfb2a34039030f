"""A stateless HTTP trigger (AWS Lambda behind API Gateway) for durable document jobs.

``POST /process-document`` validates the job, dispatches ``process_document`` to the worker
group ``worker`` under the id ``doc/{jobId}`` without waiting for it, and answers 202: the
Lambda does no work, so its 15-minute ceiling never matters.  The id makes the dispatch
idempotent (an API Gateway or client retry re-attaches to the same job).  ``GET
/status/{jobId}`` reads the promise: processing, done with the result, or 404.

    python examples/lambda_trigger/handler.py job-001          # a fake POST event
    python examples/lambda_trigger/handler.py status job-001   # a fake GET event

Environment: SUSTAIN_URL (http://127.0.0.1:8001).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from sustain import InvalidIdError, ServerError, Sustain
from sustain.integrations.aws_lambda import Request, request, response

REQUIRED = ("jobId", "documentUrl", "requesterId")

# Module scope: once per cold start, reused by every warm invocation.
sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), group="gateway")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = request(event)
    if req.method == "POST" and req.path == "/process-document":
        return submit(req)
    if req.method == "GET" and req.path.startswith("/status/"):
        return status(req.path.removeprefix("/status/"))
    return response(404, {"error": "not_found", "message": f"no route {req.method} {req.path}"})


def submit(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return response(400, {"error": "validation_error", "message": "body must be a JSON object"})
    missing = [field for field in REQUIRED if not body.get(field)]
    if missing:
        return response(400, {"error": "validation_error", "message": f"missing {missing}"})
    job = {field: body[field] for field in REQUIRED} | {"type": body.get("type", "report")}
    try:
        sustain.options(target="worker").begin_rpc(f"doc/{job['jobId']}", "process_document", job)
    except InvalidIdError as exc:
        return response(400, {"error": "validation_error", "message": str(exc)})
    sustain.flush()  # the promise exists before we answer: Lambda freezes the process after
    return response(202, {
        "status": "accepted", "jobId": job["jobId"], "statusUrl": f"/status/{job['jobId']}",
        "message": "Document processing started",
    })  # fmt: skip


def status(job_id: str) -> dict[str, Any]:
    try:
        record = sustain.promises.get(f"doc/{job_id}")
    except ServerError as exc:
        if exc.status != 404:
            raise
        return response(404, {"error": "not_found", "jobId": job_id})
    if record["state"] == "pending":
        return response(200, {"status": "processing", "jobId": job_id})
    try:
        return response(200, {"status": "done", "jobId": job_id,
                              "result": sustain.get(f"doc/{job_id}").result()})  # fmt: skip
    except Exception as exc:  # the workflow failed: its error is the answer
        return response(200, {"status": "failed", "jobId": job_id, "error": str(exc)})


if __name__ == "__main__":  # a local run: fake API Gateway events
    if sys.argv[1:2] == ["status"]:
        event: dict[str, Any] = {"httpMethod": "GET", "path": f"/status/{sys.argv[2]}"}
    else:
        job_id = sys.argv[1] if len(sys.argv) > 1 else "job-001"
        job = {"jobId": job_id, "documentUrl": f"s3://docs/{job_id}.pdf",
               "requesterId": "user-42", "type": "contract"}  # fmt: skip
        event = {"httpMethod": "POST", "path": "/process-document", "body": json.dumps(job)}
    answer = lambda_handler(event, None)
    print(answer["statusCode"], answer["body"])
    sustain.stop()
