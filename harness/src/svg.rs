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

/// How a chart draws each series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marks {
    /// A line through the points (a series along a continuous axis).
    Lines,
    /// A line through the points and a dot on each (a series over time, few points).
    LinesAndPoints,
    /// Dots only: the x positions are unrelated categories, nothing to join.
    /// Series that share a category are set a little apart so none hides another.
    Points,
}

/// What a chart shows besides its series.
#[derive(Clone, Copy, Debug)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Labels of the integer x positions 0, 1, 2, ... (commits, dates,
    /// categories; a `\n` splits a label over two lines). `None`: a numeric
    /// x axis with round ticks.
    pub x_ticks: Option<&'a [String]>,
    /// Plot log10(y) (values ≤ 0 are clamped to the floor).
    pub log_y: bool,
    /// A dashed reference line (e.g. the band) and its label.
    pub hline: Option<(f64, &'a str)>,
    pub marks: Marks,
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
    chart(
        &Chart {
            title,
            x_label,
            y_label,
            x_ticks: None,
            log_y,
            hline,
            marks: Marks::Lines,
        },
        series,
    )
}

/// Round ticks covering `[lo, hi]`: a step of 1, 2 or 5 × 10^k giving
/// about `n` intervals, and the bounds widened to multiples of it.
pub fn round_ticks(lo: f64, hi: f64, n: usize) -> (f64, f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        // One value: a unit around it (or a tenth of its size).
        let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - half, lo + half)
    };
    let step = round_step((hi - lo) / n.max(1) as f64);
    let lo = (lo / step + 1e-9).floor() * step;
    let hi = (hi / step - 1e-9).ceil() * step;
    (lo, hi, step)
}

/// The smallest of 1, 2, 5 × 10^k that is at least `raw`.
fn round_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    if m <= 1.0 + 1e-9 {
        p
    } else if m <= 2.0 + 1e-9 {
        2.0 * p
    } else if m <= 5.0 + 1e-9 {
        5.0 * p
    } else {
        10.0 * p
    }
}

/// `v` with as many decimals as `step` needs (none for steps ≥ 1).
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// Values at or below this are drawn at it on a log y axis.
const LOG_FLOOR: f64 = 1e-12;

/// A chart's canvas: its size, its margins (the legend's column on the right)
/// and the data ranges the plot area spans.
struct Frame {
    w: f64,
    h: f64,
    ml: f64,
    mr: f64,
    mt: f64,
    mb: f64,
    x0: f64,
    x1: f64,
    /// The y range, in log10 units on a log axis.
    y0: f64,
    y1: f64,
    ystep: f64,
    log_y: bool,
}

impl Frame {
    /// The frame that fits `series` (`None`: no points to draw).
    fn new(c: &Chart<'_>, series: &[Series]) -> Option<Frame> {
        // The legend's column fits its longest name (about 5.6 px a character at 10 px).
        let longest = series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let (w, h, ml, mt) = (720.0, 300.0, 70.0, 30.0);
        let mr = (30.0 + 5.6 * longest as f64).clamp(160.0, 260.0);
        // Two-line tick labels need room under the axis.
        let mb = if c
            .x_ticks
            .is_some_and(|t| t.iter().any(|l| l.contains('\n')))
        {
            52.0
        } else {
            40.0
        };
        let mut f = Frame {
            w,
            h,
            ml,
            mr,
            mt,
            mb,
            x0: f64::INFINITY,
            x1: f64::NEG_INFINITY,
            y0: f64::INFINITY,
            y1: f64::NEG_INFINITY,
            ystep: 1.0,
            log_y: c.log_y,
        };
        let mut any = false;
        for &(x, y) in series.iter().flat_map(|s| s.points.iter()) {
            any = true;
            f.x0 = f.x0.min(x);
            f.x1 = f.x1.max(x);
            f.y0 = f.y0.min(f.ty(y));
            f.y1 = f.y1.max(f.ty(y));
        }
        if !any {
            return None;
        }
        if let Some((v, _)) = c.hline {
            f.y0 = f.y0.min(f.ty(v));
            f.y1 = f.y1.max(f.ty(v));
        }
        f.fit_y();
        if let Some(t) = c.x_ticks {
            // Half a slot of room either side of the first and last label.
            f.x0 = -0.5;
            f.x1 = (t.len().max(1) as f64 - 1.0).max(f.x1) + 0.5;
        } else if f.x1 <= f.x0 {
            f.x1 = f.x0 + 1.0;
        }
        Some(f)
    }

    /// Widens the y range to whole ticks: powers of ten on a log axis,
    /// round steps on a linear one.
    fn fit_y(&mut self) {
        if self.log_y {
            self.y0 = self.y0.floor();
            self.y1 = self.y1.ceil();
            if self.y1 <= self.y0 {
                self.y1 = self.y0 + 1.0;
            }
            self.ystep = 1.0;
        } else {
            let (lo, hi, step) = round_ticks(self.y0, self.y1, 5);
            (self.y0, self.y1, self.ystep) = (lo, hi, step);
        }
    }

    /// A data y on the axis's scale.
    fn ty(&self, y: f64) -> f64 {
        if self.log_y {
            y.max(LOG_FLOOR).log10()
        } else {
            y
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.ml + (x - self.x0) / (self.x1 - self.x0) * (self.w - self.ml - self.mr)
    }

    fn py(&self, y: f64) -> f64 {
        self.mt
            + (1.0 - (self.ty(y) - self.y0) / (self.y1 - self.y0)) * (self.h - self.mt - self.mb)
    }

    /// The opening tag, background, title and the two axis lines.
    fn open(&self, out: &mut String, title: &str) {
        let (w, h, ml, mr, mt, mb) = (self.w, self.h, self.ml, self.mr, self.mt, self.mb);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>{t}</title><rect width="100%" height="100%" fill="white"/><text x="{cx}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{t}</text>"#,
            t = escape(title),
            cx = (w - mr + ml) / 2.0
        );
        let _ = write!(
            out,
            r##"<line x1="{ml}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{ml}" y1="{mt}" x2="{ml}" y2="{b}" stroke="#333"/>"##,
            b = h - mb,
            r = w - mr
        );
    }

    /// The y ticks with their grid lines and labels.
    fn y_ticks(&self, out: &mut String) {
        let (w, ml, mr) = (self.w, self.ml, self.mr);
        let nticks = ((self.y1 - self.y0) / self.ystep).round() as i64;
        for i in 0..=nticks {
            let t = self.y0 + i as f64 * self.ystep;
            let yv = if self.log_y { 10f64.powf(t) } else { t };
            let y = self.py(yv);
            let label = if self.log_y {
                format!("1e{}", t.round() as i32)
            } else {
                tick_label(t, self.ystep)
            };
            let _ = write!(
                out,
                r##"<line x1="{ml}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#eee"/><text x="{lx}" y="{ly:.1}" text-anchor="end" font-size="10">{label}</text>"##,
                r = w - mr,
                lx = ml - 4.0,
                ly = y + 3.0
            );
        }
    }

    /// One x tick at `xv`, its label split into lines at `\n`.
    fn x_tick(&self, out: &mut String, xv: f64, label: &str) {
        let (h, mb) = (self.h, self.mb);
        let x = self.px(xv);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{t}" stroke="#333"/><text x="{x:.1}" y="{y}" text-anchor="middle" font-size="10">"##,
            b = h - mb,
            t = h - mb + 3.0,
            y = h - mb + 14.0
        );
        for (i, line) in label.split('\n').enumerate() {
            let _ = write!(
                out,
                r#"<tspan x="{x:.1}" dy="{}">{}</tspan>"#,
                if i == 0 { 0 } else { 12 },
                escape(line)
            );
        }
        out.push_str("</text>");
    }

    /// The x ticks: the given labels, or round numbers on a numeric axis.
    fn x_ticks(&self, out: &mut String, labels: Option<&[String]>) {
        if let Some(labels) = labels {
            // Every label when they fit (about 50 px each), else every k-th.
            let every = labels.len().div_ceil(10).max(1);
            for (i, l) in labels.iter().enumerate() {
                if i % every == 0 {
                    self.x_tick(out, i as f64, l);
                }
            }
        } else {
            // Round steps (1, 2 or 5 × 10^k, at least 1: the numeric axes count
            // positions and layers), about six of them.
            let step = round_step((self.x1 - self.x0) / 6.0).max(1.0);
            let mut xv = (self.x0 / step).ceil() * step;
            while xv <= self.x1 + step * 1e-9 {
                self.x_tick(out, xv, &tick_label(xv, step));
                xv += step;
            }
        }
    }

    /// The two axis titles.
    fn axis_labels(&self, out: &mut String, x_label: &str, y_label: &str) {
        let (w, h, ml, mr, mt, mb) = (self.w, self.h, self.ml, self.mr, self.mt, self.mb);
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
    }

    /// A dashed reference line at `v` with its label.
    fn hline(&self, out: &mut String, v: f64, label: &str) {
        let (w, ml, mr, mt) = (self.w, self.ml, self.mr, self.mt);
        let y = self.py(v);
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

    /// Series `i` of `n`: its line and/or dots, and its legend entry.
    fn series(&self, out: &mut String, s: &Series, i: usize, n: f64, marks: Marks) {
        let color = PALETTE[i % PALETTE.len()];
        // Points mode: series side by side within a category, 8 px apart.
        let dodge = if marks == Marks::Points {
            (i as f64 - (n - 1.0) / 2.0) * 8.0
        } else {
            0.0
        };
        let at = |&(x, y): &(f64, f64)| (self.px(x) + dodge, self.py(y));
        if marks != Marks::Points && s.points.len() > 1 {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|p| {
                    let (x, y) = at(p);
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                path.join(" ")
            );
        }
        if marks != Marks::Lines || s.points.len() == 1 {
            for p in &s.points {
                let (x, y) = at(p);
                let _ = write!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"/>"#
                );
            }
        }
        self.legend_entry(out, &s.name, i, color, marks);
    }

    /// The legend's line `i`: a mark in `color` and the series' name.
    fn legend_entry(&self, out: &mut String, name: &str, i: usize, color: &str, marks: Marks) {
        let (w, mr, mt) = (self.w, self.mr, self.mt);
        let ly = mt + 14.0 * i as f64 + 10.0;
        let mark = if marks == Marks::Points {
            format!(
                r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#,
                x = w - mr + 13.0,
                y = ly - 1.5
            )
        } else {
            format!(
                r#"<rect x="{x}" y="{y}" width="10" height="3" fill="{color}"/>"#,
                x = w - mr + 8.0,
                y = ly - 3.0
            )
        };
        let _ = write!(
            out,
            r#"{mark}<text x="{tx}" y="{ty}" font-size="10">{n}</text>"#,
            tx = w - mr + 22.0,
            ty = ly + 1.0,
            n = escape(name)
        );
    }
}

/// A chart of `series` on linear or log y, with a numeric or labelled x axis.
pub fn chart(c: &Chart<'_>, series: &[Series]) -> String {
    let Some(f) = Frame::new(c, series) else {
        return format!("<p><em>{}: no data</em></p>", escape(c.title));
    };
    let mut out = String::new();
    f.open(&mut out, c.title);
    f.y_ticks(&mut out);
    f.x_ticks(&mut out, c.x_ticks);
    f.axis_labels(&mut out, c.x_label, c.y_label);
    if let Some((v, label)) = c.hline {
        f.hline(&mut out, v, label);
    }
    let n = series.len() as f64;
    for (i, s) in series.iter().enumerate() {
        f.series(&mut out, s, i, n, c.marks);
    }
    out.push_str("</svg>");
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(round_ticks(454.0, 891.0, 5), (400.0, 900.0, 100.0));
        assert_eq!(round_ticks(87.0, 249.0, 5), (50.0, 250.0, 50.0));
        assert_eq!(round_ticks(0.0, 1.0, 5), (0.0, 1.0, 0.2));
        let (lo, hi, step) = round_ticks(42.0, 42.0, 5);
        assert!(lo < 42.0 && hi > 42.0 && step > 0.0);
        assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_label(250.0, 50.0), "250");
    }

    #[test]
    fn points_mode_draws_no_lines() {
        let s = [Series {
            name: "m".into(),
            points: vec![(0.0, 1e-5), (1.0, 2e-5), (2.0, 0.5)],
        }];
        let ticks = ["a".to_string(), "b".into(), "c\nd".into()];
        let mut c = Chart {
            title: "t",
            x_label: "x",
            y_label: "y",
            x_ticks: Some(&ticks),
            log_y: true,
            hline: None,
            marks: Marks::Points,
        };
        let svg = chart(&c, &s);
        assert!(!svg.contains("<polyline"));
        assert_eq!(svg.matches("<circle").count(), 4); // three points and the legend
        assert!(svg.contains(">c</tspan>") && svg.contains(">d</tspan>"));
        c.marks = Marks::LinesAndPoints;
        let svg = chart(&c, &s);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
    }
}
