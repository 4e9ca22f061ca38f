//! ksqlDB's string functions that DataFusion lacks or gives other meanings: ELT, FIELD, INSTR
//! (with a position and an occurrence), SUBSTRING (positions from 1 or from the end), INITCAP
//! (words split at whitespace only), REGEXP_EXTRACT, REGEXP_EXTRACT_ALL, SPLIT (of STRING or BYTES),
//! REGEXP_SPLIT_TO_ARRAY, SPLIT_TO_MAP, and the math functions SIGN and GEO_DISTANCE.

use std::{cell::RefCell, sync::Arc};

use arrow::{
    array::{MapBuilder, MapFieldNames, StringBuilder},
    datatypes::{DataType, Field},
};
use datafusion::{
    common::ScalarValue,
    logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility},
};
use regex::Regex;

use super::row_function::{Doc, RowFunction, integer, one_of, text};

const SECTION: &str = "String Functions";

pub fn functions() -> Vec<ScalarUDF> {
    use DataType::{Int32, Int64, Utf8};
    let variadic = || Signature::new(TypeSignature::VariadicAny, Volatility::Immutable);
    let strings = |n: usize| vec![Utf8; n];
    vec![
        RowFunction::new("elt", variadic(), |_| Ok(Utf8), elt, Doc {
            section: SECTION,
            description: "The n-th of its STRING arguments (from 1); NULL when there is no n-th.",
            syntax: "elt(n, text1, text2, …)",
            arguments: &[("n", "An INTEGER position."), ("text", "STRINGs to choose from.")],
        })
        .taking_nulls()
        .udf(),
        RowFunction::new("field", variadic(), |_| Ok(Int32), field, Doc {
            section: SECTION,
            description: "The position (from 1) of the first argument among the others; 0 when absent or NULL.",
            syntax: "field(text, text1, text2, …)",
            arguments: &[("text", "The STRING to find."), ("texts", "STRINGs to search.")],
        })
        .taking_nulls()
        .udf(),
        RowFunction::new(
            "instr",
            one_of(vec![strings(2), vec![Utf8, Utf8, Int64], vec![Utf8, Utf8, Int64, Int64]], Volatility::Immutable),
            |_| Ok(Int32),
            instr,
            Doc {
                section: SECTION,
                description: "The position (from 1) of the n-th occurrence of a substring, searching from a position (backwards from the end when negative); 0 when absent.",
                syntax: "instr(text, substring [, position [, occurrence]])",
                arguments: &[("text", "The STRING to search."), ("substring", "The STRING to find."), ("position", "Where to start (1 by default)."), ("occurrence", "Which occurrence (1 by default).")],
            },
        )
        .udf(),
        RowFunction::new(
            "substr",
            one_of(
                vec![vec![Utf8, Int64], vec![Utf8, Int64, Int64], vec![DataType::Binary, Int64], vec![DataType::Binary, Int64, Int64]],
                Volatility::Immutable,
            ),
            |types| Ok(if types.first() == Some(&DataType::Binary) { DataType::Binary } else { Utf8 }),
            substring,
            Doc {
                section: SECTION,
                description: "The part of a STRING (or BYTES) from a position (from 1; counted from the end when negative), of a length or to the end.",
                syntax: "substring(text, position [, length])",
                arguments: &[("text", "A STRING or BYTES."), ("position", "Where the part starts."), ("length", "How long it is (to the end by default).")],
            },
        )
        .udf()
        .with_aliases(["substring"]),
        RowFunction::new("initcap", one_of(vec![strings(1)], Volatility::Immutable), |_| Ok(Utf8), initcap, Doc {
            section: SECTION,
            description: "Each word (split at whitespace) with its first letter upper-cased and the rest lower-cased.",
            syntax: "initcap(text)",
            arguments: &[("text", "A STRING.")],
        })
        .udf(),
        RowFunction::new(
            "regexp_extract",
            one_of(vec![strings(2), vec![Utf8, Utf8, Int64]], Volatility::Immutable),
            |_| Ok(Utf8),
            regexp_extract,
            Doc {
                section: SECTION,
                description: "The first match of a regular expression in a STRING, or one of its groups; NULL when none.",
                syntax: "regexp_extract(pattern, text [, group])",
                arguments: &[PATTERN, ("text", "The STRING to search."), GROUP],
            },
        )
        .udf(),
        RowFunction::new(
            "regexp_extract_all",
            one_of(vec![strings(2), vec![Utf8, Utf8, Int64]], Volatility::Immutable),
            |_| Ok(string_list()),
            regexp_extract_all,
            Doc {
                section: SECTION,
                description: "Every match of a regular expression in a STRING, or one of their groups, as an ARRAY.",
                syntax: "regexp_extract_all(pattern, text [, group])",
                arguments: &[PATTERN, ("text", "The STRING to search."), GROUP],
            },
        )
        .udf(),
        RowFunction::new(
            "split",
            one_of(vec![strings(2), vec![DataType::Binary; 2]], Volatility::Immutable),
            |types| Ok(if types.first() == Some(&DataType::Binary) { bytes_list() } else { string_list() }),
            split,
            Doc {
                section: SECTION,
                description: "A STRING (or BYTES) split at each occurrence of a delimiter, as an ARRAY (empty parts kept); an empty delimiter splits every character (or byte).",
                syntax: "split(text, delimiter)",
                arguments: &[("text", "The STRING or BYTES to split."), ("delimiter", "The STRING or BYTES to split at.")],
            },
        )
        .udf(),
        RowFunction::new("regexp_split_to_array", one_of(vec![strings(2)], Volatility::Immutable), |_| Ok(string_list()), regexp_split, Doc {
            section: SECTION,
            description: "A STRING split at each match of a regular expression, as an ARRAY.",
            syntax: "regexp_split_to_array(text, pattern)",
            arguments: &[("text", "The STRING to split."), PATTERN],
        })
        .udf(),
        RowFunction::new("split_to_map", one_of(vec![strings(3)], Volatility::Immutable), |_| Ok(string_map()), split_to_map, Doc {
            section: SECTION,
            description: "A STRING of delimited key-value entries as a MAP; an entry without the key-value delimiter is left out, and a later key wins.",
            syntax: "split_to_map(text, entry_delimiter, key_value_delimiter)",
            arguments: &[("text", "The STRING to split."), ("entry_delimiter", "What separates entries."), ("key_value_delimiter", "What separates a key from its value.")],
        })
        .udf(),
        RowFunction::new(
            "geo_distance",
            one_of(vec![vec![DataType::Float64; 4], vec![DataType::Float64, DataType::Float64, DataType::Float64, DataType::Float64, Utf8]], Volatility::Immutable),
            |_| Ok(DataType::Float64),
            geo_distance,
            Doc {
                section: "Math Functions",
                description: "The great-circle distance between two points given in decimal degrees, in kilometres or, with 'MI', miles.",
                syntax: "geo_distance(lat1, lon1, lat2, lon2 [, unit])",
                arguments: &[("lat1, lon1", "The first point."), ("lat2, lon2", "The second point."), ("unit", "'KM' (the default, also when NULL) or 'MI'.")],
            },
        )
        .taking_nulls()
        .udf(),
        RowFunction::new("sign", one_of(vec![vec![Int32], vec![Int64], vec![DataType::Float64]], Volatility::Immutable), |_| Ok(Int32), sign, Doc {
            section: "Math Functions",
            description: "-1, 0 or 1: the sign of a number.",
            syntax: "sign(number)",
            arguments: &[("number", "An INTEGER, BIGINT or DOUBLE.")],
        })
        .udf(),
    ]
}

const PATTERN: (&str, &str) = ("pattern", "A regular expression.");
const GROUP: (&str, &str) = ("group", "Which group to return: 0, the default, is the whole match.");

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn bytes_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Binary, true)))
}

fn string_map() -> DataType {
    let entries = DataType::Struct(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)].into());
    DataType::Map(Arc::new(Field::new("entries", entries, false)), false)
}

fn arg(args: &[ScalarValue], at: usize) -> Result<&str, String> {
    text(&args[at]).ok_or_else(|| format!("argument {} is not a STRING", at + 1))
}

fn elt(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let chosen = args.first().and_then(integer).filter(|n| *n >= 1 && (*n as usize) < args.len());
    Ok(ScalarValue::Utf8(chosen.and_then(|n| text(&args[n as usize]).map(str::to_string))))
}

fn field(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let Some(wanted) = args.first().and_then(text) else { return Ok(ScalarValue::Int32(Some(0))) };
    let at = args[1..].iter().position(|a| text(a) == Some(wanted)).map_or(0, |i| i as i32 + 1);
    Ok(ScalarValue::Int32(Some(at)))
}

/// ksqlDB's INSTR: positions count characters; a negative start searches backwards from that
/// many characters before the end.
fn instr(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let chars: Vec<char> = arg(args, 0)?.chars().collect();
    let needle: Vec<char> = arg(args, 1)?.chars().collect();
    let position = args.get(2).and_then(integer).unwrap_or(1);
    let occurrence = args.get(3).and_then(integer).unwrap_or(1).max(1) as usize;
    let matches_at = |i: usize| chars.get(i..i + needle.len()) == Some(needle.as_slice());
    let len = chars.len() as i64;
    let found = if position >= 0 {
        let start = (position.max(1) - 1) as usize;
        (start..chars.len()).filter(|i| matches_at(*i)).nth(occurrence - 1)
    } else {
        let start = len + position;
        if start < 0 { None } else { (0..=start as usize).rev().filter(|i| matches_at(*i)).nth(occurrence - 1) }
    };
    Ok(ScalarValue::Int32(Some(found.map_or(0, |i| i as i32 + 1))))
}

/// ksqlDB's SUBSTRING: a position counts from 1 (0 is 1), or back from the end when negative;
/// the part is cut at the value's end. Characters of a STRING, bytes of BYTES.
fn substring(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let position = args.get(1).and_then(integer).ok_or("the position is not an integer")?;
    let length = match args.get(2) {
        Some(length) => Some(integer(length).ok_or("the length is not an integer")?),
        None => None,
    };
    let bounds = |len: usize| {
        let len = len as i64;
        let start = if position < 0 { (len + position).max(0) } else { (position - 1).clamp(0, len) };
        let end = length.map_or(len, |length| start.saturating_add(length).min(len).max(start));
        (start as usize, end as usize)
    };
    match &args[0] {
        ScalarValue::Binary(Some(bytes)) | ScalarValue::LargeBinary(Some(bytes)) | ScalarValue::BinaryView(Some(bytes)) => {
            let (start, end) = bounds(bytes.len());
            Ok(ScalarValue::Binary(Some(bytes[start..end].to_vec())))
        }
        other => {
            let chars: Vec<char> = text(other).ok_or("the value is not a STRING")?.chars().collect();
            let (start, end) = bounds(chars.len());
            Ok(ScalarValue::Utf8(Some(chars[start..end].iter().collect())))
        }
    }
}

fn initcap(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let mut out = String::new();
    let mut start = true;
    for c in arg(args, 0)?.chars() {
        if c.is_whitespace() {
            out.push(c);
            start = true;
        } else if start {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    Ok(ScalarValue::Utf8(Some(out)))
}

thread_local! {
    /// The last regular expression compiled on this thread: a query's pattern is nearly always
    /// the same for every row.
    static LAST_REGEX: RefCell<Option<(String, Regex)>> = const { RefCell::new(None) };
}

fn with_regex<T>(pattern: &str, f: impl FnOnce(&Regex) -> T) -> Result<T, String> {
    LAST_REGEX.with(|last| {
        let mut last = last.borrow_mut();
        if last.as_ref().is_none_or(|(p, _)| p != pattern) {
            let regex = Regex::new(pattern).map_err(|e| format!("invalid regular expression '{pattern}': {e}"))?;
            *last = Some((pattern.to_string(), regex));
        }
        Ok(f(&last.as_ref().expect("compiled above").1))
    })
}

fn group(args: &[ScalarValue]) -> Result<usize, String> {
    match args.get(2).map(integer) {
        None => Ok(0),
        Some(Some(g)) if g >= 0 => Ok(g as usize),
        Some(_) => Err("the group must be a non-negative INTEGER".into()),
    }
}

fn regexp_extract(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (text, group) = (arg(args, 1)?, group(args)?);
    let found = with_regex(arg(args, 0)?, |re| re.captures(text).and_then(|c| c.get(group)).map(|m| m.as_str().to_string()))?;
    Ok(ScalarValue::Utf8(found))
}

fn list(values: Vec<String>) -> ScalarValue {
    let values: Vec<ScalarValue> = values.into_iter().map(|v| ScalarValue::Utf8(Some(v))).collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Utf8))
}

fn regexp_extract_all(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (text, group) = (arg(args, 1)?, group(args)?);
    let found = with_regex(arg(args, 0)?, |re| {
        re.captures_iter(text).filter_map(|c| c.get(group).map(|m| m.as_str().to_string())).collect::<Vec<_>>()
    })?;
    Ok(list(found))
}

fn split(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    if let (Some(bytes), Some(delimiter)) = (binary(&args[0]), binary(&args[1])) {
        let parts: Vec<ScalarValue> = split_bytes(bytes, delimiter).into_iter().map(|p| ScalarValue::Binary(Some(p.to_vec()))).collect();
        return Ok(ScalarValue::List(ScalarValue::new_list_nullable(&parts, &DataType::Binary)));
    }
    let (text, delimiter) = (arg(args, 0)?, arg(args, 1)?);
    // As Java's `"".split("")`, an empty text is one empty part.
    let parts = if text.is_empty() {
        vec![String::new()]
    } else if delimiter.is_empty() {
        text.chars().map(String::from).collect()
    } else {
        text.split(delimiter).map(str::to_string).collect()
    };
    Ok(list(parts))
}

/// `bytes` split at each occurrence of `delimiter`, empty parts kept; every byte apart when
/// `delimiter` is empty.
fn split_bytes<'b>(bytes: &'b [u8], delimiter: &[u8]) -> Vec<&'b [u8]> {
    if delimiter.is_empty() {
        // As Java's `"".split("")`, an empty value is one empty part.
        return if bytes.is_empty() { vec![bytes] } else { bytes.chunks(1).collect() };
    }
    let mut parts = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at + delimiter.len() <= bytes.len() {
        if &bytes[at..at + delimiter.len()] == delimiter {
            parts.push(&bytes[start..at]);
            at += delimiter.len();
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(&bytes[start..]);
    parts
}

fn binary(value: &ScalarValue) -> Option<&[u8]> {
    match value {
        ScalarValue::Binary(Some(bytes)) | ScalarValue::LargeBinary(Some(bytes)) | ScalarValue::BinaryView(Some(bytes)) => Some(bytes),
        _ => None,
    }
}

/// Splits as Java's `String.split(pattern, -1)`, ksqlDB's: trailing empty parts kept.
fn regexp_split(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let text = arg(args, 0)?;
    let parts = with_regex(arg(args, 1)?, |re| re.split(text).map(str::to_string).collect::<Vec<_>>())?;
    Ok(list(parts))
}

fn split_to_map(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (text, entry_delimiter, pair_delimiter) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    if entry_delimiter.is_empty() || pair_delimiter.is_empty() || entry_delimiter == pair_delimiter {
        return ScalarValue::try_from(&string_map()).map_err(|e| e.to_string());
    }
    let mut entries: Vec<(&str, &str)> = Vec::new();
    for entry in text.split(entry_delimiter).filter(|e| !e.is_empty()) {
        // The text between the first and any second delimiter is the value, as Guava's
        // splitter in ksqlDB's SPLIT_TO_MAP reads it.
        let mut pieces = entry.split(pair_delimiter);
        let (Some(key), Some(value)) = (pieces.next(), pieces.next()) else { continue };
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => entries.push((key, value)),
        }
    }
    let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for (key, value) in entries {
        builder.keys().append_value(key);
        builder.values().append_value(value);
    }
    builder.append(true).map_err(|e| e.to_string())?;
    Ok(ScalarValue::Map(Arc::new(builder.finish())))
}

/// ksqlDB's GEO_DISTANCE: the haversine distance on a sphere of the Earth's mean radius.
fn geo_distance(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    if args[..4].iter().any(ScalarValue::is_null) {
        return Ok(ScalarValue::Float64(None));
    }
    let degrees: Vec<f64> = args[..4].iter().map(|a| if let ScalarValue::Float64(Some(v)) = a { *v } else { f64::NAN }).collect();
    let (lat1, lon1, lat2, lon2) = (degrees[0], degrees[1], degrees[2], degrees[3]);
    if !(-90.0..=90.0).contains(&lat1) || !(-90.0..=90.0).contains(&lat2) {
        return Err("valid latitude values for GeoDistance function are in the range of -90 to 90 decimal degrees".into());
    }
    if !(-180.0..=180.0).contains(&lon1) || !(-180.0..=180.0).contains(&lon2) {
        return Err("valid longitude values for GeoDistance function are in the range of -180 to +180 decimal degrees".into());
    }
    let radius = match args.get(4).and_then(text).map(|u| u.trim().to_lowercase()) {
        None => 6371.0,
        Some(unit) if unit.is_empty() || ["km", "kilometer", "kilometers", "kilometre", "kilometres"].contains(&unit.as_str()) => 6371.0,
        Some(unit) if ["mi", "mile", "miles"].contains(&unit.as_str()) => 3959.0,
        Some(_) => {
            return Err("GeoDistance function units parameter must be one of mi, mile, miles, km, kilometer, kilometers, kilometre or kilometres. Values are case-insensitive.".into());
        }
    };
    let haversin = |angle: f64| (angle / 2.0).sin().powi(2);
    let a = haversin((lat2 - lat1).to_radians()) + haversin((lon2 - lon1).to_radians()) * lat1.to_radians().cos() * lat2.to_radians().cos();
    Ok(ScalarValue::Float64(Some(2.0 * a.sqrt().asin() * radius)))
}

fn sign(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let sign = match &args[0] {
        ScalarValue::Float64(Some(v)) if v.is_nan() => return Ok(ScalarValue::Int32(None)),
        ScalarValue::Float64(Some(v)) => (*v > 0.0) as i32 - (*v < 0.0) as i32,
        other => integer(other).ok_or("not a number")?.signum() as i32,
    };
    Ok(ScalarValue::Int32(Some(sign)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(text.into()))
    }

    fn int(n: i32) -> ScalarValue {
        ScalarValue::Int32(Some(n))
    }

    #[test]
    fn instr_counts_positions_and_occurrences_as_ksqldb() {
        assert_eq!(instr(&[s("corporate floor"), s("or")]).unwrap(), int(2));
        assert_eq!(instr(&[s("corporate floor"), s("or"), int(4)]).unwrap(), int(5));
        assert_eq!(instr(&[s("corporate floor"), s("or"), int(4), int(2)]).unwrap(), int(14));
        assert_eq!(instr(&[s("corporate floor"), s("or"), int(-3)]).unwrap(), int(5));
        assert_eq!(instr(&[s("short"), s("or"), int(4)]).unwrap(), int(0));
    }

    #[test]
    fn elt_and_field_undo_each_other() {
        let args = [s("hello"), s("world"), ScalarValue::Utf8(None), s("hello")];
        assert_eq!(field(&args).unwrap(), int(3), "NULL is skipped over");
        assert_eq!(elt(&[int(2), s("a"), s("b")]).unwrap(), s("b"));
        assert_eq!(elt(&[int(3), s("a"), s("b")]).unwrap(), ScalarValue::Utf8(None));
    }

    #[test]
    fn regular_expressions_extract_and_split() {
        assert_eq!(regexp_extract(&[s("(.*) (.*)"), s("steven zhang"), int(2)]).unwrap(), s("zhang"));
        assert_eq!(regexp_extract(&[s("test."), s("anothertest")]).unwrap(), ScalarValue::Utf8(None));
        assert_eq!(regexp_extract_all(&[s("test."), s("some_test_string_testabab")]).unwrap(), list(vec!["test_".into(), "testa".into()]));
        assert_eq!(regexp_split(&[s("a-b--c-"), s("-")]).unwrap(), list(vec!["a".into(), "b".into(), "".into(), "c".into(), "".into()]));
        assert!(regexp_extract(&[s("("), s("x")]).is_err());
    }

    #[test]
    fn split_keeps_empty_parts_and_an_empty_delimiter_splits_characters() {
        assert_eq!(split(&[s(".abc."), s(".")]).unwrap(), list(vec!["".into(), "abc".into(), "".into()]));
        assert_eq!(split(&[s("ab"), s("")]).unwrap(), list(vec!["a".into(), "b".into()]));
        assert_eq!(split(&[s(""), s("")]).unwrap(), list(vec!["".into()]));
        let map = split_to_map(&[s("apple:green/banana:yellow"), s("&&"), s(":")]).unwrap();
        let ScalarValue::Map(map) = map else { panic!("a map") };
        assert_eq!(map.value(0).column(1).as_ref(), &arrow::array::StringArray::from(vec!["green/banana"]) as &dyn arrow::array::Array);
    }

    #[test]
    fn bytes_split_at_a_delimiter_of_several_bytes_or_byte_by_byte() {
        assert_eq!(split_bytes(b"a$$b.c$$", b"$$"), [&b"a"[..], b"b.c", b""]);
        assert_eq!(split_bytes(b"ab", b""), [&b"a"[..], b"b"]);
        assert_eq!(split_bytes(b"", b","), [&b""[..]]);
        assert_eq!(split_bytes(b"", b""), [&b""[..]]);
        let bytes = |b: &[u8]| ScalarValue::Binary(Some(b.to_vec()));
        let parts = split(&[bytes(b".a"), bytes(b".")]).unwrap();
        let expected = ScalarValue::List(ScalarValue::new_list_nullable(&[bytes(b""), bytes(b"a")], &DataType::Binary));
        assert_eq!(parts, expected);
    }

    #[test]
    fn initcap_splits_words_at_whitespace_only() {
        assert_eq!(initcap(&[s("the   Quick br0wn fOx some_string")]).unwrap(), s("The   Quick Br0wn Fox Some_string"));
    }
}
