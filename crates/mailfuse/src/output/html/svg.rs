//! Inline SVG charts: small multiples (one panel per account or source) on a
//! shared time axis and a shared scale, so the one that spiked stands out.
//!
//! The first series of a panel is drawn as bars, a second one as a line:
//! the two stay apart without colours. Each chart has a `<title>` and a
//! `<desc>` that says in words what the panels show (peaks and totals).

use std::fmt::Write as _;
use std::io::{self, Write};

use mailfuse_core::Timestamp;

use crate::html_escape::Text;

const HOUR: i64 = 3600;
/// Most bars across the plot; longer logs get buckets of several hours.
const MAX_BARS: i64 = 240;
/// Bucket widths in hours, in the order tried.
const BUCKET_HOURS: &[i64] = &[1, 2, 3, 6, 12, 24, 48, 168];

const WIDTH: i64 = 960;
const LEFT: i64 = 64;
const RIGHT: i64 = 12;
const PLOT_WIDTH: i64 = WIDTH - LEFT - RIGHT;
const LABEL_HEIGHT: i64 = 18;
const PANEL_HEIGHT: i64 = 64;
const PANEL_GAP: i64 = 10;
const AXIS_HEIGHT: i64 = 44;

/// The time axis every chart of a report shares: buckets of whole UTC hours.
#[derive(Clone, Copy, Debug)]
pub struct TimeAxis {
    start: i64,
    bucket_secs: i64,
    buckets: usize,
}

impl TimeAxis {
    /// The axis covering `first` to `last`.
    pub fn new(first: Timestamp, last: Timestamp) -> Self {
        let first = first.as_secs().div_euclid(HOUR);
        let last = last.as_secs().div_euclid(HOUR).max(first);
        let hours = last - first + 1;
        let bucket_hours = BUCKET_HOURS
            .iter()
            .copied()
            .find(|b| (hours + b - 1) / b <= MAX_BARS)
            .unwrap_or((hours + MAX_BARS - 1) / MAX_BARS);
        let start_hour = first - first.rem_euclid(bucket_hours);
        let buckets = (last - start_hour) / bucket_hours + 1;
        TimeAxis {
            start: start_hour * HOUR,
            bucket_secs: bucket_hours * HOUR,
            buckets: usize::try_from(buckets).unwrap_or(1),
        }
    }

    /// The bucket `at` falls in, if on the axis.
    fn bucket(&self, at: Timestamp) -> Option<usize> {
        let offset = at.as_secs().checked_sub(self.start)?;
        usize::try_from(offset.div_euclid(self.bucket_secs))
            .ok()
            .filter(|&b| b < self.buckets)
    }

    /// Sums `(time, value)` pairs into the axis' buckets.
    pub fn sum(&self, points: impl Iterator<Item = (Timestamp, u64)>) -> Vec<u64> {
        let mut values = vec![0; self.buckets];
        for (at, value) in points {
            if let Some(slot) = self.bucket(at).and_then(|b| values.get_mut(b)) {
                *slot += value;
            }
        }
        values
    }

    /// Gathers the distinct items of `(time, items)` pairs per bucket.
    pub fn distinct<T: PartialEq + Clone>(
        &self,
        points: impl Iterator<Item = (Timestamp, Vec<T>)>,
    ) -> Vec<Vec<T>> {
        let mut sets: Vec<Vec<T>> = vec![Vec::new(); self.buckets];
        for (at, items) in points {
            if let Some(set) = self.bucket(at).and_then(|b| sets.get_mut(b)) {
                for item in items {
                    if !set.contains(&item) {
                        set.push(item);
                    }
                }
            }
        }
        sets
    }

    fn bucket_start(&self, bucket: usize) -> Timestamp {
        Timestamp(self.start + self.bucket_secs * bucket as i64)
    }

    /// "hour", "3 hours"…: what one bar stands for.
    pub fn bucket_name(&self) -> String {
        match self.bucket_secs / HOUR {
            1 => "hour".into(),
            n => format!("{n} hours"),
        }
    }

    fn x(&self, bucket: usize) -> f64 {
        LEFT as f64 + PLOT_WIDTH as f64 * bucket as f64 / self.buckets.max(1) as f64
    }
}

/// One line of values drawn in a panel.
pub struct Series {
    /// What the values count ("messages"), for the description.
    pub name: &'static str,
    pub values: Vec<u64>,
}

/// One small multiple: a label (untrusted text, escaped here) and one or two
/// series.
pub struct Panel {
    pub label: String,
    pub series: Vec<Series>,
}

/// A chart: a titled figure with one panel per account or source.
pub struct Chart<'a> {
    /// Used for element ids; must be a fixed word, not log text.
    pub id: &'static str,
    pub title: &'a str,
    /// What the y axis counts, per bucket.
    pub y_label: &'a str,
    pub panels: Vec<Panel>,
    /// Panels left out (cap on series).
    pub not_shown: usize,
    pub not_shown_what: &'a str,
}

/// Writes `chart` as a `<figure>` holding one inline SVG.
pub fn write_chart(out: &mut dyn Write, axis: &TimeAxis, chart: &Chart<'_>) -> io::Result<()> {
    let id = chart.id;
    let scale = chart
        .panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.values.iter().copied()))
        .max()
        .unwrap_or(0)
        .max(1);
    let height =
        chart.panels.len() as i64 * (LABEL_HEIGHT + PANEL_HEIGHT + PANEL_GAP) + AXIS_HEIGHT;
    writeln!(out, "<figure class=\"chart\" id=\"chart-{id}\">")?;
    writeln!(out, "<figcaption><strong>{}</strong> — {} per {} (times in UTC); same scale in every panel, top = {scale}.{}</figcaption>",
        Text(chart.title), Text(chart.y_label), axis.bucket_name(), legend(chart))?;
    writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" aria-labelledby=\"{id}-title {id}-desc\">"
    )?;
    writeln!(
        out,
        "<title id=\"{id}-title\">{}</title>",
        Text(chart.title)
    )?;
    writeln!(
        out,
        "<desc id=\"{id}-desc\">{}</desc>",
        Text(&describe(axis, chart))
    )?;
    for (n, panel) in chart.panels.iter().enumerate() {
        let top = n as i64 * (LABEL_HEIGHT + PANEL_HEIGHT + PANEL_GAP);
        write_panel(out, axis, panel, top, scale)?;
    }
    let axis_top = chart.panels.len() as i64 * (LABEL_HEIGHT + PANEL_HEIGHT + PANEL_GAP);
    write_time_axis(out, axis, axis_top, chart.y_label)?;
    writeln!(out, "</svg>")?;
    if chart.not_shown > 0 {
        writeln!(
            out,
            "<p class=\"note\">{} more {} not shown.</p>",
            chart.not_shown,
            Text(chart.not_shown_what)
        )?;
    }
    writeln!(out, "</figure>")
}

/// The caption's key: which series is bars and which is the line.
fn legend(chart: &Chart<'_>) -> String {
    let names = chart.panels.first().map(|p| &p.series[..]).unwrap_or(&[]);
    match names {
        [bars, line, ..] => format!(" Bars: {}; line: {}.", Text(bars.name), Text(line.name)),
        _ => String::new(),
    }
}

/// The chart in words: each panel's totals and peaks.
fn describe(axis: &TimeAxis, chart: &Chart<'_>) -> String {
    let mut text = format!("{}, per {} in UTC.", chart.title, axis.bucket_name());
    for panel in &chart.panels {
        let _ = write!(text, " {}:", panel.label);
        for series in &panel.series {
            let total: u64 = series.values.iter().sum();
            let _ = write!(text, " {total} {}", series.name);
            if let Some((at, peak)) = peak_of(axis, &series.values) {
                let _ = write!(text, " (peak {peak} at {at})");
            }
            text.push(';');
        }
    }
    text
}

/// The highest bucket and its start, if any is above zero.
fn peak_of(axis: &TimeAxis, values: &[u64]) -> Option<(Timestamp, u64)> {
    let (bucket, &peak) = values
        .iter()
        .enumerate()
        .max_by_key(|(i, v)| (**v, std::cmp::Reverse(*i)))?;
    (peak > 0).then(|| (axis.bucket_start(bucket), peak))
}

fn write_panel(
    out: &mut dyn Write,
    axis: &TimeAxis,
    panel: &Panel,
    top: i64,
    scale: u64,
) -> io::Result<()> {
    let base = top + LABEL_HEIGHT + PANEL_HEIGHT;
    let peak = panel
        .series
        .first()
        .and_then(|s| peak_of(axis, &s.values).map(|(at, n)| (s.name, at, n)));
    let peak_text = peak.map_or_else(
        || " — none".to_string(),
        |(name, at, n)| format!(" — peak {n} {name} at {at}"),
    );
    writeln!(
        out,
        "<text class=\"label\" x=\"{LEFT}\" y=\"{}\">{}{}</text>",
        top + LABEL_HEIGHT - 5,
        Text(&panel.label),
        Text(&peak_text)
    )?;
    writeln!(
        out,
        "<line class=\"base\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>",
        LEFT + PLOT_WIDTH
    )?;
    writeln!(
        out,
        "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{scale}</text><text class=\"tick\" x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        LEFT - 4,
        top + LABEL_HEIGHT + 8,
        LEFT - 4,
    )?;
    let height = |v: u64| PANEL_HEIGHT as f64 * v as f64 / scale as f64;
    let bar_width = (PLOT_WIDTH as f64 / axis.buckets.max(1) as f64 * 0.8).max(1.0);
    if let Some(bars) = panel.series.first() {
        let mut path = String::new();
        for (bucket, &v) in bars.values.iter().enumerate().filter(|(_, v)| **v > 0) {
            let h = height(v).max(1.0);
            let _ = write!(
                path,
                "M{:.1} {}h{bar_width:.1}v{:.1}h{:.1}z",
                axis.x(bucket),
                base,
                -h,
                -bar_width
            );
        }
        writeln!(
            out,
            "<path class=\"bars\" d=\"{path}\"><title>{}</title></path>",
            Text(bars.name)
        )?;
    }
    // A line of zeros would only hide the base line.
    for line in panel
        .series
        .iter()
        .skip(1)
        .filter(|l| l.values.iter().any(|&v| v > 0))
    {
        let half = bar_width / 2.0;
        let points: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .map(|(bucket, &v)| {
                format!(
                    "{:.1},{:.1}",
                    axis.x(bucket) + half,
                    base as f64 - height(v)
                )
            })
            .collect();
        writeln!(
            out,
            "<polyline class=\"line\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            Text(line.name)
        )?;
    }
    Ok(())
}

/// Tick spacings tried, in hours (then multiples of 30 days)…
const TICK_HOURS: &[i64] = &[1, 2, 3, 6, 12, 24, 48, 168, 336, 720];
/// …so that about this many labels fit.
const MAX_TICKS: i64 = 8;

fn write_time_axis(
    out: &mut dyn Write,
    axis: &TimeAxis,
    top: i64,
    y_label: &str,
) -> io::Result<()> {
    let span_hours = axis.bucket_secs * axis.buckets as i64 / HOUR;
    let step = TICK_HOURS
        .iter()
        .copied()
        .find(|s| span_hours / s <= MAX_TICKS)
        .unwrap_or_else(|| (span_hours / MAX_TICKS / 720 + 1) * 720)
        * HOUR;
    let end = axis.start + axis.bucket_secs * axis.buckets as i64;
    let mut tick = axis.start + (step - axis.start.rem_euclid(step)) % step;
    while tick <= end {
        let x = LEFT as f64
            + PLOT_WIDTH as f64 * (tick - axis.start) as f64 / (end - axis.start) as f64;
        let (_, month, day, hour, _, _) = Timestamp(tick).to_civil();
        writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{month:02}-{day:02} {hour:02}:00</text>",
            top + 4,
            top + 16
        )?;
        tick += step;
    }
    writeln!(
        out,
        "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (UTC, month-day hour); y: {} per {}</text>",
        LEFT + PLOT_WIDTH / 2,
        top + 36,
        Text(y_label),
        axis.bucket_name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_day_gets_hourly_buckets() {
        let axis = TimeAxis::new(at("2024-03-01T10:15:00Z"), at("2024-03-02T09:59:59Z"));
        assert_eq!(axis.bucket_name(), "hour");
        assert_eq!(axis.buckets, 24);
        let values = axis.sum(
            [
                (at("2024-03-01T10:59:59Z"), 2),
                (at("2024-03-01T11:00:00Z"), 5),
                (at("2024-03-05T00:00:00Z"), 9),
                (at("2024-02-01T00:00:00Z"), 9),
            ]
            .into_iter(),
        );
        assert_eq!(&values[..3], &[2, 5, 0]);
        assert_eq!(values.iter().sum::<u64>(), 7, "off-axis points dropped");
    }

    #[test]
    fn a_long_log_gets_wider_buckets_and_stays_small() {
        let axis = TimeAxis::new(at("2024-01-01T00:00:00Z"), at("2024-12-31T23:00:00Z"));
        assert!(axis.buckets as i64 <= MAX_BARS, "{}", axis.buckets);
        assert_eq!(axis.bucket_name(), "48 hours");
        let chart = Chart {
            id: "t",
            title: "T",
            y_label: "messages",
            panels: vec![Panel {
                label: "a".into(),
                series: vec![Series {
                    name: "messages",
                    values: vec![3; axis.buckets],
                }],
            }],
            not_shown: 0,
            not_shown_what: "accounts",
        };
        let mut svg = Vec::new();
        write_chart(&mut svg, &axis, &chart).unwrap();
        assert!(svg.len() < 20_000, "{}", svg.len());
    }

    #[test]
    fn absurd_spans_keep_few_buckets_and_ticks() {
        let axis = TimeAxis::new(at("0001-01-01T00:00:00Z"), at("9999-12-31T23:00:00Z"));
        assert!(axis.buckets as i64 <= MAX_BARS + 1, "{}", axis.buckets);
        let mut svg = Vec::new();
        write_time_axis(&mut svg, &axis, 0, "messages").unwrap();
        let ticks = String::from_utf8(svg)
            .unwrap()
            .matches("class=\"grid\"")
            .count();
        assert!((1..=MAX_TICKS as usize + 1).contains(&ticks), "{ticks}");
    }

    #[test]
    fn the_description_names_the_peak() {
        let axis = TimeAxis::new(at("2024-03-01T00:00:00Z"), at("2024-03-01T05:00:00Z"));
        let chart = Chart {
            id: "t",
            title: "Messages",
            y_label: "messages",
            panels: vec![Panel {
                label: "<b>x</b>".into(),
                series: vec![Series {
                    name: "messages",
                    values: vec![0, 1, 40, 2, 0, 0],
                }],
            }],
            not_shown: 2,
            not_shown_what: "accounts",
        };
        let mut svg = Vec::new();
        write_chart(&mut svg, &axis, &chart).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("peak 40 at 2024-03-01T02:00:00Z"), "{svg}");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("2 more accounts not shown."));
        assert!(svg.contains("03-01 00:00"));
    }
}
