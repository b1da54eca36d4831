//! The registry of diagnostic codes.
//!
//! Codes are grouped by range, one range per concern, and a code that has
//! appeared in a release is never reused or renumbered: tools and people
//! search for them. `E00` input, `E01` syntax, `E02` names, `E03` types,
//! `E04` read-only safety, `E05` bounds, `E06` privacy, `E07` cost and risk,
//! `E08` policy, `W0` warnings. Later passes add their codes here.

use crate::Severity;

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $sev:ident, $title:literal; )*) => {
        /// A stable diagnostic code. See `docs/diagnostics.md` for each one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code as printed, e.g. `E0203`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => stringify!($name),)* }
            }

            /// A short title naming the pattern the code flags.
            pub fn title(self) -> &'static str {
                match self { $(Code::$name => $title,)* }
            }

            pub fn default_severity(self) -> Severity {
                match self { $(Code::$name => Severity::$sev,)* }
            }

            /// Looks a code up by its printed form.
            pub fn parse(s: &str) -> Option<Code> {
                let s = s.trim().to_ascii_uppercase();
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    // E00: the input itself.
    /// The file is not valid UTF-8.
    E0001 = Error, "file is not valid UTF-8";

    // E01: lexical structure and syntax.
    /// A character that starts no token.
    E0101 = Error, "invalid character";
    /// A string literal that reaches the end of its line.
    E0102 = Error, "unterminated string";
    /// An escape sequence the language does not define.
    E0103 = Error, "invalid escape sequence";
    /// A token where the grammar does not allow it.
    E0104 = Error, "unexpected token";
    /// The file ends inside an item.
    E0105 = Error, "unexpected end of file";
    /// A number that is too large, or has a unit the language does not know.
    E0106 = Error, "invalid number literal";
    /// Expressions or blocks nested deeper than the checker allows.
    E0107 = Error, "nesting too deep";
    /// Parsing stopped reporting after this many syntax errors.
    E0108 = Error, "too many syntax errors";
    /// A block comment with no end.
    E0109 = Error, "unterminated block comment";
    /// A call whose callee is not a name.
    E0110 = Error, "invalid call target";

    // E02: names and declarations.
    /// An event name no `event` declaration or import defines.
    E0201 = Error, "unknown event";
    /// A field an event (or a query row) does not have.
    E0202 = Error, "unknown field";
    /// A name that is not in scope.
    E0203 = Error, "unknown name";
    /// A function the standard library does not define.
    E0204 = Error, "unknown function";
    /// An action the standard library does not define.
    E0205 = Error, "unknown action";
    /// A probe kind the standard library does not define.
    E0206 = Error, "unknown probe kind";
    /// A machine state that is not declared.
    E0207 = Error, "unknown state";
    /// Two declarations with the same name in one scope.
    E0208 = Error, "duplicate declaration";
    /// A field annotation the language does not define.
    E0209 = Error, "unknown annotation";
    /// An imported file that cannot be read.
    E0210 = Error, "import not found";
    /// An imported name the imported file does not declare.
    E0211 = Error, "unknown imported name";
    /// An event source that is not a declared probe.
    E0212 = Error, "unknown probe";
    /// A schema field with the name of a standard OpenTelemetry field.
    E0213 = Error, "field shadows a standard field";
    /// A redaction method other than hash, mask or drop.
    E0214 = Error, "unknown redaction method";
    /// A named argument the callee does not take, or given twice.
    E0215 = Error, "unknown or repeated argument";
    /// A machine name that is not declared.
    E0216 = Error, "unknown machine";
    /// A type name the language does not define.
    E0217 = Error, "unknown type";
    /// `event` used where there is no current event.
    E0218 = Error, "no current event here";
    /// A pipeline stage or statement in a place that does not allow it.
    E0219 = Error, "misplaced construct";
    /// A machine that declares no states.
    E0220 = Error, "machine without states";
    /// A computed query column that needs a name.
    E0221 = Error, "unnamed column";
    /// An event whose durable ID is the empty string.
    E0222 = Error, "empty durable ID";

    // E03: types.
    /// A value of one type where another is required.
    E0301 = Error, "mismatched types";
    /// An optional value used as if it were always present.
    E0302 = Error, "optional value used without handling";
    /// A call with too few or too many arguments.
    E0303 = Error, "wrong number of arguments";
    /// An argument of the wrong type.
    E0304 = Error, "wrong argument type";
    /// An operator applied to types it does not accept.
    E0305 = Error, "invalid operand types";
    /// A condition that is not a `bool`.
    E0306 = Error, "condition is not bool";
    /// An assignment to something that cannot be assigned.
    E0307 = Error, "invalid assignment target";
    /// An aggregate outside `summarize`, or a plain function inside it.
    E0308 = Error, "misplaced aggregate";
    /// `emit metric` without a `summarize` stage before it.
    E0309 = Error, "metric without summarize";
    /// A transition into a state that leaves one of its variables unset.
    E0310 = Error, "state variable not set";
    /// A function whose body can finish without returning a value.
    E0311 = Error, "missing return";
    /// A `return` outside a function, or returning the wrong type.
    E0312 = Error, "invalid return";
    /// A machine whose key cannot be computed for an event it handles.
    E0313 = Error, "machine key unavailable";
    /// An emitted log whose fields do not match its event's schema.
    E0314 = Error, "emitted fields do not match the schema";
    /// A `for` loop over something that is not a range or a map.
    E0315 = Error, "not iterable";
    /// A map key type other than string, int or bool.
    E0316 = Error, "invalid map key type";
    /// An annotation with the wrong arguments.
    E0317 = Error, "invalid annotation";
    /// A redaction method that does not apply to the field's type.
    E0318 = Error, "redaction does not apply to this type";
    /// A value that must be known at compile time.
    E0319 = Error, "not a constant";
    /// A numeric parameter out of its allowed range.
    E0320 = Error, "value out of range";
    /// `+=` or `-=` on a state variable that may not have been set yet.
    E0321 = Error, "compound assignment to a possibly-unset state variable";
    /// Two queries export a metric of the same name.
    E0322 = Error, "metric emitted by two queries";
    /// `+=` or `-=` on an entry of a map of timestamps, which may be absent.
    E0323 = Error, "compound assignment to a map entry of timestamps";

    // E04: read-only safety.
    /// A program reaches a catalog entry whose effect changes the system.
    E0401 = Error, "mutating effect";
    /// A catalog entry with no declared effect and risk.
    E0402 = Error, "undeclared effect";

    // E05: termination and bounds.
    /// Functions that call themselves, directly or through others.
    E0501 = Error, "recursion";
    /// State whose upper bound is larger than any agent will hold.
    E0502 = Error, "state too large";

    // E06: privacy flow.
    /// Personal data reaches a field of an emitted log.
    E0601 = Error, "personal data in an emitted log";
    /// Personal data reaches a metric label or value.
    E0602 = Error, "personal data in a metric";
    /// An event the program handles leaves the box with personal data.
    E0603 = Error, "personal data leaves un-redacted";
    /// `mask` on a secret, which leaves part of it visible.
    E0604 = Error, "secret only masked";

    // E08: deployment policy.
    /// The program's risk tier is above the ring's maximum.
    E0801 = Error, "risk tier above policy";
    /// A risk dimension is above the ring's cap.
    E0802 = Error, "risk dimension above policy";
    /// A probe kind the ring does not allow.
    E0803 = Error, "probe not allowed";
    /// An action the ring does not allow.
    E0804 = Error, "action not allowed";
    /// The program's memory bound is above the ring's maximum.
    E0805 = Error, "memory above policy";
    /// A policy file that cannot be read as a policy.
    E0806 = Error, "invalid policy";

    // W0: warnings.
    /// A machine state no transition can reach from the initial state.
    W0001 = Warning, "unreachable state";
    /// A transition an earlier unguarded transition always pre-empts.
    W0002 = Warning, "unreachable transition";
    /// A query that emits nothing.
    W0003 = Warning, "query has no output";
    /// A shaping rule that repeats or is covered by another.
    W0004 = Warning, "redundant shaping rule";
    /// A `let`, `var` or `if let` binding in a block that is never read.
    W0005 = Warning, "unused variable";
    /// A metric whose labels can take unboundedly many values.
    W0006 = Warning, "unbounded metric cardinality";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_and_unique() {
        let names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "codes must be listed in order, once each");
    }

    #[test]
    fn parse_round_trips() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
        }
        assert_eq!(Code::parse("e0203"), Some(Code::E0203));
        assert_eq!(Code::parse("E9999"), None);
    }
}
