"""The dt language server under a real LSP client (pytest-lsp over stdio).

Each test starts `dtc lsp` as a process, initializes it with the capabilities
VS Code (or Neovim) sends, and talks to it only through the protocol.
"""

import asyncio
import pathlib

from lsprotocol import types
from pytest_lsp import LanguageClient

from conftest import REPO

SAMPLE = REPO / "samples" / "06-verify-hash" / "verify_hash.dt"
SCHEMA = REPO / "samples" / "schemas" / "imagesvc.dt"


def open_doc(client: LanguageClient, path: pathlib.Path, text: str | None = None, version: int = 1):
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id="dt",
                version=version,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri


async def diagnostics_for(client: LanguageClient, uri: str, timeout: float = 20.0):
    """Waits until the server has published diagnostics for `uri`."""

    async def wait():
        while uri not in client.diagnostics:
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        return client.diagnostics[uri]

    return await asyncio.wait_for(wait(), timeout)


def pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


def markdown(hover: types.Hover | None) -> str:
    assert hover is not None
    contents = hover.contents
    assert isinstance(contents, types.MarkupContent)
    return contents.value


def labels(result) -> list[str]:
    items = result.items if isinstance(result, types.CompletionList) else result
    return [i.label for i in items or []]


def line_of(text: str, needle: str) -> tuple[int, int]:
    """The 0-based line and column of the first `needle` in `text`."""
    for n, line in enumerate(text.splitlines()):
        if needle in line:
            return n, line.index(needle)
    raise AssertionError(f"{needle!r} not found")


async def test_sample_end_to_end(client: LanguageClient):
    """Open a sample, receive its diagnostics, hover, complete, go to
    definition, find references, outline, highlight and format it."""
    text = SAMPLE.read_text()
    uri = open_doc(client, SAMPLE)
    diags = await diagnostics_for(client, uri)
    assert [d for d in diags if d.severity == types.DiagnosticSeverity.Error] == []

    # Hover on an event name: its schema and docs, from the imported file.
    line, col = line_of(text, "redact LogEndFileHash")
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(line, col + 10))
    )
    value = markdown(hover)
    assert "event LogEndFileHash" in value
    assert "Logged when the service has hashed a file." in value

    # Hover on a field: type, annotation and its doc.
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(line, col + 25))
    )
    value = markdown(hover)
    assert "fileName: string @pii" in value
    assert "personal data" in value

    # Hover on a standard function: signature, doc, effect and risk vector.
    line, col = line_of(text, "file.sha256")
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(line, col + 6))
    )
    value = markdown(hover)
    assert "file.sha256(path: string) -> string" in value
    assert "reads files" in value
    assert "privacy low" in value and "performance medium" in value

    # Hover on an action.
    line, col = line_of(text, "flight_recorder.snapshot")
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(line, col + 3))
    )
    assert "diagnostic action" in markdown(hover)

    # Hover on a variable: its type.
    line, col = line_of(text, "if actual")
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(line, col + 4))
    )
    assert "string" in markdown(hover)

    # Completion after `event.` inside the handler: the event's fields and
    # the standard fields.
    line, col = line_of(text, "(event.fileName)")
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=doc(uri),
            position=pos(line, col + len("(event.")),
            context=types.CompletionContext(
                trigger_kind=types.CompletionTriggerKind.TriggerCharacter,
                trigger_character=".",
            ),
        )
    )
    names = labels(result)
    assert {"fileName", "hashValue", "time", "severity"} <= set(names), names

    # Completion after `trigger`: actions with their signatures.
    line, col = line_of(text, "trigger flight_recorder")
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc(uri), position=pos(line, col + len("trigger ")))
    )
    items = result.items if isinstance(result, types.CompletionList) else result
    by_label = {i.label: i for i in items}
    assert "memory_dump" in by_label and "cpu_sample" in by_label
    assert by_label["cpu_sample"].detail == "cpu_sample(for: duration)"

    # Go to definition: the event is declared in the imported schema file.
    line, col = line_of(text, "on LogEndFileHash")
    definition = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc(uri), position=pos(line, col + 5))
    )
    location = definition[0] if isinstance(definition, list) else definition
    assert location.uri == SCHEMA.as_uri()
    schema_line, _ = line_of(SCHEMA.read_text(), "event LogEndFileHash")
    assert location.range.start.line == schema_line

    # Find references of `mismatches`: its declaration and its update.
    line, col = line_of(text, "var mismatches")
    refs = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc(uri),
            position=pos(line, col + 6),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert len(refs) == 2

    # The outline.
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc(uri))
    )
    assert [s.name for s in symbols if s.name in ("ErrorInProductionHash", "verify_hash")] == [
        "ErrorInProductionHash",
        "verify_hash",
    ]

    # Semantic tokens: a non-empty, well-formed stream of 5-tuples.
    tokens = await client.text_document_semantic_tokens_full_async(
        types.SemanticTokensParams(text_document=doc(uri))
    )
    assert tokens.data and len(tokens.data) % 5 == 0

    # The sample is formatted already: no edits.
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc(uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert not edits


async def test_diagnostics_on_change_with_utf16_ranges(client: LanguageClient):
    path = REPO / "target" / "lsp-client-tests" / "edit.dt"
    text = 'event A {\n    x: int,\n}\n\nprocessor p {\n    on A {\n        emit log B { s: "😀😀", n: event.y }\n    }\n}\n'
    uri = open_doc(client, path, text)
    diags = await diagnostics_for(client, uri)
    assert len(diags) == 1
    d = diags[0]
    assert d.code == "E0202"
    assert d.source == "dtc"
    assert d.message.startswith("event `A` has no field `y`")
    # `event.y` starts after two emoji, each two UTF-16 code units.
    line = text.splitlines()[6]
    utf16_col = len(line[: line.index("event.y")].encode("utf-16-le")) // 2
    assert d.range.start == pos(6, utf16_col + len("event.")) or d.range.start == pos(6, utf16_col)

    # Fix it with an incremental change: the diagnostics go away.
    client.diagnostics.pop(uri)
    start = line.index("event.y") + len("event.")
    utf16_start = len(line[:start].encode("utf-16-le")) // 2
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=pos(6, utf16_start), end=pos(6, utf16_start + 1)),
                    text="x",
                )
            ],
        )
    )
    assert await diagnostics_for(client, uri) == []

    # A misspelt field gets a "did you mean" quick fix.
    client.diagnostics.pop(uri)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text.replace("event.y", "event.xx"))],
        )
    )
    diags = await diagnostics_for(client, uri)
    assert diags, "expected a diagnostic for `xx`"
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc(uri),
            range=diags[0].range,
            context=types.CodeActionContext(diagnostics=diags),
        )
    )
    titles = [a.title for a in actions or []]
    assert "Replace `xx` with `x`" in titles, (titles, diags)
    fix = next(a for a in actions if a.title == "Replace `xx` with `x`")
    (edit,) = fix.edit.changes[uri]
    assert edit.new_text == "x" and edit.range == diags[0].range


async def test_formatting_an_unformatted_file(client: LanguageClient):
    path = REPO / "target" / "lsp-client-tests" / "messy.dt"
    text = "// keep me\nevent A{x:int // and me\n}\nquery q = A|where x>1|emit log B"
    uri = open_doc(client, path, text)
    await diagnostics_for(client, uri)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc(uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert len(edits) == 1
    assert edits[0].new_text == (
        "// keep me\n"
        "event A {\n"
        "    x: int, // and me\n"
        "}\n"
        "\n"
        "query q =\n"
        "    A\n"
        "    | where x > 1\n"
        "    | emit log B\n"
    )


async def test_bad_input_never_crashes(client: LanguageClient):
    path = REPO / "target" / "lsp-client-tests" / "garbage.dt"
    garbage = "}}} event event ### \x00 \"unterminated\n@@@ 99999999999999999999999 ->-> /*"
    uri = open_doc(client, path, garbage)
    diags = await diagnostics_for(client, uri)
    assert diags, "garbage gets diagnostics"

    # A position far past the end of the file.
    far = pos(10_000, 10_000)
    assert await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=far)
    ) is None
    await client.text_document_completion_async(
        types.CompletionParams(text_document=doc(uri), position=far)
    )
    await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc(uri), position=far)
    )
    await client.text_document_semantic_tokens_full_async(
        types.SemanticTokensParams(text_document=doc(uri))
    )
    # Formatting a file with syntax errors: no edits.
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc(uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert not edits

    # Close it twice, then ask about it: empty answers, no crash.
    for _ in range(2):
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc(uri)))
    assert await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(0, 0))
    ) is None

    # A request for a file that was never opened.
    never = (REPO / "target" / "never-opened.dt").as_uri()
    assert await client.text_document_hover_async(
        types.HoverParams(text_document=doc(never), position=pos(0, 0))
    ) is None

    # The server is still alive and well.
    uri = open_doc(client, SAMPLE)
    await diagnostics_for(client, uri)


async def test_neovim_capabilities(nvim_client: LanguageClient):
    """The same server with the capabilities Neovim 0.11 sends."""
    text = SCHEMA.read_text()
    uri = open_doc(nvim_client, SCHEMA)
    assert await diagnostics_for(nvim_client, uri) == []
    line, col = line_of(text, "event ErrorHashing")
    hover = await nvim_client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=pos(line, col + 7))
    )
    assert "Logged when hashing a file fails." in markdown(hover)
