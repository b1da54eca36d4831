//! The common shape of an OTLP/JSON export read by walking its bytes, in
//! front of the serde visitors of [`super`] ([`super::read_export`]).
//!
//! serde_json's `Deserializer` goes through a `Visitor` and a `MapAccess`
//! per object, and a `Cow` per key; an export is mostly small objects
//! (`{"key":..,"value":{"stringValue":..}}`), and that machinery cost
//! three quarters of an export line's reading (docs/performance.md). This
//! reader writes the same [`Export`] the visitors write, by the same
//! rules in the same order, for the lines it fully understands: strings
//! without escapes or control characters, numbers (a float's parsed by
//! serde_json), `true`, `false`, `null`, objects and arrays nested no
//! deeper than [`DEPTH`] below a skipped key, JSON whitespace. Anything
//! else (an escape, a key starting with `$`, anything that is not JSON
//! or not of the shape) gives `None`, and the visitors
//! read the line from its start: they stay the reader of record, and this
//! one never has to say what is wrong with a line. A test holds the two to
//! the same [`Export`] on generated and mutated exports.

use std::borrow::Cow;

use super::{Any, Export, Rec};
use crate::event::{nanos_text, severity_number};

/// How deep a skipped value may nest before the line is left to the
/// visitors (serde_json's own limit is 128 levels, the export's below it).
const DEPTH: u32 = 32;

/// An export line read by its bytes into `ex` (empty before); `None` (and
/// `ex` partly written) for anything but the common shape.
pub(super) fn read<'a>(line: &'a str, ex: &mut Export<'a>) -> Option<()> {
    let mut c = Cursor {
        text: line,
        bytes: line.as_bytes(),
        at: 0,
    };
    let mut seen = false;
    c.object(|c, key| match key {
        "resourceLogs" if !seen => {
            seen = true;
            c.array(|c| resource_log(c, ex))
        }
        "resourceLogs" | "resource_logs" => None,
        _ => c.skip(0),
    })?;
    c.space();
    (seen && c.at == c.bytes.len()).then_some(())
}

/// One `resourceLogs` element (`ResourceLogObject`).
fn resource_log<'a>(c: &mut Cursor<'a>, ex: &mut Export<'a>) -> Option<()> {
    let resource = ex.resources.len();
    ex.resources.push((0, 0));
    let mut scopes = false;
    c.object(|c, key| match key {
        "resource" => {
            let range = match c.peek()? {
                b'n' => c.null().map(|()| (0, 0))?,
                _ => {
                    let mut range = (0, 0);
                    c.object(|c, key| match key {
                        "attributes" => {
                            range = key_values(c, ex)?;
                            Some(())
                        }
                        _ => c.skip(0),
                    })?;
                    range
                }
            };
            *ex.resources.get_mut(resource)? = range;
            Some(())
        }
        "scopeLogs" if !scopes => {
            scopes = true;
            c.or_null(|c| c.array(|c| scope(c, ex, resource)))
        }
        "scopeLogs" | "scope_logs" => None,
        _ => c.skip(0),
    })
}

/// One `scopeLogs` element (`ScopeObject`) of resource `resource`.
fn scope<'a>(c: &mut Cursor<'a>, ex: &mut Export<'a>, resource: usize) -> Option<()> {
    let mut records = false;
    c.object(|c, key| match key {
        "logRecords" if !records => {
            records = true;
            c.or_null(|c| c.array(|c| record(c, ex, resource)))
        }
        "logRecords" | "log_records" => None,
        _ => c.skip(0),
    })
}

/// One log record (`RecordObject`).
fn record<'a>(c: &mut Cursor<'a>, ex: &mut Export<'a>, resource: usize) -> Option<()> {
    let mut r = Rec {
        resource,
        ..Rec::default()
    };
    // Empty texts are absent, as decoding reads them.
    let text = |s: Option<&'a str>| s.filter(|s| !s.is_empty()).map(Cow::Borrowed);
    c.object(|c, key| {
        match key {
            "timeUnixNano" => r.time = c.nanos()?,
            "observedTimeUnixNano" => r.observed = c.nanos()?,
            "severityNumber" => r.severity = c.severity()?,
            "severityText" => r.severity_text = text(c.opt_text()?),
            "traceId" => r.trace_id = text(c.opt_text()?),
            "spanId" => r.span_id = text(c.opt_text()?),
            "eventName" => r.name = text(c.opt_text()?),
            "body" => {
                r.body = match c.any()? {
                    Any::Null => None,
                    Any::Str(s) => Some(s),
                    // Kept as its JSON text (`body_text`).
                    other => Some(Cow::Owned(other.to_json().to_string())),
                }
            }
            "attributes" => r.attrs = key_values(c, ex)?,
            "time_unix_nano"
            | "observed_time_unix_nano"
            | "severity_number"
            | "severity_text"
            | "trace_id"
            | "span_id"
            | "event_name" => return None,
            _ => c.skip(0)?,
        }
        Some(())
    })?;
    ex.records.push(r);
    Some(())
}

/// A list of `KeyValue`s (`null`: none) appended to the export's
/// attributes: its range there (`KeyValues`).
fn key_values<'a>(c: &mut Cursor<'a>, ex: &mut Export<'a>) -> Option<(usize, usize)> {
    let start = ex.attrs.len();
    c.or_null(|c| {
        c.array(|c| {
            let start = c.at;
            if let Some((key, value)) = c.compact_key_value() {
                ex.attrs.push((Cow::Borrowed(key), value));
                return Some(());
            }
            c.at = start;
            let (mut key, mut value) = (None, Any::Null);
            c.object(|c, k| {
                match k {
                    "key" => key = Some(c.string()?),
                    "value" => value = c.any()?,
                    _ => c.skip(0)?,
                }
                Some(())
            })?;
            ex.attrs.push((Cow::Borrowed(key?), value));
            Some(())
        })
    })?;
    Some((start, ex.attrs.len()))
}

/// A position in an export line.
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Past JSON whitespace (what serde_json skips: not all of Unicode's).
    #[inline(always)]
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.bytes.get(self.at).copied()
    }

    /// Past byte `b`, after whitespace; `None` where another comes.
    #[inline(always)]
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// Past `word` (a literal), which starts here.
    fn word(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn null(&mut self) -> Option<()> {
        self.word(b"null")
    }

    fn bool(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.word(b"true").map(|()| true),
            b'f' => self.word(b"false").map(|()| false),
            _ => None,
        }
    }

    /// A string without escapes or control characters, borrowed.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        self.string_rest()
    }

    /// The rest of a string whose opening quote is read.
    #[inline]
    fn string_rest(&mut self) -> Option<&'a str> {
        let start = self.at;
        let mut end = start;
        // Eight bytes at a time, as serde_json's `skip_to_escape` does.
        loop {
            let Some(chunk) = self.bytes.get(end..end + 8) else {
                end += self
                    .bytes
                    .get(end..)?
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
                break;
            };
            let found = special(u64::from_le_bytes(chunk.try_into().ok()?));
            if found != 0 {
                end += (found.trailing_zeros() / 8) as usize;
                break;
            }
            end += 8;
        }
        // A quote ends it; an escape or a control character is the
        // visitors' to read or refuse.
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Cut at ASCII quotes, so at character boundaries.
        self.text.get(start..end)
    }

    /// A `KeyValue` as exporters write it, compact:
    /// `{"key":"k","value":{"stringValue":"v"}}` (or an `intValue` or a
    /// `boolValue`), which the general path reads the same, key by key;
    /// `None` (the cursor anywhere) for any other form.
    #[inline]
    fn compact_key_value(&mut self) -> Option<(&'a str, Any<'a>)> {
        self.word(b"{\"key\":\"")?;
        let key = self.string_rest()?;
        self.word(b",\"value\":{\"")?;
        let value = match self.bytes.get(self.at)? {
            b's' => {
                self.word(b"stringValue\":\"")?;
                Any::Str(Cow::Borrowed(self.string_rest()?))
            }
            b'i' => {
                self.word(b"intValue\":")?;
                Any::Int(match self.peek()? {
                    b'"' => nanos_text(self.string()?)?,
                    _ => self.int()?,
                })
            }
            b'b' => {
                self.word(b"boolValue\":")?;
                Any::Bool(self.bool()?)
            }
            _ => return None,
        };
        self.word(b"}}")?;
        Some((key, value))
    }

    /// The text of a number (what serde_json would read as one, and
    /// anything else made of a number's characters), not checked.
    #[inline]
    fn number(&mut self) -> &'a str {
        self.space();
        let start = self.at;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.text.get(start..self.at).unwrap_or_default()
    }

    /// An integer an `i64` holds, as serde_json reads it for a visitor of
    /// integers (`-0` is a float to it, a leading zero or `+` an error).
    #[inline]
    fn int(&mut self) -> Option<i64> {
        let text = self.number();
        let digits = text.strip_prefix('-').unwrap_or(text);
        let plain = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && text != "-0";
        if plain { text.parse().ok() } else { None }
    }

    /// A number as serde_json reads it for a visitor of floats: by
    /// serde_json itself, whose parse of a float is not always the
    /// standard library's.
    fn float(&mut self) -> Option<f64> {
        serde_json::from_str(self.number()).ok()
    }

    /// `null` as `None`, or what `f` reads.
    #[inline]
    fn or_null(&mut self, f: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        match self.peek()? {
            b'n' => self.null(),
            _ => f(self),
        }
    }

    /// An object, each key's value read by `f` (which gets the key).
    /// A key starting with `$` (serde_json's private markers among them)
    /// leaves the line to the visitors.
    #[inline]
    fn object(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            if key.starts_with('$') {
                return None;
            }
            self.eat(b':')?;
            f(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array, each element read by `f`.
    #[inline]
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            f(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Any value of the common shape, checked and passed (`Skip`), at
    /// nesting `depth` below the key that is skipped.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'n' => self.null(),
            b't' | b'f' => self.bool().map(drop),
            b'{' => self.object(|c, _| c.skip(depth + 1)),
            b'[' => self.array(|c| c.skip(depth + 1)),
            _ => self.float().map(drop),
        }
    }

    /// A text field (`OptText`): a string, or `null`.
    fn opt_text(&mut self) -> Option<Option<&'a str>> {
        match self.peek()? {
            b'n' => self.null().map(|()| None),
            _ => self.string().map(Some),
        }
    }

    /// A time in nanoseconds (`Nanos`): an integer, a string of one, or
    /// `null` (absent).
    fn nanos(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'n' => self.null().map(|()| None),
            b'"' => nanos_text(self.string()?).map(Some),
            _ => self.int().map(Some),
        }
    }

    /// A `severityNumber` (`Severity`): 0 to 24, as a number, a string of
    /// one or a level's name; `null` is 0.
    fn severity(&mut self) -> Option<i64> {
        let n = match self.peek()? {
            b'n' => return self.null().map(|()| 0),
            b'"' => {
                let s = self.string()?;
                nanos_text(s).or_else(|| severity_number(s))?
            }
            _ => self.int()?,
        };
        (0..=24).contains(&n).then_some(n)
    }

    /// An `AnyValue` of one of the plain forms, or `null`.
    fn any(&mut self) -> Option<Any<'a>> {
        if self.peek()? == b'n' {
            return self.null().map(|()| Any::Null);
        }
        self.eat(b'{')?;
        let key = self.string()?;
        self.eat(b':')?;
        let v = match key {
            "stringValue" => Any::Str(Cow::Borrowed(self.string()?)),
            "boolValue" => Any::Bool(self.bool()?),
            "intValue" => Any::Int(match self.peek()? {
                b'"' => nanos_text(self.string()?)?,
                _ => self.int()?,
            }),
            // Not a string of one (`Double`): a float that is not finite
            // is no number to serde_json.
            "doubleValue" if self.peek()? != b'"' => Any::Float(self.float()?),
            // A second key: decoding picks by kind, not by order.
            _ => return None,
        };
        self.eat(b'}')?;
        Some(v)
    }
}

/// The bytes of `x` (eight of a string) that are a quote, a backslash or a
/// control character, each as its high bit; the lowest is the first such
/// byte (a higher one may be a false positive, borrowed from below it).
#[inline(always)]
fn special(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let quote = zero(x ^ (ONES * u64::from(b'"')));
    let backslash = zero(x ^ (ONES * u64::from(b'\\')));
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    (quote | backslash | control) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string scan eight bytes at a time stops where one byte at a
    /// time does: a quote, a backslash or a control character at each
    /// offset, after ASCII or non-ASCII bytes, near the end of the line.
    #[test]
    fn strings_end_where_a_byte_at_a_time_ends_them() {
        let fillers = ["a", "é", "日", "\u{7f}", "\u{ff}", " "];
        let stops = ["\"", "\\", "\n", "\u{1f}", "\u{0}"];
        for filler in fillers {
            for n in 0..20 {
                for stop in stops {
                    for tail in ["", "\"", "xxxxxxxxxxxxxxxxx\"", "\u{1}"] {
                        let line = format!("\"{}{stop}{tail}", filler.repeat(n));
                        let mut c = Cursor {
                            text: &line,
                            bytes: line.as_bytes(),
                            at: 0,
                        };
                        let got = c.string().map(|s| (s, c.at));
                        let body = &line[1..];
                        let end = body
                            .bytes()
                            .position(|b| b == b'"' || b == b'\\' || b < 0x20);
                        let expected = end
                            .filter(|&e| body.as_bytes()[e] == b'"')
                            .map(|e| (&body[..e], e + 2));
                        assert_eq!(got, expected, "{line:?}");
                    }
                }
            }
        }
    }
}
