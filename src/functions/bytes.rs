//! ksqlDB's BYTES functions: TO_BYTES and FROM_BYTES (hex, utf8, ascii, base64, as Java's
//! codecs read and write them), INT_FROM_BYTES, BIGINT_FROM_BYTES and DOUBLE_FROM_BYTES (either
//! byte order), LPAD and RPAD of STRING and BYTES with ksqlDB's rules, and MD5.

use arrow::datatypes::DataType;
use base64::Engine as _;
use datafusion::{
    common::{Result, ScalarValue, exec_err},
    logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility},
};
use md5::{Digest, Md5};

use super::{
    encoding::{Encoding, HexError, ascii_bytes, ascii_text, hex_bytes},
    row_function::{Doc, RowFunction, integer, one_of, text},
};

pub fn functions() -> Vec<ScalarUDF> {
    use DataType::{Binary, Float64, Int32, Int64, Utf8};
    let conversions = "Conversion Functions";
    let number_from_bytes = |name: &'static str, result: fn(&[DataType]) -> Result<DataType>, eval, description, syntax| {
        RowFunction::new(name, one_of(vec![vec![Binary], vec![Binary, Utf8]], Volatility::Immutable), result, eval, Doc {
            section: conversions,
            description,
            syntax,
            arguments: &[("bytes", "The BYTES to convert."), ("byte_order", "BIG_ENDIAN (the default) or LITTLE_ENDIAN.")],
        })
        .udf()
    };
    vec![
        RowFunction::new("to_bytes", one_of(vec![vec![Utf8, Utf8]], Volatility::Immutable), |_| Ok(Binary), to_bytes, Doc {
            section: "String Functions",
            description: "A STRING written in an encoding (hex, utf8, ascii or base64) read as BYTES.",
            syntax: "to_bytes(text, encoding)",
            arguments: &[("text", "The STRING to convert."), ("encoding", "How the STRING encodes the bytes: hex, utf8, ascii or base64.")],
        })
        .udf(),
        RowFunction::new("from_bytes", one_of(vec![vec![Binary, Utf8]], Volatility::Immutable), |_| Ok(Utf8), from_bytes, Doc {
            section: "String Functions",
            description: "BYTES written as a STRING in an encoding: hex (upper case), utf8, ascii or base64.",
            syntax: "from_bytes(bytes, encoding)",
            arguments: &[("bytes", "The BYTES to convert."), ("encoding", "hex, utf8, ascii or base64.")],
        })
        .udf(),
        number_from_bytes(
            "int_from_bytes",
            |_| Ok(Int32),
            |args| number(args, |b: [u8; 4], big| ScalarValue::Int32(Some(if big { i32::from_be_bytes(b) } else { i32::from_le_bytes(b) }))),
            "An INTEGER read from 4 BYTES.",
            "int_from_bytes(bytes [, byte_order])",
        ),
        number_from_bytes(
            "bigint_from_bytes",
            |_| Ok(Int64),
            |args| number(args, |b: [u8; 8], big| ScalarValue::Int64(Some(if big { i64::from_be_bytes(b) } else { i64::from_le_bytes(b) }))),
            "A BIGINT read from 8 BYTES.",
            "bigint_from_bytes(bytes [, byte_order])",
        ),
        number_from_bytes(
            "double_from_bytes",
            |_| Ok(Float64),
            |args| number(args, |b: [u8; 8], big| ScalarValue::Float64(Some(if big { f64::from_be_bytes(b) } else { f64::from_le_bytes(b) }))),
            "A DOUBLE read from 8 BYTES.",
            "double_from_bytes(bytes [, byte_order])",
        ),
        pad("lpad", Side::Left),
        pad("rpad", Side::Right),
        RowFunction::new("md5", one_of(vec![vec![Utf8]], Volatility::Immutable), |_| Ok(Utf8), md5_hex, Doc {
            section: "String Functions",
            description: "The MD5 hash of a STRING's UTF-8 bytes, in lower-case hex.",
            syntax: "md5(text)",
            arguments: &[("text", "The STRING to hash.")],
        })
        .udf(),
    ]
}

fn bytes(value: &ScalarValue) -> Option<&[u8]> {
    match value {
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => Some(b),
        _ => None,
    }
}

fn encoding(value: &ScalarValue) -> std::result::Result<Encoding, String> {
    let name = text(value).unwrap_or_default();
    Encoding::named(name).ok_or_else(|| format!("Unknown encoding type '{name}'. Supported formats are 'hex', 'utf8', 'ascii', and 'base64'."))
}

fn to_bytes(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let input = text(&args[0]).unwrap_or_default();
    let decoded = match encoding(&args[1])? {
        Encoding::Hex => parse_hex_binary(input)?,
        Encoding::Utf8 => input.as_bytes().to_vec(),
        Encoding::Ascii => ascii_bytes(input),
        Encoding::Base64 => base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        )
        .decode(input)
        .map_err(|e| e.to_string())?,
    };
    Ok(ScalarValue::Binary(Some(decoded)))
}

fn from_bytes(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let input = bytes(&args[0]).unwrap_or_default();
    let encoded = match encoding(&args[1])? {
        Encoding::Hex => input.iter().map(|b| format!("{b:02X}")).collect(),
        Encoding::Utf8 => String::from_utf8_lossy(input).into_owned(),
        Encoding::Ascii => ascii_text(input),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(input),
    };
    Ok(ScalarValue::Utf8(Some(encoded)))
}

/// `DatatypeConverter.parseHexBinary`: an even number of hex digits, either case.
fn parse_hex_binary(hex: &str) -> std::result::Result<Vec<u8>, String> {
    hex_bytes(hex).map_err(|e| match e {
        HexError::OddLength => format!("hexBinary needs to be even-length: {hex}"),
        HexError::IllegalCharacter => format!("contains illegal character for hexBinary: {hex}"),
    })
}

/// A number read from exactly `N` bytes in the byte order the optional second argument names.
fn number<const N: usize>(args: &[ScalarValue], read: impl Fn([u8; N], bool) -> ScalarValue) -> std::result::Result<ScalarValue, String> {
    let big_endian = match args.get(1).map(text) {
        None => true,
        Some(Some(order)) if order.eq_ignore_ascii_case("BIG_ENDIAN") => true,
        Some(Some(order)) if order.eq_ignore_ascii_case("LITTLE_ENDIAN") => false,
        Some(order) => {
            return Err(format!("Byte order must be BIG_ENDIAN or LITTLE_ENDIAN. Unknown byte order '{}'.", order.unwrap_or("null")));
        }
    };
    let input = bytes(&args[0]).unwrap_or_default();
    let exact: [u8; N] = input.try_into().map_err(|_| format!("Number of bytes must be equal to {N}, but found {}", input.len()))?;
    Ok(read(exact, big_endian))
}

#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

fn pad(name: &'static str, side: Side) -> ScalarUDF {
    let (eval, description, syntax): (fn(&[ScalarValue]) -> std::result::Result<ScalarValue, String>, _, _) = match side {
        Side::Left => (|args| padded(args, Side::Left), "A STRING or BYTES padded on the left to a length, or cut to it.", "lpad(input, length, padding)"),
        Side::Right => (|args| padded(args, Side::Right), "A STRING or BYTES padded on the right to a length, or cut to it.", "rpad(input, length, padding)"),
    };
    // Any types, not a choice of exact ones, which DataFusion would meet by casting BYTES to STRING.
    let signature = Signature::new(TypeSignature::Any(3), Volatility::Immutable);
    RowFunction::new(name, signature, padded_type, eval, Doc {
        section: "String Functions",
        description,
        syntax,
        arguments: &[("input", "The STRING or BYTES to pad."), ("length", "The length of the result."), ("padding", "What to pad with, repeated as needed; NULL when empty.")],
    })
    .udf()
}

fn padded_type(types: &[DataType]) -> Result<DataType> {
    let is_binary = |t: &DataType| matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null);
    let is_text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null);
    match types {
        [input, length, padding] if length.is_integer() || *length == DataType::Null => {
            if is_text(input) && is_text(padding) {
                Ok(DataType::Utf8)
            } else if is_binary(input) && is_binary(padding) {
                Ok(DataType::Binary)
            } else {
                exec_err!("LPAD and RPAD take a STRING or BYTES and padding of the same type, not {input} and {padding}")
            }
        }
        _ => exec_err!("LPAD and RPAD take an input, an INTEGER length and padding"),
    }
}

/// ksqlDB's LPAD and RPAD: NULL for a negative length or an empty padding; an input longer than
/// the length is cut to it (from its start, on either side).
fn padded(args: &[ScalarValue], side: Side) -> std::result::Result<ScalarValue, String> {
    let Some(length) = integer(&args[1]).and_then(|n| usize::try_from(n).ok()) else { return Ok(ScalarValue::Null) };
    if let (Some(input), Some(padding)) = (text(&args[0]), text(&args[2])) {
        let input: Vec<char> = input.chars().collect();
        let padding: Vec<char> = padding.chars().collect();
        return Ok(pad_units(&input, length, &padding, side).map_or(ScalarValue::Utf8(None), |p| ScalarValue::Utf8(Some(p.into_iter().collect()))));
    }
    match (bytes(&args[0]), bytes(&args[2])) {
        (Some(input), Some(padding)) => Ok(ScalarValue::Binary(pad_units(input, length, padding, side))),
        _ => Err("LPAD and RPAD take a STRING or BYTES input and padding of the same type".into()),
    }
}

fn pad_units<T: Copy>(input: &[T], length: usize, padding: &[T], side: Side) -> Option<Vec<T>> {
    if padding.is_empty() {
        return None;
    }
    if input.len() >= length {
        return Some(input[..length].to_vec());
    }
    let fill = padding.iter().copied().cycle().take(length - input.len());
    Some(match side {
        Side::Left => fill.chain(input.iter().copied()).collect(),
        Side::Right => input.iter().copied().chain(fill).collect(),
    })
}

fn md5_hex(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let digest = Md5::digest(text(&args[0]).unwrap_or_default().as_bytes());
    Ok(ScalarValue::Utf8(Some(digest.iter().map(|b| format!("{b:02x}")).collect())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_value(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.into()))
    }

    fn bytes_value(b: &[u8]) -> ScalarValue {
        ScalarValue::Binary(Some(b.to_vec()))
    }

    #[test]
    fn hex_is_written_upper_case_and_read_strictly() {
        assert_eq!(from_bytes(&[bytes_value(&[0x1a, 0xb2]), text_value("HEX")]), Ok(text_value("1AB2")));
        assert_eq!(to_bytes(&[text_value("1aB2"), text_value("hex")]), Ok(bytes_value(&[0x1a, 0xb2])));
        assert!(to_bytes(&[text_value("1aB"), text_value("hex")]).is_err());
        assert!(to_bytes(&[text_value("0x12"), text_value("hex")]).is_err());
        assert!(to_bytes(&[text_value("12"), text_value("ebcdic")]).unwrap_err().contains("Unknown encoding type 'ebcdic'"));
    }

    #[test]
    fn text_encodings_replace_what_they_cannot_hold() {
        assert_eq!(to_bytes(&[text_value("aé"), text_value("ascii")]), Ok(bytes_value(b"a?")));
        assert_eq!(from_bytes(&[bytes_value(&[b'a', 0xc3]), text_value("ascii")]), Ok(text_value("a\u{fffd}")));
        assert_eq!(to_bytes(&[text_value("IQ"), text_value("base64")]), Ok(bytes_value(b"!")));
        assert_eq!(from_bytes(&[bytes_value(b"!"), text_value("base64")]), Ok(text_value("IQ==")));
    }

    #[test]
    fn numbers_need_their_exact_width_in_either_byte_order() {
        let little = text_value("little_endian");
        assert_eq!(number::<4>(&[bytes_value(&[0, 0, 7, 0xe5])], |b, big| ScalarValue::Int32(Some(if big { i32::from_be_bytes(b) } else { 0 }))), Ok(ScalarValue::Int32(Some(2021))));
        assert_eq!(number::<4>(&[bytes_value(&[0xe5, 7, 0, 0]), little], |b, big| ScalarValue::Int32(Some(if big { 0 } else { i32::from_le_bytes(b) }))), Ok(ScalarValue::Int32(Some(2021))));
        let short = number::<4>(&[bytes_value(&[0, 7, 0xe5])], |_, _| ScalarValue::Null).unwrap_err();
        assert_eq!(short, "Number of bytes must be equal to 4, but found 3");
        assert!(number::<4>(&[bytes_value(&[0; 4]), text_value("middle")], |_, _| ScalarValue::Null).is_err());
    }

    #[test]
    fn padding_repeats_cuts_and_refuses_as_ksqldb_does() {
        let padded_bytes = |input: &[u8], length: i64, padding: &[u8], side| padded(&[bytes_value(input), ScalarValue::Int64(Some(length)), bytes_value(padding)], side);
        assert_eq!(padded_bytes(b"yes", 8, b"no", Side::Left), Ok(bytes_value(b"nononyes")));
        assert_eq!(padded_bytes(b"yes", 8, b"no", Side::Right), Ok(bytes_value(b"yesnonon")));
        assert_eq!(padded_bytes(b"yes", 2, b"no", Side::Left), Ok(bytes_value(b"ye")));
        assert_eq!(padded_bytes(b"yes", 3, b"", Side::Left), Ok(ScalarValue::Binary(None)));
        assert_eq!(padded_bytes(b"yes", -1, b"no", Side::Left), Ok(ScalarValue::Null));
        let padded_text = |length: i64, side| padded(&[text_value("él"), ScalarValue::Int64(Some(length)), text_value("ab")], side);
        assert_eq!(padded_text(5, Side::Left), Ok(text_value("abaél")));
        assert_eq!(padded_text(1, Side::Right), Ok(text_value("é")));
    }

    #[test]
    fn md5_is_lower_case_hex_of_the_utf8_bytes() {
        assert_eq!(md5_hex(&[text_value("")]), Ok(text_value("d41d8cd98f00b204e9800998ecf8427e")));
        assert_eq!(md5_hex(&[text_value("The quick brown fox jumps over the lazy dog")]), Ok(text_value("9e107d9d372bb6826bd81d3542a419d6")));
    }
}
