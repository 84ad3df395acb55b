"""Write docs/reliability.md from the JSON figures the fault tests leave in FAULT_RESULTS_DIR.

    python -m tests.faults.report RESULTS_DIR docs/reliability.md --command "make faults" \
        --started 2026-11-29T05:00:00Z --status 0

Run by scripts/faults.sh; by hand only to re-render a kept results folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

SCENARIOS = {
    "sigkill": (
        "Celery worker killed with SIGKILL",
        "At a random point of each round (5–90 % of the notices sent), odd rounds SIGKILL a whole worker "
        "(main process and pool: a machine or container dying) and start a new one at once, as a supervisor "
        "would; even rounds SIGKILL one pool process, which Celery replaces (the task it held is redelivered, "
        "acks_late). Recovery: from the kill to every notice of the round final.",
    ),
    "stall": (
        "Worker stalled past its lease (SIGSTOP, then SIGCONT)",
        "At a random point a whole worker is stopped with SIGSTOP (a paused VM, a swap storm); it is "
        "resumed with SIGCONT the moment another worker has taken one of its notices over (lease expired, "
        "second claim), or after lease + 3 ticks + 10 s. Copies sent twice here are the known missing "
        "fencing token (tests/faults/test_lease_fencing.py). Recovery: from SIGCONT to every notice final.",
    ),
    "beat": (
        "Two beat schedulers at once",
        "Two `celery beat` processes run the whole time, each running the planner and the enqueue task every "
        "tick. Nobody else plans or enqueues. Recovery: from the clients being created to every notice of "
        "the round final (planning included).",
    ),
    "redis": (
        "Redis stopped and restarted",
        "A private redis-server (no persistence, own port) is SIGKILLed at a random point and started again "
        "on the same port after the outage: every queued and unacknowledged task is gone. Recovery: from "
        "the restart to every notice of the round final.",
    ),
    "postgres": (
        "PostgreSQL connections dropped",
        "`pg_terminate_backend` on every session of the workers, at random points of each round (the shared "
        "server itself is never stopped). Recovery: from the last termination to every notice final.",
    ),
    "smtp": (
        "SMTP server refusing, then accepting",
        "At a random point the SMTP server answers RCPT with `451 4.3.0` (round 1, 4, …), with `421 4.3.2` "
        "(round 2, 5, …) or is stopped so connections are refused (round 3, 6, …), for the outage; then it "
        "accepts again. The retry backoff (2, 4, 8 … minutes by design) is skipped here: once the server is "
        "back, the test moves the rescheduled notices' time to now (the clock reaching it). Recovery: from "
        "the server accepting again to every notice final.",
    ),
    "smtp_backoff": (
        "SMTP outage, real retry backoff",
        "As above, but nothing touches the clock: the refused notices wait their real 2-minute backoff. "
        "Recovery: from the server accepting again to every notice final.",
    ),
}

COLUMNS = (
    ("rounds", "rounds"),
    ("notices", "notices"),
    ("delivered", "delivered"),
    ("lost", "**lost**"),
    ("twice", "**sent twice**"),
    ("flagged", "flagged interrupted"),
    ("flagged_but_delivered", "…of which delivered"),
    ("gave_up", "gave up (failed, visible)"),
    ("retried", "claimed more than once"),
)


def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        return "n/a"


def machine() -> list[str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB RAM"
    pg = "n/a"
    try:
        import psycopg2

        with psycopg2.connect(os.environ["DATABASE_URL"], dbname="postgres") as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            pg = cur.fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - the report still gets written
        pg = f"n/a ({type(exc).__name__})"
    import celery
    import django

    return [
        f"- Host: {platform.node()}, {platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem}",
        f"- Load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(the 2 cores are shared with other jobs: absolute times are pessimistic)",
        f"- Python {platform.python_version()}, Django {django.get_version()}, Celery {celery.__version__}, "
        f"PostgreSQL {pg}, {_run('redis-server', '--version').split(' sha=')[0]}",
        "- Processes: 2 Celery workers × 2 pool processes (`--max-tasks-per-child 500`, as the Procfile), "
        "1 `celery beat` (2 in the beat scenario), aiosmtpd in the test process",
    ]


def findings(results: list[dict]) -> list[str]:
    """What the figures say, scenario by scenario (written from the figures, not by hand)."""
    by = {r["scenario"]: r["total"] for r in results}
    out = ["", "## Findings", ""]
    lost = sum(t["lost"] for t in by.values())
    twice = {name: t["twice"] for name, t in by.items() if t["twice"]}
    out.append(
        f"- Lost notices, all scenarios: **{lost}**."
        + (" Every notice that should go out went out or waits for a person." if lost == 0 else " See the rounds.")
    )
    if twice:
        out.append(
            "- Sent twice: "
            + ", ".join(f"**{n}** in {SCENARIOS.get(name, (name,))[0]}" for name, n in twice.items())
            + "; none in the other scenarios."
        )
    else:
        out.append("- Sent twice, all scenarios: **0**.")
    if "stall" in by:
        out.append(
            "- Stalled worker: every write a worker makes after its claim is fenced by the lease it set "
            "(`dispatch._mine`), so a worker that stalled past its lease, and whose notice another worker "
            "took over, writes nothing and sends nothing when it wakes. "
            f"{by['stall']['twice']} copies sent twice in {by['stall']['rounds']} stalls. "
            "`tests/faults/test_lease_fencing.py` reproduces the race deterministically (before the fence, "
            "the customer got the reminder twice)."
        )
    pg = by.get("postgres")
    if pg and pg["flagged"]:
        out.append(
            f'- PostgreSQL drops: {pg["flagged"]} notices flagged "interrupted", {pg["flagged_but_delivered"]} '
            "of which had reached the SMTP server: the connection died between the send and the write that "
            "records it. Nothing is lost or repeated, but a person has to check each. The worker retries "
            "that one write on a fresh connection (`dispatch._record_sent`, 3 attempts), so only a drop that "
            "outlasts the retries leaves a notice for a person."
        )
    kill = by.get("sigkill")
    if kill:
        out.append(
            f'- SIGKILL: {kill["flagged"]} notices flagged "interrupted" in {kill["rounds"]} kills '
            f"({kill['flagged_but_delivered']} of them had in fact gone out); "
            f"{kill['retried']} notices taken over after the lease and sent once."
        )
    smtp = by.get("smtp_backoff") or by.get("smtp")
    if smtp:
        out.append(
            "- SMTP 421/451/refused are transient: the notice is rescheduled with backoff (2, 4, 8 … minutes), "
            "never failed, never sent twice. The recovery time with the real clock is the backoff itself "
            '(section "SMTP outage, real retry backoff").'
        )
    return out


# Why dispatching in batches keeps "never twice, never lost" (static text: the argument, not a figure).
BATCHES = [
    "## Batches: why exactly-once still holds",
    "",
    "Workers dispatch in batches (`dispatch.dispatch_batch`, one `cobranza.dispatch_notices` task per "
    "`DUNNING_BATCH_SIZE` due notices, 50 by default). The argument for one notice is unchanged — claim, "
    "re-check, store the message, send, record — and each step keeps its guard:",
    "",
    "1. **Claim**: one statement claims the batch (`UPDATE … FROM (SELECT … ORDER BY id FOR UPDATE SKIP "
    "LOCKED) RETURNING id`), with the same condition as the single claim (planned and due, or sending with an "
    "expired lease) and one lease value for all, the batch's fencing token. Two batches cannot both win a "
    "notice: the row lock serialises them and the loser's condition no longer holds (or it skips the row).",
    "2. **Re-check**: the invoices still due, the later steps, the last sends (pacing), the contact rules, "
    "holidays and recent contacts are read once for the batch, a moment before each notice would have read "
    "them one by one; the same rules then run per notice. A client whose state an earlier notice of the "
    "same batch may have changed (a second notice of the same client) is re-read afresh.",
    "3. **Store, then send, then record — per message**: each message is stored (Message-ID) with a write "
    "fenced by the token, committed (and flushed to disk) before its own send; right after the send, its "
    "`sent` mark and its timeline entry are recorded in one statement fenced by the token (the entry is "
    "written only if the mark is; retried on a fresh connection, as before, and a retry of a write that "
    "did commit matches nothing). That record does not wait for the disk (`synchronous_commit` off for "
    "its transaction alone): it is visible at once to every worker, only a crash of the database server "
    "within a fraction of a second could lose it — leaving that notice `sending` with its message stored, "
    'flagged "interrupted" as below, never resent — and the next store, which waits for the disk, '
    "flushes it with everything before it. Nothing is stored ahead "
    "for the rest of the batch and no record waits for the end of the batch, so a crash at any point leaves "
    '**at most one** notice in the "may have been sent" state — the one whose send was under way — exactly '
    'the window of one-by-one dispatch; it is flagged "interrupted" for a person, never resent. The '
    "notices of the batch not yet reached are still `sending` with no message stored: after the lease they "
    'are claimed again and sent once (more "claimed more than once" than before, no more "flagged").',
    "4. **Fencing**: every write after the claim filters on the token (`dispatch._mine`). A batch that "
    "stalls past its lease writes nothing and sends nothing for a notice another worker took over; a long "
    "batch renews the lease of its remaining notices at a third of the lease, with the same fence, and drops "
    "the ones already taken over.",
    "5. **One SMTP connection**: the emails of a batch share one connection (`channels.EmailSession`); "
    "after any SMTP error the connection is dropped and the next email opens a new one. The failing notice "
    "is retried or failed exactly as one by one (it is that notice's own send that failed).",
    "6. **Errors**: an unexpected error in one notice, or a dropped database connection, is logged and the "
    "batch goes on (over a new connection); that notice waits for its lease, as after a crash. The task's "
    "time limit ends the batch and its remaining notices wait for the lease.",
    "",
    "What is written in bulk is only what cannot send or lose a message: the reads. Outgoing webhooks are "
    "queued in the same transaction as the `sent` record when an endpoint takes `notice.sent` (checked once "
    "per batch: an endpoint added during a batch gets events from the next one).",
]


def _fmt(value) -> str:
    return "–" if value is None else f"{value:g}"


def render(results: list[dict], *, command: str, started: str, finished: str, status: int) -> str:
    lines = [
        "# Reliability: fault injection",
        "",
        "Measured by `make faults` (`scripts/faults.sh`, tests in `tests/faults/`); this file is written by "
        "`tests/faults/report.py` from the measured figures, do not edit it by hand. The short versions of the "
        "same tests run in `make test` (fewer rounds and notices, same assertions).",
        "",
        "## Run",
        "",
        f"- Command: `{command}`",
        f"- Started {started}, finished {finished}; pytest exit status {status}"
        + (" (all scenarios passed)" if status == 0 else " (**some scenario failed**: see below)"),
        *machine(),
        "",
        "## Definitions",
        "",
        "- **Lost**: a notice that should go out and, after recovery, was neither received by the SMTP "
        "server nor in a visible, actionable state. Still `planned`/`sending` when the round's time ran out, "
        "skipped, or recorded as sent without arriving all count as lost. Goal 0.",
        "- **Sent twice**: extra copies the SMTP server received of one notice (same Message-ID), or of a "
        "second notice for the same client and step. Goal 0.",
        "- **Flagged interrupted** (not lost, counted apart): the worker died after storing the message and "
        "before recording the send, so it may have gone out. It is never resent blindly: the notice is "
        '`failed` with reason "Envío interrumpido…" and a review task for the collector. "…of which '
        'delivered" says how many of those had in fact reached the SMTP server (a person checking finds it '
        "there).",
        '- **Gave up**: failed after the retries ran out; visible in the notice list with "retry" (not lost).',
        "- **Claimed more than once**: notices that needed a second claim (lease expired after a death, or an "
        "SMTP retry) and still went out once.",
        "- **Resume**: from the end of the fault to the first message the SMTP server received afterwards. "
        "**Recovery**: from the end of the fault to every notice of the round being final "
        "(sent, flagged or failed). Both include the lease and the beat tick below, which the tests shorten "
        "(production: lease `DUNNING_LEASE_SECONDS`=600 s, tick 60 s, so there a dead worker's notices "
        "are taken over after up to ~11 minutes). Recovery also includes sending whatever the round still "
        "had to send when the fault hit (`at_sent` in the tables: a fault at 85 of 1,000 leaves 915 notices, "
        "~35 s of work here), so it is an upper bound; where another worker kept running (SIGKILL, stall, "
        "PostgreSQL drops) resume is near 0 because sending never stopped.",
        "",
        *BATCHES,
        "",
        "## Summary",
        "",
        "| scenario | " + " | ".join(label for _k, label in COLUMNS) + " | resume median / max (s) "
        "| recovery median / max (s) | lease / tick (s) |",
        "|---" * (len(COLUMNS) + 4) + "|",
    ]
    for res in results:
        total, cfg = res["total"], res["config"]
        title = SCENARIOS.get(res["scenario"], (res["scenario"], ""))[0]
        lines.append(
            f"| {title} | "
            + " | ".join(_fmt(total.get(k)) for k, _label in COLUMNS)
            + f" | {_fmt(res['resume_s']['median'])} / {_fmt(res['resume_s']['max'])}"
            + f" | {_fmt(res['recovery_s']['median'])} / {_fmt(res['recovery_s']['max'])}"
            + f" | {_fmt(cfg['lease'])} / {_fmt(cfg['tick'])} |"
        )
    lines += findings(results)
    missing = [name for name in SCENARIOS if name not in {r["scenario"] for r in results}]
    if missing:
        lines += ["", f"Not measured in this run: {', '.join(missing)}."]
    for res in results:
        title, how = SCENARIOS.get(res["scenario"], (res["scenario"], ""))
        cfg = res["config"]
        lines += [
            "",
            f"## {title}",
            "",
            how,
            "",
            f"{cfg['rounds']} rounds × {cfg['notices']} notices, seed {cfg['seed']}, round timeout "
            f"{_fmt(cfg['timeout'])} s"
            + (f", outage {_fmt(res['smtp_down_s'])} s" if "smtp_down_s" in res else "")
            + f". Round duration median {_fmt(res['round_s']['median'])} s, max {_fmt(res['round_s']['max'])} s.",
            "",
            "| round | fault | delivered | lost | twice | flagged (delivered) | claimed >1 | resume (s) "
            "| recovery (s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in res["rounds"]:
            fault = r["fault"]
            where = ", ".join(f"{k}={v}" for k, v in fault.items() if k not in ("kind", "real_backoff"))
            lines.append(
                f"| {r['round']} | {fault.get('kind', '')}{f' ({where})' if where else ''} | {r['delivered']} "
                f"| {r['lost']} | {r['twice']} | {r['flagged']} ({r['flagged_but_delivered']}) | {r['retried']} "
                f"| {_fmt(r['resume_s'])} | {_fmt(r['recovery_s'])}" + ("" if r["settled"] else " (timed out)") + " |"
            )
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        "make faults                                   # the long run, rewrites this file",
        "FAULT_ROUNDS=3 FAULT_NOTICES=300 make faults  # shorter",
        "pytest tests/faults/                          # the short versions (part of make test)",
        "```",
        "",
        "Knobs (environment; `FAULT_<SCENARIO>_<KNOB>` wins over `FAULT_<KNOB>`, scenario in capitals: "
        "SIGKILL, STALL, BEAT, REDIS, POSTGRES, SMTP, SMTP_BACKOFF): `ROUNDS`, `NOTICES`, `LEASE`, `TICK`, "
        "`ROUND_TIMEOUT`, `SEED`, `REDIS_DOWN`, `PG_KILLS`, `SMTP_DOWN`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--command", default="make faults")
    parser.add_argument("--started", default="")
    parser.add_argument("--status", type=int, default=0)
    args = parser.parse_args(argv)
    order = {name: i for i, name in enumerate(SCENARIOS)}
    results = sorted(
        (json.loads(p.read_text()) for p in args.results.glob("*.json")),
        key=lambda r: order.get(r["scenario"], len(order)),
    )
    if not results:
        print(f"no results in {args.results}", file=sys.stderr)
        return 1
    finished = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        render(results, command=args.command, started=args.started, finished=finished, status=args.status)
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
