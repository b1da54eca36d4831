"""Samples through the real agent: an application instrumented with the
OpenTelemetry Python SDK sends a sample's events over OTLP (gRPC or HTTP) to
`dtc-agent`, which runs the sample compiled by `dtc compile`; a receiver
downstream (opentelemetry-proto's gRPC stubs, sometimes behind rotel) must
get what `dtc run` gives for the same events: the same egress (suppressed
events absent, redacted fields hashed with the same hash), the same derived
logs, the same metric values, and the actions."""

from __future__ import annotations

import json

import pytest

from harness import ROOT, dtc_run, format_time, install, normalize, sample_events, wait_for


def run_sample(tmp_path, program, events_file, protocol, receiver, start_agent, sender, artifact,
               rotel_sender=None, rotel_downstream=None):
    """Sends a sample's events through the agent and returns (the events,
    the `dtc run` reference outputs, the agent). `rotel_sender` puts rotel
    between the SDK and the agent, `rotel_downstream` between the agent and
    the receiver (each a function starting rotel towards a port)."""
    dtx = artifact(program)
    downstream = rotel_downstream(receiver.port).grpc if rotel_downstream else receiver.port
    agent = start_agent(downstream)
    install(agent.programs, "a.dtx", dtx)
    agent.wait_status("the program running", lambda s: [p["state"] for p in s["programs"]] == ["running"])
    events = sample_events(ROOT / events_file)
    assert len(events) > 20
    if rotel_sender:
        port = int(agent.grpc.rsplit(":", 1)[1])
        r = rotel_sender(port)
        target = f"127.0.0.1:{r.grpc if protocol == 'grpc' else r.http}"
    else:
        target = agent.grpc if protocol == "grpc" else agent.http
    sender(protocol, target).send(events)
    agent.wait_status("every record through the pipeline",
                      lambda s: s["counters"]["records_in"] == len(events))
    # Stopping flushes the windows still open and exports them.
    agent.stop()
    return events, dtc_run(dtx, events, tmp_path), agent


def check_same_as_dtc_run(receiver, reference, agent):
    egress = [normalize(o["event"]) for o in reference if o["kind"] == "egress"]
    logs = [{"name": o["name"], "time": o["time"], "fields": o["fields"]} for o in reference if o["kind"] == "log"]
    metrics = [{k: v for k, v in o.items() if k != "kind"} for o in reference if o["kind"] == "metric"]

    def derived():
        return [{"name": r.record.event_name, "time": format_time(r.record.time_unix_nano),
                 "fields": {kv.key: r.attr(kv.key) for kv in r.record.attributes}}
                for r in receiver.agent_records() if r.scope != "dtc-agent"]

    # The agent has exported everything before it exits; a collector in
    # between may still be passing the last batch on.
    try:
        wait_for("the egress downstream", lambda: len(receiver.forwarded()) >= len(egress))
        wait_for("the derived logs downstream", lambda: len(derived()) >= len(logs))
        wait_for("the metrics downstream", lambda: len(receiver.metric_points()) >= len(metrics))
    except AssertionError as e:
        raise AssertionError(f"{e}; the agent's stderr: {agent.output()[-3000:]}") from None
    got = [r.normalized() for r in receiver.forwarded()]
    assert got == egress
    assert derived() == logs
    key = lambda p: json.dumps(p, sort_keys=True)  # noqa: E731
    assert sorted(receiver.metric_points(), key=key) == sorted(metrics, key=key)
    return egress, logs, metrics


def test_chatty_event_is_suppressed_and_counted_over_grpc(tmp_path, receiver, start_agent, sender, artifact):
    events, reference, agent = run_sample(
        tmp_path, "samples/02-chatty-event/chatty_event.dt", "samples/02-chatty-event/chatty_event.events.jsonl",
        "grpc", receiver, start_agent, sender, artifact)
    egress, _, metrics = check_same_as_dtc_run(receiver, reference, agent)
    banners = sum(e.name == "LogWelcomeBanner" for e in events)
    assert banners > 30
    assert [e["event"] for e in egress] == ["LogLaunch", "LogLaunch"]
    assert not [r for r in receiver.forwarded() if r.record.event_name == "LogWelcomeBanner"]
    assert sum(p["value"] for p in metrics if p["name"] == "app.welcome_banners") == banners


def test_file_names_are_hashed_as_dtc_run_hashes_them_over_http(tmp_path, receiver, start_agent, sender, artifact):
    events, reference, agent = run_sample(
        tmp_path, "samples/01-file-hashing/file_hashing.dt", "samples/01-file-hashing/file_hashing.events.jsonl",
        "http", receiver, start_agent, sender, artifact)
    egress, logs, metrics = check_same_as_dtc_run(receiver, reference, agent)
    sent = {e.attributes["fileName"] for e in events if "fileName" in e.attributes}
    got = {r.attr("fileName") for r in receiver.forwarded()}
    assert len(got) > 5 and not got & sent, "no file name leaves the box in clear"
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in got), got
    # The state machine timed every hash; three were slow.
    assert [log["name"] for log in logs].count("FileHashed") > 10
    assert sum(p["value"] for p in metrics if p["name"] == "imagesvc.hash_time.slow") == 3


def test_secret_is_dropped_with_rotel_as_the_sender(tmp_path, receiver, start_agent, start_rotel, sender, artifact):
    """SDK (OTLP/HTTP) -> rotel -> agent (OTLP/gRPC) -> receiver."""
    events, reference, agent = run_sample(
        tmp_path, "samples/03-secret/drop_field.dt", "samples/03-secret/drop_field.events.jsonl",
        "http", receiver, start_agent, sender, artifact, rotel_sender=start_rotel)
    check_same_as_dtc_run(receiver, reference, agent)
    forwarded = receiver.forwarded()
    assert len(forwarded) == len(events), "redaction suppresses nothing"
    banners = [r for r in forwarded if r.record.event_name == "LogWelcomeBanner"]
    assert len(banners) > 10
    assert all(r.attr("secret") is None and r.attr("version") for r in banners), "secret dropped, the rest kept"
    assert all(r.service == "imagesvc" for r in forwarded), "the resource came through rotel and the agent"


def test_work_queue_metrics_logs_and_actions_through_rotel(tmp_path, receiver, start_agent, start_rotel, sender,
                                                           artifact):
    """SDK (OTLP/gRPC) -> agent -> rotel -> receiver: histograms, gauges and
    derived logs survive a second OTLP implementation."""
    _, reference, agent = run_sample(
        tmp_path, "samples/05-work-queue/work_queue.dt", "samples/05-work-queue/work_queue.events.jsonl",
        "grpc", receiver, start_agent, sender, artifact, rotel_downstream=start_rotel)
    _, logs, metrics = check_same_as_dtc_run(receiver, reference, agent)
    assert [log["name"] for log in logs] == ["QueueBacklogged", "QueueDrained", "QueueBacklogged", "QueueDrained"]
    assert any(p["name"] == "workqueue.depth.depth" and p["value"]["count"] == 8 for p in metrics)
    # Each trigger is announced by a record: the first fired, the second
    # refused by the program's budget (1 per 1h).
    actions = [a for a in reference if a["kind"] == "action"]
    records = [r for r in receiver.agent_records() if r.record.event_name == "dtc.action"]
    assert [(r.attr("dtc.action.name"), r.attr("dtc.action.fired")) for r in records] == \
        [(a["action"], a["fired"]) for a in actions] == [("memory_dump", True), ("memory_dump", False)]


def _verify_hash(tmp_path, receiver, start_agent, sender, artifact):
    events, reference, agent = run_sample(
        tmp_path, "samples/06-verify-hash/verify_hash.dt", "samples/06-verify-hash/verify_hash.events.jsonl",
        "grpc", receiver, start_agent, sender, artifact)
    check_same_as_dtc_run(receiver, reference, agent)
    actions = [a for a in reference if a["kind"] == "action"]
    assert [a["action"] for a in actions] == ["flight_recorder.snapshot"]
    records = [r for r in receiver.agent_records() if r.record.event_name == "dtc.action"]
    assert len(records) == 1, [r.record for r in records]
    assert records[0].attr("dtc.action.name") == "flight_recorder.snapshot"
    assert records[0].attr("dtc.action.fired") is True
    return records[0], agent


def test_flight_recorder_trigger_is_announced(tmp_path, receiver, start_agent, sender, artifact):
    _verify_hash(tmp_path, receiver, start_agent, sender, artifact)


def test_flight_recorder_snapshot_lands_in_the_spool(tmp_path, receiver, start_agent, sender, artifact):
    record, agent = _verify_hash(tmp_path, receiver, start_agent, sender, artifact)
    files = [p for p in (agent.work / "spool").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert files, "no file in the spool"
    named = [f for f in files if f.name in record.record.body.string_value + json.dumps(
        {kv.key: record.attr(kv.key) for kv in record.record.attributes})]
    assert named, f"the action's record names none of {files}"
    assert all(f.stat().st_size > 0 for f in files)


def test_an_artifact_signed_by_trusted_reviewers_runs_under_the_default_policy(receiver, start_agent, artifact):
    """`dtc keygen` + `dtc sign` by two reviewers whose keys the agent
    trusts: a high-risk program needs exactly that under the default policy."""
    agent = start_agent(receiver.port, policy=None)
    install(agent.programs, "a.dtx", artifact("samples/05-work-queue/work_queue.dt"))
    status = agent.wait_status("the artifact loaded or refused", lambda s: s["programs"] or s["artifacts_refused"])
    assert status["artifacts_refused"] == [], status["artifacts_refused"]
    assert [p["state"] for p in status["programs"]] == ["running"]
