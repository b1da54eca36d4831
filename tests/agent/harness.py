"""The pieces of the agent's end-to-end tests: sample events, the real
processes (`dtc-agent`, `dtc`, rotel), an OTLP receiver built on
opentelemetry-proto's gRPC service stubs, and the OpenTelemetry Python SDK
as the sender.

Everything listens on 127.0.0.1 on a port the system chose; every wait polls
a readiness signal (a ready file, a port that accepts, a counter) against a
deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import base64
import calendar
import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import grpc
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.proto.collector.logs.v1 import (
    logs_service_pb2,
    logs_service_pb2_grpc,
)
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0


def wait_for(what: str, done: Callable[[], object], limit: float = DEADLINE):
    """Polls `done` until it returns something truthy, which is returned;
    fails naming `what` after `limit` seconds."""
    start = time.monotonic()
    while True:
        value = done()
        if value:
            return value
        if time.monotonic() - start > limit:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    """A loopback port nothing listens on now (for rotel, which needs one
    named; the agent and the receiver bind port 0 themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ events

RESERVED = {
    "time", "observed_time", "severity", "severity_text", "body",
    "trace_id", "span_id", "resource", "attributes", "event",
}
SEVERITIES = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21}


@dataclass
class Event:
    name: str
    time: int  # nanoseconds since the epoch
    attributes: dict = field(default_factory=dict)
    severity: int = 0
    severity_text: str | None = None
    body: str | None = None

    def flat(self) -> dict:
        """The flat JSON line `dtc run` reads for this event."""
        out: dict = {"event": self.name, "time": format_time(self.time)}
        if self.severity:
            out["severity"] = self.severity
        if self.severity_text:
            out["severity_text"] = self.severity_text
        if self.body is not None:
            out["body"] = self.body
        nested = {}
        for k, v in self.attributes.items():
            if k in RESERVED:
                nested[k] = v
            else:
                out[k] = v
        if nested:
            out["attributes"] = nested
        return out


def parse_time(text: str) -> int:
    """RFC 3339 in UTC (`2026-11-22T10:00:01.35Z`) to nanoseconds."""
    assert text.endswith("Z"), text
    whole, _, fraction = text[:-1].partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def format_time(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def _otlp_json_value(v: dict):
    (kind, value), = v.items()
    if kind == "intValue":
        return int(value)
    if kind == "arrayValue":
        return [_otlp_json_value(x) for x in value.get("values", [])]
    if kind == "kvlistValue":
        return {kv["key"]: _otlp_json_value(kv["value"]) for kv in value.get("values", [])}
    return value


def sample_events(path: Path) -> list[Event]:
    """The events of a sample's `.events.jsonl`: flat lines and OTLP/JSON
    exports; comments and malformed lines (which are not OTLP) left out."""
    events = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "resourceLogs" in obj:
            for rl in obj["resourceLogs"]:
                for sl in rl.get("scopeLogs", []):
                    for r in sl.get("logRecords", []):
                        events.append(Event(
                            name=r["eventName"],
                            time=int(r["timeUnixNano"]),
                            attributes={kv["key"]: _otlp_json_value(kv["value"]) for kv in r.get("attributes", [])},
                            severity=r.get("severityNumber", 0),
                            severity_text=r.get("severityText"),
                        ))
            continue
        attributes = {k: v for k, v in obj.items() if k not in RESERVED}
        attributes.update(obj.get("attributes", {}))
        severity, severity_text = obj.get("severity", 0), obj.get("severity_text")
        if isinstance(severity, str):
            severity_text = severity_text or severity
            severity = SEVERITIES[severity.upper()]
        events.append(Event(obj["event"], parse_time(obj["time"]), attributes, severity, severity_text, obj.get("body")))
    return events


def banners(start: int, end: int) -> list[Event]:
    """Welcome banners numbered `start..end` (attribute `seq`), a
    millisecond apart, with the fields the chatty-event and secret samples
    read."""
    base = parse_time("2026-11-22T10:00:00Z")
    return [
        Event("LogWelcomeBanner", base + seq * 1_000_000,
              {"seq": seq, "secret": "hunter2", "version": "2.4.0", "time": "2026-11-22 10:00:00"})
        for seq in range(start, end)
    ]


def normalize(flat: dict) -> dict:
    """A flat event reduced to what the application sent and the programs
    shape: name, time (ns), severity, body, and the attributes in a map of
    their own (an attribute may be named `time`). The resource and the
    observed time (both set by the SDK) are left out."""
    out = {k: v for k, v in flat.items() if k in RESERVED and k not in ("resource", "observed_time", "attributes")}
    out["time"] = parse_time(out["time"])
    attrs = {k: v for k, v in flat.items() if k not in RESERVED}
    attrs.update(flat.get("attributes", {}))
    out["attributes"] = attrs
    return out


# ------------------------------------------------------------ processes

def dtc() -> str:
    return os.environ["DTC_BIN"]


def agent_bin() -> str:
    return os.environ["DTC_AGENT_BIN"]


def compile_sample(source: Path, out: Path, reviewers: list[Path]) -> Path:
    """`dtc compile` a program into `out` (a `.dtx`), then `dtc sign` it
    with each reviewer's private key: the agent's default policy wants one
    approval for limited risk and two for high risk."""
    subprocess.run([dtc(), "compile", str(source), "-o", str(out), "--color", "never"],
                   check=True, capture_output=True, text=True)
    for key in reviewers:
        subprocess.run([dtc(), "sign", "--key", str(key), "--reviewer", key.stem, str(out)],
                       check=True, capture_output=True, text=True)
    return out


def reviewer_keys(folder: Path) -> list[Path]:
    """Two reviewers' key pairs from `dtc keygen`; the private keys."""
    keys = []
    for name in ("alice", "bob"):
        subprocess.run([dtc(), "keygen", "-o", str(folder / name)], check=True, capture_output=True, text=True)
        keys.append(folder / f"{name}.key")
    return keys


def install(programs: Path, name: str, artifact: Path) -> None:
    """Puts an artifact in the agent's folder atomically (copied aside, then
    renamed), as a deployment tool would."""
    tmp = programs / f".{name}.part"
    tmp.write_bytes(artifact.read_bytes())
    tmp.rename(programs / name)


def dtc_run(program: Path, events: list[Event], work: Path) -> list[dict]:
    """The reference: `dtc run --format json --until-end` over the same events."""
    path = work / "reference.events.jsonl"
    path.write_text("".join(json.dumps(e.flat()) + "\n" for e in events))
    out = subprocess.run([dtc(), "run", str(program), "--events", str(path), "--format", "json", "--until-end"],
                         check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


class Process:
    """A child process that is always ended: `stop` (SIGTERM, then wait)
    or, at the latest, the fixture's finalizer (`kill`)."""

    def __init__(self, args: list[str], log: Path, cwd: Path | None = None):
        self.log = log
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), cwd=cwd)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, limit: float = DEADLINE) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.proc.args[0]} did not stop within {limit} s: {self.output()[-2000:]}")

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()


AGENT_CONFIG = """[listen]
grpc = "127.0.0.1:0"
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
ready_file = "ready.json"
max_request_size = "{max_request_size}"
[exporter]
endpoint = "http://127.0.0.1:{downstream}"
batch_interval = "20ms"
retry_initial = "20ms"
retry_max = "100ms"
queue_size = {queue_size}
[artifacts]
dir = "programs"
reload_interval = "50ms"
trusted_keys = {trusted_keys}
{policy}[spool]
dir = "spool"
[telemetry]
interval = "0s"
# Out of reach: a debug build on a busy machine must not trip a budget
# unless a test is about budgets.
[budgets]
cpu_per_event = "1s"
cpu_per_second = "1s"
emit_per_second = 100000000
"""


# The local policy of most tests: a test ring where any tier runs without
# reviewers' approvals (`Agent(policy=None)` keeps the agent's defaults,
# which want 1 approval for limited risk and 2 for high risk).
TEST_RING = """ring = "test"
max_tier = "high"
[approvals]
none = 0
limited = 0
high = 0
"""


class Agent(Process):
    """The real `dtc-agent`, started in `work` (its `programs/` and `spool/`
    there) and ready once its ready file names the bound ports."""

    def __init__(self, work: Path, downstream: int, trusted_keys: list[Path], queue_size: int = 65536,
                 max_request_size: str = "64KiB", policy: str | None = TEST_RING):
        self.work = work
        (work / "programs").mkdir(parents=True, exist_ok=True)
        if policy is not None:
            (work / "ring.toml").write_text(policy)
        config = work / "agent.toml"
        config.write_text(AGENT_CONFIG.format(downstream=downstream, queue_size=queue_size,
                                              max_request_size=max_request_size,
                                              trusted_keys=json.dumps([str(k) for k in trusted_keys]),
                                              policy='policy = "ring.toml"\n' if policy is not None else ""))
        ready = work / "ready.json"
        ready.unlink(missing_ok=True)
        super().__init__([agent_bin(), "run", "--config", str(config)], work / "agent.stderr", cwd=ROOT)

        def read():
            if not self.alive():
                raise AssertionError(f"the agent exited with {self.proc.returncode}: {self.output()}")
            return ready.exists() and json.loads(ready.read_text())
        addrs = wait_for("the agent's ready file", read)
        self.grpc, self.http, self.admin = addrs["grpc"], addrs["http"], addrs["admin"]

    @property
    def programs(self) -> Path:
        return self.work / "programs"

    def status(self) -> dict:
        out = subprocess.run([agent_bin(), "status", "--json", "--admin", self.admin],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def wait_status(self, what: str, done: Callable[[dict], bool]) -> dict:
        last = {}

        def check():
            last["status"] = self.status()
            return last["status"] if done(last["status"]) else None
        try:
            return wait_for(what, check)
        except AssertionError as e:
            raise AssertionError(f"{e}; the agent's status: {json.dumps(last.get('status'))}; "
                                 f"its stderr: {self.output()[-2000:]}") from None

    def stop(self, limit: float = DEADLINE) -> int:
        code = super().stop(limit)
        assert code == 0, f"the agent exited with {code}: {self.output()}"
        return code


class Rotel(Process):
    """rotel (a Rust OpenTelemetry collector) receiving OTLP on two free
    ports and forwarding everything over OTLP/gRPC to `exporter_port`."""

    def __init__(self, work: Path, exporter_port: int):
        work.mkdir(parents=True, exist_ok=True)
        self.grpc, self.http = free_port(), free_port()
        super().__init__([
            os.environ["ROTEL_BIN"], "start",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc}",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http}",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", f"http://127.0.0.1:{exporter_port}",
            "--batch-timeout", "50ms",
            "--pid-file", str(work / "rotel.pid"),
            "--log-file", str(work / "rotel.log"),
        ], work / "rotel.stderr")

        def ready():
            if not self.alive():
                raise AssertionError(f"rotel exited with {self.proc.returncode}: {self.output()}")
            return accepts(self.grpc) and accepts(self.http)
        wait_for("rotel's ports", ready)


# ----------------------------------------------------------- the receiver

def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def attributes(kvs) -> dict:
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclass
class Received:
    service: str
    scope: str
    record: object  # a LogRecord message

    def attr(self, key: str):
        for kv in self.record.attributes:
            if kv.key == key:
                return any_value(kv.value)
        return None

    def normalized(self) -> dict:
        """The record as `normalize` gives a flat event."""
        r = self.record
        out = {"event": r.event_name, "time": r.time_unix_nano}
        if r.severity_number:
            out["severity"] = r.severity_number
        if r.severity_text:
            out["severity_text"] = r.severity_text
        if r.HasField("body") and any_value(r.body) is not None:
            out["body"] = any_value(r.body)
        if r.trace_id:
            out["trace_id"] = r.trace_id.hex()
        if r.span_id:
            out["span_id"] = r.span_id.hex()
        out["attributes"] = attributes(r.attributes)
        return out


class Receiver:
    """A downstream OTLP/gRPC collector (logs and metrics) made from
    opentelemetry-proto's service stubs; it keeps what it receives. It can
    stop and serve again on the same port."""

    def __init__(self):
        self.lock = threading.Lock()
        self.logs: list = []      # ResourceLogs messages
        self.metrics: list = []   # ResourceMetrics messages
        self.port = 0
        self.server = None

    def start(self) -> "Receiver":
        receiver = self

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request, context):
                with receiver.lock:
                    receiver.logs.extend(request.resource_logs)
                return logs_service_pb2.ExportLogsServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request, context):
                with receiver.lock:
                    receiver.metrics.extend(request.resource_metrics)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        assert port, f"cannot listen on 127.0.0.1:{self.port}"
        self.port = port
        server.start()
        self.server = server
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None).wait()
            self.server = None

    def records(self) -> list[Received]:
        with self.lock:
            logs = list(self.logs)
        out = []
        for rl in logs:
            service = attributes(rl.resource.attributes).get("service.name", "")
            for sl in rl.scope_logs:
                out.extend(Received(service, sl.scope.name, r) for r in sl.log_records)
        return out

    def forwarded(self) -> list[Received]:
        """The application's records (not the agent's own)."""
        return [r for r in self.records() if r.service != "dtc-agent"]

    def agent_records(self) -> list[Received]:
        return [r for r in self.records() if r.service == "dtc-agent"]

    def metric_points(self) -> list[dict]:
        """The programs' metric points, as `dtc run` prints them (name,
        labels, value, start, end); the agent's own metrics left out."""
        with self.lock:
            metrics = list(self.metrics)
        out = []
        for rm in metrics:
            for sm in rm.scope_metrics:
                if sm.scope.name == "dtc-agent":
                    continue
                for m in sm.metrics:
                    out.extend(_points(m))
        return out


def _points(m) -> list[dict]:
    def common(p, value):
        return {"name": m.name, "labels": attributes(p.attributes), "value": value,
                "start": format_time(p.start_time_unix_nano), "end": format_time(p.time_unix_nano)}

    def number(p):
        if p.WhichOneof("value") == "as_int":
            return p.as_int
        return {"seconds": p.as_double} if m.unit == "s" else p.as_double

    kind = m.WhichOneof("data")
    if kind in ("sum", "gauge"):
        return [common(p, number(p)) for p in getattr(m, kind).data_points]
    if kind == "histogram":
        return [common(p, {"bounds": list(p.explicit_bounds), "counts": list(p.bucket_counts), "count": p.count,
                           "sum": p.sum, "min": p.min, "max": p.max})
                for p in m.histogram.data_points]
    raise AssertionError(f"metric {m.name}: unexpected kind {kind}")


# -------------------------------------------------------------- the SDK

class CountingExporter(LogRecordExporter):
    """Wraps an SDK exporter and counts the records of each export by its
    result: `force_flush` says True even when every export failed."""

    def __init__(self, inner):
        self.inner = inner
        self.ok = 0
        self.failed = 0

    def export(self, batch):
        result = self.inner.export(batch)
        if result == LogRecordExportResult.SUCCESS:
            self.ok += len(batch)
        else:
            self.failed += len(batch)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Sender:
    """An application instrumented with the OpenTelemetry Python SDK: a
    LoggerProvider whose batch processor exports over OTLP/gRPC or
    OTLP/HTTP (protobuf) to `endpoint` (host:port)."""

    def __init__(self, protocol: str, endpoint: str, service: str = "imagesvc", capacity: int = 100_000):
        if protocol == "grpc":
            inner = GrpcLogExporter(endpoint=f"http://{endpoint}", insecure=True, timeout=10)
        elif protocol == "http":
            inner = HttpLogExporter(endpoint=f"http://{endpoint}/v1/logs", timeout=10)
        else:
            raise ValueError(protocol)
        self.exporter = CountingExporter(inner)
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        # The queue holds every record of a test: past max_queue_size the
        # processor drops records silently.
        self.provider.add_log_record_processor(BatchLogRecordProcessor(
            self.exporter, max_queue_size=capacity, max_export_batch_size=64, schedule_delay_millis=50))
        self.logger = self.provider.get_logger("dtc-agent-e2e")
        self.emitted = 0

    def emit(self, events: list[Event]) -> None:
        for e in events:
            self.logger.emit(
                timestamp=e.time,
                event_name=e.name,
                attributes=e.attributes,
                severity_number=SeverityNumber(e.severity) if e.severity else None,
                severity_text=e.severity_text,
                body=e.body,
            )
        self.emitted += len(events)

    def flush(self) -> None:
        """Waits until everything emitted was exported, and checks that every
        export succeeded."""
        self.provider.force_flush(30_000)
        assert self.exporter.failed == 0, f"{self.exporter.failed} records failed to export"
        assert self.exporter.ok == self.emitted, f"{self.exporter.ok} of {self.emitted} records exported"

    def send(self, events: list[Event]) -> None:
        self.emit(events)
        self.flush()

    def close(self) -> None:
        self.provider.shutdown()
