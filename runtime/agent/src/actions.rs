//! The one place a program's triggered action is handed on.
//!
//! The actions themselves (flight recorder, verbose logs, CPU samples,
//! memory dumps, config copies, written to the spool folder under its disk
//! budget) belong to the `dtc-actions` crate, which is not part of the agent
//! yet. Until it is, every action the engine reports (fired or refused by
//! its `limit`) is recorded as a `dtc.action` log record that says so,
//! counted, and not run.

use std::path::PathBuf;

use dtc_engine::event::format_time;
use dtc_engine::value::{Value, format_duration};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{Value as Json, json};

use crate::convert::agent_log;

/// The runner of actions for every program.
#[derive(Debug)]
pub struct Actions {
    pub spool: PathBuf,
    pub max_disk: u64,
}

/// One action as the engine reported it.
#[derive(Debug)]
pub struct Request<'a> {
    pub program: &'a str,
    pub action: &'a str,
    pub args: &'a [(String, Value)],
    pub limit: u64,
    pub per_ns: i64,
    pub fired: bool,
    pub by: &'a str,
    pub time: i64,
}

impl Actions {
    /// Handles one action and returns the record that reports it.
    pub fn run(&mut self, request: &Request<'_>, now: u64) -> LogRecord {
        let args: serde_json::Map<String, Json> = request
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let (severity, outcome) = if request.fired {
            (
                13,
                "not run: this agent has no actions runner yet (dtc-actions); the trigger is recorded only",
            )
        } else {
            (9, "refused by its budget")
        };
        let message = format!(
            "{} triggered {}({}) at {}: {outcome}",
            request.by,
            request.action,
            Json::Object(args.clone()),
            format_time(request.time)
        );
        agent_log(
            "dtc.action",
            severity,
            &message,
            &[
                ("dtc.program", json!(request.program)),
                ("dtc.action.name", json!(request.action)),
                ("dtc.action.args", json!(Json::Object(args).to_string())),
                ("dtc.action.by", json!(request.by)),
                ("dtc.action.fired", json!(request.fired)),
                ("dtc.action.run", json!(false)),
                (
                    "dtc.action.budget",
                    json!(format!(
                        "{} per {}",
                        request.limit,
                        format_duration(request.per_ns)
                    )),
                ),
                ("dtc.spool.dir", json!(self.spool.display().to_string())),
            ],
            now,
        )
    }
}
