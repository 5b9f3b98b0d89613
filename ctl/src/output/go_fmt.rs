//! Go's formatting where etcdctl's output depends on it: go-humanize's byte
//! sizes, `time.Duration`'s String, `%q` and etcdctl's `--hex`.

use std::time::Duration;

/// go-humanize `Bytes` (SI units: 1 kB = 1000 B), as in `endpoint status`.
pub fn humanize_bytes(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size < 10 {
        return format!("{size} B");
    }
    let exponent = ((size as f64).ln() / 1000f64.ln()).floor();
    let unit = UNITS[(exponent as usize).min(UNITS.len() - 1)];
    let value = ((size as f64) / 1000f64.powf(exponent) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 { format!("{value:.1} {unit}") } else { format!("{value:.0} {unit}") }
}

/// Go's `time.Duration.String()`: `43.919535ms`, `1.5s`, `2m0.5s`.
pub fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (unit, precision) = match nanos {
            n if n < 1_000 => ("ns", 0),
            n if n < 1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        return format!("{}{unit}", fraction(nanos, precision));
    }
    let seconds = fraction(nanos, 9);
    let (whole, frac) = seconds.split_once('.').map_or((seconds.as_str(), ""), |(w, f)| (w, f));
    let whole: u128 = whole.parse().unwrap_or(0);
    let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
    let (hours, minutes, secs) = (whole / 3600, whole / 60 % 60, whole % 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs}{frac}s"),
        (0, m) => format!("{m}m{secs}{frac}s"),
        (h, m) => format!("{h}h{m}m{secs}{frac}s"),
    }
}

/// `value / 10^precision` with trailing zeros (and a bare point) dropped.
fn fraction(value: u128, precision: u32) -> String {
    let scale = 10u128.pow(precision);
    let (whole, part) = (value / scale, value % scale);
    if part == 0 {
        return whole.to_string();
    }
    let digits = format!("{part:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `%q` (strconv.Quote) for the strings etcdctl quotes.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's strconv error text (`strconv.ParseInt: parsing "x": invalid
/// syntax`), which etcdctl prints inside its own messages.
pub fn strconv_error(function: &str, text: &str, error: &std::num::ParseIntError) -> String {
    use std::num::IntErrorKind;
    let why = match error.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
        _ => "invalid syntax",
    };
    format!("strconv.{function}: parsing {}: {why}", quote(text))
}

/// etcdctl's `--hex`: every byte as `\xNN`.
pub fn hex_escaped(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| format!("\\x{b:02x}").into_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_sizes() {
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(9), "9 B");
        assert_eq!(humanize_bytes(999), "999 B");
        assert_eq!(humanize_bytes(6_100), "6.1 kB");
        assert_eq!(humanize_bytes(1_054_720), "1.1 MB");
        assert_eq!(humanize_bytes(25_000_000), "25 MB");
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration(Duration::from_nanos(43_919_535)), "43.919535ms");
        assert_eq!(duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(duration(Duration::from_millis(10)), "10ms");
        assert_eq!(duration(Duration::from_millis(1_500)), "1.5s");
        assert_eq!(duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(duration(Duration::from_millis(3_723_500)), "1h2m3.5s");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn quoting_and_hex() {
        assert_eq!(quote("m4"), "\"m4\"");
        assert_eq!(quote("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(hex_escaped(b"fo"), b"\\x66\\x6f".to_vec());
    }
}
