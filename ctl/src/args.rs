//! The global flags, with etcdctl's names, defaults and `ETCDCTL_*`
//! environment fallbacks.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Flags every `capstan ctl` command accepts (before or after its name).
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// gRPC endpoints, comma-separated (host:port or http://host:port).
    #[arg(long, global = true, env = "ETCDCTL_ENDPOINTS", value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// Timeout for short running commands (excluding the dial), e.g. 5s, 500ms.
    #[arg(long, global = true, env = "ETCDCTL_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_go_duration)]
    pub command_timeout: Duration,
    /// Dial timeout for client connections.
    #[arg(long, global = true, env = "ETCDCTL_DIAL_TIMEOUT", default_value = "2s", value_parser = parse_go_duration)]
    pub dial_timeout: Duration,
    /// Output format.
    #[arg(short = 'w', long, global = true, env = "ETCDCTL_WRITE_OUT", value_enum, default_value = "simple")]
    pub write_out: OutputFormat,
    /// Verify the members' certificates with this CA bundle (TLS).
    #[arg(long, global = true, env = "ETCDCTL_CACERT")]
    pub cacert: Option<std::path::PathBuf>,
    /// Client certificate to present (TLS, with --key).
    #[arg(long = "cert", id = "cert_file", global = true, env = "ETCDCTL_CERT", requires = "key_file")]
    pub cert: Option<std::path::PathBuf>,
    /// Private key of --cert. (Its id differs from its name: commands have a KEY argument.)
    #[arg(long = "key", id = "key_file", global = true, env = "ETCDCTL_KEY", requires = "cert_file")]
    pub key: Option<std::path::PathBuf>,
    /// Print keys and values as hex-encoded bytes (simple output).
    #[arg(long, global = true, env = "ETCDCTL_HEX")]
    pub hex: bool,
}

impl GlobalArgs {
    /// TLS is on when any TLS file is given, as with etcdctl.
    pub fn uses_tls(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some()
    }

    /// The endpoints as given, trimmed, empty entries dropped.
    pub fn endpoint_list(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// etcdctl's plain text.
    Simple,
    /// etcdctl's JSON: the response, int64s as numbers, keys and values base64.
    Json,
    /// etcdctl's tables (member list and the endpoint commands).
    Table,
    /// The JSON response as YAML, keys and values readable, JSON values nested.
    Yaml,
}

/// Parses a Go duration (`5s`, `500ms`, `1m30s`, `1.5h`, `0`).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (for example 5s, 500ms, 1m30s)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("5x").is_err());
    }
}
