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


def _ended_at_teardown(make, end):
    """A fixture body: yields a factory (`make(n, ...)` with `n` counting
    the products) and ends every product with `end` at teardown."""
    made = []

    def factory(*args, **kwargs):
        made.append(make(len(made), *args, **kwargs))
        return made[-1]
    yield factory
    for m in made:
        end(m)


@pytest.fixture
def start_agent(tmp_path, reviewers):
    """`start_agent(downstream_port, **options)`: a running `dtc-agent`
    that trusts the reviewers' keys."""
    trusted = [k.with_suffix(".pub") for k in reviewers]
    yield from _ended_at_teardown(
        lambda n, downstream, **kwargs: Agent(tmp_path / f"agent{n}", downstream, trusted, **kwargs), Agent.kill)


@pytest.fixture
def start_rotel(tmp_path):
    """`start_rotel(exporter_port)`: rotel forwarding to that port."""
    yield from _ended_at_teardown(lambda n, port: Rotel(tmp_path / f"rotel{n}", port), Rotel.kill)


@pytest.fixture
def sender():
    """`sender(protocol, endpoint)`: an application with the Python SDK."""
    yield from _ended_at_teardown(lambda n, protocol, endpoint, **kwargs: Sender(protocol, endpoint, **kwargs),
                                  Sender.close)


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
