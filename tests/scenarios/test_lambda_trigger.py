"""Scenario 8 (SCENARIOS.md §8): an AWS Lambda trigger dispatching to a long-running worker.

The example's ``lambda_handler`` runs in short-lived processes that get real API Gateway
events and exit right after answering (no ``stop()``: a Lambda is frozen, so the handler must
have made the job durable before it answers); the workers are ``sustain worker`` processes of
group ``worker``.  Shortened by configuration only: the example's ``WORKER_TTL`` and the
server's ``--retry-timeout``; ``DOC_STEP_SCALE=2`` makes each job outlast a 3 s "Lambda
timeout".  ``DOC_LOG`` records every finished step; ``DOC_BLOCK`` hangs step 4 of job-002 on
worker A, which is then SIGKILLed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.scenarios.processes import Proc, Store, scenario_server, sustain_worker, wait_until
from tests.servers import ServerProcess

APP = "examples.lambda_trigger.worker:sustain"
STEPS = ["download_document", "extract_text", "analyze_document", "store_results",
         "notify_requester"]  # fmt: skip
LAMBDA_TIMEOUT = 3.0

DRIVER = """
import json, sys, time
from examples.lambda_trigger.handler import lambda_handler
for event in json.loads(sys.argv[1]):
    started = time.monotonic()
    answer = lambda_handler(event, None)
    print(json.dumps({"seconds": time.monotonic() - started, **answer}), flush=True)
"""


def handler(tmp: Path, server: ServerProcess, *events: dict[str, Any]) -> list[dict[str, Any]]:
    """Each event through ``lambda_handler`` in one short-lived process; its answers."""
    log = tmp / f"lambda-{len(list(tmp.glob('lambda-*')))}.log"
    proc = Proc(["-c", DRIVER, json.dumps(events)], log, {"SUSTAIN_URL": server.url})
    assert proc.wait(60) == 0, proc.output()
    answers = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    assert len(answers) == len(events), proc.output()
    for answer in answers:
        assert answer["seconds"] < LAMBDA_TIMEOUT, answer  # never near the Lambda's ceiling
        answer["json"] = json.loads(answer["body"])
    return answers


def post(job_id: str, **fields: Any) -> dict[str, Any]:
    job = {"jobId": job_id, "documentUrl": f"s3://docs/{job_id}.pdf", "requesterId": "u-7",
           "type": "contract"} | fields  # fmt: skip
    body = json.dumps({k: v for k, v in job.items() if v is not None})
    return {"httpMethod": "POST", "path": "/process-document", "body": body,
            "headers": {"content-type": "application/json"}}  # fmt: skip


def get(job_id: str) -> dict[str, Any]:  # an HTTP API (v2) event, for variety
    path = f"/status/{job_id}"
    return {"rawPath": path, "requestContext": {"http": {"method": "GET", "path": path}}}


def steps(log: Path, job_id: str) -> list[tuple[str, int]]:
    """``(step, pid)`` for every finished step of ``job_id``."""
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines()]
    return [(step, int(pid)) for step, job, pid in lines if job == job_id]


def promise(server: ServerProcess, id: str) -> dict[str, Any]:
    record: dict[str, Any] = server.ok("promise.get", {"id": id})["promise"]
    return record


def value(server: ServerProcess, id: str) -> Any:
    return json.loads(base64.b64decode(promise(server, id)["value"]["data"]))


def settled(server: ServerProcess, id: str) -> bool:
    return promise(server, id)["state"] != "pending"


def test_lambda_trigger_dispatches_to_workers_that_survive_a_kill(
    tmp_path: Path, store: Store
) -> None:
    server = scenario_server(tmp_path, "--retry-timeout", "1000", store=store)
    log = tmp_path / "steps.log"
    env = {"SUSTAIN_URL": server.url, "WORKER_TTL": "3", "DOC_STEP_SCALE": "2",
           "DOC_LOG": str(log), "DOC_BLOCK": "job-002:store_results"}  # fmt: skip
    try:
        worker_a = sustain_worker(APP, "worker", tmp_path / "worker-a.log", env)

        # 202 at once, processing right after, from a process that then exits.
        accepted, processing = handler(tmp_path, server, post("job-001"), get("job-001"))
        assert accepted["statusCode"] == 202
        assert accepted["json"] == {
            "status": "accepted", "jobId": "job-001", "statusUrl": "/status/job-001",
            "message": "Document processing started"}  # fmt: skip
        assert (processing["statusCode"], processing["json"]["status"]) == (200, "processing")
        again = handler(tmp_path, server, post("job-001"))[0]  # resubmitted while running
        assert again["statusCode"] == 202

        wait_until(lambda: settled(server, "doc/job-001"), 60, "job-001")
        done = handler(tmp_path, server, get("job-001"))[0]["json"]
        assert done["status"] == "done"
        result = done["result"]
        assert (result["jobId"], result["type"]) == ("job-001", "contract")
        assert 1 <= result["pageCount"] <= 20
        assert len(result["extractedData"]["parties"]) == 2
        assert result["storedAt"] and result["notifiedAt"]
        assert [s for s, _ in steps(log, "job-001")] == STEPS  # each step exactly once
        record = promise(server, "doc/job-001")  # the workflow outlived a 3 s Lambda
        assert record["settledAt"] - record["createdAt"] > LAMBDA_TIMEOUT * 1000

        # Crash: worker A hangs in step 4 of job-002 and is killed; worker B finishes it.
        assert handler(tmp_path, server, post("job-002"))[0]["statusCode"] == 202
        wait_until(lambda: len(steps(log, "job-002")) == 3, 60, "job-002 step 3 checkpointed")
        wait_until(lambda: settled(server, "doc/job-002:3"), 30, "step 3's checkpoint")
        worker_a.kill9()
        worker_b = sustain_worker(APP, "worker", tmp_path / "worker-b.log",
                                  {k: v for k, v in env.items() if k != "DOC_BLOCK"})  # fmt: skip
        wait_until(lambda: settled(server, "doc/job-002"), 60, "job-002 on worker B")
        ran = steps(log, "job-002")
        assert [s for s, _ in ran] == STEPS  # steps 1-3 never ran again
        assert {pid for _, pid in ran[:3]} == {worker_a.pid}
        assert {pid for _, pid in ran[3:]} == {worker_b.pid}
        crashed = handler(tmp_path, server, get("job-002"))[0]["json"]["result"]
        assert crashed["pageCount"] == value(server, "doc/job-002:1")  # the checkpoint, not
        assert crashed["summary"] == value(server, "doc/job-002:3")["summary"]  # B's hash()

        # Idempotency after the fact, validation, unknown jobs and routes.
        resubmitted, missing, unknown, route = handler(
            tmp_path, server,
            post("job-001"), post("job-003", documentUrl=None), get("job-404"),
            {"httpMethod": "DELETE", "path": "/jobs"},
        )  # fmt: skip
        assert resubmitted["statusCode"] == 202
        assert (missing["statusCode"], missing["json"]["error"]) == (400, "validation_error")
        assert "documentUrl" in missing["json"]["message"]
        assert (unknown["statusCode"], unknown["json"]["error"]) == (404, "not_found")
        assert (route["statusCode"], route["json"]["error"]) == (404, "not_found")
        assert server.rpc("promise.get", {"id": "doc/job-003"}).status == 404
        assert promise(server, "doc/job-001") == record  # still the one workflow
        worker_b.stop()
        assert [s for s, _ in steps(log, "job-001")] == STEPS  # no new work, ever
    finally:
        server.stop()
