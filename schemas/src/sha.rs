//! Commit SHAs as the engine keeps them ([`Sha`]: a full SHA as its 20 bytes, inline) and the
//! 64-bit hashes it remembers commits, revisions and delivery keys by ([`commit_hash`],
//! [`delivery_hash`]): both are part of stored facts and checkpoints, so every crate reads them
//! from here.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA as the engine and the facts keep and compare it: a full SHA (40 lower-case hex digits)
/// as its 20 bytes, inline (no allocation, and compared and hashed without reading text elsewhere
/// in memory); anything else as its text. Two are equal exactly when their text is, and they
/// order as their text does. Stored forms hold its text ([`Sha::text`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sha {
    /// The bytes of a full lower-case SHA.
    Full([u8; 20]),
    /// Any other text.
    Text(Box<str>),
}

impl Sha {
    /// The SHA of a text (upper-case digits are kept as text: equal bytes must mean equal text).
    pub fn of(text: &str) -> Self {
        match full_sha_bytes(text) {
            Some(bytes) => Self::Full(bytes),
            None => Self::Text(text.into()),
        }
    }

    /// The same of an owned text, kept without copying when it is not a full SHA.
    pub fn from_owned(text: String) -> Self {
        match full_sha_bytes(&text) {
            Some(bytes) => Self::Full(bytes),
            None => Self::Text(text.into_boxed_str()),
        }
    }

    /// Its text, a full SHA's written out on the stack.
    pub fn text(&self) -> ShaText<'_> {
        match self {
            Self::Full(bytes) => {
                let mut digits = [0u8; 40];
                hex::encode_to_slice(bytes, &mut digits).expect("40 digits for 20 bytes");
                ShaText::Full(digits)
            }
            Self::Text(text) => ShaText::Text(text),
        }
    }

    /// Its [`commit_hash`] (of a full SHA: its first 8 bytes, read without its text).
    pub fn hash(&self) -> u64 {
        match self {
            Self::Full(bytes) => u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
            Self::Text(text) => commit_hash(text),
        }
    }
}

/// In text order: full SHAs by their bytes (a lower-case hex digit's value orders as the digit
/// does), others by their text.
impl Ord for Sha {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Self::Full(a), Self::Full(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            _ => (*self.text()).cmp(&*other.text()),
        }
    }
}

impl PartialOrd for Sha {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The bytes of a full lower-case SHA's text; `None` for any other text.
fn full_sha_bytes(text: &str) -> Option<[u8; 20]> {
    let text = <&[u8; 40]>::try_from(text.as_bytes()).ok()?;
    let mut bytes = [0u8; 20];
    for (out, digits) in bytes.chunks_exact_mut(4).zip(text.chunks_exact(8)) {
        let digits = u64::from_be_bytes(digits.try_into().expect("8 digits"));
        out.copy_from_slice(&hex_word(digits, Case::Lower)?.to_be_bytes());
    }
    Some(bytes)
}

/// Which letters [`hex_word`] takes for digits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    /// `a`-`f` only.
    Lower,
    /// `a`-`f` and `A`-`F`.
    Either,
}

/// The value of 8 hex digits, read as one word (the first digit in the top byte): all 8 bytes
/// are checked and converted at once, in about 40 instructions where a loop over the digits
/// took 8 a digit (the engine reads two 40-digit SHAs a push, and the 16-digit prefix of every
/// commit and revision). `None` unless every byte is a hex digit of `case`.
fn hex_word(word: u64, case: Case) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    if word & HIGH != 0 {
        return None;
    }
    // With every byte below 0x80, these work a byte at a time without carries between bytes:
    // the high bit of a byte is set where it is below `n`, or above `n`.
    let below = |x: u64, n: u8| !((x | HIGH) - ONES * u64::from(n)) & HIGH;
    let above = |x: u64, n: u8| (x + ONES * u64::from(0x7f - n)) & HIGH;
    let digits = !(below(word, b'0') | above(word, b'9')) & HIGH;
    let letters = match case {
        Case::Lower => word,
        Case::Either => word | (ONES * 0x20),
    };
    let letters = !(below(letters, b'a') | above(letters, b'f')) & HIGH;
    if digits | letters != HIGH {
        return None;
    }
    // A digit's value is its low four bits, a letter's those plus 9; then the eight values,
    // one a byte, are packed into four bytes, two bytes and one word.
    let values = (word & (ONES * 0x0f)) + (letters >> 7) * 9;
    let pairs = (values | (values >> 4)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    Some(((quads | (quads >> 16)) & 0xffff_ffff) as u32)
}

/// A [`Sha`]'s text ([`Sha::text`]): a full SHA's 40 digits, held on the stack, or the text it
/// was. Reads, compares and prints as a `str`.
#[derive(Debug, Clone, Copy)]
pub enum ShaText<'a> {
    /// The digits of a full SHA.
    Full([u8; 40]),
    /// Any other text.
    Text(&'a str),
}

impl Deref for ShaText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Full(digits) => std::str::from_utf8(digits).expect("hex digits"),
            Self::Text(text) => text,
        }
    }
}

impl PartialEq for ShaText<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for ShaText<'_> {}

impl PartialOrd for ShaText<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShaText<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl fmt::Display for ShaText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for ShaText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

/// Written as its text.
impl Serialize for Sha {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text().serialize(serializer)
    }
}

/// Read from its text: a full SHA straight into its bytes, with no allocation when the text is
/// borrowed from the input (as a log record's is).
impl<'de> Deserialize<'de> for Sha {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Sha;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a commit SHA")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Sha, E> {
                Ok(Sha::of(text))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Sha, E> {
                Ok(Sha::from_owned(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl From<&str> for Sha {
    fn from(text: &str) -> Self {
        Self::of(text)
    }
}

impl From<String> for Sha {
    fn from(text: String) -> Self {
        Self::from_owned(text)
    }
}

impl PartialEq<str> for Sha {
    /// Whether its text is `text`, without writing its text out.
    fn eq(&self, text: &str) -> bool {
        match self {
            Self::Full(bytes) => full_sha_bytes(text).is_some_and(|other| other == *bytes),
            Self::Text(own) => **own == *text,
        }
    }
}

impl PartialEq<&str> for Sha {
    fn eq(&self, text: &&str) -> bool {
        *self == **text
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// The hash a commit or revision is remembered by: a SHA is already a hash, so its first 16 hex
/// digits are taken as they are (cheap, and stable across builds); anything else is hashed.
pub fn commit_hash(sha: &str) -> u64 {
    if let Some(prefix) = sha.as_bytes().get(..16) {
        // 16 hex digits in either case, a word at a time: what `u64::from_str_radix(.., 16)`
        // reads them as, without its per-digit checks (it also takes a leading `+`: asked below).
        let word = |digits: &[u8]| u64::from_be_bytes(digits.try_into().expect("8 digits"));
        if let (Some(high), Some(low)) = (
            hex_word(word(&prefix[..8]), Case::Either),
            hex_word(word(&prefix[8..]), Case::Either),
        ) {
            return (u64::from(high) << 32) | u64::from(low);
        }
    }
    match sha.get(..16).map(|h| u64::from_str_radix(h, 16)) {
        Some(Ok(hash)) => hash,
        _ => delivery_hash(sha),
    }
}

/// A stable 64-bit hash of a key: XXH3-64, a published algorithm (the same in every build, so
/// checkpoints stay valid) and fast on short keys (SHA-256 was 3 % of the engine).
pub fn delivery_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn full_shas_are_kept_as_their_bytes_and_others_as_their_text() {
        let Sha::Full(bytes) = Sha::of(SHA) else {
            panic!("a full lower-case SHA");
        };
        assert_eq!(bytes[0], 0x01);
        assert_eq!(bytes[19], 0x67);
        assert_eq!(Sha::of(SHA).hash(), commit_hash(SHA));
        assert_eq!(&*Sha::of(SHA).text(), SHA);
        assert!(Sha::of(SHA) == *SHA && Sha::of(SHA) != *"0123" && Sha::of("main") == *"main");
        for other in [&SHA[..39], &SHA.to_uppercase(), "main", ""] {
            assert_eq!(Sha::of(other), Sha::Text(other.into()), "{other}");
            assert_eq!(Sha::from_owned(other.to_string()), Sha::of(other));
        }
    }

    #[test]
    fn shas_are_read_and_written_as_their_text() {
        // Log records and checkpoints hold the text: a full SHA reads into its bytes, any other
        // text stays text (escaped or not), and both write back exactly as they were read.
        for json in [
            format!("\"{SHA}\""),
            "\"main\"".to_string(),
            "\"a\\u0062c\"".to_string(),
        ] {
            let sha: Sha = serde_json::from_str(&json).unwrap();
            let text: String = serde_json::from_str(&json).unwrap();
            assert_eq!(sha, Sha::of(&text), "{json}");
            assert_eq!(
                serde_json::to_string(&sha).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
        assert!(matches!(
            serde_json::from_str::<Sha>(&format!("\"{SHA}\"")),
            Ok(Sha::Full(_))
        ));
        assert!(
            serde_json::from_str::<Sha>("42").is_err(),
            "a SHA is a string"
        );
    }

    #[test]
    fn hex_words_read_every_byte_as_the_standard_library_does() {
        // Every byte value in every position of a word of otherwise valid digits; the standard
        // library's reading is the reference (but for its leading `+`).
        let reference = |digits: &[u8; 8], case: Case| {
            let text = std::str::from_utf8(digits).ok()?;
            let upper = text.bytes().any(|b| b.is_ascii_uppercase());
            if text.starts_with('+') || (case == Case::Lower && upper) {
                return None;
            }
            u32::from_str_radix(text, 16).ok()
        };
        for (base, case) in [(b"09afAF3c", Case::Either), (b"09afaf3c", Case::Lower)] {
            for position in 0..8 {
                for byte in 0..=255u8 {
                    let mut digits = *base;
                    digits[position] = byte;
                    let word = u64::from_be_bytes(digits);
                    assert_eq!(hex_word(word, case), reference(&digits, case), "{digits:?}");
                }
            }
        }
    }
    #[test]
    fn commit_hashes_read_a_prefix_as_from_str_radix_does() {
        // Checkpoints hold these hashes: the table must read exactly what the standard library
        // reads, and hash the rest.
        let upper = SHA.to_uppercase();
        let cases = [
            SHA,
            upper.as_str(),
            "0123456789ABCDEFxyz",
            "+123456789abcdef0",
            "0123456789abcdeg0",
            "0123456789abcde",
            "main",
            "",
            "ffffffffffffffff",
        ];
        for text in cases {
            let expected = match text.get(..16).map(|h| u64::from_str_radix(h, 16)) {
                Some(Ok(hash)) => hash,
                _ => delivery_hash(text),
            };
            assert_eq!(commit_hash(text), expected, "{text}");
        }
        assert_eq!(commit_hash(SHA), 0x0123_4567_89ab_cdef);
    }
    #[test]
    fn shas_are_equal_and_ordered_exactly_as_their_text() {
        let last_differs = format!("{}8", &SHA[..39]);
        let upper = SHA.to_uppercase();
        let zeros = "0".repeat(40);
        let texts = [
            SHA,
            last_differs.as_str(),
            upper.as_str(),
            zeros.as_str(),
            "abc",
            "abd",
            "fff",
            "",
        ];
        for a in texts {
            for b in texts {
                let (x, y) = (Sha::of(a), Sha::of(b));
                assert_eq!(x == y, a == b, "{a} {b}");
                assert_eq!(x == *b, a == b, "{a} {b}");
                assert_eq!(x.cmp(&y), a.cmp(b), "{a} {b}");
            }
            assert_eq!(Sha::of(a).hash(), commit_hash(a), "{a}");
            assert_eq!(&*Sha::of(a).text(), a);
            assert_eq!(Sha::of(a).to_string(), a);
        }
    }
}
