//! Sizes and durations as people type them: `512MB`, `1.5GiB`, `0`, `10s`, `2m`, `500ms`.
//! Sizes use powers of 1024 (`KB` = `KiB`), as `dotnet-counters` shows memory counters.

use std::time::Duration;

/// Parses a size: a number and an optional unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (num, unit) = split_number(text)?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit '{unit}' in '{text}' (use B, KB, MB, GB or TB)"
            ))
        }
    };
    let bytes = num * mult as f64;
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("size '{text}' is out of range"));
    }
    Ok(bytes as u64)
}

/// Parses a duration: a number and an optional unit ms, s (default), m, h.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (num, unit) = split_number(text)?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "ms" => num / 1000.0,
        "" | "s" | "sec" | "secs" => num,
        "m" | "min" => num * 60.0,
        "h" => num * 3600.0,
        _ => {
            return Err(format!(
                "unknown time unit '{unit}' in '{text}' (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration '{text}' is out of range"))
}

/// `12.5MB` -> (12.5, "MB"). The number must be finite and not negative.
pub fn split_number(text: &str) -> Result<(f64, &str), String> {
    let t = text.trim();
    let at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(at);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' does not start with a number"))?;
    if !v.is_finite() {
        return Err(format!("'{text}' is not a finite number"));
    }
    Ok((v, unit.trim()))
}

/// A byte count the way people read it: `512.0 MB`, `1.50 GB`.
pub fn show_size(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("-1MB").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999TB").is_err());
        assert_eq!(show_size(512.0 * 1048576.0), "512.00 MB");
        assert_eq!(show_size(12.0), "12 B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2 fortnights").is_err());
        assert!(parse_duration("1e400").is_err());
    }
}
