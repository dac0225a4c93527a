//! Server-rendered SVG charts: time series (one line per series), horizontal bars and a funnel.
//!
//! Every chart is an `<svg role="img">` with an `aria-labelledby` title and description, and
//! every data point carries its numbers twice: in a `<title>` (read by screen readers and shown
//! as a tooltip) and in `data-series` / `data-label` / `data-value` attributes, which the
//! browser tests read. Nothing is fetched: styles are inline attributes.

use std::fmt::Write as _;

use crate::html::esc;

/// Colours of series, in order (colour-blind-safe palette, Okabe–Ito).
const PALETTE: &[&str] = &["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

/// One line of a time series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// One value per x label; `f64::NAN` for "no value" (a gap in the line, no point).
    pub values: Vec<f64>,
}

fn finite_sum<'a>(v: impl IntoIterator<Item = &'a f64>) -> f64 {
    v.into_iter().filter(|x| x.is_finite()).sum()
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:.2}") }
}

/// A "nice" upper bound for an axis (1, 2, 5 × 10^k).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * base {
            return m * base;
        }
    }
    10.0 * base
}

/// A time series chart. `x_labels` name the buckets; every series has one value per bucket.
pub fn time_series(id: &str, title: &str, x_labels: &[String], series: &[Series], total_label: &str) -> String {
    chart(id, title, x_labels, series, Some(total_label), "")
}

/// A time series of levels (a median, a percentile): summing them means nothing, so the
/// description is `desc` and the legend names the series without totals.
pub fn level_series(id: &str, title: &str, x_labels: &[String], series: &[Series], desc: &str) -> String {
    chart(id, title, x_labels, series, None, desc)
}

fn chart(
    id: &str,
    title: &str,
    x_labels: &[String],
    series: &[Series],
    total_label: Option<&str>,
    desc: &str,
) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 280.0, 56.0, 16.0, 16.0, 48.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let n = x_labels.len().max(1);
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0f64, f64::max);
    let ymax = nice_max(max);
    let x = |i: usize| left + if n == 1 { plot_w / 2.0 } else { plot_w * i as f64 / (n - 1) as f64 };
    let y = |v: f64| top + plot_h - plot_h * v / ymax;
    let total: f64 = finite_sum(series.iter().flat_map(|s| s.values.iter()));
    let mut s = String::with_capacity(4096 + 200 * n * series.len().max(1));
    let _ = write!(
        s,
        r#"<figure class="chart" id="{id}"><h3 class="chart-title" aria-hidden="true">{title}</h3><svg class="timeseries" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {w} {h}" width="100%" data-total="{total}" data-series-count="{sc}" data-points="{n}"><title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>"#,
        id = esc(id),
        title = esc(title),
        total = fmt_num(total),
        sc = series.len(),
        desc = esc(&match total_label {
            Some(l) => format!("{l}: {}", fmt_num(total)),
            None => desc.to_owned(),
        }),
    );
    // Grid and y axis: round tick steps (a maximum of 5·10^k gets 5 ticks, others 4).
    let mantissa = ymax / 10f64.powf(ymax.log10().floor());
    let ticks: u32 = if (mantissa - 5.0).abs() < 1e-9 { 5 } else { 4 };
    for k in 0..=ticks {
        let v = ymax * f64::from(k) / f64::from(ticks);
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" font-size="11" text-anchor="end" fill="#444">{v}</text>"##,
            x2 = w - right,
            tx = left - 6.0,
            ty = yy + 4.0,
            v = fmt_num(v)
        );
    }
    // X labels: at most ~12 shown.
    let step = n.div_ceil(12).max(1);
    for (i, l) in x_labels.iter().enumerate() {
        if i % step == 0 || i + 1 == n {
            let _ = write!(
                s,
                r##"<text x="{xx:.1}" y="{ty}" font-size="11" text-anchor="middle" fill="#444">{l}</text>"##,
                xx = x(i),
                ty = h - bottom + 16.0,
                l = esc(l)
            );
        }
    }
    for (si, ser) in series.iter().enumerate() {
        let colour = PALETTE[si % PALETTE.len()];
        let sum = finite_sum(&ser.values);
        let _ = write!(
            s,
            r#"<g class="series" data-series="{name}" data-total="{sum}"><title>{name}: {sum}</title>"#,
            name = esc(&ser.name),
            sum = fmt_num(sum)
        );
        // One polyline per run of values (a missing value breaks the line).
        for run in ser.values.iter().enumerate().collect::<Vec<_>>().split(|(_, v)| !v.is_finite()) {
            if run.is_empty() {
                continue;
            }
            let _ = write!(s, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points=""#);
            for (i, v) in run {
                let _ = write!(s, "{:.1},{:.1} ", x(*i), y(**v));
            }
            s.push_str(r#""/>"#);
        }
        for (i, v) in ser.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let label = x_labels.get(i).map(String::as_str).unwrap_or("");
            let _ = write!(
                s,
                r#"<circle class="point" cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{colour}" data-series="{name}" data-label="{label}" data-value="{val}"><title>{name} · {label}: {val}</title></circle>"#,
                cx = x(i),
                cy = y(*v),
                name = esc(&ser.name),
                label = esc(label),
                val = fmt_num(*v)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    legend(&mut s, series.iter().map(|x| (x.name.as_str(), total_label.map(|_| finite_sum(&x.values)))));
    s.push_str("</figure>");
    s
}

fn legend<'a>(s: &mut String, items: impl Iterator<Item = (&'a str, Option<f64>)>) {
    s.push_str(r#"<figcaption class="legend">"#);
    for (i, (name, total)) in items.enumerate() {
        let _ = write!(
            s,
            r#"<span class="key"><span class="swatch" style="background:{c}"></span>{name}{t}</span> "#,
            c = PALETTE[i % PALETTE.len()],
            name = esc(name),
            t = total.map(|t| format!(" ({})", fmt_num(t))).unwrap_or_default()
        );
    }
    s.push_str("</figcaption>");
}

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label.
    pub label: String,
    /// Value.
    pub value: f64,
    /// Highlight (e.g. the viewer's own member).
    pub highlight: bool,
}

/// A horizontal bar chart.
pub fn bars(id: &str, title: &str, items: &[Bar]) -> String {
    let row = 26.0;
    let (w, left, right, top) = (760.0, 220.0, 80.0, 8.0);
    let h = top * 2.0 + row * items.len().max(1) as f64;
    let max = nice_max(items.iter().map(|b| b.value).fold(0.0, f64::max));
    let plot_w = w - left - right;
    let mut s = String::with_capacity(1024 + 300 * items.len());
    let _ = write!(
        s,
        r#"<figure class="chart" id="{id}"><h3 class="chart-title" aria-hidden="true">{title}</h3><svg class="bars" role="img" aria-labelledby="{id}-t" viewBox="0 0 {w} {h}" width="100%" data-bars="{n}"><title id="{id}-t">{title}</title>"#,
        id = esc(id),
        title = esc(title),
        n = items.len()
    );
    for (i, b) in items.iter().enumerate() {
        let y = top + row * i as f64;
        let bw = (plot_w * b.value / max).max(if b.value > 0.0 { 1.0 } else { 0.0 });
        let colour = if b.highlight { PALETTE[1] } else { PALETTE[0] };
        let _ = write!(
            s,
            r##"<g class="bar" data-label="{label}" data-value="{val}"><title>{label}: {val}</title><text x="{tx}" y="{ty:.1}" font-size="12" text-anchor="end" fill="#222">{label}</text><rect x="{left}" y="{ry:.1}" width="{bw:.1}" height="{bh}" fill="{colour}"/><text x="{vx:.1}" y="{ty:.1}" font-size="12" fill="#222">{val}</text></g>"##,
            label = esc(&b.label),
            val = fmt_num(b.value),
            tx = left - 8.0,
            ty = y + row * 0.65,
            ry = y + 4.0,
            bh = row - 8.0,
            vx = left + bw + 6.0,
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// A funnel: stages in order, each bar's width relative to the first stage, with the share of
/// the first stage in its title.
pub fn funnel(id: &str, title: &str, stages: &[(String, f64)]) -> String {
    let row = 34.0;
    let (w, top) = (760.0, 8.0);
    let h = top * 2.0 + row * stages.len().max(1) as f64;
    let first = stages.first().map_or(0.0, |s| s.1);
    let max = stages.iter().map(|s| s.1).fold(0.0, f64::max).max(1.0);
    let plot_w = w - 340.0;
    let mut s = String::with_capacity(1024 + 300 * stages.len());
    let _ = write!(
        s,
        r#"<figure class="chart" id="{id}"><h3 class="chart-title" aria-hidden="true">{title}</h3><svg class="funnel" role="img" aria-labelledby="{id}-t" viewBox="0 0 {w} {h}" width="100%" data-stages="{n}"><title id="{id}-t">{title}</title>"#,
        id = esc(id),
        title = esc(title),
        n = stages.len()
    );
    for (i, (label, v)) in stages.iter().enumerate() {
        let y = top + row * i as f64;
        let bw = plot_w * v / max;
        let pct = if first > 0.0 { 100.0 * v / first } else { 0.0 };
        let x0 = 170.0 + (plot_w - bw) / 2.0;
        let _ = write!(
            s,
            r##"<g class="stage" data-label="{label}" data-value="{val}" data-percent="{pct:.1}"><title>{label}: {val} ({pct:.1}%)</title><text x="160" y="{ty:.1}" font-size="12" text-anchor="end" fill="#222">{label}</text><rect x="{x0:.1}" y="{ry:.1}" width="{bw:.1}" height="{bh}" fill="{c}"/><text x="{vx:.1}" y="{ty:.1}" font-size="12" fill="#222">{val} ({pct:.1}%)</text></g>"##,
            label = esc(label),
            val = fmt_num(*v),
            ty = y + row * 0.6,
            ry = y + 4.0,
            bh = row - 8.0,
            c = PALETTE[2 + (i % 3)],
            vx = 170.0 + plot_w + 8.0,
        );
    }
    s.push_str("</svg></figure>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_series_leave_gaps_and_no_totals() {
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let s = level_series(
            "lv",
            "Levels",
            &labels,
            &[Series { name: "median".into(), values: vec![1.0, f64::NAN, 3.0, 4.0] }],
            "median 3",
        );
        assert_eq!(s.matches("<polyline").count(), 2, "the missing value breaks the line");
        assert_eq!(s.matches(r#"<circle class="point""#).count(), 3);
        assert!(!s.contains(r#"data-label="b""#), "no point for the gap");
        assert!(s.contains(r#"<desc id="lv-d">median 3</desc>"#), "{s}");
        assert!(s.contains("median</span>"), "legend without a sum: {s}");
        assert!(!s.contains("NaN"), "{s}");
    }

    #[test]
    fn time_series_carries_every_number() {
        let svg = time_series(
            "c1",
            "T <x>",
            &["00".into(), "01".into()],
            &[Series { name: "scanner".into(), values: vec![3.0, 4.0] }],
            "total",
        );
        assert!(svg.contains(r#"data-total="7""#), "{svg}");
        assert!(svg.contains(r#"data-series="scanner" data-label="01" data-value="4""#), "{svg}");
        assert!(svg.contains("<title id=\"c1-t\">T &lt;x&gt;</title>"), "escaped title: {svg}");
        assert!(svg.contains("role=\"img\""));
    }

    #[test]
    fn bars_and_funnel() {
        let b = bars("b", "B", &[Bar { label: "isp-a".into(), value: 2.5, highlight: false }]);
        assert!(b.contains(r#"data-label="isp-a" data-value="2.50""#), "{b}");
        let f = funnel("f", "F", &[("a".into(), 10.0), ("b".into(), 4.0)]);
        assert!(f.contains(r#"data-label="b" data-value="4" data-percent="40.0""#), "{f}");
    }

    #[test]
    fn nice_axis() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(450.0), 500.0);
    }
}
