//! Small inline SVG charts for the report (no script, no external reference): histograms and
//! step lines, in as few bytes as they can be (a report of 100 collections stays under 1 MB).
//! Sizes are in CSS pixels; colours, sizes and text anchors come from the page's CSS classes. Text goes
//! through [`esc`], which the page uses too.

use std::fmt::Write;

const W: f64 = 360.0;
const H: f64 = 150.0;
/// Left, right, top, bottom margins.
const M: (f64, f64, f64, f64) = (40.0, 10.0, 10.0, 30.0);

/// A histogram of `values` in `bins` equal bins over `[lo, hi]` (values outside are clamped
/// into the end bins), titled `title`, with `x_label` under the axis.
pub fn histogram(
    title: &str,
    x_label: &str,
    values: &[f64],
    bins: usize,
    lo: f64,
    hi: f64,
) -> String {
    let bins = bins.max(1);
    let mut counts = vec![0u64; bins];
    let span = if hi > lo { hi - lo } else { 1.0 };
    for v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - lo) / span) * bins as f64).floor();
        counts[(i.max(0.0) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (pw, ph) = (W - M.0 - M.1, H - M.2 - M.3);
    let bw = pw / bins as f64;
    let mut s = open(title);
    // Empty bins are drawn as nothing (the axis shows the range), which keeps pages small.
    for (i, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let h = ph * (*c as f64) / top;
        let x = M.0 + bw * i as f64;
        let _ = write!(
            s,
            r#"<rect class="bar" x="{x:.0}" y="{:.0}" width="{:.0}" height="{h:.0}"><title>{}–{}: {c}</title></rect>"#,
            M.2 + ph - h,
            (bw - 1.0).max(1.0),
            fmt_num(lo + span * i as f64 / bins as f64),
            fmt_num(lo + span * (i + 1) as f64 / bins as f64),
        );
    }
    axes(
        &mut s,
        &fmt_num(lo),
        &fmt_num(hi),
        &top.to_string(),
        x_label,
    );
    s.push_str("</svg>");
    s
}

/// One line of a chart: its name, its CSS class, its (x, y) points.
pub type Series<'a> = (&'a str, &'a str, &'a [(u64, u64)]);

/// Rising lines of (x, y) points, one per series: x as seconds since the first point of any
/// series, y from 0 up.
pub fn lines(title: &str, y_label: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.2.iter());
    let x0 = all.clone().map(|p| p.0).min().unwrap_or(0);
    let x1 = all.clone().map(|p| p.0).max().unwrap_or(0).max(x0 + 1);
    let y1 = all.map(|p| p.1).max().unwrap_or(0).max(1);
    let (pw, ph) = (W - M.0 - M.1, H - M.2 - M.3);
    let px = |x: u64| M.0 + pw * (x - x0) as f64 / (x1 - x0) as f64;
    let py = |y: u64| M.2 + ph - ph * y as f64 / y1 as f64;
    let mut s = open(title);
    for (k, (name, class, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let mut d = format!("M{:.0},{:.0}", px(pts[0].0), py(0));
        for p in pts.iter() {
            let _ = write!(d, " L{:.0},{:.0}", px(p.0), py(p.1));
        }
        let _ = write!(
            s,
            r#"<path class="{class}" d="{d}"><title>{name}</title></path><text class="legend {class}" x="{:.0}" y="{:.0}">{name}</text>"#,
            M.0 + 6.0,
            M.2 + 12.0 + 12.0 * k as f64,
        );
    }
    let secs = (x1 - x0) as f64 / 1000.0;
    axes(
        &mut s,
        "0 s",
        &format!("{} s", fmt_num(secs)),
        &y1.to_string(),
        y_label,
    );
    s.push_str("</svg>");
    s
}

fn open(title: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img"><title>{t}</title>"#,
        t = esc(title)
    )
}

fn axes(s: &mut String, x_lo: &str, x_hi: &str, y_hi: &str, x_label: &str) {
    let (x_end, y_end) = (W - M.1, H - M.3);
    let _ = write!(
        s,
        r#"<path class="axis" d="M{l},{t}V{y_end}H{x_end}"/><text x="{l}" y="{a}">{}</text><text class="e" x="{x_end}" y="{a}">{}</text><text class="m" x="{mid}" y="{b}">{}</text><text class="e" x="{y}" y="{ty}">{}</text><text class="e" x="{y}" y="{y_end}">0</text>"#,
        esc(x_lo),
        esc(x_hi),
        esc(x_label),
        esc(y_hi),
        l = M.0,
        t = M.2,
        a = y_end + 12.0,
        b = y_end + 25.0,
        mid = M.0 + (W - M.0 - M.1) / 2.0,
        y = M.0 - 4.0,
        ty = M.2 + 8.0,
    );
}

/// Escapes text for HTML (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number in few characters: `0.25`, `12`, `1.5e-7`.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_each_value_in_its_bin_and_clamps_the_ends() {
        let svg = histogram(
            "t",
            "x",
            &[0.0, 0.05, 0.95, 1.0, 7.0, f64::NAN],
            10,
            0.0,
            1.0,
        );
        assert_eq!(svg.matches("<rect").count(), 2, "empty bins are not drawn");
        assert!(svg.contains("0–0.1: 2"), "{svg}");
        assert!(svg.contains("0.9–1: 3"), "{svg}");
        assert!(!svg.contains("http"));
    }

    #[test]
    fn lines_start_at_zero_and_end_at_the_last_point() {
        let pts = [(1000u64, 5u64), (3000, 20)];
        let svg = lines("t", "rows", &[("export", "a", &pts)]);
        assert!(svg.contains("M40,120 L40,"), "{svg}");
        assert!(svg.contains("2 s"));
        assert!(svg.contains(">20<"));
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(0.0000002), "2.0e-7");
    }
}
