//! The types the generator tracks, and how each is written in dt.

/// A non-optional value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Int,
    Float,
    Str,
    Bool,
    Duration,
    Timestamp,
    Percent,
    Bytes,
}

impl Base {
    pub fn name(self) -> &'static str {
        match self {
            Base::Int => "int",
            Base::Float => "float",
            Base::Str => "string",
            Base::Bool => "bool",
            Base::Duration => "duration",
            Base::Timestamp => "timestamp",
            Base::Percent => "percent",
            Base::Bytes => "bytes",
        }
    }

    /// `<`, `>`, `min` and `max` apply.
    pub fn ordered(self) -> bool {
        !matches!(self, Base::Bool | Base::Bytes)
    }

    /// `sum`, `avg`, `histogram` and `percentile` apply.
    pub fn measure(self) -> bool {
        matches!(self, Base::Int | Base::Float | Base::Duration)
    }

    /// May be a map key or a group key.
    pub fn key(self) -> bool {
        matches!(self, Base::Int | Base::Str | Base::Bool)
    }
}

/// A value type: a base, perhaps optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ty {
    pub base: Base,
    pub opt: bool,
}

impl Ty {
    pub const fn plain(base: Base) -> Ty {
        Ty { base, opt: false }
    }

    pub const fn opt(base: Base) -> Ty {
        Ty { base, opt: true }
    }

    pub fn text(self) -> String {
        if self.opt {
            format!("{}?", self.base.name())
        } else {
            self.base.name().to_string()
        }
    }
}

/// The types a field, variable or column is given, in the order the
/// generator prefers them when the bytes run out.
pub const VALUE_BASES: [Base; 8] = [
    Base::Int,
    Base::Str,
    Base::Bool,
    Base::Float,
    Base::Duration,
    Base::Timestamp,
    Base::Percent,
    Base::Bytes,
];
