//! Typed expressions: given what is in scope and the type wanted, an
//! expression of that type, using every operator, the `??` and `is` forms
//! and the standard library's functions (including the ones that fault:
//! overflowing arithmetic, division by zero, invalid patterns).
//!
//! Every compound expression is parenthesized, so precedence never changes
//! what was meant and `??` and comparisons never chain.

use crate::entropy::Entropy;
use crate::ty::{Base, Ty};

/// A value in scope, as the program writes it (`x`, `event.f`, `depth`).
#[derive(Debug, Clone)]
pub struct Val {
    pub text: String,
    pub ty: Ty,
    /// Personal data: read only through a declassifying function.
    pub pii: bool,
}

/// A map variable in scope.
#[derive(Debug, Clone)]
pub struct MapVal {
    pub name: String,
    pub key: Base,
    pub val: Base,
}

/// A callable program function.
#[derive(Debug, Clone)]
pub struct FnSig {
    pub name: String,
    pub params: Vec<Ty>,
    pub ret: Ty,
}

/// A machine that `m is S` may test here.
#[derive(Debug, Clone)]
pub struct IsTarget {
    pub machine: String,
    pub states: Vec<String>,
}

/// What an expression can read.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub vals: Vec<Val>,
    pub maps: Vec<MapVal>,
    pub fns: Vec<FnSig>,
    /// How undeclared attributes are read here (`event.attrs`, `attrs`).
    pub attrs: Option<&'static str>,
    pub is_targets: Vec<IsTarget>,
    /// `sample(p)` may be called (handlers and guards).
    pub sample: bool,
}

impl Scope {
    fn vars(&self, ty: Ty) -> Vec<&Val> {
        self.vals.iter().filter(|v| v.ty == ty && !v.pii).collect()
    }

    fn pii(&self) -> Vec<&Val> {
        self.vals
            .iter()
            .filter(|v| v.pii && v.ty.base == Base::Str && !v.ty.opt)
            .collect()
    }

    /// Whether an expression of `ty` can be written here at all (there is
    /// no literal for timestamps and bytes, nor for most optional types).
    pub fn can(&self, ty: Ty) -> bool {
        if !self.vars(ty).is_empty() {
            return true;
        }
        if ty.opt {
            return match ty.base {
                Base::Int | Base::Float | Base::Bool => true,
                Base::Str => self.attrs.is_some(),
                b => self.maps.iter().any(|m| m.val == b),
            };
        }
        literal_exists(ty.base)
    }
}

const STRINGS: [&str; 12] = [
    "a",
    "",
    "a.png",
    "/var/lib/x.tar.gz",
    "ERROR",
    "héllo",
    "\\u{1F600}",
    "tab\\there",
    "quote\\\"d",
    "k1",
    "0123456789abcdef",
    "42",
];

const PATTERNS: [&str; 7] = ["^a", "[0-9]+", "png$", ".*", "(", "^$", "[a-z]{2,}"];

pub const DURATIONS: [&str; 12] = [
    "1s", "10ms", "5s", "1m", "30s", "2h", "1d", "1.5s", "250us", "10ns", "5m", "1h",
];

/// An expression generator over one entropy source.
pub struct ExprGen<'e, 'a> {
    pub e: &'e mut Entropy<'a>,
}

impl ExprGen<'_, '_> {
    /// An expression of type `ty`; `sc.can(ty)` must hold.
    pub fn expr(&mut self, sc: &Scope, ty: Ty, depth: u32) -> String {
        debug_assert!(sc.can(ty), "no expression of type {ty:?} in {sc:?}");
        if ty.opt {
            return self.opt(sc, ty.base, depth);
        }
        let leaf = depth == 0 || self.e.chance(2, 5);
        if leaf {
            return self.leaf(sc, ty.base);
        }
        let d = depth - 1;
        match ty.base {
            Base::Int => self.int(sc, d),
            Base::Float => self.float(sc, d),
            Base::Str => self.string(sc, d),
            Base::Bool => self.boolean(sc, d),
            Base::Duration => self.duration(sc, d),
            Base::Timestamp => self.timestamp(sc, d),
            Base::Percent | Base::Bytes => self.leaf(sc, ty.base),
        }
    }

    /// A variable of the type, or else a literal.
    fn leaf(&mut self, sc: &Scope, b: Base) -> String {
        let vars = sc.vars(Ty::plain(b));
        let lit = literal_exists(b);
        if !vars.is_empty() && (!lit || self.e.chance(3, 5)) {
            return self.e.pick(&vars).text.clone();
        }
        self.literal(b)
    }

    pub fn literal(&mut self, b: Base) -> String {
        match b {
            Base::Int => match self.e.weighted(&[6, 2, 1, 1, 1, 1]) {
                0 => self.e.range(0, 20).to_string(),
                1 => self.e.range(21, 5_000).to_string(),
                2 => "9_223_372_036_854_775_807".into(),
                3 => "4_611_686_018_427_387_904".into(),
                4 => (*self.e.pick(&["64KiB", "1MB", "2GiB", "10B"])).into(),
                _ => "(-1)".into(),
            },
            Base::Float => (*self
                .e
                .pick(&["1.5", "0.0", "0.25", "1_000.5", "3.0", "100.0", "(-2.5)"]))
            .into(),
            Base::Str => format!("\"{}\"", self.e.pick(&STRINGS)),
            Base::Bool => (*self.e.pick(&["true", "false"])).into(),
            Base::Duration => (*self.e.pick(&DURATIONS)).into(),
            Base::Percent => (*self.e.pick(&["1%", "50%", "0.5%", "100%", "0%"])).into(),
            // No literal: callers check `Scope::can`.
            Base::Timestamp | Base::Bytes => "none".into(),
        }
    }

    fn call(&mut self, sc: &Scope, ret: Ty, depth: u32) -> Option<String> {
        let fns: Vec<&FnSig> = sc
            .fns
            .iter()
            .filter(|f| f.ret == ret && f.params.iter().all(|p| sc.can(*p)))
            .collect();
        if fns.is_empty() {
            return None;
        }
        let f = self.e.pick(&fns);
        let args: Vec<String> = f.params.iter().map(|p| self.expr(sc, *p, depth)).collect();
        Some(format!("{}({})", f.name, args.join(", ")))
    }

    /// `x ?? d`, or a leaf when no optional of the type can be written.
    fn coalesce(&mut self, sc: &Scope, b: Base, depth: u32) -> String {
        if !sc.can(Ty::opt(b)) || !sc.can(Ty::plain(b)) {
            return self.leaf(sc, b);
        }
        let left = self.opt(sc, b, depth);
        let right = self.expr(sc, Ty::plain(b), depth);
        format!("({left} ?? {right})")
    }

    fn int(&mut self, sc: &Scope, d: u32) -> String {
        let int = Ty::plain(Base::Int);
        match self.e.below(13) {
            0..=4 => {
                let op = self.e.pick(&["+", "-", "*", "/", "%"]);
                let (a, b) = (self.expr(sc, int, d), self.expr(sc, int, d));
                format!("({a} {op} {b})")
            }
            5 => format!("(-{})", self.expr(sc, int, d)),
            6 => format!("len({})", self.string_or_pii(sc, d)),
            7 => format!("millis({})", self.expr(sc, Ty::plain(Base::Duration), d)),
            8 => format!("abs({})", self.expr(sc, int, d)),
            9 => format!("to_int({})", self.expr(sc, Ty::plain(Base::Float), d)),
            10 => self.coalesce(sc, Base::Int, d),
            11 => self
                .call(sc, int, d)
                .unwrap_or_else(|| self.leaf(sc, Base::Int)),
            _ => match sc.maps.first() {
                Some(m) if self.e.chance(1, 2) => format!("len({})", m.name),
                _ => self.leaf(sc, Base::Int),
            },
        }
    }

    fn float(&mut self, sc: &Scope, d: u32) -> String {
        let float = Ty::plain(Base::Float);
        let dur = Ty::plain(Base::Duration);
        match self.e.below(10) {
            0..=3 => {
                let op = self.e.pick(&["+", "-", "*", "/", "%"]);
                let (a, b) = (self.expr(sc, float, d), self.expr(sc, float, d));
                format!("({a} {op} {b})")
            }
            4 => format!("(-{})", self.expr(sc, float, d)),
            5 => format!("to_float({})", self.expr(sc, Ty::plain(Base::Int), d)),
            6 => format!("seconds({})", self.expr(sc, dur, d)),
            7 => format!("abs({})", self.expr(sc, float, d)),
            8 => format!("({} / {})", self.expr(sc, dur, d), self.expr(sc, dur, d)),
            _ => match self.call(sc, float, d) {
                Some(c) => c,
                None => self.coalesce(sc, Base::Float, d),
            },
        }
    }

    /// A string expression, or a personal-data field, for the functions
    /// that declassify (`len`, `extension`, `hash`, `mask`, `contains`...).
    fn string_or_pii(&mut self, sc: &Scope, d: u32) -> String {
        let pii = sc.pii();
        if !pii.is_empty() && self.e.chance(1, 3) {
            return self.e.pick(&pii).text.clone();
        }
        self.expr(sc, Ty::plain(Base::Str), d)
    }

    fn string(&mut self, sc: &Scope, d: u32) -> String {
        let s = Ty::plain(Base::Str);
        match self.e.below(11) {
            0 | 1 => format!("({} + {})", self.expr(sc, s, d), self.expr(sc, s, d)),
            2 => format!(
                "{}({})",
                self.e.pick(&["lower", "upper"]),
                self.expr(sc, s, d)
            ),
            3 => {
                let int = Ty::plain(Base::Int);
                format!(
                    "substring({}, {}, {})",
                    self.expr(sc, s, d),
                    self.expr(sc, int, d),
                    self.expr(sc, int, d)
                )
            }
            4 => format!(
                "{}({})",
                self.e.pick(&["extension", "mask"]),
                self.string_or_pii(sc, d)
            ),
            5 => {
                let pii = sc.pii();
                if !pii.is_empty() && self.e.chance(1, 2) {
                    format!("hash({})", self.e.pick(&pii).text)
                } else {
                    format!("hash({})", self.scalar(sc, d))
                }
            }
            6 => format!("to_string({})", self.scalar(sc, d)),
            7 => self.coalesce(sc, Base::Str, d),
            8 => self
                .call(sc, s, d)
                .unwrap_or_else(|| self.leaf(sc, Base::Str)),
            _ => self.leaf(sc, Base::Str),
        }
    }

    /// Any non-optional value, for `hash`, `to_string`, `distinct_count`.
    pub fn scalar(&mut self, sc: &Scope, d: u32) -> String {
        let bases: Vec<Base> = crate::ty::VALUE_BASES
            .into_iter()
            .filter(|b| sc.can(Ty::plain(*b)))
            .collect();
        let b = *self.e.pick(&bases);
        self.expr(sc, Ty::plain(b), d)
    }

    fn boolean(&mut self, sc: &Scope, d: u32) -> String {
        let b = Ty::plain(Base::Bool);
        let s = Ty::plain(Base::Str);
        match self.e.below(14) {
            0 | 1 => {
                let op = self.e.pick(&["&&", "||"]);
                format!("({} {op} {})", self.expr(sc, b, d), self.expr(sc, b, d))
            }
            2 => format!("(!{})", self.expr(sc, b, d)),
            3 | 4 => self.equality(sc, d),
            5 | 6 => self.ordering(sc, d),
            7 => format!(
                "{}({}, {})",
                self.e.pick(&["contains", "starts_with", "ends_with"]),
                self.string_or_pii(sc, d),
                self.expr(sc, s, d)
            ),
            8 => format!(
                "matches({}, \"{}\")",
                self.expr(sc, s, d),
                self.e.pick(&PATTERNS)
            ),
            9 => {
                // Absence tests.
                let bases = self.opt_bases(sc);
                let base = *self.e.pick(&bases);
                let x = self.opt(sc, base, d);
                format!("({x} {} none)", self.e.pick(&["==", "!="]))
            }
            10 if !sc.is_targets.is_empty() => {
                let m = self.e.pick(&sc.is_targets);
                format!("({} is {})", m.machine, self.e.pick(&m.states))
            }
            11 if !sc.maps.is_empty() => {
                let m = self.e.pick(&sc.maps).clone();
                let k = self.expr(sc, Ty::plain(m.key), d);
                format!("contains_key({}, {k})", m.name)
            }
            12 if sc.sample => format!("sample({})", self.literal(Base::Percent)),
            13 => self.coalesce(sc, Base::Bool, d),
            _ => self
                .call(sc, b, d)
                .unwrap_or_else(|| self.leaf(sc, Base::Bool)),
        }
    }

    fn opt_bases(&self, sc: &Scope) -> Vec<Base> {
        crate::ty::VALUE_BASES
            .into_iter()
            .filter(|b| sc.can(Ty::opt(*b)))
            .collect()
    }

    fn equality(&mut self, sc: &Scope, d: u32) -> String {
        let mut tys: Vec<Ty> = crate::ty::VALUE_BASES
            .into_iter()
            .flat_map(|b| [Ty::plain(b), Ty::opt(b)])
            .filter(|t| sc.can(*t))
            .collect();
        // Mixed optional and plain operands are allowed too.
        tys.push(Ty::plain(Base::Int));
        let t = *self.e.pick(&tys);
        let other = if t.opt && sc.can(Ty::plain(t.base)) && self.e.chance(1, 2) {
            Ty::plain(t.base)
        } else {
            t
        };
        let op = self.e.pick(&["==", "!="]);
        format!("({} {op} {})", self.expr(sc, t, d), self.expr(sc, other, d))
    }

    fn ordering(&mut self, sc: &Scope, d: u32) -> String {
        let tys: Vec<Base> = crate::ty::VALUE_BASES
            .into_iter()
            .filter(|b| b.ordered() && sc.can(Ty::plain(*b)))
            .collect();
        let t = Ty::plain(*self.e.pick(&tys));
        let op = self.e.pick(&["<", "<=", ">", ">="]);
        format!("({} {op} {})", self.expr(sc, t, d), self.expr(sc, t, d))
    }

    fn duration(&mut self, sc: &Scope, d: u32) -> String {
        let dur = Ty::plain(Base::Duration);
        let int = Ty::plain(Base::Int);
        let ts = Ty::plain(Base::Timestamp);
        match self.e.below(9) {
            0 | 1 => {
                let op = self.e.pick(&["+", "-"]);
                format!("({} {op} {})", self.expr(sc, dur, d), self.expr(sc, dur, d))
            }
            2 => format!("({} * {})", self.expr(sc, dur, d), self.expr(sc, int, d)),
            3 => format!("({} * {})", self.expr(sc, int, d), self.expr(sc, dur, d)),
            4 => format!("({} / {})", self.expr(sc, dur, d), self.expr(sc, int, d)),
            5 if sc.can(ts) => {
                format!("({} - {})", self.expr(sc, ts, d), self.expr(sc, ts, d))
            }
            6 => format!("(-{})", self.expr(sc, dur, d)),
            7 => self.coalesce(sc, Base::Duration, d),
            _ => self
                .call(sc, dur, d)
                .unwrap_or_else(|| self.leaf(sc, Base::Duration)),
        }
    }

    fn timestamp(&mut self, sc: &Scope, d: u32) -> String {
        let dur = Ty::plain(Base::Duration);
        let ts = Ty::plain(Base::Timestamp);
        match self.e.below(5) {
            0 => format!("({} + {})", self.expr(sc, ts, d), self.expr(sc, dur, d)),
            1 => format!("({} + {})", self.expr(sc, dur, d), self.expr(sc, ts, d)),
            2 => format!("({} - {})", self.expr(sc, ts, d), self.expr(sc, dur, d)),
            3 if sc.can(Ty::opt(Base::Timestamp)) => self.coalesce(sc, Base::Timestamp, d),
            _ => self.leaf(sc, Base::Timestamp),
        }
    }

    /// An expression of type `b?`; `sc.can(Ty::opt(b))` must hold.
    pub fn opt(&mut self, sc: &Scope, b: Base, depth: u32) -> String {
        let vars = sc.vars(Ty::opt(b));
        let maps: Vec<&MapVal> = sc.maps.iter().filter(|m| m.val == b).collect();
        let mut weights = [
            if vars.is_empty() { 0 } else { 6 },
            if maps.is_empty() { 0 } else { 2 },
            2, // a conversion
            if depth > 0 && !vars.is_empty() { 1 } else { 0 },
        ];
        if !matches!(b, Base::Int | Base::Float | Base::Bool | Base::Str)
            || (b == Base::Str && sc.attrs.is_none())
        {
            weights[2] = 0;
        }
        let d = depth.saturating_sub(1);
        match self.e.weighted(&weights) {
            0 => self.e.pick(&vars).text.clone(),
            1 => {
                let m = (*self.e.pick(&maps)).clone();
                let k = self.expr(sc, Ty::plain(m.key), d);
                format!("{}[{k}]", m.name)
            }
            2 => {
                let from_attr = sc.attrs.is_some() && (b == Base::Str || self.e.chance(1, 3));
                let f = match b {
                    Base::Int => "to_int",
                    Base::Float => "to_float",
                    Base::Bool => "to_bool",
                    _ => "to_string",
                };
                if from_attr {
                    let attrs = sc.attrs.unwrap_or("attrs");
                    if self.e.chance(1, 5) {
                        // Resource attributes: `event.resource[...]`.
                        let map = attrs.replace("attrs", "resource");
                        return format!("{f}({map}[\"service.name\"])");
                    }
                    let key = self.e.pick(&["k1", "k2", "count", "flag", "missing"]);
                    format!("{f}({attrs}[\"{key}\"])")
                } else {
                    format!("{f}({})", self.expr(sc, Ty::plain(Base::Str), d))
                }
            }
            _ => {
                let a = self.e.pick(&vars).text.clone();
                let rest = self.opt(sc, b, d);
                format!("({a} ?? {rest})")
            }
        }
    }
}

fn literal_exists(b: Base) -> bool {
    !matches!(b, Base::Timestamp | Base::Bytes)
}
