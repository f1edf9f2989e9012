//! Fault injection: what real networks and printers do to a poller.
//!
//! Faults apply fleet-wide (command-line flags) or per device (a scenario
//! file: a JSON array of `{"devices": "NAME" | "PREFIX*", ...faults}`,
//! applied in order to the devices whose name matches).

use crate::quirks::Quirks;
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Probability that a request is dropped.
    pub loss: f64,
    /// Delay before each answer, plus up to `jitter_ms` more.
    pub delay_ms: u64,
    pub jitter_ms: u64,
    /// Answers SNMPv1 only.
    pub v1_only: bool,
    /// Answers GetBulk with genErr.
    pub no_bulk: bool,
    /// Answers tooBig when a response would carry more varbinds than this.
    pub too_big_above: Option<usize>,
    /// Responses longer than this many octets never arrive, as when a
    /// network drops IP fragments (no tooBig tells the poller why).
    pub lost_above: Option<usize>,
    /// Probability of answering genErr.
    pub gen_error: f64,
    /// After this many seconds without requests the device is asleep: it
    /// drops the first request and answers the retry.
    pub asleep_after_s: Option<u64>,
    /// Probability that a response is sent malformed (cut short).
    pub malformed: f64,
    /// Generated printers: the page counters fall back (a board swap) after
    /// one simulated hour.
    pub counters_backwards: bool,
    /// Generated printers: Counter32 page counters start just below 2^32
    /// and wrap.
    pub counter32_wrap: bool,
    /// After each answer, this many stray datagrams to the asker's port:
    /// stale duplicates, answers spoiled in one byte, and garbage, as a
    /// hostile or broken host on the customer's network would send.
    pub flood: u32,
    pub quirks: Quirks,
}

impl Faults {
    /// Overrides fields with those a scenario entry names.
    fn merge(
        &mut self,
        entry: &serde_json::Map<String, Value>,
        file: &Path,
        i: usize,
    ) -> Result<(), String> {
        let bad = |key: &str, want: &str| {
            format!("{}: entry {i}: \"{key}\" must be {want}", file.display())
        };
        for (key, v) in entry {
            match key.as_str() {
                "devices" => {}
                "loss" => {
                    self.loss =
                        probability(v).ok_or_else(|| bad(key, "a probability from 0 to 1"))?
                }
                "gen_error" => {
                    self.gen_error =
                        probability(v).ok_or_else(|| bad(key, "a probability from 0 to 1"))?
                }
                "malformed" => {
                    self.malformed =
                        probability(v).ok_or_else(|| bad(key, "a probability from 0 to 1"))?
                }
                "delay_ms" => self.delay_ms = v.as_u64().ok_or_else(|| bad(key, "milliseconds"))?,
                "jitter_ms" => {
                    self.jitter_ms = v.as_u64().ok_or_else(|| bad(key, "milliseconds"))?
                }
                "asleep_after_s" => {
                    self.asleep_after_s = Some(v.as_u64().ok_or_else(|| bad(key, "seconds"))?)
                }
                "too_big_above" => {
                    self.too_big_above =
                        Some(v.as_u64().ok_or_else(|| bad(key, "a count"))? as usize)
                }
                "lost_above" => {
                    self.lost_above =
                        Some(v.as_u64().ok_or_else(|| bad(key, "a size in octets"))? as usize)
                }
                "v1_only" => self.v1_only = v.as_bool().ok_or_else(|| bad(key, "true or false"))?,
                "no_bulk" => self.no_bulk = v.as_bool().ok_or_else(|| bad(key, "true or false"))?,
                "counters_backwards" => {
                    self.counters_backwards =
                        v.as_bool().ok_or_else(|| bad(key, "true or false"))?
                }
                "counter32_wrap" => {
                    self.counter32_wrap = v.as_bool().ok_or_else(|| bad(key, "true or false"))?
                }
                "flood" => {
                    self.flood = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(key, "a count of datagrams"))?
                }
                "quirks" => {
                    let names = v
                        .as_array()
                        .ok_or_else(|| bad(key, "a list of quirk names"))?;
                    for n in names {
                        match n.as_str() {
                            Some("unsigned-without-zero") => {
                                self.quirks.unsigned_without_zero = true
                            }
                            Some("long-lengths") => self.quirks.long_lengths = true,
                            Some("padded-integers") => self.quirks.padded_integers = true,
                            _ => {
                                return Err(bad(
                                    key,
                                    "unsigned-without-zero, long-lengths or padded-integers",
                                ));
                            }
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "{}: entry {i}: unknown fault \"{other}\"",
                        file.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn probability(v: &Value) -> Option<f64> {
    v.as_f64().filter(|p| (0.0..=1.0).contains(p))
}

/// A parsed scenario file.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    entries: Vec<(String, serde_json::Map<String, Value>)>,
    file: std::path::PathBuf,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let list = json
            .as_array()
            .ok_or_else(|| format!("{}: expected a JSON array of fault entries", path.display()))?;
        let mut entries = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let obj = e
                .as_object()
                .ok_or_else(|| format!("{}: entry {i} is not an object", path.display()))?;
            let pattern = obj
                .get("devices")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{}: entry {i} lacks \"devices\"", path.display()))?;
            // Validate now, so a bad file fails at start, not per device.
            Faults::default().merge(obj, path, i)?;
            entries.push((pattern.to_string(), obj.clone()));
        }
        Ok(Self {
            entries,
            file: path.to_path_buf(),
        })
    }

    /// The faults of device `name`, starting from the fleet-wide ones.
    pub fn faults_for(&self, name: &str, base: &Faults) -> Faults {
        let mut f = base.clone();
        for (i, (pattern, entry)) in self.entries.iter().enumerate() {
            let matches = match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            };
            if matches {
                // Validated at load time.
                let _ = f.merge(entry, &self.file, i);
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_match_by_name_or_prefix_and_bad_files_say_where() {
        let dir = std::env::temp_dir().join(format!("dca-sim-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            r#"[{"devices": "prn-000*", "loss": 0.5}, {"devices": "jetdirect", "v1_only": true}]"#,
        )
        .unwrap();
        let s = Scenario::load(&good).unwrap();
        assert_eq!(s.faults_for("prn-00012", &Faults::default()).loss, 0.5);
        assert_eq!(s.faults_for("prn-00100", &Faults::default()).loss, 0.0);
        assert!(s.faults_for("jetdirect", &Faults::default()).v1_only);
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"[{"devices": "x", "loss": 2}]"#).unwrap();
        assert!(
            Scenario::load(&bad)
                .unwrap_err()
                .contains("entry 0: \"loss\" must be a probability")
        );
        std::fs::write(&bad, r#"[{"devices": "x", "lose": 0.1}]"#).unwrap();
        assert!(
            Scenario::load(&bad)
                .unwrap_err()
                .contains("unknown fault \"lose\"")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
