"""Fixtures: a real LSP client (pytest-lsp) driving the `dtc lsp` binary over
stdio, with the capabilities recorded from VS Code or Neovim."""

import os
import pathlib

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = pathlib.Path(__file__).resolve().parents[3]
DTC = os.environ.get("DTC_BIN", str(REPO / "target" / "debug" / "dtc"))


def _session(spec):
    @pytest_lsp.fixture(config=ClientServerConfig(server_command=[DTC, "lsp"]))
    async def client(lsp_client: LanguageClient):
        @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register_capability(params: types.RegistrationParams):
            return None

        await lsp_client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities(spec),
                root_uri=(REPO / "samples").as_uri(),
            )
        )
        yield
        await lsp_client.shutdown_session()

    return client


client = _session("visual-studio-code")
nvim_client = _session("neovim@v0.11.0")
