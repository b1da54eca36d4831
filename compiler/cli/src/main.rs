//! `dtc`, the command-line front end of the Dynamic Telemetry compiler.
//!
//! This crate is the only one that knows about clap, terminals, standard
//! streams and exit codes; the checking itself is `dtc_driver`'s. Arguments
//! are parsed on the main thread, then the command runs on a thread with a
//! large stack, as a second line of defence behind the parser's nesting
//! bound against deeply nested input.
//!
//! Exit codes: 0 when every file is clean (warnings allowed unless
//! `--deny-warnings`), 1 when diagnostics fail the run, 2 for usage and I/O
//! errors (clap also exits with 2 on bad arguments), 101 if the compiler
//! itself crashed.

mod artifact;
mod check;
mod explain;
mod fmt;
mod risk;
mod run;
mod sign;
mod test;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  dtc check prog.dt                  check one program and the files it imports
  dtc check samples/                 check every .dt file under a directory
  dtc check --format json a.dt b.dt  diagnostics as one JSON array on stdout
  dtc check --policy production.toml prog.dt
                                     also check against a deployment ring's policy
  dtc risk prog.dt --svg risk.svg    the risk report, and a radar chart of it
  cat prog.dt | dtc check -          check standard input
  dtc fmt samples/                   format every .dt file under a directory, in place
  dtc fmt --check prog.dt            list the files that are not formatted (exit 1 if any)
  dtc compile prog.dt -o prog.dtx    a verified artifact for an agent
  dtc keygen -o alice                a reviewer key pair: alice.key and alice.pub
  dtc sign --key alice.key prog.dtx --reviewer \"Alice\"
                                     approve an artifact
  dtc explain E0203                  what a diagnostic code means
  dtc lsp                            the language server, on stdin and stdout";

const CHECK_EXAMPLES: &str = "\
Diagnostics and the summary line go to stderr; with --format json, stdout
holds exactly one JSON array of every diagnostic and nothing else.

Directories are searched recursively for *.dt files (hidden directories are
skipped, symbolic links to directories are not followed); the files are
checked in sorted order.

Exit status: 0 if no errors (warnings allowed unless --deny-warnings),
1 if there are errors, 2 on usage or I/O errors.

Examples:
  dtc check prog.dt
  dtc check samples/ --deny-warnings
  dtc check --format json --color never prog.dt > diagnostics.json
  cat prog.dt | dtc check -";

/// The Dynamic Telemetry compiler: checks `.dt` programs for type errors,
/// read-only safety and risk before they ship.
#[derive(Debug, Parser)]
#[command(name = "dtc", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check programs and report every problem found.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print a program's risk report: its vector over privacy, security,
    /// reliability, cost and performance, its tier, and what raised each.
    #[command(after_help = RISK_EXAMPLES)]
    Risk(RiskArgs),
    /// Format programs in the canonical style, keeping every comment.
    #[command(after_help = FMT_EXAMPLES)]
    Fmt(FmtArgs),
    /// Run the language server (LSP over stdin and stdout), for editors.
    #[command(after_help = LSP_EXAMPLES)]
    Lsp,
    /// Run a program over events: what egresses, the logs and metrics it
    /// derives, and the actions it triggers.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Print a realistic event stream of a sample scenario, as JSON lines.
    Generate {
        /// file-hashing, chatty-event, secret, work-queue or cache-probe.
        scenario: String,
        /// How many events.
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// The same seed gives the same stream.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Compile a program to a verified artifact (.dtx) for an agent.
    Compile(CompileArgs),
    /// Print what an artifact holds: header, metadata, risk, signatures and
    /// its IR.
    Inspect {
        /// The artifact.
        artifact: PathBuf,
        /// Mark signatures by this reviewer key (NAME.pub) as trusted; may
        /// be repeated.
        #[arg(long = "trusted-key", value_name = "KEY.pub")]
        trusted_keys: Vec<PathBuf>,
    },
    /// Write a new reviewer key pair: NAME.key (private, mode 600) and
    /// NAME.pub (public, for the agents' trusted keys).
    #[command(after_help = KEYGEN_EXAMPLES)]
    Keygen(KeygenArgs),
    /// Approve an artifact: add a reviewer's signature to it.
    #[command(after_help = SIGN_EXAMPLES)]
    Sign(SignArgs),
    /// Run programs' tests: each `P.dt` with `P.events.jsonl` beside it runs
    /// and its output is compared with `P.expected.jsonl`.
    #[command(after_help = TEST_EXAMPLES)]
    Test(TestArgs),
    /// Explain a diagnostic code (list every code when none is given).
    Explain {
        /// A code such as E0203 or W0001.
        code: Option<String>,
    },
}

const RUN_EXAMPLES: &str = "\
Events are JSON lines: flat objects ({\"event\": \"LogLaunch\", \"time\":
\"2026-11-22T10:00:00Z\", \"version\": \"1.2\"}) or OTLP/JSON log exports.
Windows run on event time; a window closes when an event past its end
arrives, or at the end of input with --until-end. Outputs go to stdout, the
summary to stderr (or, with --format json, as the last JSON line).

Examples:
  dtc run samples/05-work-queue/work_queue.dt --events samples/05-work-queue/work_queue.events.jsonl --until-end
  dtc run prog.dt --events events.jsonl --format json
  cat events.jsonl | dtc run prog.dt --until-end
  dtc run prog.dtx --trusted-key alice.pub --trusted-key bob.pub --policy production.toml
                                     run an artifact only if trusted reviewers approved it";

#[derive(Debug, Args)]
struct CompileArgs {
    /// The program.
    program: PathBuf,
    /// Where to write the artifact (default: the program's name with `.dtx`).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Check against this deployment policy, and take its defaults.
    #[arg(long, value_name = "POLICY")]
    policy: Option<PathBuf>,
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

const KEYGEN_EXAMPLES: &str = "\
The key files are text: a first line naming the kind (`dtc-ed25519-private-key
v1` or `dtc-ed25519-public-key v1`), then the 32 key bytes in hex. Existing
files are never overwritten.

Examples:
  dtc keygen -o alice
  dtc keygen -o keys/release-reviewer";

#[derive(Debug, Args)]
struct KeygenArgs {
    /// The key pair's name: writes NAME.key and NAME.pub.
    #[arg(short, long, value_name = "NAME")]
    output: PathBuf,
}

const SIGN_EXAMPLES: &str = "\
The artifact is checked like a runtime would before it is signed. The
signature covers its checksummed body and the reviewer's name; the body is
left as it was. Signing again with the same key adds nothing: one key is one
approval. How many approvals a risk tier needs is the deployment policy's
[approvals] table; `dtc run prog.dtx --trusted-key K.pub --policy P.toml`
checks them.

Examples:
  dtc sign --key alice.key prog.dtx --reviewer \"Alice Martin\"
  dtc sign --key bob.key prog.dtx -o approved/prog.dtx
  dtc inspect prog.dtx --trusted-key alice.pub";

#[derive(Debug, Args)]
struct SignArgs {
    /// The reviewer's private key (NAME.key from `dtc keygen`).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The artifact; signed in place unless -o is given.
    #[arg(value_name = "ARTIFACT")]
    artifact: PathBuf,
    /// Who approves: recorded in the signature and shown by `dtc inspect`.
    #[arg(long, value_name = "NAME")]
    reviewer: Option<String>,
    /// Write the signed artifact here instead of in place.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

const TEST_EXAMPLES: &str = "\
A test is two files beside a program P.dt: P.events.jsonl (the input) and
P.expected.jsonl (what `dtc run P.dt --events P.events.jsonl --format json
--until-end` prints). Write or refresh the expected file with --bless, then
review it.

Examples:
  dtc test samples/
  dtc test prog.dt --bless";

#[derive(Debug, Args)]
struct TestArgs {
    /// Programs or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Write the expected outputs instead of comparing with them.
    #[arg(long)]
    bless: bool,
    /// Which engine runs the programs.
    #[arg(long, value_enum, default_value_t = Engine::Interp)]
    engine: Engine,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The program.
    #[arg(value_name = "PROGRAM")]
    program: PathBuf,

    /// The events (JSON lines or OTLP/JSON); standard input when absent or `-`.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// How to print outputs.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,

    /// Close every open window at the end of input.
    #[arg(long)]
    until_end: bool,

    /// Which engine runs the program.
    #[arg(long, value_enum, default_value_t = Engine::Interp)]
    engine: Engine,

    /// With `--engine jit`: print what was compiled natively, through
    /// runtime helpers or left to the interpreter, and the compile time, to
    /// standard error before running.
    #[arg(long)]
    jit_report: bool,

    /// Seed of every sampling decision (`sample`, sampled stages).
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// How long after its end a window still takes late events (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_lateness)]
    lateness: Option<i64>,

    /// Defaults (budgets, bounds) from this deployment policy; with
    /// --trusted-key, also the approvals an artifact's tier needs.
    #[arg(long, value_name = "POLICY")]
    policy: Option<PathBuf>,

    /// Check an artifact's signatures: only signatures by these reviewer
    /// keys (NAME.pub) count as approvals, and the artifact runs only if
    /// it has as many as its tier needs. May be repeated.
    #[arg(long = "trusted-key", value_name = "KEY.pub")]
    trusted_keys: Vec<PathBuf>,

    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

fn parse_lateness(s: &str) -> Result<i64, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration: {e}"))
        .and_then(|d| i64::try_from(d.as_nanos()).map_err(|_| format!("`{s}` is too long")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// The reference interpreter of the IR.
    Interp,
    /// Native code compiled with cranelift when the program loads; the same
    /// outputs as the interpreter.
    Jit,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Files or directories to check; `-` reads a program from standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,

    /// When to colour human-readable output. `auto` colours when stderr is a
    /// terminal and NO_COLOR is not set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,

    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,

    /// Print diagnostics only, without the summary line.
    #[arg(short, long)]
    quiet: bool,

    /// Also check each program against this deployment policy (TOML).
    #[arg(long, value_name = "POLICY")]
    policy: Option<PathBuf>,
}

const RISK_EXAMPLES: &str = "\
The report goes to stdout; diagnostics, if the program does not check, go to
stderr and the exit status is 1. With --policy, what exceeds the policy is
reported as diagnostics, and the status is 1 too.

Examples:
  dtc risk samples/05-work-queue/work_queue.dt
  dtc risk prog.dt --format json
  dtc risk prog.dt --svg risk.svg
  dtc risk prog.dt --policy samples/policies/production.toml";

#[derive(Debug, Args)]
struct RiskArgs {
    /// The program; `-` reads it from standard input.
    #[arg(value_name = "PATH")]
    path: PathBuf,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,

    /// Also write a radar chart of the five dimensions to this SVG file.
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,

    /// Check the program against this deployment policy (TOML).
    #[arg(long, value_name = "POLICY")]
    policy: Option<PathBuf>,

    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

const FMT_EXAMPLES: &str = "\
Files are rewritten in place, and only when they change. A file with syntax
errors is not formatted: its errors are printed and the run fails.

Exit status: 0 if every file was formatted (or, with --check, already was),
1 if a file has syntax errors or, with --check, would change, 2 on I/O errors.

Examples:
  dtc fmt prog.dt
  dtc fmt samples/
  dtc fmt --check samples/           list the files that would change
  cat prog.dt | dtc fmt -            formatted text on stdout";

#[derive(Debug, Args)]
struct FmtArgs {
    /// Files or directories to format; `-` formats standard input to
    /// standard output.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Write nothing: list the files that would change, and fail if any.
    #[arg(long)]
    check: bool,

    /// When to colour the syntax errors of files that cannot be formatted.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

const LSP_EXAMPLES: &str = "\
The server speaks the Language Server Protocol over stdin and stdout; editors
start it (see editors/ for VS Code and Neovim). Logs go to stderr.

Example:
  dtc lsp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour, given what `auto` means for this output.
    fn enabled(self, auto: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => auto,
        }
    }
}

/// How a run ended; the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Clean = 0,
    Failed = 1,
    UsageOrIo = 2,
}

/// The process's standard streams, abstracted so commands can be tested
/// without spawning a process.
struct Io<'a> {
    stdin: &'a mut dyn Read,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
    /// Whether human-readable output (on stderr) goes to a terminal that
    /// wants colour: a terminal, and NO_COLOR not set.
    color_auto: bool,
}

fn run(cli: Cli) -> Outcome {
    // The server reads and writes the standard streams itself, on threads
    // of its own: they must not be locked here.
    if let Command::Lsp = cli.command {
        return match dtc_lsp::run_stdio() {
            Ok(()) => Outcome::Clean,
            Err(e) => {
                eprintln!("error: language server: {e}");
                Outcome::UsageOrIo
            }
        };
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let color_auto = std::io::stderr().is_terminal() && !no_color;
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        color_auto,
    };
    let outcome = match cli.command {
        Command::Check(args) => check::run(&args, &mut io),
        Command::Risk(args) => risk::run(&args, &mut io),
        Command::Run(args) => run::run(&args, &mut io),
        Command::Compile(args) => artifact::compile(&args, &mut io),
        Command::Generate {
            scenario,
            events,
            seed,
        } => match dtc_engine::generate::scenario_for(&scenario) {
            Some(s) => {
                for line in dtc_engine::generate::Generator::new(s, seed).take(events) {
                    if writeln!(io.stdout, "{line}").is_err() {
                        break;
                    }
                }
                Outcome::Clean
            }
            None => {
                let _ = writeln!(
                    io.stderr,
                    "error: unknown scenario `{scenario}`: use file-hashing, chatty-event, secret, work-queue or cache-probe"
                );
                Outcome::UsageOrIo
            }
        },
        Command::Inspect {
            artifact,
            trusted_keys,
        } => artifact::inspect(&artifact, &trusted_keys, &mut io),
        Command::Keygen(args) => sign::keygen(&args, &mut io),
        Command::Sign(args) => sign::sign(&args, &mut io),
        Command::Test(args) => test::run(&args, &mut io),
        Command::Fmt(args) => fmt::run(&args, &mut io),
        Command::Lsp => Outcome::UsageOrIo, // handled above
        Command::Explain { code } => explain::run(code.as_deref(), &mut io),
    };
    // A closed pipe is not worth a second error message.
    let _ = io.stdout.flush();
    let _ = io.stderr.flush();
    outcome
}

/// The checker's stack. The parser bounds nesting, so this is a margin for
/// passes added later rather than something current input needs.
const STACK_SIZE: usize = 64 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let worker = std::thread::Builder::new()
        .name("dtc".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run(cli));
    match worker.map(|w| w.join()) {
        Ok(Ok(outcome)) => ExitCode::from(outcome as u8),
        Ok(Err(_)) => {
            eprintln!(
                "error: internal compiler error: dtc crashed; please report this with the input that caused it"
            );
            ExitCode::from(101)
        }
        Err(e) => {
            eprintln!("error: cannot start the checker thread: {e}");
            ExitCode::from(Outcome::UsageOrIo as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
