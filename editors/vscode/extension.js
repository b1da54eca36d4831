// The VS Code client of the dt language server: starts `dtc lsp` over stdio
// for .dt files. Everything else (diagnostics, hover, completion, formatting,
// ...) is the server's; the grammar in syntaxes/ colours files before the
// server answers and where semantic tokens are off.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function start(context) {
  const config = vscode.workspace.getConfiguration("dtc");
  const command = config.get("path") || "dtc";
  const serverOptions = {
    command,
    args: ["lsp"],
    transport: TransportKind.stdio,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "dt" },
      { scheme: "untitled", language: "dt" },
    ],
    outputChannelName: "dtc",
  };
  client = new LanguageClient("dtc", "dt language server", serverOptions, clientOptions);
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `Cannot start the dt language server (\`${command} lsp\`): ${err.message}. ` +
        "Install dtc or set `dtc.path`."
    );
  });
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("dtc.restartServer", async () => {
      if (client) {
        await client.stop();
      }
      await start(context);
    })
  );
  return start(context);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
