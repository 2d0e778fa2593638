//! Markdown tables and the header line that says when and where numbers were measured.

use std::time::{SystemTime, UNIX_EPOCH};

/// A markdown table: a header row, then rows of cells; every column but the first is
/// right-aligned.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with the given column titles.
    pub fn new(header: Vec<String>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have as many cells as the header.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.header.len(), "row width");
        self.rows.push(cells);
    }

    /// The table as markdown, one line per row.
    pub fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        let align: Vec<String> = (0..self.header.len())
            .map(|i| if i == 0 { "---" } else { "---:" }.to_string())
            .collect();
        out += &line(&align);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// A ratio with three significant digits (`0.84`, `1.00`, `14.8`, `123`).
pub fn ratio(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// When and under what load a measurement ran: captured before it starts, rendered
/// after it ends, so that a pasted table says under what conditions it was measured.
pub struct Conditions {
    started: String,
    load_before: String,
}

impl Conditions {
    /// Records the current UTC time and load average.
    pub fn capture() -> Conditions {
        Conditions {
            started: utc_now(),
            load_before: load_average(),
        }
    }

    /// One line with the start time, the core count and the load average before and now.
    pub fn describe(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        format!(
            "Measured from {} UTC on {cores} cores; load average {} before, {} after (other \
             work on the machine inflates absolute times: compare ratios from one run).",
            self.started,
            self.load_before,
            load_average()
        )
    }
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`, or `n/a`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let fields: Vec<&str> = l.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "n/a".to_string())
}

/// The current UTC date and time as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_786), (2026, 11, 29));
    }

    #[test]
    fn ratios_and_tables() {
        assert_eq!(ratio(0.843), "0.84");
        assert_eq!(ratio(14.84), "14.8");
        assert_eq!(ratio(123.4), "123");
        let mut t = Table::new(vec!["a".into(), "b".into()]);
        t.row(vec!["x".into(), "1".into()]);
        assert_eq!(t.render(), "| a | b |\n| --- | ---: |\n| x | 1 |\n");
    }
}
