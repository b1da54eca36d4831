"""Fixtures of the agent's end-to-end tests: every process and server they
start is ended by a finalizer, whatever the test's outcome."""

from __future__ import annotations

import os

import pytest

from harness import ROOT, Agent, Receiver, Rotel, Sender, compile_sample, reviewer_keys

_REPORT: list[str] = []


def pytest_configure(config):
    missing = [v for v in ("DTC_BIN", "DTC_AGENT_BIN", "ROTEL_BIN") if not os.environ.get(v)]
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)} not set: run these tests with tests/agent/run-otel-tests.sh, "
            "which builds the binaries and installs the pinned clients")


def pytest_terminal_summary(terminalreporter):
    """Measurements the tests made (e.g. how long the rip cord took), shown
    after the results."""
    if _REPORT:
        terminalreporter.section("measured")
        for line in _REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def report():
    return _REPORT.append


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def reviewers(tmp_path_factory):
    """The private keys of two reviewers; agents trust their public keys."""
    return reviewer_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def start_agent(tmp_path, reviewers):
    started = []

    def start(downstream: int, **kwargs) -> Agent:
        trusted = [k.with_suffix(".pub") for k in reviewers]
        agent = Agent(tmp_path / f"agent{len(started)}", downstream, trusted, **kwargs)
        started.append(agent)
        return agent
    yield start
    for a in started:
        a.kill()


@pytest.fixture
def start_rotel(tmp_path):
    started = []

    def start(exporter_port: int) -> Rotel:
        r = Rotel(tmp_path / f"rotel{len(started)}", exporter_port)
        started.append(r)
        return r
    yield start
    for r in started:
        r.kill()


@pytest.fixture
def sender():
    made = []

    def make(protocol: str, endpoint: str, **kwargs) -> Sender:
        s = Sender(protocol, endpoint, **kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


@pytest.fixture
def artifact(tmp_path, reviewers):
    """`dtc compile` (and `dtc sign`) a program given relative to the
    repository root."""
    out = tmp_path / "artifacts"
    out.mkdir()

    def make(source: str):
        path = ROOT / source
        return compile_sample(path, out / (path.stem + ".dtx"), reviewers)
    return make
