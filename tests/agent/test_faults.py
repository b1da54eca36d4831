"""Faults, with the real OpenTelemetry SDK as the application: the
downstream down and back (the SDK pushed back, the agent dropping nothing), malformed and oversized payloads, an artifact
replaced mid-stream, and the rip cord under load. Each test counts: what
was sent must be what arrived plus what the agent reports as suppressed or
dropped, with nothing twice."""

from __future__ import annotations

import gzip
import http.client
import re
import subprocess
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from harness import agent_bin, banners, install, wait_for

CHATTY = "samples/02-chatty-event/chatty_event.dt"
DROP_FIELD = "samples/03-secret/drop_field.dt"


def seqs(records) -> list[int]:
    return [r.attr("seq") for r in records]


def program_names(status) -> list[str]:
    """The running programs, by their source file's stem."""
    return [Path(p["name"]).stem for p in status["programs"]]


def running(agent, n: int = 1) -> dict:
    return agent.wait_status(f"{n} program(s) running",
                             lambda s: [p["state"] for p in s["programs"]] == ["running"] * n)


def test_downstream_down_pushes_back_on_the_sdk_and_drops_nothing(receiver, start_agent, sender, artifact):
    agent = start_agent(receiver.port, queue_size=100)
    install(agent.programs, "a.dtx", artifact(DROP_FIELD))
    running(agent)
    wait_for("the agent's `programs loaded` record",
             lambda: any(r.record.event_name == "dtc.programs.loaded" for r in receiver.agent_records()))
    receiver.stop()

    # The SDK exports in the background; once the agent's export queue is
    # full it answers UNAVAILABLE and the SDK backs off and retries.
    app = sender("grpc", agent.grpc)
    app.emit(banners(0, 300))
    status = agent.wait_status("the exporter failing and the SDK pushed back",
                               lambda s: s["counters"]["export_failures"] > 0
                               and s["requests_refused"]["export_queue_full"] > 0)
    assert status["queues"]["export_records"] <= 100, "the export queue stays bounded"
    assert status["last_export_error"], status

    receiver.start()  # the same port
    app.flush()
    wait_for("every record the agent accepted downstream",
             lambda: len(receiver.forwarded()) == agent.status()["counters"]["records_in"])
    status = agent.wait_status("the export queue empty", lambda s: s["queues"]["export_records"] == 0)
    assert sum(status["dropped"].values()) == 0, status
    got = sorted(seqs(receiver.forwarded()))
    assert len(set(got)) == len(got), "none twice"
    assert app.exporter.ok + app.exporter.failed == 300
    assert len(got) == app.exporter.ok, "what the SDK saw accepted arrived"

    app.send(banners(300, 310))
    wait_for("banners sent after the recovery", lambda: sorted(seqs(receiver.forwarded()))[-10:] == list(range(300, 310)))
    assert all(r.attr("secret") is None for r in receiver.forwarded())
    agent.stop()


def post(agent, body: bytes, content_type: str, encoding: str | None = None) -> tuple[int, str]:
    """A raw OTLP/HTTP request with Python's http.client."""
    host, port = agent.http.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    conn.request("POST", "/v1/logs", body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode(errors="replace")
    conn.close()
    return response.status, text


def request(records: list) -> logs_service_pb2.ExportLogsServiceRequest:
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[
        logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])])


def banner_record(seq: int, **extra) -> logs_pb2.LogRecord:
    event = banners(seq, seq + 1)[0]
    attrs = [common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(**(
        {"int_value": v} if isinstance(v, int) else {"string_value": v}))) for k, v in event.attributes.items()]
    return logs_pb2.LogRecord(time_unix_nano=event.time, event_name=event.name, attributes=attrs, **extra)


def test_malformed_and_oversized_payloads_are_refused_and_counted(receiver, start_agent, sender, artifact):
    agent = start_agent(receiver.port, max_request_size="64KiB")
    install(agent.programs, "a.dtx", artifact(DROP_FIELD))
    running(agent)
    protobuf = "application/x-protobuf"
    malformed = [
        (b"\x0a\xff\xff", protobuf, None),
        (b'{"resourceLogs": 3}', "application/json", None),
        (b"hello", "text/plain", None),
        (b"not gzip at all", protobuf, "gzip"),
        (request([banner_record(0)]).SerializeToString(), protobuf, "br"),
    ]
    for body, content_type, encoding in malformed:
        code, text = post(agent, body, content_type, encoding)
        assert code == 400, (body, code, text)
        assert text, "a refusal says why"
    huge = request([banner_record(0, body=common_pb2.AnyValue(string_value="x" * 100 * 1024))]).SerializeToString()
    code, text = post(agent, huge, protobuf)
    assert code == 413 and "max_request_size" in text, (code, text)
    bomb = gzip.compress(huge)
    assert len(bomb) < 64 * 1024
    assert post(agent, bomb, protobuf, "gzip")[0] == 413, "too large once decompressed"

    with grpc.insecure_channel(agent.grpc) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        try:
            stub.Export(logs_service_pb2.ExportLogsServiceRequest.FromString(huge), timeout=10)
            raise AssertionError("an oversized gRPC request was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
        raw = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                                  request_serializer=None, response_deserializer=None)
        try:
            raw(b"\x0a\xff\xff", timeout=10)
            raise AssertionError("a malformed gRPC request was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        # A well-formed request with one bad record: the record passes on
        # unchanged (it cannot be shaped) and is counted; its neighbour is shaped.
        stub.Export(request([banner_record(1, severity_number=99), banner_record(2)]), timeout=10)

    status = agent.wait_status("the bad record counted", lambda s: s["counters"]["records_malformed"] == 1)
    assert status["requests_refused"] == {"malformed": 6, "oversized": 3, "queue_full": 0,
                                         "export_queue_full": 0}, status
    wait_for("both records downstream", lambda: len(receiver.forwarded()) == 2)
    bad, good = receiver.forwarded()
    assert (bad.attr("seq"), bad.attr("secret"), bad.record.severity_number) == (1, "hunter2", 99)
    assert (good.attr("seq"), good.attr("secret")) == (2, None)

    # The SDK still gets through after all that.
    sender("http", agent.http).send(banners(3, 13))
    wait_for("the SDK's banners downstream", lambda: seqs(receiver.forwarded()) == list(range(1, 13)))
    agent.stop()


def test_artifact_replaced_mid_stream_loses_and_repeats_nothing(receiver, start_agent, sender, artifact):
    agent = start_agent(receiver.port)
    install(agent.programs, "a.dtx", artifact(CHATTY))
    assert program_names(running(agent)) == ["chatty_event"]
    replacement = artifact(DROP_FIELD)
    app = sender("grpc", agent.grpc)
    sent, replaced_at, after = 0, None, 0
    while after < 10:
        app.send(banners(sent, sent + 20))
        sent += 20
        if sent == 200:
            install(agent.programs, "a.dtx", replacement)
        if replaced_at is None and sent >= 200 and program_names(agent.status()) == ["drop_field"]:
            replaced_at = sent
        after += replaced_at is not None
        assert sent < 20_000, f"the replacement was never loaded: {agent.output()}"
    agent.wait_status("every banner through", lambda s: s["counters"]["records_in"] == sent)
    agent.stop()

    # The first program suppressed the banners and counted them; the second
    # lets them through without their secret. One cut, nothing lost or twice.
    # Export batches in flight at once may arrive in any order.
    forwarded = sorted(seqs(receiver.forwarded()))
    counted = sum(p["value"] for p in receiver.metric_points() if p["name"] == "app.welcome_banners")
    assert forwarded and counted, (forwarded, counted)
    first = forwarded[0]
    assert 200 <= first <= replaced_at, (first, replaced_at)
    assert forwarded == list(range(first, sent)), "the switch is one cut in the stream"
    assert counted == first, "every banner before the cut was counted, once"
    assert all(r.attr("secret") is None for r in receiver.forwarded())


def test_rip_cord_under_load_passes_events_through_unchanged(receiver, start_agent, sender, artifact, report):
    agent = start_agent(receiver.port)
    install(agent.programs, "a.dtx", artifact(CHATTY))
    install(agent.programs, "b.dtx", artifact(DROP_FIELD))
    running(agent, 2)
    app = sender("grpc", agent.grpc)
    state = {"sent": 0, "stop": False}

    def load():
        start = time.monotonic()
        while not state["stop"] and time.monotonic() - start < 30:
            app.send(banners(state["sent"], state["sent"] + 50))
            state["sent"] += 50

    loader = threading.Thread(target=load)
    loader.start()
    try:
        wait_for("load before the cord", lambda: state["sent"] >= 500)
        out = subprocess.run([agent_bin(), "ripcord", "--admin", agent.admin], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        m = re.fullmatch(r"rip cord pulled: 2 program\(s\) disabled in ([0-9.]+) µs \((\d+) ns\)\n", out.stdout)
        assert m, out.stdout
        pulled_at = state["sent"]
        wait_for("load after the cord", lambda: state["sent"] >= pulled_at + 500)
    finally:
        state["stop"] = True
        loader.join()
    sent = state["sent"]
    took_ns = int(m.group(2))
    report(f"rip cord under load (SDK over gRPC, 2 programs): disabled in {took_ns / 1000:.1f} µs")

    status = agent.wait_status("every banner through", lambda s: s["counters"]["records_in"] == sent)
    assert [p["state"] for p in status["programs"]] == ["ripcord", "ripcord"], status
    assert status["ripcord"]["took_ns"] == took_ns
    text = subprocess.run([agent_bin(), "status", "--admin", agent.admin], capture_output=True, text=True).stdout
    assert "rip cord pulled: 2 program(s) disabled in" in text, text
    agent.stop()

    # Before the cord, banners were suppressed; after it, each leaves exactly
    # as the application sent it, secret included. One cut, nothing twice.
    forwarded = receiver.forwarded()
    got = sorted(seqs(forwarded))  # export batches in flight at once may arrive in any order
    first = got[0]
    # The batch in flight when the cord was pulled may have been shaped just
    # before it and counted as sent by the loader only after it.
    assert 0 < first <= pulled_at + 50, (first, pulled_at)
    assert got == list(range(first, sent))
    sent_events = {e.attributes["seq"]: e for e in banners(first, sent)}
    for r in forwarded:
        e = sent_events[r.attr("seq")]
        assert r.normalized() == {"event": e.name, "time": e.time, "attributes": e.attributes}
    assert any(r.record.event_name == "dtc.ripcord" for r in receiver.agent_records())
    suppressed = sum(p["suppressed"] for p in status["programs"])
    assert suppressed == first, "every banner before the cut was suppressed by the first program, and counted"
