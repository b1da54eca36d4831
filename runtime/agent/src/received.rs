//! A received log record as the engine reads it in place
//! (`dtc_engine::event::ReadInPlace`, `Engine::push_read`): its standard
//! fields and the attributes the program's layouts declare, borrowed from
//! the request's bytes by what [`wire::Request::parse`] noted as it
//! checked the record, without building the record's `InputEvent`.
//!
//! Why: building the event (a map of the attributes the programs read, a
//! `String` per key and text value) was most of the agent's work per
//! record before the engine ran (docs/performance.md, Agent). The event is
//! still built, by [`convert::received_event`] (the one mapping), when
//! something reads what the record does not hold: a handler reading an
//! attribute its layout does not declare, or the egress's reader.
//!
//! What [`Received::read`] gives must be exactly what that event holds;
//! where a record is in a form other than the plain one (a repeated body,
//! an attribute written in another form, a value of a kind a slot does not
//! hold), it declines and the engine takes the event. A test holds the two
//! to the same answer over generated and mutated payloads.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use dtc_engine::event::{
    Asked, EVENT_NAME_ATTRIBUTE, InputEvent, KeyIndex, ReadInPlace, SERVICE_NAME_ATTRIBUTE, Scalar,
    Standard, THREAD_ID_ATTRIBUTE, otlp_proto,
};
use dtc_engine::runtime::{RemovalBits, Removals};
use prost::encoding::{WireType, decode_key, decode_varint};
use serde_json::Value as Json;

use crate::convert::{self, Needs};
use crate::wire::{self, AttributeSpan, BodyAt};

/// Record `k` of a received request, with the part of its resource the
/// programs read and what they read of records ([`Needs`]), all shared
/// with the request's other records.
#[derive(Clone)]
pub struct Received {
    request: Rc<wire::Request>,
    k: usize,
    resource: Rc<BTreeMap<String, Json>>,
    needs: Rc<Needs>,
    /// The record's time and observed time as its event holds them.
    times: (i64, i64),
    /// Its trace and span IDs as hex, made when first read. Boxed: a
    /// `Received` is moved a few times per record, and most records'
    /// IDs are never read.
    ids: OnceCell<Box<[String; 2]>>,
}

impl Received {
    /// Record `k` of `request`, or why it is no event (what
    /// [`convert::received_event`] would say): the only record
    /// [`ReadInPlace::event`] is asked of, which then cannot fail.
    pub fn new(
        request: &Rc<wire::Request>,
        k: usize,
        resource: &Rc<BTreeMap<String, Json>>,
        needs: &Rc<Needs>,
    ) -> Result<Received, String> {
        let times = InPlace::new(request, k).times(resource, needs)?;
        Ok(Received::with_times(request, k, resource, needs, times))
    }

    /// [`Received::new`] of a record whose times [`InPlace::times`] read.
    pub fn with_times(
        request: &Rc<wire::Request>,
        k: usize,
        resource: &Rc<BTreeMap<String, Json>>,
        needs: &Rc<Needs>,
        times: (i64, i64),
    ) -> Received {
        Received {
            request: request.clone(),
            k,
            resource: resource.clone(),
            needs: needs.clone(),
            times,
            ids: OnceCell::new(),
        }
    }

    fn in_place(&self) -> InPlace<'_> {
        InPlace::new(&self.request, self.k)
    }

    /// [`InPlace::name`].
    pub fn name(&self) -> Option<Option<&[u8]>> {
        self.in_place().name()
    }

    /// Its time, as its event holds it.
    pub fn time(&self) -> i64 {
        self.times.0
    }

    /// [`InPlace::find`].
    pub fn find<'a>(
        &'a self,
        keys: &KeyIndex,
        texts: &[bool],
        values: &mut [Option<Scalar<'a>>],
        found: impl FnMut(usize, usize),
    ) -> Option<()> {
        self.in_place().find(keys, texts, values, found)
    }

    /// Its severity number, as its event holds it.
    pub fn severity(&self) -> i64 {
        match self.request.noted(self.k) {
            Some((n, _)) => i64::from(n.severity_number),
            None => self.event().severity,
        }
    }
}

/// What [`InPlace::removed_by_bits`] could say of a record.
enum Bits {
    /// Its fields make its layout's row.
    Makes,
    /// They do not, or it is not read in place.
    Not,
    /// Its values are to be read.
    Read,
}

/// Record `k` of a received request, borrowed: what a program of
/// redactions alone reads of it (`Engine::redactions_found`) before a
/// [`Received`] is made of it, which the pipeline then makes only for a
/// record the engine declines (its `Rc`s and their drops cost about a
/// tenth of such a program's work per record).
#[derive(Clone, Copy)]
pub struct InPlace<'r> {
    request: &'r wire::Request,
    k: usize,
}

impl<'r> InPlace<'r> {
    pub fn new(request: &'r wire::Request, k: usize) -> InPlace<'r> {
        InPlace { request, k }
    }

    /// Its time and observed time as its event holds them, or why it is
    /// no event (as [`Received::new`]).
    pub fn times(
        &self,
        resource: &BTreeMap<String, Json>,
        needs: &Needs,
    ) -> Result<(i64, i64), String> {
        match self.request.noted(self.k) {
            // What `parse` checked leaves only these to fail.
            Some((n, _)) => otlp_proto::checked_times(
                n.time_unix_nano,
                n.observed_time_unix_nano,
                n.severity_number,
            ),
            None => {
                let e = convert::received_event(
                    self.request,
                    self.k,
                    resource,
                    needs,
                    &mut Vec::new(),
                )?;
                Ok((e.time, e.observed_time))
            }
        }
    }

    /// Its name as [`ReadInPlace::read`] reads it, as bytes (`Some(None)`:
    /// it has none), for `Engine::edits_found`; `None` where `read`
    /// declines the record.
    pub fn name(&self) -> Option<Option<&'r [u8]>> {
        let data: &[u8] = &self.request.bytes;
        let (n, spans) = self.request.noted(self.k)?;
        let name = match n.event_name.get(data) {
            [] => named_by_attribute(data, spans)?.as_bytes(),
            name => name,
        };
        Some((!name.is_empty()).then_some(name))
    }

    /// Whether it is an event of `by`'s layout whose declared fields all
    /// make its row ([`Removals::makes_row`], read as [`InPlace::find`]
    /// reads them), with into `removed` the index of each attribute (among
    /// the record's, in order) of a field `by` removes; `None` where not,
    /// or where it declines.
    pub fn removed(&self, by: &Removals, removed: &mut Vec<u32>) -> Option<()> {
        if let Some(bits) = &by.bits {
            let from = removed.len();
            match self.removed_by_bits(&by.keys, bits, removed) {
                Bits::Makes => return Some(()),
                Bits::Not => return None,
                Bits::Read => removed.truncate(from),
            }
        }
        self.removed_by_values(by, removed)
    }

    /// [`InPlace::removed`] decided by `bits` where they suffice: every
    /// field found is a short string each time (a string of a field a
    /// string makes) and every field absent is optional, or some field
    /// that may not be absent is. Any other value (null, a number, a
    /// string whose text is read) leaves it to [`InPlace::removed_by_values`].
    #[inline]
    fn removed_by_bits(&self, keys: &KeyIndex, bits: &RemovalBits, removed: &mut Vec<u32>) -> Bits {
        let data: &[u8] = &self.request.bytes;
        let Some((_, spans)) = self.request.noted(self.k) else {
            return Bits::Not;
        };
        let lengths = keys.lengths();
        // Fields found, and fields found with a value that is not a short
        // string at least once (a repeated key's every value is read).
        let (mut seen, mut odd) = (0u64, 0u64);
        for (a, span) in spans.iter().enumerate() {
            let AttributeSpan::Plain { key, value } = *span else {
                // As `find`: read by decoding.
                return Bits::Not;
            };
            let len = key.end.wrapping_sub(key.start) as usize;
            if lengths & 1 << len.min(63) == 0 {
                continue;
            }
            let Some(j) = keys.position(key.get(data)) else {
                continue;
            };
            let bit = 1u64 << (j & 63);
            seen |= bit;
            if bits.removed & bit != 0 {
                removed.push(a as u32);
            }
            let short = value.is_some_and(|v| {
                matches!(v.get(data), [0x0a, n, text @ ..] if *n < 0x80 && usize::from(*n) == text.len())
            });
            if !short {
                odd |= bit;
            }
        }
        if bits.all & !seen & !bits.optional != 0 {
            // `field` of a required field absent: no row, whatever the rest.
            return Bits::Not;
        }
        if seen & (odd | !bits.strings | bits.texts) != 0 {
            return Bits::Read;
        }
        Bits::Makes
    }

    /// [`InPlace::removed`] by reading the values of the fields found.
    fn removed_by_values(&self, by: &Removals, removed: &mut Vec<u32>) -> Option<()> {
        // On the stack (a layout of more fields is left to the engine).
        let mut values: [Option<Scalar<'r>>; 8] = [None; 8];
        let values = values.get_mut(..by.keys.keys().len())?;
        self.find(&by.keys, &by.texts, values, |j, a| {
            if by.removed.get(j) == Some(&true) {
                removed.push(a as u32);
            }
        })?;
        by.makes_row(values).then_some(())
    }

    /// Its attributes of `keys` into `values` (by index; `None`: absent),
    /// their texts where `texts` asks (as [`dtc_engine::event::Asked`]),
    /// as [`ReadInPlace::read`] reads them; `None` where it declines.
    /// `found(j, a)` is told each attribute of key `j`, by its index `a`
    /// among the record's, in order (a key may be repeated: the last is
    /// the one the event keeps).
    pub fn find(
        &self,
        keys: &KeyIndex,
        texts: &[bool],
        values: &mut [Option<Scalar<'r>>],
        mut found: impl FnMut(usize, usize),
    ) -> Option<()> {
        let data: &'r [u8] = &self.request.bytes;
        let (_, spans) = self.request.noted(self.k)?;
        // Most attributes are of no key asked: one of no asked key's
        // length is passed over without comparing it.
        let lengths = keys.lengths();
        for (a, span) in spans.iter().enumerate() {
            let AttributeSpan::Plain { key, value } = *span else {
                return None;
            };
            let len = key.end.wrapping_sub(key.start) as usize;
            if lengths & 1 << len.min(63) == 0 {
                continue;
            }
            let Some(j) = keys.position(key.get(data)) else {
                continue;
            };
            let text = texts.get(j).copied().unwrap_or(true);
            *values.get_mut(j)? =
                Some(value.map_or(Some(Scalar::Null), |v| scalar(v.get(data), text))?);
            found(j, a);
        }
        Some(())
    }
}

impl ReadInPlace for Received {
    fn read<'a>(
        &'a self,
        asked: &Asked<'_>,
        values: &mut [Option<Scalar<'a>>],
    ) -> Option<Standard<'a>> {
        let data: &'a [u8] = &self.request.bytes;
        let (n, spans) = self.request.noted(self.k)?;
        let needs = &*self.needs;
        let body = match n.body {
            _ if !asked.standard => None,
            BodyAt::Absent => None,
            BodyAt::Once(at) => match scalar(at.get(data), true)? {
                Scalar::Null => None,
                Scalar::Str(s) => Some(s),
                // The event holds other bodies as JSON text.
                _ => return None,
            },
            BodyAt::Repeated => return None,
        };
        // As `convert::event_of` names the event and decides whether a
        // program receives it (else it keeps no attributes nor resource).
        let event_name = n.event_name.get(data);
        let (name, received) = if event_name.is_empty() {
            let s = named_by_attribute(data, spans)?;
            (
                (!s.is_empty()).then_some(s),
                needs.everything || needs.events.contains(s),
            )
        } else {
            match needs.event_named(event_name) {
                Some(s) => (Some(s.as_str()), true),
                None => (
                    Some(std::str::from_utf8(event_name).ok()?),
                    needs.everything,
                ),
            }
        };
        let mut thread_id = None;
        // Asked of the set only when a record has a `thread.id`: most
        // have none, and hashing the key cost as much as reading a value.
        let thread_kept = || {
            asked.standard
                && received
                && (needs.everything
                    || needs.all_attributes
                    || needs.keys.contains(THREAD_ID_ATTRIBUTE))
        };
        for a in spans {
            let AttributeSpan::Plain { key, value } = *a else {
                return None;
            };
            let key = key.get(data);
            // An event no program receives keeps only its name.
            if !received && key != EVENT_NAME_ATTRIBUTE.as_bytes() {
                continue;
            }
            let value = |text| value.map_or(Some(Scalar::Null), |v| scalar(v.get(data), text));
            if key == THREAD_ID_ATTRIBUTE.as_bytes() && thread_kept() {
                thread_id = match value(true)? {
                    Scalar::Int(i) => Some(i),
                    Scalar::Str(s) => s.parse().ok(),
                    _ => None,
                };
            }
            // The last of a repeated key is the one the event keeps.
            for (i, (w, v)) in asked.keys.iter().zip(values.iter_mut()).enumerate() {
                if w.as_bytes() == key {
                    *v = Some(value(asked.text(i))?);
                }
            }
        }
        let (time, observed_time) = self.times;
        let severity = i64::from(n.severity_number);
        if !asked.standard {
            return Some(Standard {
                name,
                time,
                observed_time,
                severity,
                ..Standard::default()
            });
        }
        let text = |at: wire::At| {
            let bytes = at.get(data);
            (!bytes.is_empty()).then(|| std::str::from_utf8(bytes).ok())
        };
        let ids = |at: wire::At, i: usize| {
            (!at.get(data).is_empty()).then(|| {
                self.ids.get_or_init(|| {
                    Box::new([n.trace_id, n.span_id].map(|at| otlp_proto::hex(at.get(data))))
                })[i]
                    .as_str()
            })
        };
        let service = match self.resource.get(SERVICE_NAME_ATTRIBUTE) {
            Some(Json::String(s)) if received => Some(s.as_str()),
            _ => None,
        };
        Some(Standard {
            name,
            time,
            observed_time,
            severity,
            severity_text: text(n.severity_text).map_or(Some(None), |t| t.map(Some))?,
            body,
            trace_id: ids(n.trace_id, 0),
            span_id: ids(n.span_id, 1),
            thread_id,
            service,
        })
    }

    fn event(&self) -> InputEvent {
        // `Received::new` decoded or checked the record: this cannot fail.
        convert::received_event(
            &self.request,
            self.k,
            &self.resource,
            &self.needs,
            &mut Vec::new(),
        )
        .unwrap_or_default()
    }
}

/// A record's name when its `event_name` field is empty: the text of
/// its last `event.name` attribute, empty where it has none or that is
/// not a string (as `convert::event_of` names the event); `None` where an
/// attribute is in a form read by decoding, whose key is not at hand.
fn named_by_attribute<'a>(data: &'a [u8], spans: &[AttributeSpan]) -> Option<&'a str> {
    let attribute = spans.iter().rev().find_map(|a| match *a {
        AttributeSpan::Plain { key, value } => {
            (key.get(data) == EVENT_NAME_ATTRIBUTE.as_bytes()).then_some(Some(value))
        }
        AttributeSpan::Other(_) => Some(None),
    });
    match attribute {
        Some(None) => None,
        Some(Some(value)) => {
            match value.map_or(Some(Scalar::Null), |v| scalar(v.get(data), true))? {
                Scalar::Str(s) => Some(s),
                _ => Some(""),
            }
        }
        None => Some(""),
    }
}

/// An `AnyValue`'s body as the engine's scalar: what
/// `otlp_proto::owned_value` and then `Scalar::of` make of it. `None` for
/// any other form than one scalar field (bytes, arrays, kvlists, repeated
/// fields, which prost merges): those are read by decoding. A string's
/// text only where `text` asks for it (else the empty one): lending it as
/// a `&str` means checking it as UTF-8 again (`wire::Request::parse` did,
/// but only `unsafe` could say so), which costs more than the rest.
#[inline(always)]
fn scalar(body: &[u8], text: bool) -> Option<Scalar<'_>> {
    // Most values are a short string: one field 1, its length in one byte.
    // Inlined where it is read: the call cost a found field about a third
    // of its finding.
    if let [0x0a, len, bytes @ ..] = body
        && *len < 0x80
        && usize::from(*len) == bytes.len()
    {
        return text_scalar(bytes, text);
    }
    scalar_of_any(body, text)
}

/// A string value's scalar: its text where `text` asks (checked as UTF-8),
/// else the empty one.
#[inline(always)]
fn text_scalar(bytes: &[u8], text: bool) -> Option<Scalar<'_>> {
    match text {
        true => std::str::from_utf8(bytes).ok().map(Scalar::Str),
        false => Some(Scalar::Str("")),
    }
}

/// [`scalar`] of any other form.
#[inline(never)]
fn scalar_of_any(body: &[u8], text: bool) -> Option<Scalar<'_>> {
    let str = |bytes| text_scalar(bytes, text);
    if body.is_empty() {
        return Some(Scalar::Null);
    }
    let mut buf = body;
    let (tag, wire) = decode_key(&mut buf).ok()?;
    let value = match (tag, wire) {
        (1, WireType::LengthDelimited) => {
            let len = decode_varint(&mut buf).ok()?;
            if len != buf.len() as u64 {
                return None;
            }
            let s = str(buf)?;
            buf = &[];
            s
        }
        (2, WireType::Varint) => Scalar::Bool(decode_varint(&mut buf).ok()? != 0),
        (3, WireType::Varint) => Scalar::Int(decode_varint(&mut buf).ok()? as i64),
        (4, WireType::SixtyFourBit) => {
            let (bits, rest) = buf.split_first_chunk::<8>()?;
            buf = rest;
            let f = f64::from_le_bytes(*bits);
            // JSON has no NaN nor infinities: the event holds them as text.
            if f.is_nan() {
                Scalar::Str("NaN")
            } else if f.is_infinite() {
                Scalar::Str(if f > 0.0 { "Infinity" } else { "-Infinity" })
            } else {
                Scalar::Float(f)
            }
        }
        _ => return None,
    };
    buf.is_empty().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{Rng, all_needs, parsed_requests};
    use bytes::Bytes;
    use prost::Message;

    /// For every record of generated and mutated payloads that parse, in
    /// every way the programs may read it: a record is refused exactly
    /// when its event cannot be made, with the same reason; its event is
    /// the one ingress makes; and what it reads in place, when it does, is
    /// what that event holds.
    #[test]
    fn records_read_in_place_are_their_events() {
        let resources = [
            BTreeMap::new(),
            BTreeMap::from([("service.name".to_string(), Json::from("svc"))]),
            BTreeMap::from([("service.name".to_string(), Json::from(7))]),
        ];
        let (mut records, mut refused, mut read, mut narrowed) = (0, 0, 0, 0);
        let mut found_by_keys = 0;
        for parsed in parsed_requests(Rng(11 << 32), 3000) {
            let request = Rc::new(parsed);
            for k in 0..request.len() {
                let resource = Rc::new(resources[k % resources.len()].clone());
                for needs in all_needs() {
                    let needs = Rc::new(needs);
                    records += 1;
                    let expected =
                        convert::received_event(&request, k, &resource, &needs, &mut Vec::new());
                    let received = Received::new(&request, k, &resource, &needs);
                    let (received, expected) = match (received, expected) {
                        (Ok(r), Ok(e)) => (r, e),
                        (Err(a), Err(b)) => {
                            assert_eq!(a, b);
                            refused += 1;
                            continue;
                        }
                        (r, e) => panic!("refused {:?}, decoded {e:?}", r.err()),
                    };
                    assert_eq!(received.event(), expected);
                    assert_eq!(received.severity(), expected.severity);
                    // What a program's layouts declare: some of the keys
                    // the programs read, and one no record has.
                    let mut wanted: Vec<String> = ["secret", "seq", "thread.id", "event.name"]
                        .into_iter()
                        .filter(|k| {
                            needs.everything || needs.all_attributes || needs.keys.contains(*k)
                        })
                        .map(String::from)
                        .collect();
                    wanted.push("absent".into());
                    let held = |w: &String| {
                        expected
                            .attributes
                            .get(w)
                            .map(|j| Scalar::of(j).expect("a value read in place is a scalar"))
                    };
                    let mut values = vec![None; wanted.len()];
                    let all = received.read(&Asked::all(&wanted), &mut values);
                    if let Some(std) = &all {
                        read += 1;
                        assert_eq!(*std, expected.standard(), "{needs:?}");
                        for (w, v) in wanted.iter().zip(&values) {
                            assert_eq!(*v, held(w), "{w} with {needs:?}");
                        }
                    }
                    // Asked less (a redaction's reading): the texts of
                    // every other key, no standard field but the name and
                    // times. What is asked is what the event holds; what
                    // is not, a string's kind.
                    let texts: Vec<bool> = (0..wanted.len()).map(|i| i % 2 == 1).collect();
                    let keys: Vec<Rc<str>> = wanted.iter().map(|w| w.as_str().into()).collect();
                    let keys = KeyIndex::new(&keys).expect("distinct keys");
                    let asked = Asked {
                        keys: &wanted,
                        texts: &texts,
                        standard: false,
                    };
                    let mut narrow = vec![None; wanted.len()];
                    let Some(std) = received.read(&asked, &mut narrow) else {
                        assert!(all.is_none(), "declined asked less only");
                        let declined = received.name().is_none()
                            || received
                                .find(&keys, &texts, &mut vec![None; wanted.len()], |_, _| {})
                                .is_none();
                        assert!(declined, "found where read declines");
                        continue;
                    };
                    narrowed += 1;
                    // Found by a layout's keys (`Engine::edits_found`), in
                    // an event a program receives: its name and values are
                    // what `read` reads.
                    let name = received.name().expect("read in place");
                    assert_eq!(name, std.name.map(str::as_bytes));
                    let receives = std
                        .name
                        .is_some_and(|n| needs.everything || needs.events.contains(n));
                    if receives {
                        let mut found = vec![None; wanted.len()];
                        let mut hits = Vec::new();
                        received
                            .find(&keys, &texts, &mut found, |j, a| hits.push((a, j)))
                            .expect("found where read");
                        assert_eq!(found, narrow);
                        // Every attribute of a key asked, in order, by its
                        // key: where a splice cuts (`convert::splice_found`).
                        let data = &received.request.bytes;
                        let (_, spans) = received.request.noted(received.k).expect("noted");
                        let of_keys: Vec<(usize, usize)> = (spans.iter().enumerate())
                            .filter_map(|(a, span)| match span {
                                AttributeSpan::Plain { key, .. } => {
                                    let key = key.get(data);
                                    let j = wanted.iter().position(|w| w.as_bytes() == key)?;
                                    Some((a, j))
                                }
                                AttributeSpan::Other(_) => None,
                            })
                            .collect();
                        assert_eq!(hits, of_keys);
                        found_by_keys += 1;
                    }
                    let e = expected.standard();
                    assert_eq!(
                        (std.name, std.time, std.observed_time, std.severity),
                        (e.name, e.time, e.observed_time, e.severity)
                    );
                    for (i, (w, v)) in wanted.iter().zip(&narrow).enumerate() {
                        match (v, held(w)) {
                            (Some(Scalar::Str(_)), Some(Scalar::Str(_))) if !texts[i] => {}
                            (v, held) => assert_eq!(*v, held, "{w} with {needs:?}"),
                        }
                    }
                }
            }
        }
        // Every path is taken. The generator writes a quarter of its
        // attributes in a form read by decoding (`key_strindex`), and many
        // values no slot holds, so a fifth of its records read in place;
        // a sender's plain records all do (below).
        assert!(refused > 50, "{refused} refused of {records}");
        assert!(read * 5 > records, "{read} read in place of {records}");
        assert!(
            narrowed > read,
            "{narrowed} read asked less, {read} asked all"
        );
        assert!(
            found_by_keys * 4 > narrowed,
            "{found_by_keys} found by keys of {narrowed}"
        );
    }

    /// Where a removal's bits decide a record (`InPlace::removed_by_bits`),
    /// they decide it as its values do (`InPlace::removed_by_values`, the
    /// engine's own check of its row): whether it makes its row, and the
    /// attributes cut. Over generated and mutated requests, for layouts of
    /// texts, optional texts, numbers and shared key lengths.
    #[test]
    fn removals_by_bits_are_removals_by_values() {
        let programs = [
            "event LogWelcomeBanner { secret: string }\n\
             redact LogWelcomeBanner.secret with drop",
            "event LogWelcomeBanner { secret: string?, seq: string? }\n\
             redact LogWelcomeBanner.secret with drop",
            "event LogWelcomeBanner { secret: string, seq: int?, thread: string? @attr(\"thread.id\") }\n\
             event E { name: string? @attr(\"event.name\"), seq: bool }\n\
             redact LogWelcomeBanner.secret with drop\n\
             redact LogWelcomeBanner.thread with drop\n\
             redact E.name with drop",
        ];
        let mut removals = Vec::new();
        for source in programs {
            let session = dtc_driver::Session::new(dtc_driver::MemoryFs::new());
            let out = session.check_source("test.dt", source);
            assert!(!out.has_errors(), "{:?}", out.diagnostics);
            let program = out.lower().expect("lowered").expect("verified");
            let engine = dtc_engine::Engine::new(program, dtc_engine::Options::default());
            let of = engine.removals();
            assert!(of.iter().all(|r| r.bits.is_some()) && !of.is_empty());
            removals.extend(of.iter().cloned());
        }
        let mut decided = [0; 3];
        for request in parsed_requests(Rng(17 << 32), 3000) {
            for k in 0..request.len() {
                let at = InPlace::new(&request, k);
                for by in &removals {
                    let (mut quick, mut read) = (vec![7], vec![7]);
                    let bits = by.bits.as_ref().expect("bits");
                    let by_values = at.removed_by_values(by, &mut read);
                    match at.removed_by_bits(&by.keys, bits, &mut quick) {
                        Bits::Makes => {
                            assert_eq!((by_values, &quick), (Some(()), &read));
                            decided[0] += 1;
                        }
                        Bits::Not => {
                            assert_eq!(by_values, None);
                            decided[1] += 1;
                        }
                        Bits::Read => decided[2] += 1,
                    }
                    quick.truncate(1);
                    assert_eq!(at.removed(by, &mut quick), by_values);
                    if by_values.is_some() {
                        assert_eq!(quick, read);
                    }
                }
            }
        }
        // Each outcome, often.
        assert!(decided.iter().all(|&n| n > 300), "{decided:?}");
    }

    /// A record as the OpenTelemetry SDKs send it reads in place, trace
    /// context, thread and service included.
    #[test]
    fn plain_records_read_in_place() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        let kv = |key: &str, v: V| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            key_strindex: 0,
        };
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(V::StringValue("welcome".into())),
            }),
            attributes: vec![
                kv("secret", V::StringValue("sk_live_1".into())),
                kv("seq", V::IntValue(4)),
                kv("thread.id", V::IntValue(12)),
                kv("other", V::DoubleValue(0.5)),
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            event_name: "LogWelcomeBanner".into(),
            ..LogRecord::default()
        };
        let payload = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let request = Rc::new(wire::Request::parse(Bytes::from(payload.encode_to_vec())).unwrap());
        let resource = Rc::new(BTreeMap::from([(
            "service.name".to_string(),
            Json::from("shop"),
        )]));
        let needs = Rc::new(all_needs().swap_remove(1));
        let received = Received::new(&request, 0, &resource, &needs).unwrap();
        let wanted = vec!["seq".to_string(), "secret".to_string()];
        let mut values = vec![None; 2];
        let std = received
            .read(&Asked::all(&wanted), &mut values)
            .expect("read in place");
        assert_eq!(
            values,
            [Some(Scalar::Int(4)), Some(Scalar::Str("sk_live_1"))]
        );
        assert_eq!(std.name, Some("LogWelcomeBanner"));
        assert_eq!(std.trace_id, Some("abababababababababababababababab"));
        assert_eq!(std.span_id, Some("0101010101010101"));
        assert_eq!((std.thread_id, std.service), (None, Some("shop")));
        assert_eq!(std, received.event().standard());
    }
}
