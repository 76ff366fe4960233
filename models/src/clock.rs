//! The model's virtual clock and the two text formats containerd reads time from: RFC 3339
//! (`containerd.io/gc.expire`) and Go durations (scenario and `apply` inputs).
//!
//! Nothing here reads the wall clock: a run that replays a schedule must see the same instants.
//! (A real `SystemTime` can be turned into an [`Instant`] to format it; that reads nothing.)

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant(pub i64);

/// Where every fresh store's clock starts: 2025-01-01T00:00:00Z.
pub const EPOCH: Instant = Instant(1_735_689_600 * NANOS_PER_SEC);

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A signed span of virtual time in nanoseconds (Go's `time.Duration`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub const HOUR: Duration = Duration(3600 * NANOS_PER_SEC);

    pub fn from_secs(s: i64) -> Duration {
        Duration(s * NANOS_PER_SEC)
    }
}

impl Instant {
    /// Go's `t.UTC().Format(time.RFC3339)`: whole seconds, `Z`.
    pub fn rfc3339(self) -> String {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            y,
            m,
            d,
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }

    /// RFC 3339 with all nine fraction digits (`2025-01-01T00:00:00.500000000Z`), which Go's
    /// `time.Parse(time.RFC3339, …)` accepts: the real-daemon backend writes its `gc.expire` labels
    /// with it, because a mapped expiry falls between whole seconds.
    pub fn rfc3339_nanos(self) -> String {
        let whole = self.rfc3339();
        let frac = self.0.rem_euclid(NANOS_PER_SEC);
        format!("{}.{frac:09}Z", whole.trim_end_matches('Z'))
    }

    /// Go's `time.Parse(time.RFC3339, s)`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
    /// `None` for anything Go would reject; containerd then ignores the label (the lease stays alive).
    pub fn parse_rfc3339(s: &str) -> Option<Instant> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        if b[4] != b'-' || b[7] != b'-' || (b[10] != b'T') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || min > 59 || sec > 59 {
            return None;
        }
        let mut i = 19;
        let mut frac_nanos = 0i64;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j == start {
                return None;
            }
            let digits = &s[start..j];
            let mut scale = 100_000_000i64;
            for c in digits.bytes().take(9) {
                frac_nanos += (c - b'0') as i64 * scale;
                scale /= 10;
            }
            i = j;
        }
        let offset_secs = match &s[i..] {
            "Z" => 0,
            rest if rest.len() == 6
                && (rest.starts_with('+') || rest.starts_with('-'))
                && rest.as_bytes()[3] == b':' =>
            {
                let h = num(i + 1..i + 3)?;
                let m = num(i + 4..i + 6)?;
                if h > 23 || m > 59 {
                    return None;
                }
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
        Some(Instant(
            secs.checked_mul(NANOS_PER_SEC)?.checked_add(frac_nanos)?,
        ))
    }
}

/// A real time as an instant (clamped to the ±292 years an `i64` of nanoseconds spans).
impl From<SystemTime> for Instant {
    fn from(t: SystemTime) -> Instant {
        let nanos: i128 = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Instant(nanos.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Duration {
    /// Go's `time.ParseDuration`: `[-+]?(\d*(\.\d*)?(ns|us|µs|ms|s|m|h))+` or `0`, in exact
    /// integer nanoseconds as Go computes them (so `-9223372036854775808ns` is the minimum, and
    /// one more nanosecond either way is out of range).
    pub fn parse(s: &str) -> Result<Duration, String> {
        let err = || {
            format!("invalid duration {s:?}: expected a Go duration such as \"1h\", \"90s\" or \"-1m30s\"")
        };
        let (neg, mut rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(err());
        }
        const LIMIT: u64 = 1 << 63;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let (v, r) = leading_int(rest).ok_or_else(err)?;
            let (f, scale, r2) = match r.strip_prefix('.') {
                Some(r) => leading_fraction(r),
                None => (0, 1.0, r),
            };
            if r.len() == rest.len() && r2.len() + 1 >= r.len() {
                return Err(err()); // neither integer nor fraction digits
            }
            let u = r2
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(r2.len());
            let unit: u64 = match &r2[..u] {
                "ns" => 1,
                "us" | "µs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(err()),
            };
            rest = &r2[u..];
            let mut v = v
                .checked_mul(unit)
                .filter(|&v| v <= LIMIT)
                .ok_or_else(err)?;
            if f > 0 {
                v += (f as f64 * (unit as f64 / scale)) as u64;
            }
            total = total
                .checked_add(v)
                .filter(|&t| t <= LIMIT)
                .ok_or_else(err)?;
        }
        match (neg, total) {
            (true, t) => Ok(Duration((t as i64).wrapping_neg())),
            (false, t) if t < LIMIT => Ok(Duration(t as i64)),
            _ => Err(err()),
        }
    }
}

/// The leading decimal digits of `s` (possibly none: 0) and the rest; `None` past 2^63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut v: u64 = 0;
    for d in s[..n].bytes() {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        if v > 1 << 63 {
            return None;
        }
    }
    Some((v, &s[n..]))
}

/// The leading fraction digits of `s`: their value, its scale (10^digits kept) and the rest.
/// Digits past what fits are ignored, as Go does.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut v, mut scale, mut overflow) = (0u64, 1.0f64, false);
    for d in s[..n].bytes() {
        if overflow {
            continue;
        }
        match v
            .checked_mul(10)
            .and_then(|x| x.checked_add(u64::from(d - b'0')))
        {
            Some(x) if x <= 1 << 63 => {
                v = x;
                scale *= 10.0;
            }
            _ => overflow = true,
        }
    }
    (v, scale, &s[n..])
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n % NANOS_PER_SEC == 0 {
            let s = n / NANOS_PER_SEC;
            if s % 3600 == 0 && s != 0 {
                return write!(f, "{}h", s / 3600);
            }
            return write!(f, "{s}s");
        }
        write!(f, "{n}ns")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's civil algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

impl std::ops::Mul<i64> for Duration {
    type Output = Duration;
    fn mul(self, k: i64) -> Duration {
        Duration(self.0 * k)
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats_as_its_documented_instant() {
        assert_eq!(EPOCH.rfc3339(), "2025-01-01T00:00:00Z");
        assert_eq!(
            (EPOCH + Duration::HOUR * 24).rfc3339(),
            "2025-01-02T00:00:00Z"
        );
    }

    #[test]
    fn system_times_format_as_utc_seconds() {
        let rfc3339 = |t: SystemTime| Instant::from(t).rfc3339();
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59Z"
        );
    }

    #[test]
    fn rfc3339_nanos_keeps_the_fraction() {
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(1_735_689_600_500_000_007);
        assert_eq!(
            Instant::from(t).rfc3339_nanos(),
            "2025-01-01T00:00:00.500000007Z"
        );
        assert_eq!(
            Instant::from(UNIX_EPOCH - std::time::Duration::from_millis(500)).rfc3339_nanos(),
            "1969-12-31T23:59:59.500000000Z"
        );
    }

    #[test]
    fn rfc3339_round_trips_and_accepts_offsets_and_fractions() {
        for s in [
            "2025-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2024-02-29T12:00:00Z",
        ] {
            assert_eq!(Instant::parse_rfc3339(s).unwrap().rfc3339(), s);
        }
        assert_eq!(
            Instant::parse_rfc3339("2025-01-01T01:00:00+01:00"),
            Some(EPOCH)
        );
        assert_eq!(
            Instant::parse_rfc3339("2025-01-01T00:00:00.5Z"),
            Some(Instant(EPOCH.0 + 500_000_000))
        );
        for bad in [
            "",
            "tomorrow",
            "2025-02-30T00:00:00Z",
            "2025-01-01 00:00:00Z",
            "2025-01-01T00:00:00",
        ] {
            assert_eq!(Instant::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(Duration::parse("1h").unwrap(), Duration::HOUR);
        assert_eq!(Duration::parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(Duration::parse("-1s").unwrap(), Duration::from_secs(-1));
        assert_eq!(Duration::parse("1.5s").unwrap(), Duration(1_500_000_000));
        assert_eq!(Duration::parse("0").unwrap(), Duration(0));
        assert!(Duration::parse("1d").is_err());
        assert!(Duration::parse("h").is_err());
        assert!(Duration::parse("").is_err());
        assert!(Duration::parse("1.s").is_ok() && Duration::parse(".5s").is_ok());
        assert!(Duration::parse(".s").is_err() && Duration::parse("1..5s").is_err());
    }

    /// Issue 14 item 9: the minimum is exact, one past either end is refused (as Go's).
    #[test]
    fn go_duration_extremes_are_exact() {
        let min = Duration::parse("-9223372036854775808ns").unwrap();
        assert_eq!(min, Duration(i64::MIN));
        let max = Duration::parse("9223372036854775807ns").unwrap();
        assert_eq!(max, Duration(i64::MAX));
        assert!(Duration::parse("9223372036854775808ns").is_err());
        assert!(Duration::parse("-9223372036854775809ns").is_err());
        assert!(Duration::parse("2562048h").is_err());
        assert_eq!(
            Duration::parse("9007199254740993ns").unwrap(),
            Duration(9_007_199_254_740_993)
        );
    }
}
