//! The agent's own work per record, in one process and one thread, with
//! no network and no engine: the wire path (`dtc_agent::wire`, what the
//! agent does) against decoding into prost's owned messages and encoding
//! them again (what it did before), measured in the same run on the same
//! requests, so the ratio holds on a busy machine where the end-to-end
//! bench's CPU times move by tens of percent.
//!
//! Three steps, each on the redaction sample's stream (banners, 512
//! records per request):
//! - pass-through: receive a request and build the export of it unchanged;
//! - ingress: the events the redaction sample reads (`LogWelcomeBanner`
//!   with its declared attributes), from the received request;
//! - egress: `secret` removed from every record, and the export built.
//!
//! `cargo bench -p dtc-agent-bench --bench wire`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dtc_agent::convert::{self, Names, Needs};
use dtc_agent::wire;
use dtc_engine::Edit;
use dtc_engine::event::otlp_proto;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 512;
const REQUESTS: usize = 200;

/// The best of five runs of `f` over every request, per record.
fn per_record(requests: &[Bytes], mut f: impl FnMut(&Bytes)) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for r in requests {
                f(r);
            }
            start.elapsed() / (BATCH * requests.len()) as u32
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let requests = dtc_agent_bench::banners(BATCH * REQUESTS, BATCH);
    let needs = Needs {
        events: Names::from_iter(["LogWelcomeBanner".to_string()]),
        keys: Names::from_iter(["secret", "time", "version"].map(String::from)),
        ..Needs::default()
    };
    let keys = needs.keys.clone();
    let edits = [Edit::RemoveAttr(Rc::from("secret"))];
    let none = BTreeMap::new();

    let prost_pass = per_record(&requests, |r| {
        let request = ExportLogsServiceRequest::decode(&r[..]).expect("valid");
        std::hint::black_box(request.encode_to_vec());
    });
    let wire_pass = per_record(&requests, |r| {
        let request = wire::Request::parse(r.clone()).expect("valid");
        let mut out = Vec::with_capacity(r.len());
        request.assemble(&[], &[], &mut Vec::new(), |b, _| {
            wire::put_field(1, &b, &mut out)
        });
        std::hint::black_box(out);
    });
    let prost_in = per_record(&requests, |r| {
        let request = ExportLogsServiceRequest::decode(&r[..]).expect("valid");
        for record in request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
        {
            let keep = |k: &str| keys.contains(k);
            std::hint::black_box(otlp_proto::decode_record_only(record, &none, &keep).ok());
        }
    });
    let wire_in = per_record(&requests, |r| {
        let request = wire::Request::parse(r.clone()).expect("valid");
        for k in 0..request.len() {
            std::hint::black_box(convert::event(request.record(k), &none, &needs).ok());
        }
    });
    let prost_out = per_record(&requests, |r| {
        let mut request = ExportLogsServiceRequest::decode(&r[..]).expect("valid");
        for record in request
            .resource_logs
            .iter_mut()
            .flat_map(|rl| &mut rl.scope_logs)
            .flat_map(|sl| &mut sl.log_records)
        {
            convert::apply_edits(record, &edits);
        }
        std::hint::black_box(request.encode_to_vec());
    });
    let wire_out = per_record(&requests, |r| {
        let request = wire::Request::parse(r.clone()).expect("valid");
        let edited: Vec<Option<Vec<u8>>> = (0..request.len())
            .map(|k| {
                convert::edit_record(request.record(k), &edits)
                    .ok()
                    .map(|e| e.0)
            })
            .collect();
        let mut out = Vec::with_capacity(r.len());
        request.assemble(&[], &edited, &mut Vec::new(), |b, _| {
            wire::put_field(1, &b, &mut out)
        });
        std::hint::black_box(out);
    });

    let ratio = |old: Duration, new: Duration| old.as_secs_f64() / new.as_secs_f64();
    println!(
        "per record, best of 5 runs over {REQUESTS} requests of {BATCH} banners (no network, no engine):"
    );
    println!("| step | prost messages | wire ranges | faster |");
    println!("|---|---:|---:|---:|");
    for (step, old, new) in [
        (
            "pass-through: receive, export unchanged",
            prost_pass,
            wire_pass,
        ),
        (
            "ingress: receive, the redaction's events",
            prost_in,
            wire_in,
        ),
        (
            "egress: receive, drop `secret`, export",
            prost_out,
            wire_out,
        ),
    ] {
        println!(
            "| {step} | {} ns | {} ns | {:.1}x |",
            old.as_nanos(),
            new.as_nanos(),
            ratio(old, new)
        );
    }
}
