//! Each emulated printer's embedded web server (`dca-sim serve --web-port
//! P`, and over TLS with `--web-tls-port P`), as the ones Device Web
//! Access reaches: a status page with its
//! identity, counters and supplies, a network settings form, a firmware
//! upload form and a downloadable log. Uploads and downloads are served as
//! a real printer would, so that whoever sits between a technician and the
//! printer can be shown to refuse them; every request is counted.
//!
//! The pages say what SNMP says: they are rendered from a walk of the
//! device's own agent, in-process, with dca-core's walker.

use crate::agent::{Reply, View, respond};
use crate::mib::{Dynamic, SimValue};
use crate::serve::Device;
use dca_core::poll::{WalkConfig, WalkState, Walker};
use dca_core::printer::plan::walk_plan;
use dca_core::printer::{Snapshot, SnapshotBuilder};
use dca_core::time::{Duration, Instant};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

/// The largest request head and body a printer's web server takes.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;
/// A connection silent for this long is closed.
const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// What the web servers of a fleet were asked.
#[derive(Debug, Default)]
pub struct WebStats {
    /// Every request that reached a printer's web server.
    pub requests: AtomicU64,
    /// Firmware images received (the upload form's POST).
    pub uploads: AtomicU64,
    /// Logs sent as attachments.
    pub downloads: AtomicU64,
    /// Network settings saved.
    pub settings: AtomicU64,
}

/// The device's snapshot now, read through its own SNMP agent in-process
/// (virtual time: a dropped request is a timeout at once).
pub fn snapshot_of(device: &Device) -> Snapshot {
    let absent = |_: Dynamic| None;
    let view = View {
        template: &device.template,
        eval: device.eval.as_deref().map_or(
            &absent as &(dyn Fn(Dynamic) -> Option<SimValue> + Sync),
            |e| e,
        ),
    };
    let mut cfg = WalkConfig::new(&device.behaviour.community);
    cfg.timeout = Duration::from_millis(100);
    let mut walker = Walker::new(cfg, walk_plan(), 1, Instant::from_millis(0));
    let mut builder = SnapshotBuilder::new();
    let (mut out, mut now) = (vec![0u8; 65_507], Instant::from_millis(0));
    // Bounded by the walk's own deadline on the virtual clock.
    while walker.state() == WalkState::Running {
        let mut answered = false;
        while let Some(n) = walker.poll_transmit(now, &mut out) {
            if let Reply::Send(mut bytes) = respond(&view, &device.behaviour, &out[..n]) {
                walker.handle_datagram(now, &mut bytes, &mut builder);
                answered = true;
            }
        }
        if !answered {
            match walker.poll_timeout() {
                Some(t) => {
                    now = t;
                    walker.handle_timeout(now);
                }
                None => break,
            }
        }
    }
    builder.finish()
}

/// A printer's TLS as printers ship it: a certificate it signed itself,
/// naming its serial, that no browser or agent can check against a CA.
pub fn self_signed(serial: &str) -> Result<TlsAcceptor, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("a key: {e}"))?;
    let cert = rcgen::CertificateParams::new(vec![serial.to_string()])
        .and_then(|mut p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(rcgen::DnType::CommonName, serial);
            p.self_signed(&key)
        })
        .map_err(|e| format!("a certificate for {serial}: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(vec![cert.der().clone()], key)
            })
            .map_err(|e| format!("TLS for {serial}: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How one of a device's web servers answers.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // a TLS acceptor is not Debug
pub enum Serving {
    /// Its pages, in plain HTTP.
    Pages,
    /// Its pages over TLS.
    Tls(TlsAcceptor),
    /// Every request sent to the same path on its HTTPS server at this
    /// address, as most printers do with plain HTTP once TLS is on.
    RedirectTo(std::net::SocketAddr),
}

/// Serves `device` on `listener` as `serving` says until the task is
/// dropped.
pub async fn run_web(
    device: Arc<Device>,
    listener: TcpListener,
    serving: Serving,
    stats: Arc<WebStats>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let (device, stats, serving) = (device.clone(), stats.clone(), serving.clone());
        tokio::spawn(async move {
            let _ = match serving {
                Serving::Pages => connection(stream, &device, None, &stats).await,
                Serving::RedirectTo(to) => connection(stream, &device, Some(to), &stats).await,
                Serving::Tls(tls) => match tokio::time::timeout(IDLE, tls.accept(stream)).await {
                    Ok(Ok(stream)) => connection(stream, &device, None, &stats).await,
                    // A failed or stalled handshake is the client's loss.
                    _ => Ok(()),
                },
            };
        });
    }
}

/// A request as the server saw it.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
    close: bool,
}

async fn connection(
    mut s: impl AsyncRead + AsyncWrite + Unpin,
    device: &Device,
    redirect_to: Option<std::net::SocketAddr>,
    stats: &WebStats,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut s, &mut buf).await? else {
            return Ok(());
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let (status, content_type, extra, body) = match redirect_to {
            None => page(&req, device, stats),
            Some(to) => (
                "301 Moved Permanently",
                "text/html; charset=utf-8",
                format!("Location: https://{to}{}\r\n", req.path),
                html(
                    "Moved",
                    "<p>This printer's pages are served over HTTPS.</p>",
                ),
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nServer: dca-sim embedded web server\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n{extra}{}\r\n",
            body.len(),
            if req.close {
                "Connection: close\r\n"
            } else {
                ""
            }
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(&body).await?;
        if req.close {
            // Over TLS, a close_notify: the answer ended, it was not cut.
            return s.shutdown().await;
        }
    }
}

/// Reads one request (head and body) into `buf`; `None` at a clean end.
async fn read_request(
    s: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let header = |name: &str| {
                    parsed
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::trim)
                };
                let length: usize = header("content-length")
                    .map(|v| v.parse().map_err(|_| bad("bad Content-Length")))
                    .transpose()?
                    .unwrap_or(0);
                if length > MAX_BODY {
                    return Err(bad("body too large"));
                }
                let mut req = Request {
                    method: parsed.method.unwrap_or("GET").to_string(),
                    path: parsed.path.unwrap_or("/").to_string(),
                    content_type: header("content-type").map(str::to_string),
                    body: Vec::new(),
                    close: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
                };
                while buf.len() < head_len + length {
                    if read_some(s, buf).await? == 0 {
                        return Err(bad("connection closed inside a body"));
                    }
                }
                req.body = buf[head_len..head_len + length].to_vec();
                buf.drain(..head_len + length);
                return Ok(Some(req));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                if read_some(s, buf).await? == 0 {
                    return if buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(bad("connection closed inside a head"))
                    };
                }
            }
            Ok(httparse::Status::Partial) => return Err(bad("head too large")),
            Err(e) => return Err(bad(&e.to_string())),
        }
    }
}

async fn read_some(s: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(IDLE, s.read(&mut chunk)).await {
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(0),
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(title: &str, body: &str) -> Vec<u8> {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><nav><a href=\"/\">Status</a> | <a href=\"/network\">Network</a> | \
         <a href=\"/firmware\">Firmware</a> | <a href=\"/log\">Log</a></nav>{body}</body></html>",
        esc(title)
    )
    .into_bytes()
}

type Page = (&'static str, &'static str, String, Vec<u8>);

fn page(req: &Request, device: &Device, stats: &WebStats) -> Page {
    const HTML: &str = "text/html; charset=utf-8";
    let path = req.path.split('?').next().unwrap_or("/");
    match (req.method.as_str(), path) {
        ("GET", "/") => {
            let snap = snapshot_of(device);
            let id = &snap.identity;
            let mut body = format!(
                "<h1>{}</h1><table id=\"identity\"><tr><th>Serial</th><td id=\"serial\">{}</td></tr>\
                 <tr><th>Firmware</th><td>{}</td></tr><tr><th>Name</th><td>{}</td></tr></table>\
                 <h2>Counters</h2><table id=\"counters\">",
                esc(id.model.as_str()),
                esc(id.serial.as_str()),
                esc(id.firmware.as_str()),
                esc(&device.name)
            );
            for c in &snap.counters {
                body.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", c.name, c.value));
            }
            body.push_str("</table><h2>Supplies</h2><table id=\"supplies\">");
            for s in &snap.supplies {
                let level = s
                    .percent()
                    .map_or_else(|| "unknown".to_string(), |p| format!("{p:.0} %"));
                body.push_str(&format!(
                    "<tr><th>{}</th><td>{level}</td></tr>",
                    esc(s.description.as_str())
                ));
            }
            body.push_str("</table>");
            (
                "200 OK",
                HTML,
                String::new(),
                html(id.model.as_str(), &body),
            )
        }
        ("GET", "/network") => (
            "200 OK",
            HTML,
            String::new(),
            html(
                "Network",
                "<h1>Network settings</h1><form method=\"post\" action=\"/network\">\
                 <label>Host name <input name=\"hostname\"></label>\
                 <label>DNS server <input name=\"dns\"></label>\
                 <button>Save</button></form>",
            ),
        ),
        ("POST", "/network") => {
            stats.settings.fetch_add(1, Ordering::Relaxed);
            (
                "200 OK",
                HTML,
                String::new(),
                html("Saved", "<p>Settings saved.</p>"),
            )
        }
        ("GET", "/firmware") => (
            "200 OK",
            HTML,
            String::new(),
            html(
                "Firmware",
                "<h1>Firmware update</h1><form method=\"post\" action=\"/firmware\" \
                 enctype=\"multipart/form-data\"><input type=\"file\" name=\"image\">\
                 <button>Upload</button></form>",
            ),
        ),
        ("POST", "/firmware") => {
            // A printer takes the image: refusing it is the job of whoever
            // stands between the technician and the device.
            stats.uploads.fetch_add(1, Ordering::Relaxed);
            let what = req.content_type.as_deref().unwrap_or("no content type");
            let body = format!(
                "<p>Firmware image of {} bytes ({}) received.</p>",
                req.body.len(),
                esc(what)
            );
            ("200 OK", HTML, String::new(), html("Firmware", &body))
        }
        ("GET", "/log") => {
            stats.downloads.fetch_add(1, Ordering::Relaxed);
            let snap = snapshot_of(device);
            let log = format!(
                "job log of {} (serial {})\n1 job printed\n",
                device.name,
                snap.identity.serial.as_str()
            );
            (
                "200 OK",
                "text/plain; charset=utf-8",
                "Content-Disposition: attachment; filename=\"printer.log\"\r\n".to_string(),
                log.into_bytes(),
            )
        }
        (_, "/" | "/network" | "/firmware" | "/log") => (
            "405 Method Not Allowed",
            "text/plain",
            String::new(),
            b"method not allowed\n".to_vec(),
        ),
        _ => (
            "404 Not Found",
            "text/plain",
            String::new(),
            b"not found\n".to_vec(),
        ),
    }
}
