//! ksqlDB's URL functions: URL_ENCODE_PARAM, URL_DECODE_PARAM and URL_EXTRACT_FRAGMENT, _HOST,
//! _PARAMETER, _PATH, _PORT, _PROTOCOL and _QUERY.
//!
//! A URL is split as Java's `java.net.URI` splits it (ksqlDB's functions use it): no path is
//! an empty path, not `/`; a part that is absent is NULL; paths, queries and fragments come back
//! with their percent-escapes decoded. Parameters are encoded and decoded as Java's
//! `URLEncoder` and `URLDecoder` do (a space is `+`).

use arrow::datatypes::DataType;
use datafusion::{
    common::ScalarValue,
    logical_expr::{ScalarUDF, Volatility},
};

use super::row_function::{Doc, RowFunction, one_of, text};

const SECTION: &str = "URL Functions";
const URL: (&str, &str) = ("url", "A STRING holding a URL.");

pub fn functions() -> Vec<ScalarUDF> {
    use DataType::{Int32, Utf8};
    let url = || one_of(vec![vec![Utf8]], Volatility::Immutable);
    let part = |name: &'static str, eval: super::row_function::RowEval, description: &'static str, syntax: &'static str| {
        RowFunction::new(name, url(), |_| Ok(Utf8), eval, Doc { section: SECTION, description, syntax, arguments: &[URL] }).udf()
    };
    vec![
        part("url_encode_param", |a| Ok(utf8(encode_param(arg(a, 0)?))), "A STRING encoded for a URL's query, as Java's URLEncoder: a space becomes +.", "url_encode_param(text)"),
        part("url_decode_param", |a| decode_param(arg(a, 0)?).map(utf8), "A URL-encoded STRING decoded, as Java's URLDecoder: + becomes a space.", "url_decode_param(text)"),
        part("url_extract_fragment", |a| part_of(a, |u| u.fragment.map(decode)), "The fragment of a URL, decoded; NULL if it has none.", "url_extract_fragment(url)"),
        part("url_extract_host", |a| part_of(a, |u| u.host.map(|h| Ok(h.to_string()))), "The host of a URL; NULL if it has none.", "url_extract_host(url)"),
        part("url_extract_path", |a| part_of(a, |u| Some(decode(u.path))), "The path of a URL, decoded; empty if it has none.", "url_extract_path(url)"),
        part("url_extract_protocol", |a| part_of(a, |u| u.scheme.map(|s| Ok(s.to_string()))), "The protocol (scheme) of a URL; NULL if it has none.", "url_extract_protocol(url)"),
        part("url_extract_query", |a| part_of(a, |u| u.query.map(decode)), "The query of a URL, decoded; NULL if it has none.", "url_extract_query(url)"),
        RowFunction::new("url_extract_port", url(), |_| Ok(Int32), port, Doc {
            section: SECTION,
            description: "The port of a URL; NULL if it names none.",
            syntax: "url_extract_port(url)",
            arguments: &[URL],
        })
        .udf(),
        RowFunction::new("url_extract_parameter", one_of(vec![vec![Utf8, Utf8]], Volatility::Immutable), |_| Ok(Utf8), parameter, Doc {
            section: SECTION,
            description: "The decoded value of the first query parameter of a URL with a name; NULL if there is none.",
            syntax: "url_extract_parameter(url, name)",
            arguments: &[URL, ("name", "The parameter's name.")],
        })
        .udf(),
    ]
}

fn utf8(text: String) -> ScalarValue {
    ScalarValue::Utf8(Some(text))
}

fn arg(args: &[ScalarValue], at: usize) -> Result<&str, String> {
    text(&args[at]).ok_or_else(|| "the argument is not a STRING".to_string())
}

/// The parts of a URL, as `java.net.URI` splits them, escapes kept.
#[derive(Debug, Default, PartialEq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split(url: &str) -> Parts<'_> {
    let mut parts = Parts::default();
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    parts.fragment = fragment;
    let mut rest = rest;
    if let Some(colon) = rest.find(':') {
        let scheme = &rest[..colon];
        let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            parts.scheme = Some(scheme);
            rest = &rest[colon + 1..];
        }
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    parts.query = query;
    parts.path = rest;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        parts.path = &after[end..];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
            _ => (host_port, None),
        };
        parts.host = (!host.is_empty()).then_some(host);
        parts.port = port;
    }
    parts
}

/// The part `get` takes from the URL argument; NULL when it is absent.
fn part_of(args: &[ScalarValue], get: impl Fn(Parts<'_>) -> Option<Result<String, String>>) -> Result<ScalarValue, String> {
    Ok(ScalarValue::Utf8(get(split(arg(args, 0)?)).transpose()?))
}

fn port(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let port = split(arg(args, 0)?).port.map(|p| p.parse::<i32>().map_err(|e| format!("invalid port {p}: {e}"))).transpose()?;
    Ok(ScalarValue::Int32(port))
}

fn parameter(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let name = arg(args, 1)?;
    let Some(query) = split(arg(args, 0)?).query else { return Ok(ScalarValue::Utf8(None)) };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)? == name {
            return decode(value).map(utf8);
        }
    }
    Ok(ScalarValue::Utf8(None))
}

/// Percent-escapes decoded as UTF-8.
fn decode(text: &str) -> Result<String, String> {
    percent_decode(text, false)
}

fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).ok_or_else(|| format!("incomplete escape at the end of '{text}'"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("illegal hex characters in escape pattern '%{hex}'"))?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| format!("the decoded text is not UTF-8: {e}"))
}

fn decode_param(text: &str) -> Result<String, String> {
    percent_decode(text, true)
}

/// `text` as Java's `URLEncoder` writes it in UTF-8.
fn encode_param(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_java_splits_them() {
        let parts = split("http://test@confluent.io:8080/nested/path?q=2#frag");
        assert_eq!(
            parts,
            Parts { scheme: Some("http"), host: Some("confluent.io"), port: Some("8080"), path: "/nested/path", query: Some("q=2"), fragment: Some("frag") }
        );
        assert_eq!(split("http://www.test.com?query#fragment").path, "");
        assert_eq!(split("www.confluent.io"), Parts { path: "www.confluent.io", ..Parts::default() });
    }

    #[test]
    fn parameters_encode_and_decode_as_java_does() {
        assert_eq!(encode_param("?foo $bar"), "%3Ffoo+%24bar");
        assert_eq!(decode_param("%3Ffoo+%24bar").unwrap(), "?foo $bar");
        assert!(decode_param("%zz").is_err());
        let url = ScalarValue::Utf8(Some("http://www.test.com/?one=a&two=url%20encoded&three".into()));
        assert_eq!(parameter(&[url.clone(), utf8("two".into())]).unwrap(), utf8("url encoded".into()));
        assert_eq!(parameter(&[url, utf8("four".into())]).unwrap(), ScalarValue::Utf8(None));
    }
}
