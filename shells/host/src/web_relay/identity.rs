//! Who answers at the session's address now: the serial the device reports
//! over SNMP, read with the agent's own SNMP settings (credential sets,
//! port, timeouts) by the same sweep a collection runs, on that one
//! address, with the identity plan (no counters, supplies or alerts). An
//! address is not an identity (DHCP hands it to another device in time),
//! so it is read again before every connection to the device.

use super::IdentityReader;
use crate::sweep::{self, SweepArgs};
use dca_core::printer::plan::Plan;
use std::net::IpAddr;
use std::sync::Arc;

/// Reads the serial over SNMP with `settings` (their targets are ignored).
pub fn over_snmp(settings: SweepArgs) -> IdentityReader {
    Arc::new(move |ip| serial_at(&settings, ip))
}

fn serial_at(settings: &SweepArgs, ip: IpAddr) -> Result<String, String> {
    let mut args = settings.clone();
    args.targets = vec![ip.to_string()];
    args.skip_unresolved = false;
    args.plan = Plan::Identity;
    // One address: one walk slot (each is tens of KiB), not a sweep's 64.
    args.parallel = 1;
    let mut serial = None;
    let swept = sweep::sweep(&args, false, &mut |_, snapshot, _| {
        serial = Some(snapshot.identity.serial.as_str().trim().to_string());
    });
    match (swept, serial) {
        (Err(e), _) => Err(format!("its identity could not be read: {e}")),
        (Ok(_), Some(s)) if !s.is_empty() => Ok(s),
        (Ok(_), Some(_)) => Err(format!("the printer at {ip} reports no serial")),
        (Ok(_), None) => Err(format!("no printer answered SNMP at {ip}")),
    }
}
