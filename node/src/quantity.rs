//! Resource quantities (`100m`, `0.5`, `64Mi`, `1G`, `1e3`) as numbers.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of a quantity; None when it does not parse.
pub fn value(q: &Quantity) -> Option<f64> {
    let s = q.0.trim();
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suffix, factor) in suffixes {
        if let Some(number) = s.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    if let Some(number) = s.strip_suffix('E') {
        return number.parse::<f64>().ok().map(|n| n * 1e18);
    }
    s.parse::<f64>().ok()
}

/// CPU in millicores, rounded up as Kubernetes does.
pub fn milli_cpu(q: &Quantity) -> Option<i64> {
    value(q).map(|v| (v * 1000.0).ceil() as i64)
}

/// Whole bytes, rounded up.
pub fn bytes(q: &Quantity) -> Option<i64> {
    value(q).map(|v| v.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn parses_kubernetes_quantities() {
        assert_eq!(milli_cpu(&q("100m")), Some(100));
        assert_eq!(milli_cpu(&q("0.5")), Some(500));
        assert_eq!(milli_cpu(&q("2")), Some(2000));
        assert_eq!(bytes(&q("64Mi")), Some(64 << 20));
        assert_eq!(bytes(&q("1G")), Some(1_000_000_000));
        assert_eq!(bytes(&q("1e3")), Some(1000));
        assert_eq!(bytes(&q("128974848")), Some(128_974_848));
        assert_eq!(value(&q("lots")), None);
    }
}
