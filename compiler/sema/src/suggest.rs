//! "Did you mean" suggestions for unknown names.

/// The candidate closest to `name`, if one is close enough to be a likely
/// typo: a small edit distance relative to the name's length, or the same
/// name in another case.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let distance = if c.to_ascii_lowercase() == lower {
            0
        } else {
            strsim::damerau_levenshtein(name, c)
        };
        let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A help line for an unknown name, if a suggestion exists.
pub fn help(name: &str, candidates: impl IntoIterator<Item = impl AsRef<str>>) -> Option<String> {
    let owned: Vec<String> = candidates
        .into_iter()
        .map(|c| c.as_ref().to_string())
        .collect();
    did_you_mean(name, owned.iter().map(String::as_str)).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["fileName", "hashValue", "e"];
        assert_eq!(did_you_mean("filename", names), Some("fileName"));
        assert_eq!(did_you_mean("fileNme", names), Some("fileName"));
        assert_eq!(did_you_mean("hashvalu", names), Some("hashValue"));
        assert_eq!(did_you_mean("zzz", names), None);
        assert_eq!(did_you_mean("count", ["coun", "cnt"]), Some("coun"));
    }
}
