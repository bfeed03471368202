//! Which EventPipe providers to enable for a `--counters` request on a given runtime version.

use dn_core::eventpipe::Provider;

use crate::decode::METRICS_PROVIDER;
use crate::spec::ProviderSpec;

/// Limits sent to MetricsEventSource (dotnet-counters' defaults).
#[derive(Debug, Clone, Copy)]
pub struct MetricsLimits {
    pub max_histograms: u32,
    pub max_time_series: u32,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        MetricsLimits {
            max_histograms: 10,
            max_time_series: 1000,
        }
    }
}

/// The session request plus what is needed to read its events.
#[derive(Debug, Clone)]
pub struct Plan {
    pub providers: Vec<Provider>,
    /// Our MetricsEventSource `SessionId` (`SHARED` on .NET 8+), empty when Metrics is not used.
    pub metrics_session: String,
    pub client_id: String,
    /// Providers for which a Meter was requested; their EventCounters are dropped once the
    /// Meter's values arrive.
    pub meter_providers: Vec<String>,
}

/// Builds the plan. `runtime_major` is `None` when the runtime could not say (.NET Core 3.1).
pub fn plan(
    specs: &[ProviderSpec],
    runtime_major: Option<u32>,
    refresh_secs: u32,
    limits: MetricsLimits,
) -> Plan {
    let major = runtime_major.unwrap_or(3);
    // MetricsEventSource exists from .NET 6; the shared session from .NET 8.
    let metrics_possible = major >= 6;
    let client_id = random_guid();
    let mut providers = Vec::new();
    let mut metric_items = Vec::new();
    let mut meter_providers = Vec::new();
    let expanded = expand_everything(specs, major);
    for s in &expanded {
        // System.Runtime became a Meter in .NET 9; before, asking MetricsEventSource for it
        // only delays the EventCounters (see `prefer`).
        let meter = metrics_possible
            && !s.event_counters_only
            && (s.name != "System.Runtime" || major >= 9);
        if meter {
            // Named counters come from whichever of the two publishes them (EventCounter and
            // Meter names differ): only a whole provider prefers its Meter.
            if s.counters.is_none() {
                meter_providers.push(s.name.clone());
            }
            match &s.counters {
                None => metric_items.push(s.name.clone()),
                Some(c) => metric_items.extend(c.iter().map(|c| format!("{}\\{}", s.name, c))),
            }
        }
        // On .NET 9+ System.Runtime is a Meter with the same data: skip its EventCounters unless
        // they were asked for by name (old counter names only exist there).
        let meter_covers_it =
            meter && s.name == "System.Runtime" && major >= 9 && s.counters.is_none();
        if !meter_covers_it && !s.is_everything() {
            providers.push(
                Provider::new(s.name.clone(), 0, 4)
                    .with_arguments(&[("EventCounterIntervalSec", refresh_secs.to_string())]),
            );
        }
    }
    let metrics_session = if metric_items.is_empty() {
        String::new()
    } else if major >= 8 {
        "SHARED".to_string()
    } else {
        random_guid()
    };
    if !metric_items.is_empty() {
        providers.push(Provider::new(METRICS_PROVIDER, 0x2, 4).with_arguments(&[
            ("SessionId", metrics_session.as_str()),
            ("Metrics", &metric_items.join(",")),
            ("RefreshInterval", &refresh_secs.to_string()),
            ("MaxTimeSeries", &limits.max_time_series.to_string()),
            ("MaxHistograms", &limits.max_histograms.to_string()),
            ("ClientId", &client_id),
        ]));
    }
    Plan {
        providers,
        metrics_session,
        client_id,
        meter_providers,
    }
}

/// `*` becomes every known EventCounter provider (as whole providers) plus, from .NET 8 on, every
/// Meter (`Metrics=*`).
fn expand_everything(specs: &[ProviderSpec], major: u32) -> Vec<ProviderSpec> {
    if !specs.iter().any(ProviderSpec::is_everything) {
        return specs.to_vec();
    }
    let mut out: Vec<ProviderSpec> = specs
        .iter()
        .filter(|s| !s.is_everything())
        .cloned()
        .collect();
    for p in crate::known::EVENT_COUNTER_PROVIDERS {
        if !out.iter().any(|s| s.name == *p) {
            out.push(ProviderSpec::all(p));
        }
    }
    if major >= 8 {
        out.push(ProviderSpec::all(crate::spec::EVERYTHING));
    }
    out
}

/// A random (version 4) GUID in text form; the kernel's entropy, no extra crate needed.
pub fn random_guid() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let got = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if got.is_err() {
        // Unique enough for a client id: time and pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b[..12].copy_from_slice(&t.to_le_bytes()[..12]);
        b[12..].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_counters;

    #[test]
    fn net8_gets_event_counters_and_a_shared_metrics_session() {
        let specs = parse_counters(
            "System.Runtime,Microsoft.AspNetCore.Hosting[http.server.request.duration]",
        )
        .unwrap();
        let p = plan(&specs, Some(8), 2, MetricsLimits::default());
        let names: Vec<&str> = p.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "System.Runtime",
                "Microsoft.AspNetCore.Hosting",
                METRICS_PROVIDER
            ]
        );
        assert_eq!(
            p.providers[0].arguments.as_deref(),
            Some("EventCounterIntervalSec=2")
        );
        let m = p.providers[2].arguments.as_deref().unwrap();
        assert!(m.starts_with("SessionId=SHARED;Metrics=Microsoft.AspNetCore.Hosting\\http.server.request.duration;RefreshInterval=2;MaxTimeSeries=1000;MaxHistograms=10;ClientId="), "{m}");
        assert!(
            p.meter_providers.is_empty(),
            "named counters: no preference"
        );
        assert_eq!(p.providers[2].keywords, 2);
        let p = plan(
            &parse_counters("Microsoft.AspNetCore.Hosting").unwrap(),
            Some(8),
            1,
            MetricsLimits::default(),
        );
        assert_eq!(p.meter_providers, ["Microsoft.AspNetCore.Hosting"]);
    }

    #[test]
    fn net9_system_runtime_is_the_meter_and_old_runtimes_get_event_counters_only() {
        let specs = parse_counters("System.Runtime").unwrap();
        let p = plan(&specs, Some(9), 1, MetricsLimits::default());
        assert_eq!(p.providers.len(), 1);
        assert_eq!(p.providers[0].name, METRICS_PROVIDER);
        let p = plan(&specs, None, 1, MetricsLimits::default());
        assert_eq!(p.providers.len(), 1);
        assert_eq!(p.providers[0].name, "System.Runtime");
        assert!(p.metrics_session.is_empty());
        let specs = parse_counters("EventCounters\\System.Runtime").unwrap();
        let p = plan(&specs, Some(10), 1, MetricsLimits::default());
        assert_eq!(p.providers.len(), 1);
        assert_eq!(p.providers[0].name, "System.Runtime");
    }

    #[test]
    fn guids_are_random_v4() {
        let (a, b) = (random_guid(), random_guid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
