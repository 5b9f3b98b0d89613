//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`) as integers:
//! cpu in millicores, everything else in units, rounded up the way
//! apimachinery's `MilliValue()` and `Value()` round.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity in millis (cpu), rounded up; `None` when it does not parse.
pub fn milli_value(quantity: &Quantity) -> Option<i64> {
    scaled(&quantity.0, 3)
}

/// The quantity in units (bytes, pods), rounded up; `None` when it does not parse.
pub fn value(quantity: &Quantity) -> Option<i64> {
    scaled(&quantity.0, 0)
}

/// `text × 10^scale`, rounded toward positive infinity and clamped to i64.
fn scaled(text: &str, scale: i32) -> Option<i64> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_len = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mut numerator: i128 = digits.parse().ok()?;
    let mut denominator: i128 = 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let (binary_power, decimal_exponent) = suffix_scale(suffix)?;
    numerator = numerator.checked_mul(1024i128.checked_pow(binary_power)?)?;
    let exponent = decimal_exponent.checked_add(scale)?;
    let power = 10i128.checked_pow(exponent.unsigned_abs())?;
    if exponent >= 0 {
        numerator = numerator.checked_mul(power)?;
    } else {
        denominator = denominator.checked_mul(power)?;
    }
    let magnitude = if negative { -(numerator / denominator) } else { (numerator + denominator - 1) / denominator };
    Some(i64::try_from(magnitude).unwrap_or(if negative { i64::MIN } else { i64::MAX }))
}

/// A suffix as (power of 1024, power of 10).
fn suffix_scale(suffix: &str) -> Option<(u32, i32)> {
    let scale = match suffix {
        "Ki" => (1, 0),
        "Mi" => (2, 0),
        "Gi" => (3, 0),
        "Ti" => (4, 0),
        "Pi" => (5, 0),
        "Ei" => (6, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "" => (0, 0),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = exponent.parse().ok()?;
            // Beyond this no quantity fits in i64 anyway.
            if exponent.abs() > 30 {
                return None;
            }
            (0, exponent)
        }
    };
    Some(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity(text.to_string())
    }

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(milli_value(&q("100m")), Some(100));
        assert_eq!(milli_value(&q("2")), Some(2000));
        assert_eq!(milli_value(&q("0.5")), Some(500));
        assert_eq!(milli_value(&q("1.5")), Some(1500));
        assert_eq!(milli_value(&q("250u")), Some(1), "rounds up");
        assert_eq!(milli_value(&q("1e3")), Some(1_000_000));
    }

    #[test]
    fn memory_in_bytes_binary_and_decimal() {
        assert_eq!(value(&q("128Mi")), Some(128 * 1024 * 1024));
        assert_eq!(value(&q("1Gi")), Some(1 << 30));
        assert_eq!(value(&q("1.5Gi")), Some(3 << 29));
        assert_eq!(value(&q("500M")), Some(500_000_000));
        assert_eq!(value(&q("1k")), Some(1000));
        assert_eq!(value(&q("110")), Some(110));
        assert_eq!(value(&q("100m")), Some(1), "fractions of a byte round up");
        assert_eq!(value(&q("12E")), Some(i64::MAX), "clamped");
    }

    #[test]
    fn garbage_does_not_parse() {
        for bad in ["", "abc", "1.2.3", "1Xi", "Mi", "1e99"] {
            assert_eq!(value(&q(bad)), None, "{bad}");
        }
    }
}
