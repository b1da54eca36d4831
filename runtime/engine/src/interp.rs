//! The reference interpreter of the IR: the definition of what a program
//! means, kept simple enough to be obviously right. Other engines (the JIT)
//! must produce exactly what it produces.
//!
//! Expressions evaluate to [`Value`]s; statements run over a [`Frame`] of
//! locals, the processor's or machine instance's variables and the
//! instance's state slots. Emits and triggers are not performed here: they
//! are returned as [`Effect`]s, in order, for the runtime to apply budgets
//! to. Arithmetic that overflows, division by zero and unreadable files stop
//! the handler with a [`Fault`], which the runtime counts; nothing panics.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hasher;
use std::rc::Rc;

use dtc_ir::*;
use serde_json::Value as Json;

use crate::output::Text;
use crate::value::{Key, Record, Value, format_duration};

/// Why a handler stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Overflow(&'static str),
    DivisionByZero,
    Io(String),
    Regex(String),
    /// A map variable is at its maximum and a new key was refused.
    MapFull(u64),
    /// The IR asked for something the verifier should have refused.
    Invalid(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Overflow(op) => write!(f, "integer overflow in `{op}`"),
            Fault::DivisionByZero => f.write_str("division by zero"),
            Fault::Io(e) => write!(f, "{e}"),
            Fault::Regex(e) => write!(f, "invalid regular expression: {e}"),
            Fault::MapFull(n) => {
                write!(f, "a map is full ({n} entries); the new key was not stored")
            }
            Fault::Invalid(e) => write!(f, "invalid program: {e}"),
        }
    }
}

/// An emit or trigger a handler asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Emit {
        event: u32,
        slots: Vec<Value>,
        budget: Budget,
        site: u32,
    },
    Trigger {
        action: String,
        args: Vec<(String, Value)>,
        budget: Budget,
        site: u32,
    },
}

/// What the interpreter asks of the runtime around it.
pub trait World {
    /// Whether the instance of `machine` that `event` belongs to is in
    /// `state`.
    fn in_state(&self, machine: u32, state: u32, event: &Record) -> bool;
}

/// The state a body runs over.
pub struct Frame<'f> {
    pub event: Option<&'f Record>,
    pub row: Option<&'f [Value]>,
    pub locals: Vec<Value>,
    pub vars: &'f mut [Value],
    /// The definitions of `vars`, for the bounds of map variables.
    pub var_defs: &'f [VarDef],
    pub slots: &'f mut [Value],
}

impl<'f> Frame<'f> {
    pub fn new(
        event: Option<&'f Record>,
        n_locals: u32,
        vars: &'f mut [Value],
        var_defs: &'f [VarDef],
        slots: &'f mut [Value],
    ) -> Frame<'f> {
        Frame {
            event,
            row: None,
            // Most guards and bodies have no locals; `vec!` would still
            // cost a call.
            locals: if n_locals == 0 {
                Vec::new()
            } else {
                vec![Value::None; n_locals as usize]
            },
            vars,
            var_defs,
            slots,
        }
    }
}

enum Flow {
    Next,
    Return(Value),
}

/// Runs IR for one event.
pub struct Interp<'a> {
    pub program: &'a Program,
    pub world: &'a dyn World,
    /// Seed of `sample` and the sampling stages.
    pub seed: u64,
    /// The event's sequence number in the input.
    pub seq: u64,
    pub hash_key: (u64, u64),
    pub regexes: &'a RefCell<HashMap<String, Rc<regex::Regex>>>,
    pub effects: Vec<Effect>,
}

type R<T> = Result<T, Fault>;

/// A deterministic draw in [0, 1) for a sampling decision.
pub fn draw(seed: u64, seq: u64, site: u32) -> f64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(seed, 0x6474_635f_7361_6d70);
    h.write_u64(seq);
    h.write_u32(site);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The keyed hash of `hash(...)` and `redact ... with hash`: 16 hex digits.
pub fn keyed_hash(key: (u64, u64), v: &Value) -> String {
    keyed_hash_text(key, v).into_string()
}

/// [`keyed_hash`] as a [`Text`], inline: what a redaction's edit holds,
/// so hashing a field costs an egress no allocation. Inlined where it is
/// called: in a redaction's edit, its call and the copy of the `Text` it
/// returned (with those of [`mask_text`]) cost the redaction kernel about
/// 42 instructions an event. A value not a text or bytes is hashed apart.
#[inline(always)]
pub fn keyed_hash_text(key: (u64, u64), v: &Value) -> Text {
    let x = match v {
        Value::Str(s) => sip13(key, s.as_bytes()),
        Value::Bytes(b) => sip13(key, b),
        other => sip13_json(key, other),
    };
    // Hex digits are ASCII, so this never falls back to the default. With
    // their length known, the `Text` is built without its branches on a
    // length (30 instructions a hash less).
    let digits = hex_digits(x);
    match std::str::from_utf8(&digits) {
        Ok(s) if s.len() == 16 => Text::new(s),
        _ => Text::default(),
    }
}

/// [`sip13`] of the JSON text of `v`.
#[inline(never)]
fn sip13_json(key: (u64, u64), v: &Value) -> u64 {
    sip13(key, v.to_json().to_string().as_bytes())
}

/// SipHash-1-3 of `bytes` under `key`, as `siphasher`'s `SipHasher13`
/// gives it after one `write` of them: written out for a one-shot hash of
/// a short text (no tail buffer, the state in registers). It saves little
/// (about 8 of the 280 instructions of a redaction's hash text; most of
/// the rest is the four rounds, the hex digits and the `Text`).
#[inline]
fn sip13(key: (u64, u64), bytes: &[u8]) -> u64 {
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    #[inline(always)]
    fn compress(v: &mut [u64; 4], m: u64) {
        v[3] ^= m;
        round(v);
        v[0] ^= m;
    }
    let mut v = [
        key.0 ^ 0x736f_6d65_7073_6575,
        key.1 ^ 0x646f_7261_6e64_6f6d,
        key.0 ^ 0x6c79_6765_6e65_7261,
        key.1 ^ 0x7465_6462_7974_6573,
    ];
    let mut blocks = bytes.chunks_exact(8);
    for b in &mut blocks {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        compress(&mut v, u64::from_le_bytes(w));
    }
    // The last block: the rest of the bytes, and the length's low byte on top.
    let mut last = (bytes.len() as u64) << 56;
    for (i, &b) in blocks.remainder().iter().enumerate() {
        last |= u64::from(b) << (8 * i);
    }
    compress(&mut v, last);
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The 16 lowercase hex digits of `x`, most significant first, as ASCII:
/// computed on all digits at once (one nibble a byte of a `u128`, then
/// `'0'` or `'a' - 10` added to each byte), which costs a fraction of a
/// digit-by-digit table walk or of `format!`.
fn hex_digits(x: u64) -> [u8; 16] {
    const LOW32: u128 = 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    const LOW16: u128 = 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    const LOW8: u128 = 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    const LOW4: u128 = 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    // Byte k (from the least significant) ends up holding nibble k of x.
    let mut v = u128::from(x);
    v = (v | (v << 32)) & LOW32;
    v = (v | (v << 16)) & LOW16;
    v = (v | (v << 8)) & LOW8;
    v = (v | (v << 4)) & LOW4;
    // A nibble of 10 or more carries into bit 4 of its byte when 6 is
    // added: those bytes get `'a' - '0' - 10` (39) more.
    let letters = ((v + 6 * ONES) >> 4) & ONES;
    (v + u128::from(b'0') * ONES + letters * 39).to_be_bytes()
}

/// Stars, for masks to copy a run at a time.
const STARS: &str = "****************************************************************";

/// All but the last four characters as `*`.
pub fn mask(s: &str) -> String {
    let (stars, tail) = mask_parts(s);
    let mut out = String::with_capacity(stars + tail.len());
    push_mask(&mut out, stars, tail);
    out
}

/// The most a `Text` holds inline.
const INLINE: usize = 24;

/// [`mask`] as a [`Text`]: inline (no allocation) up to 24 bytes, what a
/// redaction's edit holds. Inlined where it is called, but for texts not
/// ASCII or longer than a `Text` holds inline ([`mask_text_apart`]).
#[inline(always)]
pub fn mask_text(s: &str) -> Text {
    if s.len() <= INLINE && s.is_ascii() {
        // One byte a character: a copy of `s` (inline) with its first
        // bytes overwritten by as many stars, which costs about half of
        // building the stars and then pushing the tail (the redaction
        // kernel's mask, 162 instructions an event with `mask_parts`).
        let stars = s.len().saturating_sub(4);
        let mut out = Text::new(s);
        out.replace_range(..stars, STARS.get(..stars).unwrap_or_default());
        return out;
    }
    mask_text_apart(s)
}

/// [`mask_text`] of a text not ASCII or longer than 24 bytes.
#[inline(never)]
fn mask_text_apart(s: &str) -> Text {
    let (stars, tail) = mask_parts(s);
    let len = stars + tail.len();
    if len <= INLINE {
        // The stars as a `str` already, then the tail: no check of the
        // bytes as UTF-8 (written into a byte buffer and checked, it cost
        // the redaction kernel 33 instructions an event more).
        let mut out = Text::from(STARS.get(..stars).unwrap_or_default());
        out.push_str(tail);
        return out;
    }
    let mut out = Text::with_capacity(len);
    push_mask(&mut out, stars, tail);
    out
}

/// What the mask of `s` is made of: how many `*` (one for each character
/// but the last four), then the last four characters (all of `s` when it
/// has four or fewer).
fn mask_parts(s: &str) -> (usize, &str) {
    let (stars, at) = if s.is_ascii() {
        // One byte a character.
        let stars = s.len().saturating_sub(4);
        (stars, stars)
    } else {
        let stars = s.chars().count().saturating_sub(4);
        let at = s.char_indices().nth(stars).map_or(s.len(), |(i, _)| i);
        (stars, at)
    };
    (stars, s.get(at..).unwrap_or(s))
}

/// Appends `stars` stars and then `tail`: the stars copied a run at a
/// time (pushing them one `char` at a time cost more than the allocation).
fn push_mask<T: for<'x> Extend<&'x str>>(out: &mut T, mut stars: usize, tail: &str) {
    while stars > 0 {
        let run = stars.min(STARS.len());
        out.extend(STARS.get(..run));
        stars -= run;
    }
    out.extend(Some(tail));
}

/// The extension of a path, without the dot.
pub fn extension(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name.rfind('.') {
        Some(0) | None => "",
        Some(i) => &name[i + 1..],
    }
}

impl<'a> Interp<'a> {
    /// Runs a body; `return` ends it.
    pub fn run(&mut self, body: &[Stmt], frame: &mut Frame<'_>) -> R<()> {
        self.block(body, frame).map(|_| ())
    }

    /// Runs one statement; `Some(v)` when it returned `v`. For engines that
    /// run a body's other statements themselves.
    pub fn exec_stmt(&mut self, s: &Stmt, f: &mut Frame<'_>) -> R<Option<Value>> {
        Ok(match self.stmt(s, f)? {
            Flow::Return(v) => Some(v),
            Flow::Next => None,
        })
    }

    /// Stores an already evaluated value as an assignment to `p` does
    /// (`+=` and `-=`, map entries and their bounds).
    pub fn store(&mut self, p: &Place, op: AssignOp, v: Value, f: &mut Frame<'_>) -> R<()> {
        self.assign(p, op, v, f)
    }

    /// Sets local `i`, as `let` does.
    pub fn set_local(f: &mut Frame<'_>, i: u32, v: Value) -> R<()> {
        set_local(f, i, v)
    }

    fn block(&mut self, stmts: &[Stmt], f: &mut Frame<'_>) -> R<Flow> {
        for s in stmts {
            if let Flow::Return(v) = self.stmt(s, f)? {
                return Ok(Flow::Return(v));
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, s: &Stmt, f: &mut Frame<'_>) -> R<Flow> {
        match s {
            Stmt::Let(i, e) => {
                let v = self.eval(e, f)?;
                set_local(f, *i, v)?;
            }
            Stmt::Assign { place, op, value } => {
                let v = self.eval(value, f)?;
                self.assign(place, *op, v, f)?;
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let branch = if self.eval(cond, f)? == Value::Bool(true) {
                    then
                } else {
                    otherwise
                };
                return self.block(branch, f);
            }
            Stmt::IfLet {
                local,
                value,
                then,
                otherwise,
            } => {
                let v = self.eval(value, f)?;
                if v.is_none() {
                    return self.block(otherwise, f);
                }
                set_local(f, *local, v)?;
                return self.block(then, f);
            }
            Stmt::ForRange {
                local,
                from,
                to,
                body,
            } => {
                let mut i = *from;
                while i < *to {
                    set_local(f, *local, Value::Int(i))?;
                    if let Flow::Return(v) = self.block(body, f)? {
                        return Ok(Flow::Return(v));
                    }
                    i += 1;
                }
            }
            Stmt::ForMap {
                map,
                key,
                value,
                body,
            } => {
                // Iterate over a snapshot: the body may change the map.
                let entries: Vec<(Key, Value)> = match self.read_place(map, f)? {
                    Value::Map(m) => m.into_iter().collect(),
                    _ => Vec::new(),
                };
                for (k, v) in entries {
                    set_local(f, *key, k.to_value())?;
                    if let Some(vl) = value {
                        set_local(f, *vl, v)?;
                    }
                    if let Flow::Return(v) = self.block(body, f)? {
                        return Ok(Flow::Return(v));
                    }
                }
            }
            Stmt::Emit {
                event,
                fields,
                budget,
                site,
            } => {
                let n = self
                    .program
                    .events
                    .get(*event as usize)
                    .map_or(0, |l| l.fields.len());
                let mut slots = vec![Value::None; n];
                for (slot, e) in fields {
                    let v = self.eval(e, f)?;
                    if let Some(s) = slots.get_mut(*slot as usize) {
                        *s = v;
                    }
                }
                self.effects.push(Effect::Emit {
                    event: *event,
                    slots,
                    budget: *budget,
                    site: *site,
                });
            }
            Stmt::Trigger {
                action,
                args,
                budget,
                site,
            } => {
                let mut values = Vec::new();
                for (n, e) in args {
                    // An optional argument left out is not shown.
                    let v = self.eval(e, f)?;
                    if !v.is_none() {
                        values.push((n.clone(), v));
                    }
                }
                self.effects.push(Effect::Trigger {
                    action: action.clone(),
                    args: values,
                    budget: *budget,
                    site: *site,
                });
            }
            Stmt::Return(e) => return Ok(Flow::Return(self.eval(e, f)?)),
            Stmt::Expr(e) => {
                self.eval(e, f)?;
            }
        }
        Ok(Flow::Next)
    }

    fn read_place(&mut self, p: &Place, f: &mut Frame<'_>) -> R<Value> {
        Ok(match p {
            Place::Local(i) => f.locals.get(*i as usize).cloned().unwrap_or(Value::None),
            Place::Var(i) => f.vars.get(*i as usize).cloned().unwrap_or(Value::None),
            Place::StateVar(i) => f.slots.get(*i as usize).cloned().unwrap_or(Value::None),
            Place::Entry(base, key) => {
                let k = self.eval(key, f)?;
                match (self.read_place(base, f)?, Key::from_value(&k)) {
                    (Value::Map(m), Some(k)) => m.get(&k).cloned().unwrap_or(Value::None),
                    _ => Value::None,
                }
            }
        })
    }

    fn slot_mut<'s>(p: &Place, f: &'s mut Frame<'_>) -> R<&'s mut Value> {
        let slot = match p {
            Place::Local(i) => f.locals.get_mut(*i as usize),
            Place::Var(i) => f.vars.get_mut(*i as usize),
            Place::StateVar(i) => f.slots.get_mut(*i as usize),
            Place::Entry(..) => return Err(Fault::Invalid("nested map entries".into())),
        };
        slot.ok_or_else(|| Fault::Invalid("place out of range".into()))
    }

    fn assign(&mut self, p: &Place, op: AssignOp, v: Value, f: &mut Frame<'_>) -> R<()> {
        match p {
            Place::Entry(base, key) => {
                let k = self.eval(key, f)?;
                let k = Key::from_value(&k).ok_or_else(|| Fault::Invalid("map key".into()))?;
                let max = match &**base {
                    Place::Var(i) => f
                        .var_defs
                        .get(*i as usize)
                        .and_then(|d| d.max_entries)
                        .unwrap_or(u64::MAX),
                    _ => u64::MAX,
                };
                let slot = Self::slot_mut(base, f)?;
                if !matches!(slot, Value::Map(_)) {
                    *slot = Value::Map(Box::default());
                }
                let Value::Map(m) = slot else { return Ok(()) };
                let new = match (op, m.get(&k)) {
                    (AssignOp::Set, _) => v,
                    (op, old) => combine(op, old.cloned().unwrap_or(Value::None), v)?,
                };
                if !m.contains_key(&k) && m.len() as u64 >= max {
                    return Err(Fault::MapFull(max));
                }
                m.insert(k, new);
                Ok(())
            }
            _ => {
                let slot = Self::slot_mut(p, f)?;
                *slot = match op {
                    AssignOp::Set => v,
                    op => combine(op, std::mem::replace(slot, Value::None), v)?,
                };
                Ok(())
            }
        }
    }

    pub fn eval(&mut self, e: &Expr, f: &mut Frame<'_>) -> R<Value> {
        Ok(match &e.kind {
            ExprKind::Const(c) => match c {
                Const::Bool(b) => Value::Bool(*b),
                Const::Int(i) => Value::Int(*i),
                Const::Float(x) => Value::Float(*x),
                Const::Str(s) => Value::str(s),
                Const::Duration(d) => Value::Duration(*d),
                Const::Percent(p) => Value::Percent(*p),
                Const::None => Value::None,
            },
            ExprKind::Field(slot) => f
                .event
                .and_then(|r| r.slots().get(*slot as usize).cloned())
                .unwrap_or(Value::None),
            ExprKind::Std(s) => match f.event {
                Some(r) => std_field(r, *s),
                None => Value::None,
            },
            ExprKind::Local(i) => f.locals.get(*i as usize).cloned().unwrap_or(Value::None),
            ExprKind::Var(i) => f.vars.get(*i as usize).cloned().unwrap_or(Value::None),
            ExprKind::StateVar(i) => f.slots.get(*i as usize).cloned().unwrap_or(Value::None),
            ExprKind::Column(i) => f
                .row
                .and_then(|r| r.get(*i as usize).cloned())
                .unwrap_or(Value::None),
            ExprKind::Unary(op, a) => match (op, self.eval(a, f)?) {
                (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
                (UnOp::Neg, Value::Int(i)) => {
                    Value::Int(i.checked_neg().ok_or(Fault::Overflow("-"))?)
                }
                (UnOp::Neg, Value::Float(x)) => Value::Float(-x),
                (UnOp::Neg, Value::Duration(d)) => {
                    Value::Duration(d.checked_neg().ok_or(Fault::Overflow("-"))?)
                }
                _ => Value::None,
            },
            ExprKind::Binary(BinOp::And, a, b) => Value::Bool(
                self.eval(a, f)? == Value::Bool(true) && self.eval(b, f)? == Value::Bool(true),
            ),
            ExprKind::Binary(BinOp::Or, a, b) => Value::Bool(
                self.eval(a, f)? == Value::Bool(true) || self.eval(b, f)? == Value::Bool(true),
            ),
            ExprKind::Binary(op, a, b) => {
                let (x, y) = (self.eval(a, f)?, self.eval(b, f)?);
                binary(*op, x, y)?
            }
            ExprKind::Coalesce(a, b) => match self.eval(a, f)? {
                Value::None => self.eval(b, f)?,
                v => v,
            },
            ExprKind::Index(base, key) => {
                if let ExprKind::Std(s @ (StdField::Attrs | StdField::Resource)) = &base.kind {
                    let k = self.eval(key, f)?;
                    return Ok(match (f.event, k) {
                        (Some(r), Value::Str(k)) => {
                            let map = if *s == StdField::Attrs {
                                &r.input.attributes
                            } else {
                                &r.input.resource
                            };
                            map.get(&*k)
                                .filter(|j| !j.is_null())
                                .map_or(Value::None, |j| Value::Dyn(Rc::new(j.clone())))
                        }
                        _ => Value::None,
                    });
                }
                let m = self.eval(base, f)?;
                let k = self.eval(key, f)?;
                match (m, Key::from_value(&k)) {
                    (Value::Map(m), Some(k)) => m.get(&k).cloned().unwrap_or(Value::None),
                    _ => Value::None,
                }
            }
            ExprKind::Call(name, args) => self.call(name, args, f)?,
            ExprKind::CallFn(i, args) => {
                let func = self
                    .program
                    .functions
                    .get(*i as usize)
                    .ok_or_else(|| Fault::Invalid(format!("function {i}")))?;
                let mut locals = vec![Value::None; (func.n_locals as usize).max(args.len())];
                for (slot, a) in locals.iter_mut().zip(args) {
                    *slot = self.eval(a, f)?;
                }
                let mut frame = Frame {
                    event: None,
                    row: None,
                    locals,
                    vars: &mut [],
                    var_defs: &[],
                    slots: &mut [],
                };
                match self.block(&func.body, &mut frame)? {
                    Flow::Return(v) => v,
                    Flow::Next => Value::None,
                }
            }
            ExprKind::Sample { rate, site } => {
                let p = match self.eval(rate, f)? {
                    Value::Percent(p) => p,
                    _ => 0.0,
                };
                Value::Bool(draw(self.seed, self.seq, *site) * 100.0 < p)
            }
            ExprKind::InState { machine, state } => match f.event {
                Some(r) => Value::Bool(self.world.in_state(*machine, *state, r)),
                None => Value::Bool(false),
            },
        })
    }

    fn call(&mut self, name: &str, args: &[Expr], f: &mut Frame<'_>) -> R<Value> {
        if name == "remove" {
            // The one catalog function that changes a (program) variable.
            let key = match args.get(1) {
                Some(k) => self.eval(k, f)?,
                None => Value::None,
            };
            let place = match args.first().map(|a| &a.kind) {
                Some(ExprKind::Var(i)) => Place::Var(*i),
                Some(ExprKind::Local(i)) => Place::Local(*i),
                Some(ExprKind::StateVar(i)) => Place::StateVar(*i),
                _ => return Ok(Value::None),
            };
            let slot = Self::slot_mut(&place, f)?;
            return Ok(match (slot, Key::from_value(&key)) {
                (Value::Map(m), Some(k)) => m.remove(&k).unwrap_or(Value::None),
                _ => Value::None,
            });
        }
        let mut v = Vec::with_capacity(args.len());
        for a in args {
            v.push(self.eval(a, f)?);
        }
        let s = |i: usize| -> &str {
            match v.get(i) {
                Some(Value::Str(s)) => s,
                _ => "",
            }
        };
        Ok(match name {
            "len" => match v.first() {
                Some(Value::Str(x)) => Value::Int(x.len() as i64),
                Some(Value::Bytes(b)) => Value::Int(b.len() as i64),
                Some(Value::Map(m)) => Value::Int(m.len() as i64),
                _ => Value::Int(0),
            },
            "extension" => Value::str(extension(s(0))),
            "lower" => Value::str(&s(0).to_lowercase()),
            "upper" => Value::str(&s(0).to_uppercase()),
            "contains" => Value::Bool(s(0).contains(s(1))),
            "starts_with" => Value::Bool(s(0).starts_with(s(1))),
            "ends_with" => Value::Bool(s(0).ends_with(s(1))),
            "substring" => {
                let text = s(0);
                let int = |i: usize| match v.get(i) {
                    Some(Value::Int(n)) => (*n).max(0) as usize,
                    _ => 0,
                };
                let mut start = int(1).min(text.len());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = start.saturating_add(int(2)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                Value::str(&text[start..end])
            }
            "matches" => {
                let pattern = s(1).to_string();
                let re = {
                    let mut cache = self.regexes.borrow_mut();
                    match cache.get(&pattern) {
                        Some(r) => r.clone(),
                        None => {
                            let r = Rc::new(
                                regex::RegexBuilder::new(&pattern)
                                    .size_limit(1 << 20)
                                    .build()
                                    .map_err(|e| Fault::Regex(e.to_string()))?,
                            );
                            if cache.len() >= 256 {
                                cache.clear();
                            }
                            cache.insert(pattern, r.clone());
                            r
                        }
                    }
                };
                Value::Bool(re.is_match(s(0)))
            }
            "hash" => Value::str(&keyed_hash(
                self.hash_key,
                v.first().unwrap_or(&Value::None),
            )),
            "mask" => Value::str(&mask(s(0))),
            "to_string" => match v.first() {
                Some(Value::Dyn(j)) => match &**j {
                    Json::Null => Value::None,
                    Json::String(x) => Value::str(x),
                    other => Value::str(&other.to_string()),
                },
                Some(Value::Str(x)) => Value::Str(x.clone()),
                Some(Value::Int(i)) => Value::str(&i.to_string()),
                Some(Value::Float(x)) => Value::str(&x.to_string()),
                Some(Value::Bool(b)) => Value::str(&b.to_string()),
                Some(Value::Duration(d)) => Value::str(&format_duration(*d)),
                Some(Value::Timestamp(t)) => Value::str(&crate::event::format_time(*t)),
                Some(Value::Percent(p)) => Value::str(&format!("{p}%")),
                Some(Value::Bytes(b)) => Value::str(&String::from_utf8_lossy(b)),
                _ => Value::None,
            },
            "to_int" => match v.first() {
                Some(Value::Int(i)) => Value::Int(*i),
                Some(Value::Float(x)) => {
                    if x.is_finite() && *x >= i64::MIN as f64 && *x < i64::MAX as f64 {
                        Value::Int(x.trunc() as i64)
                    } else {
                        return Err(Fault::Overflow("to_int"));
                    }
                }
                Some(Value::Bool(b)) => Value::Int(i64::from(*b)),
                Some(Value::Str(x)) => x.trim().parse().map_or(Value::None, Value::Int),
                Some(Value::Dyn(j)) => match &**j {
                    Json::Number(n) => n.as_i64().map_or(Value::None, Value::Int),
                    Json::String(x) => x.trim().parse().map_or(Value::None, Value::Int),
                    _ => Value::None,
                },
                _ => Value::None,
            },
            "to_float" => match v.first() {
                Some(Value::Int(i)) => Value::Float(*i as f64),
                Some(Value::Float(x)) => Value::Float(*x),
                Some(Value::Bool(b)) => Value::Float(if *b { 1.0 } else { 0.0 }),
                Some(Value::Str(x)) => x.trim().parse().map_or(Value::None, Value::Float),
                Some(Value::Dyn(j)) => match &**j {
                    Json::Number(n) => n.as_f64().map_or(Value::None, Value::Float),
                    Json::String(x) => x.trim().parse().map_or(Value::None, Value::Float),
                    _ => Value::None,
                },
                _ => Value::None,
            },
            "to_bool" => match v.first() {
                Some(Value::Bool(b)) => Value::Bool(*b),
                Some(Value::Str(x)) => match &**x {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::None,
                },
                Some(Value::Dyn(j)) => match &**j {
                    Json::Bool(b) => Value::Bool(*b),
                    Json::String(x) if x == "true" => Value::Bool(true),
                    Json::String(x) if x == "false" => Value::Bool(false),
                    _ => Value::None,
                },
                Some(Value::Int(i)) => Value::Bool(*i != 0),
                Some(Value::Float(x)) => Value::Bool(*x != 0.0),
                _ => Value::None,
            },
            "abs" => match v.first() {
                Some(Value::Int(i)) => Value::Int(i.checked_abs().ok_or(Fault::Overflow("abs"))?),
                Some(Value::Float(x)) => Value::Float(x.abs()),
                _ => Value::None,
            },
            "millis" => match v.first() {
                Some(Value::Duration(d)) => Value::Int(d / 1_000_000),
                _ => Value::None,
            },
            "seconds" => match v.first() {
                Some(Value::Duration(d)) => Value::Float(*d as f64 / 1e9),
                _ => Value::None,
            },
            "file.sha256" => {
                use sha2::Digest;
                let path = s(0);
                let bytes = std::fs::read(path)
                    .map_err(|e| Fault::Io(format!("file.sha256: cannot read `{path}`: {e}")))?;
                let digest = sha2::Sha256::digest(&bytes);
                Value::str(
                    &digest
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                )
            }
            "file.exists" => Value::Bool(std::path::Path::new(s(0)).exists()),
            "file.size" => {
                std::fs::metadata(s(0)).map_or(Value::None, |m| Value::Int(m.len() as i64))
            }
            "contains_key" => match (v.first(), v.get(1).and_then(Key::from_value)) {
                (Some(Value::Map(m)), Some(k)) => Value::Bool(m.contains_key(&k)),
                _ => Value::Bool(false),
            },
            other => return Err(Fault::Invalid(format!("unknown function `{other}`"))),
        })
    }
}

fn set_local(f: &mut Frame<'_>, i: u32, v: Value) -> R<()> {
    match f.locals.get_mut(i as usize) {
        Some(slot) => {
            *slot = v;
            Ok(())
        }
        None => Err(Fault::Invalid(format!("local {i}"))),
    }
}

/// `+=` / `-=`: an absent value counts as zero.
fn combine(op: AssignOp, old: Value, v: Value) -> R<Value> {
    let old = match (&old, &v) {
        (Value::None, Value::Int(_)) => Value::Int(0),
        (Value::None, Value::Float(_)) => Value::Float(0.0),
        (Value::None, Value::Duration(_)) => Value::Duration(0),
        (Value::None, Value::Str(_)) => Value::str(""),
        _ => old,
    };
    binary(
        if op == AssignOp::Add {
            BinOp::Add
        } else {
            BinOp::Sub
        },
        old,
        v,
    )
}

/// A binary operator on two values (not `&&` and `||`, which short-circuit).
pub fn binary(op: BinOp, x: Value, y: Value) -> R<Value> {
    use Value as V;
    Ok(match op {
        BinOp::Eq => V::Bool(x == y),
        BinOp::Ne => V::Bool(x != y),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&x, &y) {
                (V::Int(a), V::Int(b))
                | (V::Duration(a), V::Duration(b))
                | (V::Timestamp(a), V::Timestamp(b)) => a.partial_cmp(b),
                (V::Float(a), V::Float(b)) | (V::Percent(a), V::Percent(b)) => a.partial_cmp(b),
                (V::Str(a), V::Str(b)) => a.partial_cmp(b),
                _ => None,
            };
            V::Bool(match (op, ord) {
                (_, None) => false,
                (BinOp::Lt, Some(o)) => o.is_lt(),
                (BinOp::Le, Some(o)) => o.is_le(),
                (BinOp::Gt, Some(o)) => o.is_gt(),
                (_, Some(o)) => o.is_ge(),
            })
        }
        BinOp::Add => match (x, y) {
            (V::Int(a), V::Int(b)) => V::Int(a.checked_add(b).ok_or(Fault::Overflow("+"))?),
            (V::Float(a), V::Float(b)) => V::Float(a + b),
            (V::Str(a), V::Str(b)) => V::str(&format!("{a}{b}")),
            (V::Duration(a), V::Duration(b)) => {
                V::Duration(a.checked_add(b).ok_or(Fault::Overflow("+"))?)
            }
            (V::Timestamp(a), V::Duration(b)) | (V::Duration(b), V::Timestamp(a)) => {
                V::Timestamp(a.checked_add(b).ok_or(Fault::Overflow("+"))?)
            }
            _ => V::None,
        },
        BinOp::Sub => match (x, y) {
            (V::Int(a), V::Int(b)) => V::Int(a.checked_sub(b).ok_or(Fault::Overflow("-"))?),
            (V::Float(a), V::Float(b)) => V::Float(a - b),
            (V::Duration(a), V::Duration(b)) => {
                V::Duration(a.checked_sub(b).ok_or(Fault::Overflow("-"))?)
            }
            (V::Timestamp(a), V::Duration(b)) => {
                V::Timestamp(a.checked_sub(b).ok_or(Fault::Overflow("-"))?)
            }
            (V::Timestamp(a), V::Timestamp(b)) => {
                V::Duration(a.checked_sub(b).ok_or(Fault::Overflow("-"))?)
            }
            _ => V::None,
        },
        BinOp::Mul => match (x, y) {
            (V::Int(a), V::Int(b)) => V::Int(a.checked_mul(b).ok_or(Fault::Overflow("*"))?),
            (V::Float(a), V::Float(b)) => V::Float(a * b),
            (V::Duration(a), V::Int(b)) | (V::Int(b), V::Duration(a)) => {
                V::Duration(a.checked_mul(b).ok_or(Fault::Overflow("*"))?)
            }
            _ => V::None,
        },
        BinOp::Div => match (x, y) {
            (V::Int(_) | V::Duration(_), V::Int(0)) | (V::Duration(_), V::Duration(0)) => {
                return Err(Fault::DivisionByZero);
            }
            (V::Int(a), V::Int(b)) => V::Int(a.checked_div(b).ok_or(Fault::Overflow("/"))?),
            (V::Float(a), V::Float(b)) => V::Float(a / b),
            (V::Duration(a), V::Int(b)) => {
                V::Duration(a.checked_div(b).ok_or(Fault::Overflow("/"))?)
            }
            (V::Duration(a), V::Duration(b)) => V::Float(a as f64 / b as f64),
            _ => V::None,
        },
        BinOp::Rem => match (x, y) {
            (V::Int(_), V::Int(0)) => return Err(Fault::DivisionByZero),
            (V::Int(a), V::Int(b)) => V::Int(a.checked_rem(b).ok_or(Fault::Overflow("%"))?),
            (V::Float(a), V::Float(b)) => V::Float(a % b),
            _ => V::None,
        },
        BinOp::And => V::Bool(x == V::Bool(true) && y == V::Bool(true)),
        BinOp::Or => V::Bool(x == V::Bool(true) || y == V::Bool(true)),
    })
}

/// A standard field of a record.
pub fn std_field(r: &Record, s: StdField) -> Value {
    // The integers of a record with its row built (one read in place from
    // its line, whose event is decoded only when asked for) come from
    // the row: the same values, without decoding the event.
    if let (Some(Some(row)), Some(i)) = (r.row.get(), crate::slots::std_slot(s))
        && let Some(slot) = row.get(i as usize)
    {
        let present = slot.tag == crate::slots::TAG_PRESENT;
        match s {
            StdField::Time | StdField::ObservedTime => {
                return Value::Timestamp(slot.bits as i64);
            }
            StdField::Severity => return Value::Int(slot.bits as i64),
            StdField::ThreadId if present => return Value::Int(slot.bits as i64),
            StdField::ThreadId => return Value::None,
            _ => {}
        }
    }
    let e = r.input.event();
    let opt = |o: &Option<String>| o.as_deref().map_or(Value::None, Value::str);
    match s {
        StdField::Time => Value::Timestamp(e.time),
        StdField::ObservedTime => Value::Timestamp(e.observed_time),
        StdField::Severity => Value::Int(e.severity),
        StdField::SeverityText => opt(&e.severity_text),
        StdField::Body => opt(&e.body),
        StdField::TraceId => opt(&e.trace_id),
        StdField::SpanId => opt(&e.span_id),
        StdField::ThreadId => e.thread_id().map_or(Value::None, Value::Int),
        StdField::Service => e.service().map_or(Value::None, Value::str),
        StdField::Attrs | StdField::Resource => {
            let m = if s == StdField::Attrs {
                &e.attributes
            } else {
                &e.resource
            };
            Value::Map(Box::new(
                m.iter()
                    .map(|(k, v)| {
                        (
                            Key::Str(Rc::from(k.as_str())),
                            Value::Dyn(Rc::new(v.clone())),
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hashes_are_sixteen_hex_digits_of_siphash_1_3() {
        for (key, s) in [
            ((0, 0), ""),
            ((1, 2), "user42"),
            ((u64::MAX, 7), "é✓ long value"),
        ] {
            let mut h = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
            h.write(s.as_bytes());
            assert_eq!(
                keyed_hash(key, &Value::str(s)),
                format!("{:016x}", h.finish())
            );
        }
    }

    /// `keyed_hash` as it was before [`keyed_hash_text`] (digit by digit,
    /// into a `String`): the texts must stay the same.
    fn keyed_hash_before(key: (u64, u64), v: &Value) -> String {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
        match v {
            Value::Str(s) => h.write(s.as_bytes()),
            Value::Bytes(b) => h.write(b),
            other => h.write(other.to_json().to_string().as_bytes()),
        }
        format!("{:016x}", h.finish())
    }

    /// `mask` as it was before [`mask_parts`]: a star for every character
    /// but the last four.
    fn mask_before(s: &str) -> String {
        let n = s.chars().count();
        s.chars()
            .enumerate()
            .map(|(i, c)| if i + 4 < n { '*' } else { c })
            .collect()
    }

    /// Deterministic strings of 0 to 79 characters, ASCII and not (two-,
    /// three- and four-byte characters), some all ASCII.
    fn sample_texts() -> Vec<String> {
        const CHARS: [char; 12] = [
            'a', 'Z', '0', '@', '.', ' ', '*', 'é', '✓', '日', '🙂', '\u{7f}',
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..3000)
            .map(|i| {
                let len = (next() % 80) as usize;
                // Every third string ASCII only: the fast path of the mask.
                let pool = if i % 3 == 0 { 7 } else { CHARS.len() };
                (0..len)
                    .map(|_| CHARS[(next() % pool as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn hash_texts_are_those_of_before() {
        let key = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let mut values: Vec<Value> = sample_texts().iter().map(|s| Value::str(s)).collect();
        values.extend([
            Value::Int(-42),
            Value::Float(0.5),
            Value::Bool(true),
            Value::None,
            Value::Bytes(Rc::from(&b"\x00\xffraw"[..])),
        ]);
        for v in &values {
            let text = keyed_hash_text(key, v);
            assert_eq!(text, keyed_hash_before(key, v), "{v:?}");
            assert_eq!(keyed_hash(key, v), keyed_hash_before(key, v), "{v:?}");
            // Sixteen digits fit inline: no allocation an edit.
            assert!(!text.is_heap_allocated());
        }
    }

    #[test]
    fn sip13_is_siphashers() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
        for key in [
            (0, 0),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            (u64::MAX, 1),
        ] {
            for n in 0..bytes.len() {
                let b = &bytes[..n];
                let mut h = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
                h.write(b);
                assert_eq!(sip13(key, b), h.finish(), "{n} bytes");
            }
        }
    }

    #[test]
    fn hex_digits_are_those_of_format() {
        let mut x = 1u64;
        let mut cases = vec![
            0,
            1,
            9,
            10,
            15,
            16,
            u64::MAX,
            0x0123_4567_89ab_cdef,
            0xa0a0_9f9f_0a0a_f9f9,
        ];
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cases.push(x);
        }
        for x in cases {
            assert_eq!(hex_digits(x), format!("{x:016x}").as_bytes(), "{x:#x}");
        }
    }

    #[test]
    fn mask_texts_are_those_of_before() {
        for s in sample_texts() {
            let want = mask_before(&s);
            assert_eq!(mask(&s), want, "{s:?}");
            let text = mask_text(&s);
            assert_eq!(text, want, "{s:?}");
            // A short mask is held inline.
            assert_eq!(text.is_heap_allocated(), want.len() > 24, "{s:?}");
        }
    }

    #[test]
    fn masks_keep_the_last_four_characters() {
        assert_eq!(mask("u12@example.com"), "***********.com");
        assert_eq!(mask("abcd"), "abcd");
        assert_eq!(mask(""), "");
        assert_eq!(mask("héllo wörld"), "*******örld");
        assert_eq!(mask("ab"), "ab");
        assert_eq!(mask("é✓"), "é✓");
        // Longer than one run of stars.
        let long = format!("{}tail", "x".repeat(150));
        assert_eq!(mask(&long), format!("{}tail", "*".repeat(150)));
        let exact = format!("{}tail", "x".repeat(64));
        assert_eq!(mask(&exact), format!("{}tail", "*".repeat(64)));
    }
}
