// Tokenizes every .dt file of the repository (samples, ui cases) with the
// TextMate grammar, through the same engine VS Code uses (vscode-textmate
// with oniguruma), and checks that each construct of the language gets its
// scope. Run by package.sh before packaging; `node check-grammar.js FILE`
// prints the scopes of one file.
"use strict";

const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
const onigLib = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));

const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async (scopeName) => {
    if (scopeName !== "source.dt") return null;
    const file = path.join(__dirname, "syntaxes", "dt.tmLanguage.json");
    return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
  },
});

function tokenize(grammar, text) {
  let state = vsctm.INITIAL;
  const out = [];
  for (const line of text.split("\n")) {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      out.push({ text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
    }
    state = r.ruleStack;
  }
  return out;
}

function dtFiles(dir, found = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) dtFiles(p, found);
    else if (e.name.endsWith(".dt")) found.push(p);
  }
  return found;
}

// One program with every construct of docs/language.md, and the scope each
// marked piece must get.
const EVERYTHING = `import "schemas/a.dt"
import { A, B } from "b.dt"
/// A doc comment.
event LogLaunch = "launch" from p {
    version: string @attr("v"),
    bytes: int? @pii,
}
probe p = uprobe(binary: "/bin/x", symbol: "f")
/* a block
   comment */
query q =
    LogLaunch
    | where version == "1" && bytes ?? 0 > 64KiB
    | extend big = bytes > 1_000
    | project version
    | summarize n = count(), p = percentile(bytes, 99) by version max 10 every 1m
    | sample 10%
    | limit 100 per 1s
    | emit metric "launches"
suppress LogLaunch.version when event.severity < 9
redact LogLaunch.bytes with hash
sample LogLaunch 0.5%
limit LogLaunch 10 per 1h
machine m per event.thread_id max 10_000 {
    state Idle
    state Busy { since: timestamp, n: int = 0 }
    var seen: map[string, int] max 100
    on LogLaunch in Idle when !(m is Busy) -> Busy {
        since = event.time
        trigger cpu_sample(for: 1.5s) limit 1 per 10m
    }
    after 60s in Busy -> Idle
}
processor pr {
    fn twice(x: int) -> int {
        return x * 2
    }
    on LogLaunch {
        let s = "a\\tb\\u{1F600}"
        for i in 0..10 {
            if i % 2 == 0 { continue_x(i) } else if true { } else { }
        }
        if let b = event.bytes { emit log Out { b: b, none_: none } }
        trigger flight_recorder.snapshot()
    }
}`;

const EXPECT = [
  ["import", "keyword.control.import.dt"],
  [" A doc comment.", "comment.line.documentation.dt"],
  ["LogLaunch", "entity.name.type.event.dt"],
  ["@", "punctuation.definition.annotation.dt"],
  ["pii", "storage.modifier.annotation.dt"],
  ["uprobe", "support.type.probe-kind.dt"],
  ["   comment ", "comment.block.dt"],
  ["q", "entity.name.function.query.dt"],
  ["where", "keyword.other.query-stage.dt"],
  ["summarize", "keyword.other.query-stage.dt"],
  ["percentile", "support.function.builtin.dt"],
  ["64KiB", "constant.numeric.size.dt"],
  ["1_000", "constant.numeric.integer.dt"],
  ["1m", "constant.numeric.duration.dt"],
  ["1.5s", "constant.numeric.duration.dt"],
  ["10%", "constant.numeric.percent.dt"],
  ["0.5%", "constant.numeric.percent.dt"],
  ["??", "keyword.operator.coalesce.dt"],
  ["redact", "keyword.other.shaping.dt"],
  ["hash", "support.constant.redaction.dt"],
  ["suppress", "keyword.other.shaping.dt"],
  ["m", "entity.name.type.machine.dt"],
  ["Idle", "entity.name.type.enum-member.state.dt"],
  ["timestamp", "support.type.primitive.dt"],
  ["map", "support.type.primitive.dt"],
  ["is", "keyword.control.dt"],
  ["Busy", "entity.name.type.enum-member.state.dt"],
  ["event", "variable.language.event.dt"],
  ["time", "variable.other.property.dt"],
  ["cpu_sample", "support.function.action.dt"],
  ["after", "keyword.control.dt"],
  ["pr", "entity.name.type.processor.dt"],
  ["twice", "entity.name.function.dt"],
  ["return", "keyword.control.dt"],
  ["\\t", "constant.character.escape.dt"],
  ["\\u{1F600}", "constant.character.escape.unicode.dt"],
  ["..", "keyword.operator.range.dt"],
  ["continue_x", "entity.name.function.call.dt"],
  ["true", "constant.language.dt"],
  ["Out", "entity.name.type.event.dt"],
  ["flight_recorder.snapshot", "support.function.action.dt"],
];

async function main() {
  const grammar = await registry.loadGrammar("source.dt");
  if (!grammar) throw new Error("grammar did not load");
  if (process.argv[2]) {
    for (const t of tokenize(grammar, fs.readFileSync(process.argv[2], "utf8"))) {
      console.log(JSON.stringify(t.text), t.scopes.slice(1).join(" "));
    }
    return;
  }
  const tokens = tokenize(grammar, EVERYTHING);
  let failed = 0;
  for (const [text, scope] of EXPECT) {
    if (!tokens.some((t) => t.text === text && t.scopes.includes(scope))) {
      const got = tokens.filter((t) => t.text === text).map((t) => t.scopes.slice(1).join(" "));
      console.error(`FAIL: ${JSON.stringify(text)} should be ${scope}; got ${JSON.stringify(got)}`);
      failed++;
    }
  }
  const root = path.join(__dirname, "..", "..");
  const files = [...dtFiles(path.join(root, "samples")), ...dtFiles(path.join(root, "tests", "ui"))];
  for (const f of files) tokenize(grammar, fs.readFileSync(f, "utf8"));
  console.log(`grammar: ${EXPECT.length - failed} passed, ${failed} failed; ${files.length} files tokenized`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
