//! `Engine::push_read`: one event its producer reads in place from its own
//! encoding ([`ReadInPlace`]; the agent: an OTLP log record's bytes as
//! received), without building its [`crate::event::InputEvent`].
//!
//! Building an event (a map of its attributes, a string per key and text
//! value) and then its record costs far more than most programs spend on
//! it. So the engine asks the producer for the standard fields and the
//! attributes its layouts declare, borrowed from the source, and builds
//! the record from them as the line lane does from a line
//! (`lines::push_row`: its values, and its slot row pointing into the
//! source, which the record keeps alive). The event is decoded only when
//! something reads what the record does not hold. An event of a layout the
//! lane does not read (a `dyn` or map field), one the producer does not
//! read in place, or one whose fields do not make its layout's record (a
//! field missing or of the wrong type) is decoded whole and run as
//! `Engine::push_event` runs it: decoding is the one definition of what an
//! event means, and says what is wrong with it.

use std::rc::Rc;

use smallvec::SmallVec;

use super::lines::push_row;
use super::{Decoded, Engine};
use crate::event::{ReadInPlace, Scalar};
use crate::output::{InputRef, ReadAt};
use crate::slots::STD_SLOTS;
use crate::value::{Record, Row, Typed, Value};

/// Attributes a layout declares, read without an allocation.
type Values<'a> = SmallVec<[Option<Scalar<'a>>; 8]>;

impl Engine {
    /// Feeds one event its producer reads in place: the same outputs as
    /// [`Engine::push_event`] of its decoded event.
    pub fn push_read<R: ReadInPlace + 'static>(&mut self, source: R) {
        let read = Rc::new(ReadAt::new(source));
        let (d, now) = match self.read_record(&read) {
            Some(done) => done,
            None => {
                let d = self.decode_event(read.decoded().clone());
                let now = d.input().time;
                (d, now)
            }
        };
        self.process_at(&d, now, None);
    }

    /// The event of `read` matched to its layout, with its record built
    /// from what the producer read, and its time; `None` where it is to be
    /// decoded whole (see the module's doc).
    fn read_record<R: ReadInPlace + 'static>(
        &self,
        read: &Rc<ReadAt<R>>,
    ) -> Option<(Decoded, i64)> {
        // Lanes off (`Engine::general`): the reference decodes every event.
        let plan = self.lines.as_ref()?;
        let mut values: Values<'_> = SmallVec::from_elem(None, plan.wanted.len());
        let std = read.source.read(&plan.wanted, &mut values)?;
        let now = std.time;
        let Some(&l) = std.name.and_then(|n| self.by_wire.get(n)) else {
            return Some((Decoded::Unhandled(InputRef::read(read.clone())), now));
        };
        let fields = plan.fields.get(l as usize)?.as_ref()?;
        let mut row = Vec::with_capacity(STD_SLOTS.len() + fields.len());
        // As the lane: values built now only where they are read anyway
        // (`lines::Plan::eager`); else from the event, if ever asked.
        let lazy = plan
            .records
            .get(l as usize)
            .and_then(Option::as_ref)
            .filter(|_| plan.eager.get(l as usize) == Some(&false));
        let input = InputRef::read(read.clone());
        let rec = match lazy {
            Some(declared) => {
                push_row(&std, fields, &values, &mut row, |_| {})?;
                let row = Row::Own(row.into_boxed_slice());
                Record::in_place(l, declared.clone(), None, input, row)
            }
            None => {
                let mut slots = Vec::with_capacity(fields.len());
                push_row(&std, fields, &values, &mut row, |v| {
                    slots.push(v.map_or(Value::None, Typed::to_value))
                })?;
                let rec = Record::new(l, slots, input);
                // A fresh record's row is unset: this is its first.
                let _ = rec.row.set(Some(Row::Own(row.into_boxed_slice())));
                rec
            }
        };
        Some((Decoded::Record(rec), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FlatLine, Input, InputEvent, decode_line};
    use crate::runtime::Options;
    use crate::runtime::fast::tests::{S, line, program};
    use crate::runtime::lines::tests::{COUNT, edited_and_undecoded, records_case, stream};

    /// The events of `input`: each line that is one event.
    fn events(input: &[String]) -> Vec<(String, InputEvent)> {
        input
            .iter()
            .filter_map(|l| match decode_line(l).as_slice() {
                [Input::Event(e)] => Some((l.clone(), e.clone())),
                _ => None,
            })
            .collect()
    }

    /// Events read in place give what their decoded events give on the
    /// general path: the outputs in order, and the counters.
    fn check(src: &str, input: &[String]) {
        let p = program(src);
        for lateness_ns in [0, 2 * S] {
            let o = Options {
                lateness_ns,
                ..Options::default()
            };
            let mut read = Engine::new(p.clone(), o.clone());
            let mut general = Engine::new(p.clone(), o).general();
            for (l, e) in events(input) {
                read.push_read(FlatLine(l));
                general.push_event(e);
            }
            read.finish(true);
            general.finish(true);
            assert_eq!(read.drain(), general.drain());
            assert_eq!(read.counters, general.counters);
        }
    }

    #[test]
    fn events_read_in_place_give_what_their_decoded_events_give() {
        check(COUNT, &stream());
        let (src, input) = records_case();
        check(src, &input);
    }

    /// An event whose egress only edits it stays undecoded until someone
    /// reads it; then it is its line's event.
    #[test]
    fn events_read_in_place_are_decoded_only_when_asked() {
        let src = "event Login { user: string, ip: string }\n\
                   redact Login.user with hash\n\
                   redact Login.ip with drop";
        let mut e = Engine::new(program(src), Options::default());
        for k in 0..20i64 {
            let l = line(
                "Login",
                k * S,
                &format!(r#""user":"u{k}","ip":"10.0.0.{k}""#),
            );
            e.push_read(FlatLine(l.clone()));
            let produced = e.drain_lazy();
            let [p] = produced.as_slice() else {
                panic!("expected one egress, got {produced:?}");
            };
            edited_and_undecoded(p, &l, 2);
        }
    }
}
