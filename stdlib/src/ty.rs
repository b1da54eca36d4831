//! The types of the dt language, and the patterns stdlib signatures use to
//! accept several types (e.g. `len` takes a string, bytes or a map).

use std::fmt;

/// A type of the language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    Int,
    Float,
    String,
    Bytes,
    Duration,
    Timestamp,
    Percent,
    /// The value of an attribute no schema declares; convert before use.
    Dyn,
    /// The result of `histogram(x)`: only a metric can carry it.
    Histogram,
    Optional(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// The type of the literal `none`: fits any optional.
    None,
    /// An expression whose type could not be computed because of an error
    /// already reported; it fits everywhere so errors do not cascade.
    Error,
}

impl Ty {
    pub fn optional(inner: Ty) -> Ty {
        match inner {
            Ty::Optional(_) | Ty::Error | Ty::None => inner,
            other => Ty::Optional(Box::new(other)),
        }
    }

    pub fn is_optional(&self) -> bool {
        matches!(self, Ty::Optional(_))
    }

    /// The type inside an optional, or the type itself.
    pub fn unwrap_optional(&self) -> &Ty {
        match self {
            Ty::Optional(inner) => inner,
            other => other,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }

    /// Types a map or a machine can be keyed by.
    pub fn is_key(&self) -> bool {
        matches!(self, Ty::String | Ty::Int | Ty::Bool | Ty::Error)
    }

    /// Whether a value of type `actual` can be used where `self` is expected.
    pub fn accepts(&self, actual: &Ty) -> bool {
        if self == actual || self.is_error() || actual.is_error() {
            return true;
        }
        match (self, actual) {
            (Ty::Optional(_), Ty::None) => true,
            (Ty::Optional(inner), other) => inner.accepts(other),
            _ => false,
        }
    }

    /// The built-in type with this name.
    pub fn from_name(name: &str) -> Option<Ty> {
        Some(match name {
            "bool" => Ty::Bool,
            "int" => Ty::Int,
            "float" => Ty::Float,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "duration" => Ty::Duration,
            "timestamp" => Ty::Timestamp,
            "percent" => Ty::Percent,
            "dyn" => Ty::Dyn,
            _ => return None,
        })
    }
}

/// Names of the built-in types, for "did you mean".
pub const TYPE_NAMES: &[&str] = &[
    "bool",
    "int",
    "float",
    "string",
    "bytes",
    "duration",
    "timestamp",
    "percent",
    "dyn",
    "map",
];

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::String => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Duration => f.write_str("duration"),
            Ty::Timestamp => f.write_str("timestamp"),
            Ty::Percent => f.write_str("percent"),
            Ty::Dyn => f.write_str("dyn"),
            Ty::Histogram => f.write_str("histogram"),
            Ty::Optional(inner) => write!(f, "{inner}?"),
            Ty::Map(k, v) => write!(f, "map[{k}, {v}]"),
            Ty::None => f.write_str("none"),
            Ty::Error => f.write_str("{unknown}"),
        }
    }
}

/// What a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Bool,
    Int,
    Float,
    String,
    Duration,
    Percent,
    /// int or float.
    Numeric,
    /// int, float or duration: what can be summed and averaged.
    Measure,
    /// int, float, string, duration, timestamp or percent: what can be ordered.
    Ordered,
    /// Any non-optional value except maps and histograms.
    Scalar,
    /// A scalar, or an attribute's `dyn?`: what `to_string` accepts.
    Printable,
    /// string, bytes or a map: what has a length.
    Sized,
    /// string, float, bool, int or dyn: what a conversion accepts.
    Convertible,
    /// Any map.
    Map,
    /// The key type of the map given as argument `n`.
    KeyOf(u8),
}

impl Pattern {
    pub fn matches(self, ty: &Ty, args: &[Ty]) -> bool {
        if ty.is_error() {
            return true;
        }
        match self {
            Pattern::Bool => *ty == Ty::Bool,
            Pattern::Int => *ty == Ty::Int,
            Pattern::Float => *ty == Ty::Float,
            Pattern::String => *ty == Ty::String,
            Pattern::Duration => *ty == Ty::Duration,
            Pattern::Percent => *ty == Ty::Percent,
            Pattern::Numeric => matches!(ty, Ty::Int | Ty::Float),
            Pattern::Measure => matches!(ty, Ty::Int | Ty::Float | Ty::Duration),
            Pattern::Ordered => matches!(
                ty,
                Ty::Int | Ty::Float | Ty::String | Ty::Duration | Ty::Timestamp | Ty::Percent
            ),
            Pattern::Scalar => {
                !matches!(ty, Ty::Optional(_) | Ty::Map(..) | Ty::Histogram | Ty::None)
            }
            Pattern::Printable => {
                Pattern::Scalar.matches(ty, args) || matches!(ty.unwrap_optional(), Ty::Dyn)
            }
            Pattern::Sized => matches!(ty, Ty::String | Ty::Bytes | Ty::Map(..)),
            // `dyn?` too: an attribute read `attrs["k"]` converts in one step,
            // which is the only way to use one in a query.
            Pattern::Convertible => {
                matches!(ty.unwrap_optional(), Ty::Dyn)
                    || matches!(ty, Ty::String | Ty::Float | Ty::Int | Ty::Bool)
            }
            Pattern::Map => matches!(ty, Ty::Map(..)),
            Pattern::KeyOf(n) => match args.get(n as usize) {
                Some(Ty::Map(k, _)) => k.accepts(ty),
                _ => true,
            },
        }
    }

    /// How the pattern reads in a signature or an "expected" message.
    pub fn describe(self) -> &'static str {
        match self {
            Pattern::Bool => "bool",
            Pattern::Int => "int",
            Pattern::Float => "float",
            Pattern::String => "string",
            Pattern::Duration => "duration",
            Pattern::Percent => "percent",
            Pattern::Numeric => "int or float",
            Pattern::Measure => "int, float or duration",
            Pattern::Ordered => "int, float, string, duration, timestamp or percent",
            Pattern::Scalar => "any value",
            Pattern::Printable => "any value, or an attribute's dyn?",
            Pattern::Sized => "string, bytes or map",
            Pattern::Convertible => "string, int, float, bool or dyn (or dyn?)",
            Pattern::Map => "map",
            Pattern::KeyOf(_) => "the map's key type",
        }
    }
}

/// What a callable returns, possibly depending on its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Nothing,
    Bool,
    Int,
    Float,
    String,
    Histogram,
    /// The type of argument `n`.
    SameAs(u8),
    /// `avg` and `percentile`: float for numbers, duration for durations.
    AverageOf(u8),
    /// A conversion to this type: always succeeds from int and float to
    /// int, float or string and from anything to string, else optional.
    Convert(ConvertTo),
    /// The map value type of argument `n`, optional (the key may be absent).
    ValueOf(u8),
    /// Optional int, e.g. a file size that may not be readable.
    OptionalInt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertTo {
    Int,
    Float,
    String,
    Bool,
}

impl Returns {
    /// The result type for these argument types.
    pub fn resolve(self, args: &[Ty]) -> Ty {
        let arg = |n: u8| args.get(n as usize).cloned().unwrap_or(Ty::Error);
        match self {
            Returns::Nothing => Ty::Error,
            Returns::Bool => Ty::Bool,
            Returns::Int => Ty::Int,
            Returns::Float => Ty::Float,
            Returns::String => Ty::String,
            Returns::Histogram => Ty::Histogram,
            Returns::SameAs(n) => arg(n),
            Returns::AverageOf(n) => match arg(n) {
                Ty::Duration => Ty::Duration,
                Ty::Error => Ty::Error,
                _ => Ty::Float,
            },
            Returns::Convert(to) => {
                let target = match to {
                    ConvertTo::Int => Ty::Int,
                    ConvertTo::Float => Ty::Float,
                    ConvertTo::String => Ty::String,
                    ConvertTo::Bool => Ty::Bool,
                };
                let source = arg(0);
                let total = to == ConvertTo::String && *source.unwrap_optional() != Ty::Dyn
                    || matches!(source, Ty::Int | Ty::Float)
                        && matches!(to, ConvertTo::Int | ConvertTo::Float)
                    || source == target;
                if total || source.is_error() {
                    target
                } else {
                    Ty::optional(target)
                }
            }
            Returns::ValueOf(n) => match arg(n) {
                Ty::Map(_, v) => Ty::optional(*v),
                _ => Ty::Error,
            },
            Returns::OptionalInt => Ty::optional(Ty::Int),
        }
    }

    /// ` -> type` for signatures; empty for actions.
    pub fn describe_suffix(self) -> String {
        let s = match self {
            Returns::Nothing => return String::new(),
            Returns::Bool => "bool",
            Returns::Int => "int",
            Returns::Float => "float",
            Returns::String => "string",
            Returns::Histogram => "histogram",
            Returns::SameAs(_) => "same type as the argument",
            Returns::AverageOf(_) => "float (duration for durations)",
            Returns::Convert(ConvertTo::Int) => "int?",
            Returns::Convert(ConvertTo::Float) => "float?",
            Returns::Convert(ConvertTo::String) => "string",
            Returns::Convert(ConvertTo::Bool) => "bool?",
            Returns::ValueOf(_) => "value type?",
            Returns::OptionalInt => "int?",
        };
        format!(" -> {s}")
    }
}

/// One parameter of a callable.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub pattern: Pattern,
    /// May be left out; the callee then uses its documented default.
    pub optional: bool,
}

/// A required parameter.
pub const fn req(name: &'static str, pattern: Pattern) -> Param {
    Param {
        name,
        pattern,
        optional: false,
    }
}

/// A parameter with a default.
pub const fn opt(name: &'static str, pattern: Pattern) -> Param {
    Param {
        name,
        pattern,
        optional: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_accepts_inner_and_none() {
        let o = Ty::optional(Ty::Int);
        assert!(o.accepts(&Ty::Int));
        assert!(o.accepts(&Ty::None));
        assert!(!Ty::Int.accepts(&o));
        assert_eq!(Ty::optional(o.clone()), o);
        assert_eq!(o.to_string(), "int?");
    }

    #[test]
    fn conversions() {
        let conv = Returns::Convert(ConvertTo::Int);
        assert_eq!(conv.resolve(&[Ty::Float]), Ty::Int);
        assert_eq!(conv.resolve(&[Ty::String]), Ty::optional(Ty::Int));
        assert_eq!(
            Returns::Convert(ConvertTo::String).resolve(&[Ty::Int]),
            Ty::String
        );
        assert_eq!(
            Returns::Convert(ConvertTo::String).resolve(&[Ty::Dyn]),
            Ty::optional(Ty::String)
        );
        let attr = Ty::optional(Ty::Dyn);
        assert!(Pattern::Convertible.matches(&attr, &[]));
        assert_eq!(
            Returns::Convert(ConvertTo::String).resolve(std::slice::from_ref(&attr)),
            Ty::optional(Ty::String)
        );
        assert_eq!(conv.resolve(&[attr]), Ty::optional(Ty::Int));
    }
}
