//! ksqlDB's ENCODE: a STRING read in one encoding (hex, utf8, ascii, base64) and written in
//! another, with Java's readings — a hex string may be `0x…` or `X'…'`, text decoded as ASCII
//! shows each byte above 127 as U+FFFD, and text encoded as ASCII each other character as `?`.

use arrow::datatypes::DataType;
use base64::Engine as _;
use datafusion::logical_expr::{ScalarUDF, Volatility};

use super::row_function::{Doc, RowFunction, one_of, text};

pub fn function() -> ScalarUDF {
    RowFunction::new("encode", one_of(vec![vec![DataType::Utf8; 3]], Volatility::Immutable), |_| Ok(DataType::Utf8), encode, Doc {
        section: "String Functions",
        description: "A STRING read in one encoding and written in another; the encodings are hex, utf8, ascii and base64.",
        syntax: "encode(text, input_encoding, output_encoding)",
        arguments: &[("text", "The STRING to re-encode."), ("input_encoding", "How the STRING is encoded."), ("output_encoding", "How to encode the result.")],
    })
    .udf()
}

/// The encodings ksqlDB's ENCODE, TO_BYTES and FROM_BYTES name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Hex,
    Utf8,
    Ascii,
    Base64,
}

impl Encoding {
    pub(super) fn named(name: &str) -> Option<Encoding> {
        match name.to_ascii_lowercase().as_str() {
            "hex" => Some(Encoding::Hex),
            "utf8" => Some(Encoding::Utf8),
            "ascii" => Some(Encoding::Ascii),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }
}

fn encode(args: &[datafusion::common::ScalarValue]) -> Result<datafusion::common::ScalarValue, String> {
    let (Some(input), Some(from), Some(to)) = (text(&args[0]), text(&args[1]), text(&args[2])) else {
        return Ok(datafusion::common::ScalarValue::Utf8(None));
    };
    let (Some(from), Some(to)) = (Encoding::named(from), Encoding::named(to)) else {
        return Err("Supported input and output encodings are: hex, utf8, ascii and base64".into());
    };
    if from == to {
        return Err("Supported input and output encodings are: hex, utf8, ascii and base64".into());
    }
    let bytes = match from {
        Encoding::Hex => hex_decode(hex_strip(input))?,
        Encoding::Utf8 => input.as_bytes().to_vec(),
        Encoding::Ascii => ascii_bytes(input),
        Encoding::Base64 => base64_decode(input),
    };
    let output = match to {
        Encoding::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Encoding::Utf8 => String::from_utf8_lossy(&bytes).into_owned(),
        Encoding::Ascii => ascii_text(&bytes),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    Ok(datafusion::common::ScalarValue::Utf8(Some(output)))
}

/// ksqlDB's `hexStrip`: `0x` is dropped (a `0` put in front when what is left is odd), `X'…'`
/// unwrapped; anything else is read as it is.
fn hex_strip(input: &str) -> std::borrow::Cow<'_, str> {
    if let Some(rest) = input.strip_prefix("0x") {
        if input.len() % 2 != 0 { format!("0{rest}").into() } else { rest.into() }
    } else if input.len() >= 3 && (input.starts_with("X'") || input.starts_with("x'")) && input.ends_with('\'') {
        input[2..input.len() - 1].into()
    } else {
        input.into()
    }
}

fn hex_decode(hex: std::borrow::Cow<'_, str>) -> Result<Vec<u8>, String> {
    hex_bytes(&hex).map_err(|e| match e {
        HexError::OddLength => "Odd number of characters.".into(),
        HexError::IllegalCharacter => format!("Illegal hexadecimal character in {hex}"),
    })
}

/// Why a text is not hex digits, for each caller to word as the Java codec it follows does.
pub(super) enum HexError {
    OddLength,
    IllegalCharacter,
}

/// The bytes an even number of hex digits (either case) spell.
pub(super) fn hex_bytes(hex: &str) -> Result<Vec<u8>, HexError> {
    if hex.len() % 2 != 0 {
        return Err(HexError::OddLength);
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|digits| u8::from_str_radix(digits, 16).ok()).ok_or(HexError::IllegalCharacter))
        .collect()
}

/// Text as Java encodes it in US-ASCII: each other character becomes `?`.
pub(super) fn ascii_bytes(text: &str) -> Vec<u8> {
    text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect()
}

/// Bytes as Java decodes them in US-ASCII: each byte above 127 becomes U+FFFD.
pub(super) fn ascii_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| if b.is_ascii() { b as char } else { char::REPLACEMENT_CHARACTER }).collect()
}

/// Commons Codec's lenient base64: characters outside the alphabet (padding included) are
/// skipped, the URL-safe `-` and `_` read as `+` and `/`, and bits left over at the end dropped.
fn base64_decode(input: &str) -> Vec<u8> {
    let mut alphabet: String = input
        .chars()
        .filter_map(|c| match c {
            '-' => Some('+'),
            '_' => Some('/'),
            c if c.is_ascii_alphanumeric() || c == '+' || c == '/' => Some(c),
            _ => None,
        })
        .collect();
    if alphabet.len() % 4 == 1 {
        alphabet.pop();
    }
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    lenient.decode(alphabet).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use datafusion::common::ScalarValue;

    use super::*;

    fn run(input: &str, from: &str, to: &str) -> Option<String> {
        let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
        match encode(&[text(input), text(from), text(to)]) {
            Ok(ScalarValue::Utf8(out)) => out,
            _ => None,
        }
    }

    #[test]
    fn hex_is_read_bare_with_0x_or_quoted_as_ksqldb_reads_it() {
        assert_eq!(run("4578616d706C6521", "hex", "utf8").as_deref(), Some("Example!"));
        assert_eq!(run("X'4578616d706C6521'", "hex", "base64").as_deref(), Some("RXhhbXBsZSE="));
        assert_eq!(run("0x578616d706C6521", "hex", "ascii").as_deref(), Some("\u{5}xample!"));
        assert_eq!(run("x''", "hex", "ascii").as_deref(), Some(""));
        assert_eq!(run("578616d706C6521", "hex", "ascii"), None);
        assert_eq!(run("x'578616d706C6521'", "hex", "ascii"), None);
        assert_eq!(run("0x0x", "hex", "ascii"), None);
        assert_eq!(run("c39c6265726d656e736368", "hex", "ascii").as_deref(), Some("\u{fffd}\u{fffd}bermensch"));
    }

    #[test]
    fn text_and_base64_convert_with_javas_replacements() {
        assert_eq!(run("Ελλάδα", "ascii", "hex").as_deref(), Some("3f3f3f3f3f3f"));
        assert_eq!(run("Ελλάδα", "utf8", "base64").as_deref(), Some("zpXOu867zqzOtM6x"));
        assert_eq!(run("zpXOu867zqzOtM6x", "base64", "utf8").as_deref(), Some("Ελλάδα"));
        assert_eq!(run("RXhhbXBsZSE=", "base64", "hex").as_deref(), Some("4578616d706c6521"));
        assert_eq!(run("RXhhbXBsZSE=", "base64", "null"), None);
    }
}
