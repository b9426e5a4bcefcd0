//! A compiled pattern of the definitions (`definitions.hotfix_pattern`) that answers most texts
//! without running the regex: when every match must begin at the start of the text and with one
//! of a few literals (as the default `^(revert "|hotfix\b)` must), a text whose first byte begins
//! none of them cannot match. The engine asks this of every change in every derivation; the
//! regex's own search took about 230 instructions a title, the first byte one lookup.

use regex::Regex;
use regex_syntax::hir::Look;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// A regex, with the first bytes a match can begin with when every match starts the text.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    /// By byte: whether a match may begin with it. `None`: any text may match.
    first_bytes: Option<Box<[bool; 256]>>,
}

impl Pattern {
    /// Compiles `pattern` as the regex crate does (the same syntax and flags).
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(pattern)?;
        Ok(Self {
            first_bytes: first_bytes(pattern),
            regex,
        })
    }

    /// Whether the text matches: the regex's answer, asked only when the first byte allows one.
    pub fn is_match(&self, text: &str) -> bool {
        if let Some(first) = &self.first_bytes {
            match text.as_bytes().first() {
                Some(byte) if first[usize::from(*byte)] => {}
                _ => return false,
            }
        }
        self.regex.is_match(text)
    }

    /// The regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

/// The bytes every match of `pattern` must begin with, if every match must start the text (a
/// leading `^` on every branch) and its prefixes are a finite set of non-empty literals.
fn first_bytes(pattern: &str) -> Option<Box<[bool; 256]>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut first = Box::new([false; 256]);
    for literal in prefixes.literals()? {
        let byte = literal.as_bytes().first()?;
        first[usize::from(*byte)] = true;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_answers_only_what_the_regex_would() {
        let titles = [
            "hotfix: the login",
            "HOTFIX: upper case",
            "Hotfix",
            "hotfixes",
            "revert \"feat: a\"",
            "Revert \"feat: a\"",
            "revert: not quoted",
            "feat: change",
            "fix: a hotfix later in the title",
            "",
            "ähotfix",
            "  hotfix",
        ];
        let patterns = [
            (r#"(?i)^(revert "|hotfix\b)"#, true),
            (r"(?i)^hotfix|^revert", true),
            (r"(?i)^(hot)?fix", true),
            (r"(?i)hotfix", false),
            (r"(?i)^hotfix|revert", false),
            (r"(?i)^.*hotfix", false),
            (r"(?i)^", false),
            // Any Unicode space may begin a match: too many to list.
            (r"(?i)^\s*hotfix", false),
        ];
        for (pattern, prefiltered) in patterns {
            let compiled = Pattern::new(pattern).unwrap();
            assert_eq!(compiled.first_bytes.is_some(), prefiltered, "{pattern}");
            for title in titles {
                assert_eq!(
                    compiled.is_match(title),
                    compiled.regex().is_match(title),
                    "{pattern} on {title:?}"
                );
            }
        }
    }
}
