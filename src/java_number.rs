//! Java's rendering of numbers, which ksqlDB's text shows: `Double.toString` and
//! `Float.toString`.

/// Java's `Double.toString` / `Float.toString`: plain between 10⁻³ and 10⁷ with at least one
/// decimal, else `d.dddE±n`; `shortest` is Rust's `{:e}` of the value (its shortest digits).
pub fn java_floating(value: f64, shortest: &str, out: &mut Vec<u8>) {
    if value.is_nan() {
        return out.extend_from_slice(b"NaN");
    }
    if value.is_infinite() {
        return out.extend_from_slice(if value > 0.0 { b"Infinity" } else { b"-Infinity" });
    }
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((shortest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push(b'-');
    }
    let magnitude = value.abs();
    let text = if magnitude == 0.0 {
        "0.0".to_string()
    } else if (1e-3..1e7).contains(&magnitude) {
        if exponent >= 0 {
            let point = exponent as usize + 1;
            let padded = format!("{digits:0<point$}");
            let (whole, fraction) = padded.split_at(point);
            format!("{whole}.{}", if fraction.is_empty() { "0" } else { fraction })
        } else {
            format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        format!("{first}.{}E{exponent}", if rest.is_empty() { "0" } else { rest })
    };
    out.extend_from_slice(text.as_bytes());
}

/// Java's `Double.toString` of `value`.
pub fn double_to_string(value: f64) -> String {
    let mut out = Vec::new();
    java_floating(value, &format!("{value:e}"), &mut out);
    String::from_utf8(out).expect("digits, signs and letters are UTF-8")
}
