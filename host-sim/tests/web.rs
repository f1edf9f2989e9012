//! The emulated printers' embedded web servers: the status page says what
//! SNMP says, the forms and the log download behave as a printer's do, and
//! every request is counted.

mod support;

use dca_core::poll::WalkConfig;
use dca_sim::agent::Behaviour;
use dca_sim::faults::Faults;
use dca_sim::serve::{Fleet, WebPorts, generated};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// One request on a fresh connection; the status line, the head and the body.
fn http(at: &str, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(at).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8(answer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    (status, head.to_string(), body.to_string())
}

fn get(at: &str, path: &str) -> (String, String, String) {
    http(
        at,
        &format!("GET {path} HTTP/1.1\r\nHost: printer\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn each_printer_serves_its_own_pages_and_counts_every_request() {
    let behaviour = Arc::new(Behaviour::default());
    let devices = generated(3, 21, 60.0, 0, |_| Faults::default(), |_| behaviour.clone());
    let fleet = Fleet::start_with_web(
        devices,
        "127.59.7.0/29".parse().unwrap(),
        1161,
        WebPorts {
            http: Some(8080),
            https: Some(8443),
            redirect_to_tls: false,
        },
    )
    .unwrap();
    let web = fleet.web_stats();
    let mut serials = Vec::new();
    for addr in &fleet.addresses {
        let at = format!("{}:8080", addr.ip());
        let (_, snmp) = support::walk_device(&addr.to_string(), WalkConfig::new(b"public"));
        let serial = snmp.identity.serial.as_str().to_string();
        assert!(!serial.is_empty());
        let (status, _, body) = get(&at, "/");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.contains(&format!("<td id=\"serial\">{serial}</td>")),
            "{body}"
        );
        assert!(body.contains(snmp.identity.model.as_str()), "{body}");
        serials.push(serial);
    }
    // Three printers, three serials.
    let distinct: std::collections::BTreeSet<_> = serials.iter().collect();
    assert_eq!(distinct.len(), 3);

    let at = format!("{}:8080", fleet.addresses[0].ip());
    let (status, _, body) = get(&at, "/firmware");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("type=\"file\"") && body.contains("multipart/form-data"));
    let image = "--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"fw.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\nFIRMWARE\r\n--b--\r\n";
    let (status, _, body) = http(
        &at,
        &format!(
            "POST /firmware HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{image}",
            image.len()
        ),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains(&format!("{} bytes", image.len())), "{body}");
    let (status, head, body) = get(&at, "/log");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(head.contains("Content-Disposition: attachment; filename=\"printer.log\""));
    assert!(body.contains(&serials[0]), "{body}");
    let form = "hostname=prn&dns=10.0.0.1";
    let (status, _, _) = http(
        &at,
        &format!(
            "POST /network HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(get(&at, "/nothing").0, "HTTP/1.1 404 Not Found");
    assert_eq!(
        http(
            &at,
            "DELETE / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
        )
        .0,
        "HTTP/1.1 405 Method Not Allowed"
    );
    // Keep-alive: two requests on one connection, both answered.
    let mut s = TcpStream::connect(&at).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /network HTTP/1.1\r\nHost: p\r\n\r\nGET /nothing HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut both = String::new();
    s.read_to_string(&mut both).unwrap();
    assert_eq!(both.matches("HTTP/1.1 ").count(), 2, "{both}");

    // 3 status pages, firmware form and upload, log, settings, 404, 405,
    // and the two on one connection.
    assert_eq!(web.requests.load(Ordering::Relaxed), 3 + 2 + 1 + 1 + 2 + 2);
    assert_eq!(web.uploads.load(Ordering::Relaxed), 1);
    assert_eq!(web.downloads.load(Ordering::Relaxed), 1);
    assert_eq!(web.settings.load(Ordering::Relaxed), 1);
}

#[test]
fn a_printer_serves_its_pages_over_tls_with_a_certificate_naming_its_serial_and_redirects_http_there()
 {
    let behaviour = Arc::new(Behaviour::default());
    let devices = generated(1, 23, 60.0, 0, |_| Faults::default(), |_| behaviour.clone());
    let web = WebPorts {
        http: Some(8080),
        https: Some(8443),
        redirect_to_tls: true,
    };
    let fleet =
        Fleet::start_with_web(devices, "127.59.7.8/30".parse().unwrap(), 1161, web).unwrap();
    let addr = fleet.addresses[0];
    let (_, snmp) = support::walk_device(&addr.to_string(), WalkConfig::new(b"public"));
    let serial = snmp.identity.serial.as_str().to_string();
    // curl, an independent client: the certificate is self-signed (so -k)
    // and names the printer's serial; the page is the printer's.
    let out = std::process::Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20", "-w", "%{certs}"])
        .arg(format!("https://{}:8443/", addr.ip()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("<td id=\"serial\">{serial}</td>")),
        "{text}"
    );
    assert!(
        text.contains(&format!("CN = {serial}")) || text.contains(&format!("CN={serial}")),
        "{text}"
    );
    // Plain HTTP sends every path to HTTPS, naming the printer by address.
    let (status, head, _) = get(&format!("{}:8080", addr.ip()), "/network?tab=2");
    assert_eq!(status, "HTTP/1.1 301 Moved Permanently");
    let location = format!("Location: https://{}:8443/network?tab=2\r\n", addr.ip());
    assert!(format!("{head}\r\n").contains(&location), "{head}");
    assert_eq!(fleet.web_stats().requests.load(Ordering::Relaxed), 2);
}
