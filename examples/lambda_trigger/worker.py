"""The long-running worker group behind the Lambda trigger: five checkpointed steps per job.

Each step is a ``ctx.run`` checkpoint, so a worker that dies mid-job is replaced by another
member of ``worker`` that replays the finished steps from the store and runs only the rest.
``download_document`` returns a page count from Python's per-process randomised ``hash()``:
the checkpoint is what keeps it the same after a crash.

    sustain worker examples.lambda_trigger.worker:sustain --group worker

Environment: SUSTAIN_URL (http://127.0.0.1:8001), WORKER_TTL (the task lease, 10 s),
DOC_STEP_SCALE (multiplies the demo step costs, 1) and two test hooks: DOC_LOG (a file each
finished step appends ``step jobId pid`` to) and DOC_BLOCK (``jobId:step`` hangs that step).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from sustain import Context, Sustain

SCALE = float(os.environ.get("DOC_STEP_SCALE", "1"))

sustain = Sustain(
    url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
    group="worker",
    ttl=float(os.environ.get("WORKER_TTL", "10")),
)


def work(name: str, job: dict[str, Any], seconds: float) -> None:
    """The simulated cost of a step, and the test hooks."""
    if os.environ.get("DOC_BLOCK") == f"{job['jobId']}:{name}":
        time.sleep(3600)  # the worker is killed here
    time.sleep(seconds * SCALE)
    if log := os.environ.get("DOC_LOG"):
        with open(log, "a") as out:
            out.write(f"{name} {job['jobId']} {os.getpid()}\n")


def now() -> str:
    return datetime.now(UTC).isoformat()


def download_document(ctx: Context, job: dict[str, Any]) -> int:
    work("download_document", job, 0.5)
    return hash(job["documentUrl"]) % 20 + 1  # differs per process unless checkpointed


def extract_text(ctx: Context, job: dict[str, Any], pages: int) -> str:
    work("extract_text", job, 0.05 * pages)
    return f"text of {pages} pages of {job['documentUrl']}"


def analyze_document(ctx: Context, job: dict[str, Any], text: str) -> dict[str, Any]:
    work("analyze_document", job, 0.8)  # a simulated LLM call
    extracted = {
        "invoice": {"vendor": "Acme Corp", "total": 1280.0},
        "contract": {"parties": ["Acme Corp", "Globex Inc"], "term": "24 months"},
    }.get(job["type"], {"findings": ["revenue up", "costs flat"]})
    return {"summary": f"A {job['type']}: {text}", "extractedData": extracted}


def store_results(ctx: Context, job: dict[str, Any], analysis: dict[str, Any]) -> str:
    work("store_results", job, 0.2)
    return now()


def notify_requester(ctx: Context, job: dict[str, Any]) -> str:
    work("notify_requester", job, 0.15)
    return now()


@sustain.register
def process_document(ctx: Context, job: dict[str, Any]) -> Any:
    pages = yield ctx.run(download_document, job)
    text = yield ctx.run(extract_text, job, pages)
    analysis = yield ctx.run(analyze_document, job, text)
    stored_at = yield ctx.run(store_results, job, analysis)
    notified_at = yield ctx.run(notify_requester, job)
    return {
        "jobId": job["jobId"], "type": job["type"], "pageCount": pages,
        "summary": analysis["summary"], "extractedData": analysis["extractedData"],
        "storedAt": stored_at, "notifiedAt": notified_at,
    }  # fmt: skip
