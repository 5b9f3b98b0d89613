//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`) as integers in
//! thousandths of the unit, enough for cpu (millicores) and memory (bytes
//! × 1000) without floating point.

/// The quantity in thousandths (`"250m"` is 250, `"1Ki"` is 1_024_000);
/// None when it does not parse.
pub fn parse_milli(text: &str) -> Option<i128> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (scale_num, scale_den): (i128, i128) = match suffix {
        "" => (1, 1),
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "m" => (1, 1_000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: u32 = exponent[1..].parse().ok()?;
            (10i128.checked_pow(power)?, 1)
        }
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let negative = whole.starts_with('-');
    let whole: i128 = whole.trim_start_matches(['+', '-']).parse().unwrap_or(0);
    if whole == 0 && fraction.is_empty() && !number.trim_start_matches(['+', '-']).starts_with('0') {
        return None;
    }
    let digits = fraction.len() as u32;
    let fraction: i128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    let denominator = 10i128.checked_pow(digits)?;
    let exact = (whole * denominator + fraction).checked_mul(scale_num)?.checked_mul(1000)?;
    // Round up, as Kubernetes does for sub-milli amounts.
    let value = (exact + denominator * scale_den - 1) / (denominator * scale_den);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_forms_parse() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("0.5"), Some(500));
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("1.5Gi"), Some(1_610_612_736_000));
        assert_eq!(parse_milli("128974848"), Some(128_974_848_000));
        assert_eq!(parse_milli("129e6"), Some(129_000_000_000));
        assert_eq!(parse_milli("1M"), Some(1_000_000_000));
        assert_eq!(parse_milli("0"), Some(0));
        assert_eq!(parse_milli("1n"), Some(1));
    }

    #[test]
    fn nonsense_does_not_parse() {
        assert_eq!(parse_milli("lots"), None);
        assert_eq!(parse_milli("1Zi"), None);
        assert_eq!(parse_milli(""), None);
    }
}
