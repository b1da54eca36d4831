//! OTLP logs on the wire: a received `ExportLogsServiceRequest` checked as
//! strictly as prost's decode, but kept as the bytes that came, indexed by
//! byte ranges (zero copy), so that the agent decodes only the records its
//! programs read and forwards the others as they came.
//!
//! Why: decoding every request into owned prost messages and encoding
//! every export again were two thirds of the agent's CPU (docs/performance.md,
//! Agent). Here a request is walked once with prost's own low-level readers
//! (`decode_key`, `decode_varint`, `check_wire_type`; `skip_field`'s rules
//! in `skip`), noting what ingress reads of each record
//! ([`Request::view`]); only what a program reads is decoded; an export is
//! spliced from the received ranges and the records shaping edited
//! ([`Request::assemble`]).
//!
//! Strictness: [`Request::parse`] accepts exactly what
//! `ExportLogsServiceRequest::decode` accepts (wire types of known fields,
//! lengths, UTF-8 of strings, prost's recursion limit, groups in unknown
//! fields); a test holds the two to the same answer over generated and
//! mutated payloads. The rules it follows are those of the messages in
//! `opentelemetry-proto` (logs, common, resource).

use std::ops::Range;

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use prost::encoding::{
    WireType, check_wire_type, decode_key, decode_varint, encode_key, encode_varint,
    encoded_len_varint, key_len,
};

/// prost's recursion limit (`prost::RECURSION_LIMIT`, not exported): how
/// deep messages may nest, counted as prost counts it.
const RECURSION_LIMIT: u32 = 100;

/// A byte range of the request.
pub type Span = Range<usize>;

/// A received request, checked, with the ranges of its parts.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub bytes: Bytes,
    pub resources: Vec<ResourceLogs>,
    pub scopes: Vec<ScopeLogs>,
    pub records: Vec<Record>,
    /// The attributes of every record, in order ([`Noted::attributes`]).
    pub attributes: Vec<AttributeSpan>,
    /// Where each of [`Request::attributes`] is as a whole field of its
    /// record (key and length included), for edits spliced without a walk
    /// ([`Request::edit_attributes`]).
    pub attribute_fields: Vec<At>,
}

/// One `ResourceLogs`.
#[derive(Debug, Default, Clone)]
pub struct ResourceLogs {
    /// The message's body.
    pub body: Span,
    /// Its `resource` fields (key, length and body; prost merges several),
    /// and the body of each.
    pub resource: Vec<(Span, Span)>,
    /// Whole fields other than `resource` and `scope_logs` (`schema_url`,
    /// fields this agent does not know), forwarded as they came.
    pub other: Vec<Span>,
    /// Its scopes, as indexes into [`Request::scopes`].
    pub scopes: Range<usize>,
}

/// One `ScopeLogs`.
#[derive(Debug, Default, Clone)]
pub struct ScopeLogs {
    /// Whole fields other than `log_records` (`scope`, `schema_url`, ...).
    pub other: Vec<Span>,
    /// Its records, as indexes into [`Request::records`].
    pub records: Range<usize>,
}

/// One `LogRecord`.
#[derive(Debug, Default, Clone)]
pub struct Record {
    /// The message's body.
    pub body: Span,
    /// Its `ResourceLogs`, as an index into [`Request::resources`].
    pub resource: usize,
    /// Its fields as the walk that checked it found them, so that ingress
    /// reads the record without walking it again ([`Request::view`]);
    /// `None` in a request too large for [`At`] (over 4 GiB, far above
    /// the agent's `listen.max_request_size`), whose records are walked.
    pub noted: Option<Noted>,
}

/// A byte range of a request, in half the room of a [`Span`]: a request
/// holds one per field of every record, and the receivers queue requests.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct At {
    pub start: u32,
    pub end: u32,
}

impl At {
    /// Where `part` (a slice of `data`) is; meaningless (but no panic)
    /// past 4 GiB, where [`Record::noted`] is `None`.
    fn of(data: &[u8], part: &[u8]) -> At {
        let start = offset(data, part) as u32;
        At {
            start,
            end: start.wrapping_add(part.len() as u32),
        }
    }

    pub fn get(self, data: &[u8]) -> &[u8] {
        &data[self.start as usize..self.end as usize]
    }
}

/// What [`Request::parse`] notes of a `LogRecord` as it checks it: its
/// fields as prost would decode them (the last of a repeated scalar
/// wins), as values or byte ranges of the request, and where its
/// attributes are.
#[derive(Debug, Default, Clone)]
pub struct Noted {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: At,
    pub event_name: At,
    pub trace_id: At,
    pub span_id: At,
    pub body: BodyAt,
    /// Its attributes, as indexes into [`Request::attributes`].
    pub attributes: Range<u32>,
}

/// Where a record's `body` is.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum BodyAt {
    #[default]
    Absent,
    /// One `body` field: its value's body (an `AnyValue`).
    Once(At),
    /// Several, which prost merges: read by walking the record.
    Repeated,
}

/// An attribute of a received record (a `KeyValue`), as
/// [`Request::parse`] found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttributeSpan {
    /// A key and at most one value, as senders write them.
    Plain { key: At, value: Option<At> },
    /// Any other form: the whole `KeyValue` body.
    Other(At),
}

impl AttributeSpan {
    /// The attribute as slices of `data`, the request's bytes.
    fn at(self, data: &[u8]) -> AttributeAt<'_> {
        match self {
            AttributeSpan::Plain { key, value } => AttributeAt::Plain {
                key: key.get(data),
                value: value.map(|v| v.get(data)),
            },
            AttributeSpan::Other(body) => AttributeAt::Other(body.get(data)),
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn prost_error(e: prost::DecodeError) -> String {
    e.to_string()
}

fn underflow() -> String {
    "a length or fixed-size value runs past the end of its message (truncated payload)".into()
}

/// Where `part` (a slice of `data`) starts in `data`.
fn offset(data: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - data.as_ptr() as usize
}

fn span(data: &[u8], part: &[u8]) -> Span {
    let start = offset(data, part);
    start..start + part.len()
}

/// Calls `field` for each field of a message body, with the buffer at the
/// field's value (which `field` consumes) and the slice starting at its key.
fn fields<'a>(
    body: &'a [u8],
    mut field: impl FnMut(u32, WireType, &mut &'a [u8], &'a [u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = body;
    while !buf.is_empty() {
        let at_key = buf;
        let (tag, wire) = key(&mut buf)?;
        field(tag, wire, &mut buf, at_key)?;
    }
    Ok(())
}

/// A field's key, as prost's `decode_key` reads it. A key of one byte
/// (every field these messages define: tags 1 to 15) is read here, inlined:
/// prost's generic reader cost about a tenth of `Request::parse`. Any other
/// (longer, a wire type 6 or 7, tag 0, truncated) is prost's to read or
/// refuse, with its words.
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, WireType)> {
    let bytes: &[u8] = buf;
    if let [b, rest @ ..] = bytes
        && (0x08..0x80).contains(b)
    {
        let wire = match b & 7 {
            0 => Some(WireType::Varint),
            1 => Some(WireType::SixtyFourBit),
            2 => Some(WireType::LengthDelimited),
            3 => Some(WireType::StartGroup),
            4 => Some(WireType::EndGroup),
            5 => Some(WireType::ThirtyTwoBit),
            _ => None,
        };
        if let Some(wire) = wire {
            *buf = rest;
            return Ok((u32::from(b >> 3), wire));
        }
    }
    decode_key(buf).map_err(prost_error)
}

/// A varint, as prost's `decode_varint` reads it: one of one or two bytes
/// (most lengths and values of a record, which cannot overflow) read
/// here, inlined; any other by prost.
#[inline(always)]
fn uvarint(buf: &mut &[u8]) -> Result<u64> {
    let bytes: &[u8] = buf;
    match bytes {
        [b, rest @ ..] if *b < 0x80 => {
            *buf = rest;
            Ok(u64::from(*b))
        }
        [b0, b1, rest @ ..] if *b1 < 0x80 => {
            *buf = rest;
            Ok(u64::from(b0 & 0x7f) | u64::from(*b1) << 7)
        }
        _ => decode_varint(buf).map_err(prost_error),
    }
}

/// The whole field that started at `at_key` and ends where `buf` is now.
fn whole<'a>(at_key: &'a [u8], buf: &[u8]) -> &'a [u8] {
    &at_key[..at_key.len() - buf.len()]
}

/// A length-delimited value's body. Inlined, as `nested` and `string`
/// are: called for most fields of a request, their call costs about a
/// tenth of `Request::parse`.
#[inline(always)]
fn delimited<'a>(wire: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    check_wire_type(WireType::LengthDelimited, wire).map_err(prost_error)?;
    let len = uvarint(buf)?;
    if len > buf.len() as u64 {
        return Err(underflow());
    }
    let (body, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(body)
}

/// A nested message's body and the recursion budget its fields are read
/// with (prost: `limit_reached`, then `enter_recursion`).
#[inline(always)]
fn nested<'a>(wire: WireType, buf: &mut &'a [u8], ctx: u32) -> Result<(&'a [u8], u32)> {
    let body = delimited(wire, buf)?;
    if ctx == 0 {
        return Err("recursion limit reached: messages nest too deeply".into());
    }
    Ok((body, ctx - 1))
}

/// A nested message checked by `check`.
fn message<'a, T>(
    wire: WireType,
    buf: &mut &'a [u8],
    ctx: u32,
    check: impl FnOnce(&'a [u8], u32) -> Result<T>,
) -> Result<T> {
    let (body, ctx) = nested(wire, buf, ctx)?;
    check(body, ctx)
}

/// Whether `bytes` are all ASCII: a key or a short text as one or two
/// words that overlap (both ends), the rest by `is_ascii`. Why: most keys
/// and texts of a record are under 17 bytes, where `is_ascii`'s call and
/// its alignment cost about 30 instructions each, a tenth of the parse.
#[inline(always)]
fn ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    match bytes.len() {
        0..4 => bytes.iter().all(|b| *b < 0x80),
        4..8 => match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            (Some(h), Some(t)) => {
                (u32::from_ne_bytes(*h) | u32::from_ne_bytes(*t)) & HIGH as u32 == 0
            }
            _ => false,
        },
        8..=16 => match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(h), Some(t)) => (u64::from_ne_bytes(*h) | u64::from_ne_bytes(*t)) & HIGH == 0,
            _ => false,
        },
        _ => bytes.is_ascii(),
    }
}

/// A string field's bytes, checked as UTF-8 (as prost checks a `String`).
/// Nothing here needs the text itself, only the check: most strings are
/// ASCII, which a word-at-a-time scan confirms for a fraction of what
/// `from_utf8` costs on a short string.
#[inline(always)]
fn string<'a>(wire: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    let bytes = delimited(wire, buf)?;
    if ascii(bytes) || std::str::from_utf8(bytes).is_ok() {
        Ok(bytes)
    } else {
        Err("invalid string value: data is not UTF-8 encoded".to_string())
    }
}

#[inline(always)]
fn varint(wire: WireType, buf: &mut &[u8]) -> Result<u64> {
    check_wire_type(WireType::Varint, wire).map_err(prost_error)?;
    uvarint(buf)
}

#[inline(always)]
fn fixed64(wire: WireType, buf: &mut &[u8]) -> Result<u64> {
    check_wire_type(WireType::SixtyFourBit, wire).map_err(prost_error)?;
    let bytes: &[u8] = buf;
    let (value, rest) = bytes.split_first_chunk::<8>().ok_or_else(underflow)?;
    *buf = rest;
    Ok(u64::from_le_bytes(*value))
}

#[inline(always)]
fn fixed32(wire: WireType, buf: &mut &[u8]) -> Result<u32> {
    check_wire_type(WireType::ThirtyTwoBit, wire).map_err(prost_error)?;
    let bytes: &[u8] = buf;
    let (value, rest) = bytes.split_first_chunk::<4>().ok_or_else(underflow)?;
    *buf = rest;
    Ok(u32::from_le_bytes(*value))
}

/// An unknown field skipped as prost skips it: at a message nested to the
/// limit even a scalar is refused, and each group level counts.
fn skip(wire: WireType, tag: u32, buf: &mut &[u8], ctx: u32) -> Result<()> {
    if ctx == 0 {
        return Err("recursion limit reached: messages nest too deeply".into());
    }
    match wire {
        WireType::StartGroup => loop {
            let (inner_tag, inner_wire) = key(buf)?;
            if inner_wire == WireType::EndGroup {
                if inner_tag != tag {
                    return Err("unexpected end group tag".into());
                }
                return Ok(());
            }
            skip(inner_wire, inner_tag, buf, ctx - 1)?;
        },
        // Not a group: as prost's `skip_field` (no nesting), without its
        // generic `Buf` and its own budget, for the walks that skip most
        // fields of a record (egress, reading an edited record).
        WireType::Varint => uvarint(buf).map(drop),
        WireType::SixtyFourBit => advance(buf, 8),
        WireType::ThirtyTwoBit => advance(buf, 4),
        WireType::LengthDelimited => delimited(wire, buf).map(drop),
        WireType::EndGroup => Err("unexpected end group tag".into()),
    }
}

fn advance(buf: &mut &[u8], len: usize) -> Result<()> {
    match buf.get(len..) {
        Some(rest) => {
            *buf = rest;
            Ok(())
        }
        None => Err(underflow()),
    }
}

// --------------------------------------------------------------- checking

/// Checks an `AnyValue`. Most are one short string or one integer, the
/// whole body: those are checked here, inlined, as the walk would check
/// them; any other form (or any fault) is walked.
#[inline(always)]
fn any_value(body: &[u8], ctx: u32) -> Result<()> {
    let short = match body {
        [0x0a, len, text @ ..] if *len < 0x80 && usize::from(*len) == text.len() => ascii(text),
        [0x18, int @ ..] => {
            let mut rest = int;
            uvarint(&mut rest).is_ok() && rest.is_empty()
        }
        _ => false,
    };
    if short {
        return Ok(());
    }
    any_value_walk(body, ctx)
}

fn any_value_walk(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1 => string(wire, buf).map(drop),
        2 | 3 | 8 => varint(wire, buf).map(drop),
        4 => fixed64(wire, buf).map(drop),
        5 => message(wire, buf, ctx, array_value),
        6 => message(wire, buf, ctx, key_value_list),
        7 => delimited(wire, buf).map(drop),
        _ => skip(wire, tag, buf, ctx),
    })
}

fn array_value(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1 => message(wire, buf, ctx, any_value),
        _ => skip(wire, tag, buf, ctx),
    })
}

fn key_value_list(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1 => attribute(wire, buf, ctx),
        _ => skip(wire, tag, buf, ctx),
    })
}

/// Checks a `KeyValue` (one of a resource, a scope or a list; a record's
/// are checked and noted by [`attribute_span`]).
fn key_value(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1 => string(wire, buf).map(drop),
        2 => message(wire, buf, ctx, any_value),
        3 => varint(wire, buf).map(drop),
        _ => skip(wire, tag, buf, ctx),
    })
}

fn attribute(wire: WireType, buf: &mut &[u8], ctx: u32) -> Result<()> {
    message(wire, buf, ctx, key_value)
}

fn entity_ref(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1..=4 => string(wire, buf).map(drop),
        _ => skip(wire, tag, buf, ctx),
    })
}

fn resource(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1 => attribute(wire, buf, ctx),
        2 => varint(wire, buf).map(drop),
        3 => message(wire, buf, ctx, entity_ref),
        _ => skip(wire, tag, buf, ctx),
    })
}

fn scope(body: &[u8], ctx: u32) -> Result<()> {
    fields(body, |tag, wire, buf, _| match tag {
        1 | 2 => string(wire, buf).map(drop),
        3 => attribute(wire, buf, ctx),
        4 => varint(wire, buf).map(drop),
        _ => skip(wire, tag, buf, ctx),
    })
}

/// Checks a `KeyValue` of a record (as [`key_value`]) and says where its
/// parts are in `data`. The form senders write, a key and then one value,
/// each under 128 bytes, the whole body, is checked here, inlined, as
/// the walk would check it; any other form (or any fault) is walked.
#[inline(always)]
fn attribute_span(data: &[u8], body: &[u8], ctx: u32) -> Result<AttributeSpan> {
    if let [0x0a, klen, rest @ ..] = body
        && *klen < 0x80
        && let Some((key, rest)) = rest.split_at_checked(usize::from(*klen))
        && let [0x12, vlen, value @ ..] = rest
        && *vlen < 0x80
        && usize::from(*vlen) == value.len()
        && ascii(key)
        && ctx > 0
        && any_value(value, ctx - 1).is_ok()
    {
        return Ok(AttributeSpan::Plain {
            key: At::of(data, key),
            value: Some(At::of(data, value)),
        });
    }
    attribute_span_walk(data, body, ctx)
}

fn attribute_span_walk(data: &[u8], body: &[u8], ctx: u32) -> Result<AttributeSpan> {
    // Empty, but inside `data`, for `span`.
    let mut key = &body[..0];
    let mut value = None;
    let mut plain = true;
    fields(body, |tag, wire, buf, _| match tag {
        1 => {
            key = string(wire, buf)?;
            Ok(())
        }
        2 => {
            let (inner, inner_ctx) = nested(wire, buf, ctx)?;
            any_value(inner, inner_ctx)?;
            plain &= value.is_none();
            value = Some(inner);
            Ok(())
        }
        3 => {
            plain = false;
            varint(wire, buf).map(drop)
        }
        _ => {
            plain = false;
            skip(wire, tag, buf, ctx)
        }
    })?;
    Ok(if plain {
        AttributeSpan::Plain {
            key: At::of(data, key),
            value: value.map(|v| At::of(data, v)),
        }
    } else {
        AttributeSpan::Other(At::of(data, body))
    })
}

/// Checks a `LogRecord` and notes its fields, its attributes pushed to
/// `attributes`.
fn log_record(
    data: &[u8],
    body: &[u8],
    ctx: u32,
    attributes: &mut Vec<AttributeSpan>,
    attribute_fields: &mut Vec<At>,
) -> Result<Noted> {
    let first = attributes.len() as u32;
    let mut n = Noted::default();
    fields(body, |tag, wire, buf, at_key| {
        match tag {
            1 => n.time_unix_nano = fixed64(wire, buf)?,
            11 => n.observed_time_unix_nano = fixed64(wire, buf)?,
            2 => n.severity_number = varint(wire, buf)? as i32,
            7 => {
                varint(wire, buf)?;
            }
            3 => n.severity_text = At::of(data, string(wire, buf)?),
            12 => n.event_name = At::of(data, string(wire, buf)?),
            5 => {
                let (inner, inner_ctx) = nested(wire, buf, ctx)?;
                any_value(inner, inner_ctx)?;
                n.body = match n.body {
                    BodyAt::Absent => BodyAt::Once(At::of(data, inner)),
                    _ => BodyAt::Repeated,
                };
            }
            6 => {
                let (inner, inner_ctx) = nested(wire, buf, ctx)?;
                attributes.push(attribute_span(data, inner, inner_ctx)?);
                attribute_fields.push(At::of(data, whole(at_key, buf)));
            }
            8 => {
                fixed32(wire, buf)?;
            }
            9 => n.trace_id = At::of(data, delimited(wire, buf)?),
            10 => n.span_id = At::of(data, delimited(wire, buf)?),
            _ => skip(wire, tag, buf, ctx)?,
        }
        Ok(())
    })?;
    n.attributes = first..attributes.len() as u32;
    Ok(n)
}

impl Request {
    /// Checks a request as prost's decode would and indexes it; the error
    /// says where the payload is wrong.
    pub fn parse(bytes: Bytes) -> Result<Request> {
        let mut request = Request {
            bytes: Bytes::new(),
            ..Request::default()
        };
        let data: &[u8] = &bytes;
        let ctx = RECURSION_LIMIT;
        fields(data, |tag, wire, buf, _| match tag {
            1 => {
                let ri = request.resources.len();
                let (body, ctx) =
                    nested(wire, buf, ctx).map_err(|e| format!("resource_logs[{ri}]: {e}"))?;
                request
                    .resource_logs(data, body, ctx)
                    .map_err(|e| format!("resource_logs[{ri}]: {e}"))
            }
            _ => skip(wire, tag, buf, ctx),
        })?;
        request.bytes = bytes;
        Ok(request)
    }

    fn resource_logs(&mut self, data: &[u8], body: &[u8], ctx: u32) -> Result<()> {
        let ri = self.resources.len();
        let mut rl = ResourceLogs {
            body: span(data, body),
            scopes: self.scopes.len()..self.scopes.len(),
            ..ResourceLogs::default()
        };
        fields(body, |tag, wire, buf, at_key| match tag {
            1 => {
                let (inner, inner_ctx) = nested(wire, buf, ctx)?;
                resource(inner, inner_ctx).map_err(|e| format!("resource: {e}"))?;
                rl.resource
                    .push((span(data, whole(at_key, buf)), span(data, inner)));
                Ok(())
            }
            2 => {
                let si = self.scopes.len() - rl.scopes.start;
                let (inner, inner_ctx) =
                    nested(wire, buf, ctx).map_err(|e| format!("scope_logs[{si}]: {e}"))?;
                self.scope_logs(data, inner, inner_ctx, ri)
                    .map_err(|e| format!("scope_logs[{si}]: {e}"))
            }
            3 => {
                string(wire, buf).map_err(|e| format!("schema_url: {e}"))?;
                rl.other.push(span(data, whole(at_key, buf)));
                Ok(())
            }
            _ => {
                skip(wire, tag, buf, ctx)?;
                rl.other.push(span(data, whole(at_key, buf)));
                Ok(())
            }
        })?;
        rl.scopes.end = self.scopes.len();
        self.resources.push(rl);
        Ok(())
    }

    fn scope_logs(&mut self, data: &[u8], body: &[u8], ctx: u32, ri: usize) -> Result<()> {
        let first = self.records.len();
        let mut sl = ScopeLogs::default();
        fields(body, |tag, wire, buf, at_key| {
            match tag {
                1 => {
                    let (inner, inner_ctx) = nested(wire, buf, ctx)?;
                    scope(inner, inner_ctx).map_err(|e| format!("scope: {e}"))?;
                }
                2 => {
                    let k = self.records.len() - first;
                    let (inner, inner_ctx) =
                        nested(wire, buf, ctx).map_err(|e| format!("log_records[{k}]: {e}"))?;
                    let noted = log_record(
                        data,
                        inner,
                        inner_ctx,
                        &mut self.attributes,
                        &mut self.attribute_fields,
                    )
                    .map_err(|e| format!("log_records[{k}]: {e}"))?;
                    if self.records.capacity() == 0 {
                        // The request's first record: a batch's records are
                        // alike, so room for as many as the rest of the scope
                        // holds of this one's size, instead of growing the
                        // index ten times (at most one entry per 16 bytes).
                        // An eighth more: when the first record is a
                        // little longer than the rest, growing the index
                        // once cost more than the room.
                        let each = whole(at_key, buf).len();
                        let each = (each - each / 8).max(1);
                        let room = (buf.len() / each).min(buf.len() / 16) + 1;
                        self.records.reserve(room);
                        let attributes = (noted.attributes.end - noted.attributes.start) as usize;
                        let room = (room * attributes).min(buf.len() / 16);
                        self.attributes.reserve(room);
                        self.attribute_fields.reserve(room);
                    }
                    self.records.push(Record {
                        body: span(data, inner),
                        resource: ri,
                        noted: (data.len() <= u32::MAX as usize).then_some(noted),
                    });
                    return Ok(());
                }
                3 => {
                    string(wire, buf).map_err(|e| format!("schema_url: {e}"))?;
                }
                _ => skip(wire, tag, buf, ctx)?,
            }
            sl.other.push(span(data, whole(at_key, buf)));
            Ok(())
        })?;
        sl.records = first..self.records.len();
        self.scopes.push(sl);
        Ok(())
    }

    /// Log records in the request.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A record's bytes (its message body).
    pub fn record(&self, k: usize) -> &[u8] {
        &self.bytes[self.records[k].body.clone()]
    }

    /// Record `k` read from what [`Request::parse`] noted, without walking
    /// it again: what [`read_record`] reads of its bytes, and its
    /// attributes into `attributes` (cleared first).
    pub fn view<'a>(
        &'a self,
        k: usize,
        attributes: &mut Vec<AttributeAt<'a>>,
    ) -> Result<RecordView<'a>> {
        let data: &[u8] = &self.bytes;
        let bytes = &data[self.records[k].body.clone()];
        match self.noted(k) {
            Some((n, spans)) => view_of(data, bytes, n, spans, attributes),
            None => read_record(bytes, attributes),
        }
    }

    /// What [`Request::parse`] noted of record `k`, and its attributes
    /// (ranges of [`Request::bytes`]); `None` in a request that keeps no
    /// notes ([`Record::noted`]).
    pub fn noted(&self, k: usize) -> Option<(&Noted, &[AttributeSpan])> {
        let n = self.records[k].noted.as_ref()?;
        let spans = &self.attributes[n.attributes.start as usize..n.attributes.end as usize];
        Some((n, spans))
    }

    /// Record `k`'s body with its attributes edited as [`edit_attributes`]
    /// edits them, spliced by where [`Request::parse`] noted them, without
    /// walking the record; `None` in a request that keeps no notes.
    pub fn edit_attributes(
        &self,
        k: usize,
        edit: &dyn Fn(&[u8]) -> AttributeEdit,
        out: &mut Vec<u8>,
    ) -> Option<Result<()>> {
        let mut cuts = Cuts::default();
        let fields = self.attribute_fields_of(k)?;
        for (a, edit) in self.attribute_edits(k, edit)? {
            if let Err(e) = self.cut(fields[a], &edit, &mut cuts) {
                return Some(Err(e));
            }
        }
        let body = self.records[k].body.clone();
        out.reserve(body.len());
        cuts.write(&self.bytes, body, 0..cuts.cuts.len(), out);
        Some(Ok(()))
    }

    /// Record `k`'s attributes edited as [`Request::edit_attributes`]
    /// edits them, kept in `into` as cuts of the received bytes: the
    /// record is written only once, into the export, by
    /// [`Request::assemble`]. `None` in a request that keeps no notes;
    /// an error leaves `into` as it was.
    pub fn splice_attributes(
        &self,
        k: usize,
        edit: impl Fn(&[u8]) -> AttributeEdit,
        into: &mut Edited,
    ) -> Option<Result<()>> {
        self.splice_at(k, self.attribute_edits(k, edit)?, into)
    }

    /// What `edit` says of each of record `k`'s attributes by its key, with
    /// the attribute's index; `None` in a request that keeps no notes.
    fn attribute_edits(
        &self,
        k: usize,
        edit: impl Fn(&[u8]) -> AttributeEdit,
    ) -> Option<impl Iterator<Item = (usize, AttributeEdit)>> {
        let data: &[u8] = &self.bytes;
        let (_, spans) = self.noted(k)?;
        Some(spans.iter().enumerate().map(move |(a, span)| {
            let key = match *span {
                AttributeSpan::Plain { key, .. } => key.get(data),
                AttributeSpan::Other(body) => key_of(body.get(data)),
            };
            (a, edit(key))
        }))
    }

    /// Record `k`'s attributes' fields (ranges of [`Request::bytes`]);
    /// `None` in a request that keeps no notes.
    fn attribute_fields_of(&self, k: usize) -> Option<&[At]> {
        let n = self.records[k].noted.as_ref()?;
        Some(&self.attribute_fields[n.attributes.start as usize..n.attributes.end as usize])
    }

    /// [`Request::splice_attributes`] of the attributes `edits` names, by
    /// their index among record `k`'s, in order (any other is kept): for
    /// a producer that found them as it read the record.
    pub fn splice_at(
        &self,
        k: usize,
        edits: impl IntoIterator<Item = (usize, impl std::borrow::Borrow<AttributeEdit>)>,
        into: &mut Edited,
    ) -> Option<Result<()>> {
        let fields = self.attribute_fields_of(k)?;
        let (from, text) = (into.cuts.cuts.len(), into.cuts.text.len());
        for (a, edit) in edits {
            let done = match fields.get(a) {
                Some(&field) => self.cut(field, edit.borrow(), &mut into.cuts),
                None => Err(format!("record {k} has no attribute {a} to edit")),
            };
            if let Err(e) = done {
                into.cuts.cuts.truncate(from);
                into.cuts.text.truncate(text);
                return Some(Err(e));
            }
        }
        let cuts = &into.cuts.cuts[from..];
        if cuts.is_empty() {
            return Some(Ok(()));
        }
        let body = &self.records[k].body;
        let len = cuts.iter().fold(body.len(), |len, c| {
            len - (c.field.end - c.field.start) as usize + (c.with.1 - c.with.0) as usize
        });
        into.set(
            k,
            Change::Cuts {
                cuts: from as u32..into.cuts.cuts.len() as u32,
                len,
            },
        );
        Some(Ok(()))
    }

    /// The cut of the attribute whose field is `field` that `edit` makes,
    /// added to `cuts` (none: kept).
    fn cut(&self, field: At, edit: &AttributeEdit, cuts: &mut Cuts) -> Result<()> {
        let start = cuts.text.len() as u32;
        match edit {
            AttributeEdit::Keep => return Ok(()),
            AttributeEdit::Remove => {}
            AttributeEdit::Replace(value) => {
                // The field's key and length, then its body.
                let mut inner = field.get(&self.bytes);
                decode_key(&mut inner).map_err(prost_error)?;
                decode_varint(&mut inner).map_err(prost_error)?;
                replaced(inner, value, &mut cuts.text)?;
            }
        }
        cuts.cuts.push(Cut {
            field,
            with: (start, cuts.text.len() as u32),
        });
        Ok(())
    }

    /// The resource of `ResourceLogs` `ri`, decoded (merged as prost merges
    /// repeated occurrences), or `None` when it has none.
    pub fn resource(&self, ri: usize) -> Option<Resource> {
        let fields = &self.resources[ri].resource;
        if fields.is_empty() {
            return None;
        }
        let mut resource = Resource::default();
        for (_, body) in fields {
            // Checked at parse: a failure here would be a bug, and the
            // resource would be the part merged so far.
            let _ = resource.merge(&self.bytes[body.clone()]);
        }
        Some(resource)
    }

    /// What leaves of this request, as `ResourceLogs` bodies and their
    /// record counts, handed to `push` in order: a `ResourceLogs` none of
    /// whose records changed is the received range itself (no copy); one
    /// with a change is spliced from its received parts without the
    /// `suppressed` records, with the `edited` ones re-encoded; a record
    /// with a resource of its own (`own`, by record index) leaves in a
    /// `ResourceLogs` of its own, after the others. Scopes and resources
    /// left without records by a change are not sent.
    pub fn assemble(
        &self,
        suppressed: &[bool],
        edited: &Edited,
        own: &mut Vec<(usize, Resource)>,
        mut push: impl FnMut(Bytes, u64),
    ) {
        let data: &[u8] = &self.bytes;
        let own_at: Vec<usize> = own.iter().map(|(k, _)| *k).collect();
        let changed = |k: usize| {
            suppressed.get(k).copied().unwrap_or(false)
                || edited.is_edited(k)
                || own_at.contains(&k)
        };
        let mut alone: Vec<(usize, Vec<u8>)> = Vec::new();
        // Records that left alone.
        let mut owned: Vec<usize> = Vec::new();
        for (ri, rl) in self.resources.iter().enumerate() {
            let records = self.scopes[rl.scopes.clone()].first().map_or(0..0, |s| {
                s.records.start..self.scopes[rl.scopes.end - 1].records.end
            });
            if !records.clone().any(changed) {
                push(self.bytes.slice(rl.body.clone()), records.len() as u64);
                continue;
            }
            let mut body = Vec::with_capacity(rl.body.len());
            for (field, _) in &rl.resource {
                body.extend_from_slice(&data[field.clone()]);
            }
            for field in &rl.other {
                body.extend_from_slice(&data[field.clone()]);
            }
            let mut count = 0;
            for sl in &self.scopes[rl.scopes.clone()] {
                // A record with a resource of its own leaves alone.
                for k in sl.records.clone() {
                    if suppressed.get(k).copied().unwrap_or(false) {
                        continue;
                    }
                    if let Some(i) = own.iter().position(|(j, _)| *j == k) {
                        let record = edited.record(self, k);
                        let resource = own.swap_remove(i).1;
                        let mut one = Vec::new();
                        prost::encoding::message::encode(1, &resource, &mut one);
                        for field in &rl.other {
                            one.extend_from_slice(&data[field.clone()]);
                        }
                        let mut scope = Vec::new();
                        for field in &sl.other {
                            scope.extend_from_slice(&data[field.clone()]);
                        }
                        put_field(2, &record, &mut scope);
                        put_field(2, &scope, &mut one);
                        alone.push((ri, one));
                        owned.push(k);
                    }
                }
                let leaves =
                    |k: &usize| !suppressed.get(*k).copied().unwrap_or(false) && !owned.contains(k);
                // The scope's length first, so that its records are
                // written once, straight into the resource's body.
                let mut n = 0;
                let mut len: usize = sl.other.iter().map(|f| f.len()).sum();
                for k in sl.records.clone().filter(leaves) {
                    let record = edited.record_len(self, k);
                    len += key_len(2) + encoded_len_varint(record as u64) + record;
                    n += 1;
                }
                if n == 0 {
                    continue;
                }
                encode_key(2, WireType::LengthDelimited, &mut body);
                encode_varint(len as u64, &mut body);
                for field in &sl.other {
                    body.extend_from_slice(&data[field.clone()]);
                }
                for k in sl.records.clone().filter(leaves) {
                    edited.put_record(self, k, &mut body);
                }
                count += n;
            }
            if count > 0 {
                push(Bytes::from(body), count);
            }
        }
        for (_, one) in alone {
            push(Bytes::from(one), 1);
        }
    }
}

/// Writes a length-delimited field: key, length, body.
pub fn put_field(tag: u32, body: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// What shaping made of a request's records, for [`Request::assemble`]:
/// per record, nothing (it leaves as it came), its bytes made anew, or
/// cuts of its received bytes ([`Request::splice_attributes`]), which are
/// spliced as the export is written: the record is copied once, with no
/// buffer of its own.
#[derive(Debug, Default)]
pub struct Edited {
    changes: Vec<Option<Change>>,
    cuts: Cuts,
}

#[derive(Debug)]
enum Change {
    Whole(Vec<u8>),
    /// `Edited::cuts[cuts]`, and the record's length once they are made.
    Cuts {
        cuts: Range<u32>,
        len: usize,
    },
}

/// Cuts of records: each a whole field of a record (an attribute) removed
/// or replaced by a range of `text`.
#[derive(Debug, Default)]
struct Cuts {
    cuts: Vec<Cut>,
    /// The replacing fields, encoded.
    text: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    field: At,
    with: (u32, u32),
}

impl Cuts {
    /// The record `data[body]` with `self.cuts[which]` made, into `out`.
    fn write(&self, data: &[u8], body: Span, which: Range<usize>, out: &mut Vec<u8>) {
        let mut copied = body.start;
        for c in &self.cuts[which] {
            out.extend_from_slice(&data[copied..c.field.start as usize]);
            out.extend_from_slice(&self.text[c.with.0 as usize..c.with.1 as usize]);
            copied = c.field.end as usize;
        }
        out.extend_from_slice(&data[copied..body.end]);
    }
}

impl Edited {
    /// Room for the changes of a request of `n` records.
    pub fn with_records(n: usize) -> Edited {
        let mut changes = Vec::with_capacity(n);
        changes.resize_with(n, || None);
        Edited {
            changes,
            cuts: Cuts {
                cuts: Vec::with_capacity(n),
                text: Vec::new(),
            },
        }
    }

    /// Whether record `k` leaves changed.
    pub fn is_edited(&self, k: usize) -> bool {
        self.changes.get(k).is_some_and(Option::is_some)
    }

    /// Record `k` leaves as `bytes`.
    pub fn set_whole(&mut self, k: usize, bytes: Vec<u8>) {
        self.set(k, Change::Whole(bytes));
    }

    /// Record `k`'s bytes as made anew by [`Edited::set_whole`], if they were.
    pub fn whole(&self, k: usize) -> Option<&[u8]> {
        match self.changes.get(k) {
            Some(Some(Change::Whole(bytes))) => Some(bytes),
            _ => None,
        }
    }

    fn set(&mut self, k: usize, change: Change) {
        if self.changes.len() <= k {
            self.changes.resize_with(k + 1, || None);
        }
        self.changes[k] = Some(change);
    }

    /// Record `k` of `request` as it leaves.
    pub fn record<'a>(&'a self, request: &'a Request, k: usize) -> std::borrow::Cow<'a, [u8]> {
        let body = request.records[k].body.clone();
        match self.changes.get(k) {
            Some(Some(Change::Whole(bytes))) => bytes.into(),
            Some(Some(Change::Cuts { cuts, len })) => {
                let mut out = Vec::with_capacity(*len);
                let which = cuts.start as usize..cuts.end as usize;
                self.cuts.write(&request.bytes, body, which, &mut out);
                out.into()
            }
            _ => request.bytes[body].into(),
        }
    }

    /// The length of record `k` of `request` as it leaves.
    fn record_len(&self, request: &Request, k: usize) -> usize {
        match self.changes.get(k) {
            Some(Some(Change::Whole(bytes))) => bytes.len(),
            Some(Some(Change::Cuts { len, .. })) => *len,
            _ => request.records[k].body.len(),
        }
    }

    /// Record `k` of `request` as it leaves, as a `log_records` field.
    fn put_record(&self, request: &Request, k: usize, out: &mut Vec<u8>) {
        let body = request.records[k].body.clone();
        match self.changes.get(k) {
            Some(Some(Change::Whole(bytes))) => put_field(2, bytes, out),
            Some(Some(Change::Cuts { cuts, len })) => {
                encode_key(2, WireType::LengthDelimited, out);
                encode_varint(*len as u64, out);
                let which = cuts.start as usize..cuts.end as usize;
                self.cuts.write(&request.bytes, body, which, out);
            }
            _ => put_field(2, &request.bytes[body], out),
        }
    }
}

// --------------------------------------------------------------- decoding

/// The key of an attribute (a `KeyValue` body), as bytes: the last `key`
/// field, as prost keeps it; empty when absent. Not checked as UTF-8
/// again: the record was, by [`Request::parse`].
fn key_of(body: &[u8]) -> &[u8] {
    let mut key: &[u8] = &[];
    let _ = fields(body, |tag, wire, buf, _| {
        if tag == 1 {
            key = delimited(wire, buf)?;
            Ok(())
        } else {
            skip(wire, tag, buf, RECURSION_LIMIT)
        }
    });
    key
}

/// An attribute (a `KeyValue` body) in the form senders write it, a key
/// and at most one value: the key (its bytes, checked as UTF-8 by
/// [`Request::parse`]) and the value's body, read in one walk; `None` for
/// any other form (a repeated value, which prost merges, or a
/// `key_strindex`), which the caller decodes whole.
fn plain_key_value(body: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut key: &[u8] = &[];
    let mut value = None;
    let mut plain = true;
    fields(body, |tag, wire, buf, _| {
        match tag {
            1 => key = delimited(wire, buf)?,
            2 if value.is_none() => value = Some(delimited(wire, buf)?),
            _ => {
                plain = false;
                return Err(String::new());
            }
        }
        Ok(())
    })
    .ok()?;
    plain.then_some((key, value))
}

/// One attribute of a record, found in the walk that checked the record
/// ([`Request::parse`], [`Request::view`]) or one that reads it
/// ([`read_record`]), borrowed from its bytes, so that only the attributes
/// a program reads are decoded. Keys are bytes: a caller matches them
/// against the keys it wants and checks as UTF-8 only those it keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttributeAt<'a> {
    /// A key and at most one value, as senders write them: the key and
    /// the value's body (an `AnyValue`), undecoded.
    Plain {
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    /// Any other form (a repeated value, which prost merges, or a
    /// `key_strindex`): the `KeyValue` body, decoded by prost when read.
    Other(&'a [u8]),
}

impl<'a> AttributeAt<'a> {
    /// The key's bytes (the last `key` field, as prost keeps it).
    pub fn key(&self) -> &'a [u8] {
        match self {
            AttributeAt::Plain { key, .. } => key,
            AttributeAt::Other(body) => key_of(body),
        }
    }

    /// The attribute's value as prost decodes it, or `None` when absent.
    pub fn value(self) -> Result<Option<AnyValue>> {
        match self {
            AttributeAt::Plain { value, .. } => value.map(any_value_of).transpose(),
            AttributeAt::Other(body) => Ok(KeyValue::decode(body).map_err(prost_error)?.value),
        }
    }
}

/// An `AnyValue` body decoded: a lone string value (what most attributes
/// are) read directly, anything else by prost.
fn any_value_of(body: &[u8]) -> Result<AnyValue> {
    if let [0x0a, rest @ ..] = body {
        let mut buf = rest;
        if let Ok(len) = decode_varint(&mut buf)
            && len == buf.len() as u64
            && let Ok(text) = std::str::from_utf8(buf)
        {
            return Ok(AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        text.to_owned(),
                    ),
                ),
            });
        }
    }
    AnyValue::decode(body).map_err(prost_error)
}

/// A log record read in place from its bytes (checked by
/// [`Request::parse`]): its fields other than the attributes, borrowed as
/// prost would decode them (the last of a repeated scalar wins, a
/// repeated body is merged), for
/// [`dtc_engine::event::otlp_proto::decode_fields`]. Its text fields are
/// bytes, checked as UTF-8 on receipt; the caller makes text of them.
#[derive(Debug, Default, PartialEq)]
pub struct RecordView<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: &'a [u8],
    pub body: Option<AnyValue>,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub event_name: &'a [u8],
}

/// Reads a record's fields in one walk over its bytes (the walk
/// [`Request::parse`] checks a received record with, so both read a
/// record alike), and its attributes, undecoded, into `attributes`
/// (cleared first). For a record shaping edited; a received one is read
/// from what parse noted ([`Request::view`]).
pub fn read_record<'a>(
    body: &'a [u8],
    attributes: &mut Vec<AttributeAt<'a>>,
) -> Result<RecordView<'a>> {
    let mut spans = Vec::new();
    let noted = log_record(body, body, RECURSION_LIMIT, &mut spans, &mut Vec::new())?;
    view_of(body, body, &noted, &spans, attributes)
}

/// The record `record` (a slice of `data`) as `noted`, its attributes
/// (`spans`, ranges of `data`) into `attributes` (cleared first).
fn view_of<'a>(
    data: &'a [u8],
    record: &[u8],
    noted: &Noted,
    spans: &[AttributeSpan],
    attributes: &mut Vec<AttributeAt<'a>>,
) -> Result<RecordView<'a>> {
    let body = match noted.body {
        BodyAt::Absent => None,
        BodyAt::Once(at) => Some(AnyValue::decode(at.get(data)).map_err(prost_error)?),
        // Merged as prost merges them: rare enough to decode the record.
        BodyAt::Repeated => LogRecord::decode(record).map_err(prost_error)?.body,
    };
    attributes.clear();
    attributes.extend(spans.iter().map(|a| a.at(data)));
    Ok(RecordView {
        time_unix_nano: noted.time_unix_nano,
        observed_time_unix_nano: noted.observed_time_unix_nano,
        severity_number: noted.severity_number,
        severity_text: noted.severity_text.get(data),
        body,
        trace_id: noted.trace_id.get(data),
        span_id: noted.span_id.get(data),
        event_name: noted.event_name.get(data),
    })
}

/// What shaping does to one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeEdit {
    Keep,
    Remove,
    /// Its value replaced (the key and anything else it holds kept).
    /// Boxed: the edit is asked for every attribute of an edited record,
    /// and most are kept.
    Replace(Box<AnyValue>),
}

/// A record's body with its attributes edited in place: `edit` says, for
/// each attribute by key (its bytes), what happens to it; every other field is copied
/// as it came. No other part of the record is decoded.
pub fn edit_attributes(
    body: &[u8],
    edit: &dyn Fn(&[u8]) -> AttributeEdit,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.reserve(body.len());
    // What is kept as it came is copied in runs, up to the next attribute
    // removed or replaced, not field by field.
    let mut copied = 0;
    fields(body, |tag, wire, buf, at_key| {
        if tag != 6 {
            return skip(wire, tag, buf, RECURSION_LIMIT);
        }
        let inner = delimited(wire, buf)?;
        let what = edit(key_of(inner));
        if what == AttributeEdit::Keep {
            return Ok(());
        }
        out.extend_from_slice(&body[copied..offset(body, at_key)]);
        copied = offset(body, buf);
        match what {
            AttributeEdit::Keep | AttributeEdit::Remove => {}
            // The key as it came, the new value after it: nothing of the
            // attribute is decoded but its key.
            AttributeEdit::Replace(value) => replaced(inner, &value, out)?,
        }
        Ok(())
    })?;
    out.extend_from_slice(&body[copied..]);
    Ok(())
}

/// An attribute (its `KeyValue` body, `inner`) with its value replaced,
/// as a whole field: the key as it came, the new value after it; nothing
/// of the attribute is decoded but its key, unless it is in another form
/// than a key and a value.
fn replaced(inner: &[u8], value: &AnyValue, out: &mut Vec<u8>) -> Result<()> {
    match plain_key_value(inner) {
        Some((key, _)) => {
            let len = key_len(1)
                + encoded_len_varint(key.len() as u64)
                + key.len()
                + prost::encoding::message::encoded_len(2, value);
            encode_key(6, WireType::LengthDelimited, out);
            encode_varint(len as u64, out);
            put_field(1, key, out);
            prost::encoding::message::encode(2, value, out);
        }
        None => {
            let mut kv = KeyValue::decode(inner).map_err(prost_error)?;
            kv.value = Some(value.clone());
            prost::encoding::message::encode(6, &kv, out);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::convert::{Names, Needs, event, received_event, record_event};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        ArrayValue, EntityRef, InstrumentationScope, KeyValueList, any_value,
    };
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::logs::v1::{
        ResourceLogs as PbResourceLogs, ScopeLogs as PbScopeLogs,
    };
    use std::collections::BTreeMap;

    /// `ascii` is `is_ascii`: every length to past its word paths, one
    /// byte at 0x80 or more anywhere, or none.
    #[test]
    fn ascii_is_is_ascii() {
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(ascii(&plain), "{len}");
            for at in 0..len {
                for high in [0x80, 0xc3, 0xff] {
                    let mut bytes = plain.clone();
                    bytes[at] = high;
                    assert_eq!(ascii(&bytes), bytes.is_ascii(), "{len} {at} {high:#x}");
                    assert!(!ascii(&bytes));
                }
            }
        }
    }

    /// Reproducible numbers: a counter through foldhash's fixed hasher (a
    /// dependency already), seeded per test.
    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            use std::hash::BuildHasher;
            self.0 += 1;
            foldhash::fast::FixedState::with_seed(0x5eed).hash_one(self.0)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn value(rng: &mut Rng, depth: u32) -> AnyValue {
        use any_value::Value::*;
        let v = match rng.below(if depth > 2 { 5 } else { 8 }) {
            0 => StringValue(["", "x", "sk_live_1", "ünï", "12"][rng.below(5) as usize].into()),
            1 => BoolValue(rng.below(2) == 1),
            2 => IntValue(rng.next() as i64),
            // Not NaN, which no decoded message equals.
            3 => DoubleValue([0.5, -1e300, f64::INFINITY][rng.below(3) as usize]),
            4 => BytesValue((0..rng.below(5)).map(|i| i as u8).collect()),
            5 => ArrayValue(self::ArrayValue {
                values: (0..rng.below(3)).map(|_| value(rng, depth + 1)).collect(),
            }),
            6 => KvlistValue(KeyValueList {
                values: (0..rng.below(3)).map(|_| kv(rng, depth + 1)).collect(),
            }),
            _ => return AnyValue { value: None },
        };
        AnyValue { value: Some(v) }
    }

    /// Keys past 63 bytes, which the agent's edit filter puts in one
    /// bucket (`convert::splice_received`).
    pub(crate) const LONG_KEYS: [&str; 2] = [
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
    ];

    fn kv(rng: &mut Rng, depth: u32) -> KeyValue {
        let keys = [
            "secret",
            "event.name",
            "thread.id",
            "seq",
            "",
            LONG_KEYS[0],
            LONG_KEYS[1],
        ];
        KeyValue {
            // The long keys seldom: most tests are about the others.
            key: keys[match rng.below(12) {
                n @ 0..5 => n as usize,
                10 => 5,
                11 => 6,
                n => (n % 5) as usize,
            }]
            .into(),
            value: (rng.below(5) > 0).then(|| value(rng, depth)),
            key_strindex: (rng.below(4) == 0) as i32,
        }
    }

    fn log_record(rng: &mut Rng) -> LogRecord {
        LogRecord {
            time_unix_nano: rng.next() >> rng.below(64),
            observed_time_unix_nano: rng.below(3),
            severity_number: rng.below(30) as i32 - 2,
            severity_text: ["", "INFO"][rng.below(2) as usize].into(),
            body: (rng.below(2) == 0).then(|| value(rng, 0)),
            attributes: (0..rng.below(5)).map(|_| kv(rng, 0)).collect(),
            dropped_attributes_count: rng.below(2) as u32,
            flags: rng.below(3) as u32,
            trace_id: (0..rng.below(2) * 16).map(|i| i as u8).collect(),
            span_id: (0..rng.below(2) * 8).map(|i| i as u8).collect(),
            event_name: ["", "LogWelcomeBanner", "E"][rng.below(3) as usize].into(),
        }
    }

    fn request(rng: &mut Rng) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: (0..1 + rng.below(3))
                .map(|_| PbResourceLogs {
                    resource: (rng.below(3) > 0).then(|| Resource {
                        attributes: (0..rng.below(3)).map(|_| kv(rng, 0)).collect(),
                        dropped_attributes_count: rng.below(2) as u32,
                        entity_refs: (0..rng.below(2))
                            .map(|_| EntityRef {
                                schema_url: "s".into(),
                                r#type: "host".into(),
                                id_keys: vec!["host.id".into()],
                                description_keys: vec![],
                            })
                            .collect(),
                    }),
                    scope_logs: (0..rng.below(3))
                        .map(|_| PbScopeLogs {
                            scope: (rng.below(2) == 0).then(|| InstrumentationScope {
                                name: "lib".into(),
                                version: "1".into(),
                                attributes: (0..rng.below(2)).map(|_| kv(rng, 0)).collect(),
                                dropped_attributes_count: 0,
                            }),
                            log_records: (0..rng.below(4)).map(|_| log_record(rng)).collect(),
                            schema_url: ["", "https://x"][rng.below(2) as usize].into(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        }
    }

    /// `n` generated requests, every third mutated, as many as parse.
    pub(crate) fn parsed_requests(mut rng: Rng, n: usize) -> impl Iterator<Item = Request> {
        (0..n).filter_map(move |i| {
            let payload = request(&mut rng).encode_to_vec();
            let bytes = if i % 3 == 2 {
                mutate(&mut rng, &payload)
            } else {
                payload
            };
            Request::parse(Bytes::from(bytes)).ok()
        })
    }

    /// A payload changed as a sender's bug or a hostile sender would.
    fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(b.len() as u64 + 1) as usize;
            match rng.below(6) {
                0 => b.truncate(at),
                1 if at < b.len() => b[at] ^= 1 << rng.below(8),
                2 if at < b.len() => {
                    b[at] = [0x00, 0x80, 0xff, 0x0b, 0x0c, 0x0f][rng.below(6) as usize]
                }
                3 => b.insert(at, rng.next() as u8),
                4 if at < b.len() => {
                    b.remove(at);
                }
                // An unknown field, a group, or an end group.
                _ => {
                    let tail = b.split_off(at);
                    let field = [
                        &[0xf8, 0x01, 0x05][..],
                        &[0xfa, 0x01, 0x01, 0x00],
                        &[0xfb, 0x01, 0x08, 0x01, 0xfc, 0x01],
                        &[0xfc, 0x01],
                        &[0xfd, 0x01, 1, 2, 3, 4],
                    ][rng.below(5) as usize];
                    b.extend_from_slice(field);
                    b.extend_from_slice(&tail);
                }
            }
        }
        b
    }

    /// Everything the index says, against prost's own decode.
    fn agrees(bytes: &[u8]) {
        let ours = Request::parse(Bytes::copy_from_slice(bytes));
        let theirs = ExportLogsServiceRequest::decode(bytes);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{ours:?} vs {theirs:?} on {bytes:02x?}"
        );
        let (Ok(ours), Ok(theirs)) = (ours, theirs) else {
            return;
        };
        let records: Vec<LogRecord> = theirs
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| sl.log_records.clone())
            .collect();
        // Compared as prost encodes them: a flipped bit may make a NaN,
        // which equals nothing.
        let same = |a: &dyn Fn() -> Vec<u8>, b: Vec<u8>| assert_eq!(a(), b);
        assert_eq!(ours.len(), records.len());
        for (k, record) in records.iter().enumerate() {
            let expected = record.encode_to_vec();
            same(
                &|| LogRecord::decode(ours.record(k)).unwrap().encode_to_vec(),
                expected,
            );
            same_events(ours.record(k), record);
            same_noted(&ours, k, record);
        }
        for (ri, rl) in theirs.resource_logs.iter().enumerate() {
            let encoded = |r: Option<Resource>| r.map(|r| r.encode_to_vec());
            assert_eq!(encoded(ours.resource(ri)), encoded(rl.resource.clone()));
        }
        // Forwarded unchanged, it is the same request.
        let mut out = Vec::new();
        ours.assemble(&[], &Edited::default(), &mut Vec::new(), |b, _| {
            put_field(1, &b, &mut out)
        });
        same(
            &|| {
                ExportLogsServiceRequest::decode(&out[..])
                    .unwrap()
                    .encode_to_vec()
            },
            theirs.encode_to_vec(),
        );
    }

    /// The readers inlined for speed (`key`, `uvarint`, the fixed
    /// widths, `any_value`'s short forms) against prost's and the walk:
    /// every key and varint of one or two bytes before tails that end a
    /// varint, continue it or overflow it, and values of every short form,
    /// cut, padded, mistyped and not UTF-8, at the recursion limit too.
    #[test]
    fn inlined_readers_read_as_prost_and_the_walk_read() {
        let tails: [&[u8]; 5] = [
            &[],
            &[0x00],
            &[0x80],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            &[0xff; 10],
        ];
        let mut prefixes: Vec<Vec<u8>> = (0..=255u8).map(|a| vec![a]).collect();
        prefixes.extend((0..=0xffffu16).map(|ab| ab.to_le_bytes().to_vec()));
        for prefix in &prefixes {
            for tail in tails {
                let bytes = [&prefix[..], tail].concat();
                let (mut ours, mut theirs) = (&bytes[..], &bytes[..]);
                let got = uvarint(&mut ours);
                let want = decode_varint(&mut theirs).map_err(prost_error);
                assert_eq!((got, ours.len()), (want, theirs.len()), "{bytes:02x?}");
                let (mut ours, mut theirs) = (&bytes[..], &bytes[..]);
                let got = key(&mut ours);
                let want = decode_key(&mut theirs).map_err(prost_error);
                assert_eq!((got, ours.len()), (want, theirs.len()), "{bytes:02x?}");
                for wire in [
                    WireType::SixtyFourBit,
                    WireType::ThirtyTwoBit,
                    WireType::Varint,
                ] {
                    let (mut a, mut b) = (&bytes[..], &bytes[..]);
                    let got = fixed64(wire, &mut a);
                    let want = check_wire_type(WireType::SixtyFourBit, wire)
                        .map_err(prost_error)
                        .and_then(|()| {
                            let v = b.get(..8).ok_or_else(underflow)?;
                            let v = u64::from_le_bytes(v.try_into().unwrap());
                            b = &b[8..];
                            Ok(v)
                        });
                    assert_eq!((got, a.len()), (want, b.len()), "{bytes:02x?}");
                    let (mut a, mut b) = (&bytes[..], &bytes[..]);
                    let got = fixed32(wire, &mut a);
                    let want = check_wire_type(WireType::ThirtyTwoBit, wire)
                        .map_err(prost_error)
                        .and_then(|()| {
                            let v = b.get(..4).ok_or_else(underflow)?;
                            let v = u32::from_le_bytes(v.try_into().unwrap());
                            b = &b[4..];
                            Ok(v)
                        });
                    assert_eq!((got, a.len()), (want, b.len()), "{bytes:02x?}");
                }
            }
        }
        // Values: a string field (1) or an int field (3) and what follows.
        let texts: [&[u8]; 8] = [
            b"",
            b"ok",
            "é".as_bytes(),
            &[0xff],
            &[0xc3],
            &[b'a'; 127],
            // Its length's first byte, 0x80, alone, is its length.
            &[b'a'; 128],
            &[b'a'; 200],
        ];
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for text in texts {
            let mut field = Vec::new();
            prost::encoding::string::encode(
                1,
                &String::from_utf8_lossy(text).into_owned(),
                &mut field,
            );
            bodies.push(field);
            for len in [
                text.len(),
                text.len() + 1,
                text.len().saturating_sub(1),
                0x80,
            ] {
                bodies.push([&[0x0a, len as u8][..], text].concat());
            }
        }
        for prefix in prefixes.iter().filter(|p| p.len() == 2) {
            bodies.push([&[0x18][..], prefix].concat());
            bodies.push([&[0x10][..], prefix].concat());
        }
        for tail in tails {
            bodies.push([&[0x18][..], tail].concat());
            bodies.push([&[0x18, 0x96, 0x01][..], tail].concat());
        }
        for body in &bodies {
            for extra in [
                &[][..],
                &[0x18, 0x01],
                &[0x0a],
                &[0xf8, 0x01, 0x05],
                &[0x0b],
            ] {
                let body = [&body[..], extra].concat();
                for ctx in [0, 1, RECURSION_LIMIT] {
                    assert_eq!(
                        any_value(&body, ctx),
                        any_value_walk(&body, ctx),
                        "{body:02x?} at {ctx}"
                    );
                }
            }
        }
    }

    /// A record's attribute read inline as the walk reads it: keys and
    /// values cut, padded, repeated, mistyped, not UTF-8, of 127 and 128
    /// bytes, at the recursion limit.
    #[test]
    fn attributes_inline_read_as_the_walk_reads_them() {
        let mut rng = Rng(13 << 32);
        let keys: [&[u8]; 5] = [b"", b"status", "é".as_bytes(), &[0xff], &[b'k'; 127]];
        let values: [&[u8]; 6] = [
            &[],
            &[0x0a, 0x02, b'o', b'k'],
            &[0x18, 0x96, 0x01],
            &[0x0a, 0x01, 0xff],
            &[0x0a, 0x7e, b'v'],
            &[0x21, 1, 2, 3, 4, 5, 6, 7, 8],
        ];
        let mut bodies = Vec::new();
        for key in keys {
            for value in values {
                let mut body = Vec::new();
                put_field(1, key, &mut body);
                put_field(2, value, &mut body);
                bodies.push(body.clone());
                for extra in [&[0x12, 0x00][..], &[0x18, 0x01], &[0x0a, 0x00], &[0x12]] {
                    bodies.push([&body[..], extra].concat());
                }
                let mut long = [&body[..], &[b'v'; 80]].concat();
                long[body.len() - value.len() - 1] = (value.len() + 80) as u8;
                bodies.push(long);
                for _ in 0..20 {
                    bodies.push(mutate(&mut rng, &body));
                }
            }
        }
        for body in &bodies {
            for ctx in [0, 1, 2, RECURSION_LIMIT] {
                assert_eq!(
                    attribute_span(body, body, ctx),
                    attribute_span_walk(body, body, ctx),
                    "{body:02x?} at {ctx}"
                );
            }
        }
    }

    #[test]
    fn parse_accepts_what_prost_accepts() {
        let mut rng = Rng(7 << 32);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3000 {
            let bytes = request(&mut rng).encode_to_vec();
            agrees(&bytes);
            for _ in 0..8 {
                let bad = mutate(&mut rng, &bytes);
                agrees(&bad);
                match ExportLogsServiceRequest::decode(&bad[..]) {
                    Ok(_) => accepted += 1,
                    Err(_) => refused += 1,
                }
            }
        }
        // Both kinds of answer were exercised.
        assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
    }

    /// Every truncation of a valid request (a cut connection) is refused
    /// exactly when prost refuses it.
    #[test]
    fn truncations_are_refused_as_prost_refuses_them() {
        let mut rng = Rng(11 << 32);
        for _ in 0..50 {
            let bytes = request(&mut rng).encode_to_vec();
            for cut in 0..bytes.len() {
                agrees(&bytes[..cut]);
            }
        }
    }

    /// Values nested around prost's recursion limit, in arrays and in
    /// groups of unknown fields.
    #[test]
    fn nesting_is_limited_as_prost_limits_it() {
        for depth in 90..105 {
            let mut v = AnyValue {
                value: Some(any_value::Value::IntValue(1)),
            };
            for _ in 0..depth {
                v = AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
                };
            }
            let r = ExportLogsServiceRequest {
                resource_logs: vec![PbResourceLogs {
                    scope_logs: vec![PbScopeLogs {
                        log_records: vec![LogRecord {
                            body: Some(v),
                            ..LogRecord::default()
                        }],
                        ..PbScopeLogs::default()
                    }],
                    ..PbResourceLogs::default()
                }],
            };
            agrees(&r.encode_to_vec());
        }
        for depth in 95..105 {
            // Field 9 as a group, `depth` times, at the top level.
            let mut bytes = vec![0x4b; depth];
            bytes.extend(std::iter::repeat_n(0x4c, depth));
            agrees(&bytes);
            // A mismatched end.
            bytes.push(0x4c);
            agrees(&bytes);
        }
    }

    /// What the programs may read of a record, in each way it can be
    /// asked.
    pub(crate) fn all_needs() -> Vec<Needs> {
        let names = |n: &[&str]| Names::from_iter(n.iter().map(|s| s.to_string()));
        vec![
            Needs {
                everything: true,
                ..Needs::default()
            },
            Needs {
                events: names(&["LogWelcomeBanner"]),
                keys: names(&["secret", "seq"]),
                ..Needs::default()
            },
            Needs {
                events: names(&["E", "LogWelcomeBanner"]),
                all_attributes: true,
                ..Needs::default()
            },
            Needs::default(),
        ]
    }

    /// A record read in place ([`crate::convert::event`]) is the event
    /// the decoded record gives ([`crate::convert::record_event`], the
    /// engine's mapping of prost's message), for every way the programs
    /// may read it, errors included.
    fn same_events(bytes: &[u8], record: &LogRecord) {
        let resource: BTreeMap<String, serde_json::Value> =
            BTreeMap::from([("service.name".to_string(), "svc".into())]);
        for needs in all_needs() {
            let mut scratch = vec![AttributeAt::Other(b"\x0a\x01x")];
            let in_place = event(bytes, &resource, &needs, &mut scratch);
            let decoded = record_event(record.clone(), &resource, &needs);
            assert_eq!(in_place, decoded, "{needs:?} on {record:?}");
        }
    }

    /// What [`Request::parse`] noted of record `k` ([`Request::view`]) is
    /// what walking its bytes reads ([`read_record`]), attributes
    /// included, and the event it gives ([`received_event`]) is the
    /// decoded record's, for every way the programs may read it.
    fn same_noted(request: &Request, k: usize, record: &LogRecord) {
        let (mut noted, mut walked) = (vec![AttributeAt::Other(b"")], Vec::new());
        let mut view = request.view(k, &mut noted).unwrap();
        let mut read = read_record(request.record(k), &mut walked).unwrap();
        // Bodies compared as prost encodes them: a flipped bit may make a
        // NaN, which equals nothing.
        let body = |v: &mut RecordView| v.body.take().map(|b| b.encode_to_vec());
        assert_eq!(body(&mut view), body(&mut read));
        assert_eq!(view, read);
        assert_eq!(noted, walked);
        let resource: BTreeMap<String, serde_json::Value> =
            BTreeMap::from([("service.name".to_string(), "svc".into())]);
        for needs in all_needs() {
            let received = received_event(request, k, &resource, &needs, &mut noted);
            let decoded = record_event(record.clone(), &resource, &needs);
            assert_eq!(received, decoded, "{needs:?} on {record:?}");
        }
    }

    #[test]
    fn records_read_in_place_are_the_decoded_records_events() {
        let mut rng = Rng(3 << 32);
        for _ in 0..2000 {
            let record = log_record(&mut rng);
            same_events(&record.encode_to_vec(), &record);
        }
    }

    /// A record with two bodies (which prost merges) is read by walking
    /// it; an attribute with two values (merged too) is decoded whole;
    /// both give what prost's decode gives.
    #[test]
    fn records_noted_in_other_forms_read_as_decoded() {
        let text = |s: &str| AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        };
        let record = LogRecord {
            event_name: "LogWelcomeBanner".into(),
            body: Some(text("a")),
            attributes: vec![KeyValue {
                key: "secret".into(),
                value: Some(text("s")),
                key_strindex: 0,
            }],
            ..LogRecord::default()
        };
        let mut bytes = record.encode_to_vec();
        let int = AnyValue {
            value: Some(any_value::Value::IntValue(3)),
        };
        let mut kv = KeyValue {
            key: "seq".into(),
            value: Some(text("x")),
            key_strindex: 0,
        }
        .encode_to_vec();
        prost::encoding::message::encode(2, &int, &mut kv);
        put_field(6, &kv, &mut bytes);
        let request_of = |record: &[u8]| {
            let mut scope = Vec::new();
            put_field(2, record, &mut scope);
            let mut resource_logs = Vec::new();
            put_field(2, &scope, &mut resource_logs);
            let mut sent = Vec::new();
            put_field(1, &resource_logs, &mut sent);
            Request::parse(Bytes::from(sent)).unwrap()
        };
        let decoded = LogRecord::decode(&bytes[..]).unwrap();
        let request = request_of(&bytes);
        assert!(matches!(request.attributes[1], AttributeSpan::Other(_)));
        same_noted(&request, 0, &decoded);
        // A second body.
        prost::encoding::message::encode(5, &int, &mut bytes);
        let decoded = LogRecord::decode(&bytes[..]).unwrap();
        let request = request_of(&bytes);
        let noted = request.records[0].noted.as_ref().unwrap();
        assert_eq!(noted.body, BodyAt::Repeated);
        same_noted(&request, 0, &decoded);
    }

    /// Splicing attribute edits gives the record that decoding, editing
    /// and encoding gives.
    #[test]
    fn attribute_edits_splice_as_decoding_would() {
        let mut rng = Rng(5 << 32);
        let replacement = AnyValue {
            value: Some(any_value::Value::StringValue("h:12".into())),
        };
        for _ in 0..500 {
            let record = log_record(&mut rng);
            let bytes = record.encode_to_vec();
            let edit = |k: &[u8]| match k {
                b"secret" => AttributeEdit::Remove,
                b"seq" => AttributeEdit::Replace(Box::new(replacement.clone())),
                _ => AttributeEdit::Keep,
            };
            let mut out = Vec::new();
            edit_attributes(&bytes, &edit, &mut out).unwrap();
            let mut expected = record.clone();
            expected.attributes.retain(|kv| kv.key != "secret");
            for kv in expected.attributes.iter_mut().filter(|kv| kv.key == "seq") {
                kv.value = Some(replacement.clone());
            }
            assert_eq!(LogRecord::decode(&out[..]).unwrap(), expected);
        }
    }

    /// An edit of each kind, by key: `secret` removed, `seq` and the empty
    /// key replaced, the rest kept.
    fn an_edit(key: &[u8]) -> AttributeEdit {
        match key {
            b"secret" => AttributeEdit::Remove,
            b"seq" | b"" => AttributeEdit::Replace(Box::new(AnyValue {
                value: Some(any_value::Value::StringValue("h:12".into())),
            })),
            _ => AttributeEdit::Keep,
        }
    }

    /// Splicing by what parse noted ([`Request::edit_attributes`]) gives
    /// the bytes that walking the record gives ([`edit_attributes`]), over
    /// generated and mutated requests (attributes in other forms, unknown
    /// fields and groups beside them included).
    #[test]
    fn attribute_edits_by_notes_are_the_walks() {
        let edit = an_edit;
        let mut records = 0;
        for request in parsed_requests(Rng(9 << 32), 3000) {
            for k in 0..request.len() {
                let (mut noted, mut walked) = (Vec::new(), Vec::new());
                let by_notes = request.edit_attributes(k, &edit, &mut noted).unwrap();
                let by_walk = edit_attributes(request.record(k), &edit, &mut walked);
                assert_eq!(by_notes, by_walk);
                assert_eq!(noted, walked);
                records += 1;
            }
        }
        assert!(records > 1000, "{records}");
    }

    /// Edits kept as cuts ([`Request::splice_attributes`]) leave as the
    /// records made anew by [`Request::edit_attributes`] leave, beside
    /// suppressed, rewritten and untouched records, over generated and
    /// mutated requests.
    #[test]
    fn spliced_records_leave_as_records_made_anew() {
        let edit = an_edit;
        let mut rng = Rng(11 << 32);
        let (mut spliced_records, mut requests) = (0, 0);
        for request in parsed_requests(Rng(10 << 32), 2000) {
            let n = request.len();
            let suppressed: Vec<bool> = (0..n).map(|_| rng.below(5) == 0).collect();
            let (mut spliced, mut anew) = (Edited::default(), Edited::default());
            for k in 0..n {
                if rng.below(6) == 0 {
                    // Made anew by another program, in both.
                    spliced.set_whole(k, b"\x62\x01x".to_vec());
                    anew.set_whole(k, b"\x62\x01x".to_vec());
                    continue;
                }
                let mut bytes = Vec::new();
                let made = request.edit_attributes(k, &edit, &mut bytes).unwrap();
                let cut = request.splice_attributes(k, edit, &mut spliced).unwrap();
                assert_eq!(made, cut);
                if made.is_ok() && bytes != request.record(k) {
                    anew.set_whole(k, bytes.clone());
                    spliced_records += 1;
                }
                if made.is_ok() {
                    assert_eq!(spliced.record(&request, k), &bytes[..]);
                }
            }
            let assembled = |edited: &Edited| {
                let mut bodies = Vec::new();
                request.assemble(&suppressed, edited, &mut Vec::new(), |b, n| {
                    bodies.push((b, n))
                });
                bodies
            };
            assert_eq!(assembled(&spliced), assembled(&anew));
            requests += 1;
        }
        assert!(
            requests > 500 && spliced_records > 500,
            "{requests} {spliced_records}"
        );
    }

    /// Untouched records leave as the bytes that came, fields this agent
    /// does not know included, also beside a record that was edited.
    #[test]
    fn untouched_records_leave_verbatim() {
        let mut record = LogRecord {
            event_name: "E".into(),
            ..LogRecord::default()
        }
        .encode_to_vec();
        // Field 100, a varint: unknown to prost's messages, which drop it.
        record.extend_from_slice(&[0xa0, 0x06, 0x2a]);
        let mut scope = Vec::new();
        put_field(2, &record, &mut scope);
        put_field(2, &record, &mut scope);
        let mut resource_logs = Vec::new();
        put_field(2, &scope, &mut resource_logs);
        let mut sent = Vec::new();
        put_field(1, &resource_logs, &mut sent);
        let request = Request::parse(Bytes::from(sent)).unwrap();
        assert_eq!(request.record(0), &record[..]);
        let mut bodies = Vec::new();
        request.assemble(&[], &Edited::default(), &mut Vec::new(), |b, _| {
            bodies.push(b)
        });
        assert_eq!(bodies, [Bytes::from(resource_logs)]);
        // The first record edited: the second is still as it came.
        let mut edited = Edited::default();
        edited.set_whole(0, b"\x62\x01x".to_vec());
        let mut bodies = Vec::new();
        request.assemble(&[], &edited, &mut Vec::new(), |b, _| bodies.push(b));
        let mut expected_scope = Vec::new();
        put_field(2, b"\x62\x01x", &mut expected_scope);
        put_field(2, &record, &mut expected_scope);
        let mut expected = Vec::new();
        put_field(2, &expected_scope, &mut expected);
        assert_eq!(bodies, [Bytes::from(expected)]);
    }

    /// A changed batch leaves in its own structure without what was
    /// suppressed, with what was edited, and a record with a resource of
    /// its own in a resource of its own; untouched resources leave as the
    /// bytes that came.
    #[test]
    fn assemble_splices_changes_into_the_received_structure() {
        let rec = |name: &str| LogRecord {
            event_name: name.into(),
            ..LogRecord::default()
        };
        let resource = |service: &str| Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(service.into())),
                }),
                key_strindex: 0,
            }],
            ..Resource::default()
        };
        let scope = |name: &str, records: Vec<LogRecord>| PbScopeLogs {
            scope: Some(InstrumentationScope {
                name: name.into(),
                ..InstrumentationScope::default()
            }),
            log_records: records,
            schema_url: "u".into(),
        };
        let sent = ExportLogsServiceRequest {
            resource_logs: vec![
                PbResourceLogs {
                    resource: Some(resource("a")),
                    scope_logs: vec![
                        scope("s1", vec![rec("0"), rec("1")]),
                        scope("s2", vec![rec("2")]),
                    ],
                    schema_url: "r".into(),
                },
                PbResourceLogs {
                    resource: Some(resource("b")),
                    scope_logs: vec![scope("s3", vec![rec("3"), rec("4")])],
                    schema_url: String::new(),
                },
            ],
        };
        let request = Request::parse(Bytes::from(sent.encode_to_vec())).unwrap();
        // 0 suppressed, 1 edited, 2 suppressed (its scope goes), 3 and 4
        // untouched but for 4's resource.
        let suppressed = [true, false, true, false, false];
        let mut edited = Edited::default();
        edited.set_whole(1, rec("1'").encode_to_vec());
        let mut own = vec![(4, resource("h:1"))];
        let mut out = Vec::new();
        let mut counts = Vec::new();
        request.assemble(&suppressed, &edited, &mut own, |b, n| {
            counts.push(n);
            put_field(1, &b, &mut out);
        });
        let got = ExportLogsServiceRequest::decode(&out[..]).unwrap();
        let expected = ExportLogsServiceRequest {
            resource_logs: vec![
                PbResourceLogs {
                    resource: Some(resource("a")),
                    scope_logs: vec![scope("s1", vec![rec("1'")])],
                    schema_url: "r".into(),
                },
                PbResourceLogs {
                    resource: Some(resource("b")),
                    scope_logs: vec![scope("s3", vec![rec("3")])],
                    schema_url: String::new(),
                },
                PbResourceLogs {
                    resource: Some(resource("h:1")),
                    scope_logs: vec![scope("s3", vec![rec("4")])],
                    schema_url: String::new(),
                },
            ],
        };
        assert_eq!(got, expected);
        assert_eq!(counts, [1, 1, 1]);
        assert!(own.is_empty());
    }
}
