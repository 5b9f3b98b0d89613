//! Runs one probe: exec through CRI ExecSync, an HTTP GET (success for
//! 200..399), or a TCP connect. The outcome and the text the kubelet puts
//! in its Unhealthy events.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cri::Runtime;

/// Whether the probe passed, and its output or failure text.
pub async fn run(
    runtime: &Runtime,
    probe: &Probe,
    container: &Container,
    container_id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> (bool, String) {
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        let seconds = i64::try_from(timeout.as_secs().max(1)).unwrap_or(1);
        return match runtime.exec_sync(container_id, command, seconds).await {
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                (out.exit_code == 0, text)
            }
            Err(err) => (false, err.to_string()),
        };
    }
    if let Some(http) = &probe.http_get {
        let Some(port) = resolve_port(&http.port, container) else {
            return (false, format!("unknown port {:?}", http.port));
        };
        if http.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
            return (false, "HTTPS probes are not supported by this node".to_string());
        }
        let host = http.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_ip.to_string());
        let path = http.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".to_string());
        let headers: Vec<(String, String)> =
            http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
        return match tokio::time::timeout(timeout, http_get(&host, port, &path, &headers)).await {
            Ok(Ok(code)) if (200..400).contains(&code) => (true, String::new()),
            Ok(Ok(code)) => (false, format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(err)) => (false, format!("Get \"http://{host}:{port}{path}\": {err}")),
            Err(_) => (false, format!("Get \"http://{host}:{port}{path}\": context deadline exceeded")),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = resolve_port(&tcp.port, container) else {
            return (false, format!("unknown port {:?}", tcp.port));
        };
        let host = tcp.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| pod_ip.to_string());
        return match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(_)) => (true, String::new()),
            Ok(Err(err)) => (false, format!("dial tcp {host}:{port}: {err}")),
            Err(_) => (false, format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if probe.grpc.is_some() {
        return (false, "gRPC probes are not supported by this node".to_string());
    }
    (false, "probe has no handler".to_string())
}

/// A probe port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => match name.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        },
    }
}

/// One HTTP/1.1 GET; the status code.
async fn http_get(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
        request.push_str("User-Agent: kube-probe/1.33\r\n");
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept")) {
        request.push_str("Accept: */*\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or_else(|| std::io::Error::other("malformed HTTP response"))
}

/// The code of `HTTP/1.1 200 OK`.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.split(|b| *b == b'\n').next()?).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn ports_by_number_or_name() {
        let c = Container {
            ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        };
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Some(80));
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Some(8080));
        assert_eq!(resolve_port(&IntOrString::String("9090".into()), &c), Some(9090));
        assert_eq!(resolve_port(&IntOrString::String("grpc".into()), &c), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\nX: y\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(parse_status_line(b"garbage"), None);
    }

    #[tokio::test]
    async fn http_get_reads_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        assert_eq!(http_get("127.0.0.1", port, "/", &[]).await.ok(), Some(302));
    }
}
