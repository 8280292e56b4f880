//! Minimal inline-SVG charts for the self-contained HTML reports (no scripts,
//! no external assets: the page opens offline).

use std::fmt::Write;

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart; `log_y` plots log10(y) (values ≤ 0 are clamped to the floor).
/// `hline` draws a dashed reference line (e.g. the band).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
    hline: Option<(f64, &str)>,
) -> String {
    let (w, h, ml, mr, mt, mb) = (720.0, 300.0, 70.0, 160.0, 30.0, 40.0);
    let floor = 1e-12;
    let ty = |y: f64| if log_y { y.max(floor).log10() } else { y };
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let mut out = String::new();
    if pts.is_empty() {
        return format!("<p><em>{}: no data</em></p>", escape(title));
    }
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in &pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(ty(y));
        y1 = y1.max(ty(y));
    }
    if let Some((v, _)) = hline {
        y0 = y0.min(ty(v));
        y1 = y1.max(ty(v));
    }
    if log_y {
        y0 = y0.floor();
        y1 = y1.ceil();
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let px = |x: f64| ml + (x - x0) / (x1 - x0) * (w - ml - mr);
    let py = |y: f64| mt + (1.0 - (ty(y) - y0) / (y1 - y0)) * (h - mt - mb);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>{t}</title><rect width="100%" height="100%" fill="white"/><text x="{cx}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{t}</text>"#,
        t = escape(title),
        cx = (w - mr + ml) / 2.0
    );
    // Axes and ticks.
    let _ = write!(
        out,
        r##"<line x1="{ml}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{ml}" y1="{mt}" x2="{ml}" y2="{b}" stroke="#333"/>"##,
        b = h - mb,
        r = w - mr
    );
    let yticks: Vec<f64> = if log_y {
        (y0 as i32..=y1 as i32).map(|e| e as f64).collect()
    } else {
        (0..=4).map(|i| y0 + (y1 - y0) * i as f64 / 4.0).collect()
    };
    for t in yticks {
        let yv = if log_y { 10f64.powf(t) } else { t };
        let y = py(yv);
        let label = if log_y {
            format!("1e{}", t as i32)
        } else {
            format!("{t:.3}")
        };
        let _ = write!(
            out,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#eee"/><text x="{lx}" y="{ly:.1}" text-anchor="end" font-size="10">{label}</text>"##,
            r = w - mr,
            lx = ml - 4.0,
            ly = y + 3.0
        );
    }
    // x ticks at round steps (1, 2 or 5 × 10^k), about six of them.
    let step = nice_step((x1 - x0) / 6.0);
    let mut xv = (x0 / step).ceil() * step;
    while xv <= x1 + step * 1e-9 {
        let label = if step >= 1.0 {
            format!("{xv:.0}")
        } else {
            format!("{xv}")
        };
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{t}" stroke="#333"/><text x="{x:.1}" y="{y}" text-anchor="middle" font-size="10">{label}</text>"##,
            x = px(xv),
            b = h - mb,
            t = h - mb + 3.0,
            y = h - mb + 14.0
        );
        xv += step;
    }
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="11">{l}</text>"#,
        x = (w - mr + ml) / 2.0,
        y = h - 6.0,
        l = escape(x_label)
    );
    let _ = write!(
        out,
        r#"<text x="14" y="{y}" text-anchor="middle" font-size="11" transform="rotate(-90 14 {y})">{l}</text>"#,
        y = (h - mb + mt) / 2.0,
        l = escape(y_label)
    );
    if let Some((v, label)) = hline {
        let y = py(v);
        // The label sits inside the plot at its right end, above the line
        // (below it when the line is the plot's top edge), clear of the legend.
        let ty = if y - mt < 12.0 { y + 11.0 } else { y - 3.0 };
        let _ = write!(
            out,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#000" stroke-dasharray="5,4"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="10">{l}</text>"##,
            r = w - mr,
            tx = w - mr - 4.0,
            l = escape(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if path.len() == 1 {
            let _ = write!(
                out,
                r#"<circle cx="{}" cy="{}" r="3" fill="{color}"/>"#,
                px(s.points[0].0),
                py(s.points[0].1)
            );
        } else {
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                path.join(" ")
            );
        }
        let ly = mt + 14.0 * i as f64 + 10.0;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{y}" width="10" height="3" fill="{color}"/><text x="{tx}" y="{ty}" font-size="10">{n}</text>"#,
            x = w - mr + 8.0,
            y = ly - 3.0,
            tx = w - mr + 22.0,
            ty = ly + 1.0,
            n = escape(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// The smallest of 1, 2, 5 × 10^k that is at least `raw` (at least 1 for integer axes).
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let step = if m <= 1.0 {
        p
    } else if m <= 2.0 {
        2.0 * p
    } else if m <= 5.0 {
        5.0 * p
    } else {
        10.0 * p
    };
    step.max(1.0)
}

/// A bar chart of counts (log-scaled heights) with one label per bar.
pub fn bar_chart(title: &str, labels: &[String], counts: &[u64]) -> String {
    let (w, h, ml, mb, mt) = (720.0, 270.0, 60.0, 50.0, 40.0);
    let n = counts.len().max(1) as f64;
    let bw = (w - ml - 20.0) / n;
    let maxv = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let hv = |c: u64| {
        if c == 0 {
            0.0
        } else {
            (c as f64).log10() + 1.0
        }
    };
    let top = maxv.log10() + 1.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>{t}</title><rect width="100%" height="100%" fill="white"/><text x="{cx}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{t}</text>"#,
        t = escape(title),
        cx = w / 2.0
    );
    for (i, (&c, label)) in counts.iter().zip(labels).enumerate() {
        let bh = hv(c) / top * (h - mt - mb);
        let x = ml + i as f64 * bw;
        let y = h - mb - bh;
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bw2:.1}" height="{bh:.1}" fill="#1f77b4"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" font-size="10">{c}</text><text x="{tx:.1}" y="{ly}" text-anchor="middle" font-size="10">{l}</text>"##,
            bw2 = bw * 0.8,
            tx = x + bw * 0.4,
            ty = y - 3.0,
            ly = h - mb + 14.0,
            l = escape(label)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="11">|engine − reference| (bar heights on a log scale)</text>"#,
        x = w / 2.0,
        y = h - 12.0
    );
    out.push_str("</svg>");
    out
}
