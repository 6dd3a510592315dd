//! Statistics, target checks and the hand-written SVG shared by the membership benchmarks.
#![allow(dead_code)]
use std::fmt::Write as _;
use std::path::PathBuf;

pub fn results_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A list of numbers from an environment variable (`NODES=1,2,4`), or `default`.
pub fn env_list(name: &str, default: &[u8]) -> Vec<u8> {
    match std::env::var(name) {
        Ok(text) => text
            .split(',')
            .filter_map(|word| word.trim().parse().ok())
            .collect(),
        Err(_) => default.to_vec(),
    }
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// The value at quantile `q` (nearest rank) of `values`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// median, p99, max.
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    (
        quantile(values, 0.5),
        quantile(values, 0.99),
        quantile(values, 1.0),
    )
}

/// "met" or "MISSED by X unit (Y×)" for a value that must not exceed `target`.
pub fn verdict(value: f64, target: f64, unit: &str) -> String {
    if value.is_nan() {
        return "no data".into();
    }
    // Small targets (0.5 % of a core) need two decimals to show the margin.
    let digits = if target < 10.0 { 2 } else { 1 };
    if value <= target {
        format!("met ({value:.digits$} ≤ {target} {unit})")
    } else {
        format!(
            "MISSED by {:.digits$} {unit} ({value:.digits$} vs {target} {unit}, {:.1}× the target)",
            value - target,
            value / target
        )
    }
}

pub fn json_list(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
    format!("[{}]", items.join(","))
}

/// One series of a plot: a label, a colour, and (x, y) points, one per run.
pub struct Series {
    pub label: String,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A scatter plot with per-x medians joined by a line, on a log-scaled y axis when the values
/// span more than two decades (a 9 s outlier next to 20 ms would flatten everything else).
pub fn svg_plot(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0f64, f64::max);
    let y_max = all.iter().map(|p| p.1).fold(1.0f64, f64::max);
    let y_min = all
        .iter()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(y_max);
    let log = y_max / y_min.max(1e-9) > 100.0;
    let (left, top, width, height) = (70.0, 40.0, 620.0, 320.0);
    let (y_lo, y_hi) = if log {
        (
            10f64.powf(y_min.max(0.1).log10().floor()),
            10f64.powf(y_max.log10().ceil()),
        )
    } else {
        (0.0, nice_ceiling(y_max))
    };
    let x = |v: f64| left + v / x_max * width;
    let y = |v: f64| {
        let fraction = if log {
            (v.max(y_lo).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10())
        } else {
            v / y_hi
        };
        top + height - fraction * height
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\" font-size=\"14\">{title}</text>\n",
        left + width + 200.0,
        top + height + 50.0
    );
    // Horizontal grid: decades on a log axis, fifths otherwise.
    let ticks: Vec<f64> = if log {
        let mut ticks = vec![y_lo];
        while *ticks.last().unwrap() < y_hi {
            let next = ticks.last().unwrap() * 10.0;
            ticks.push(next);
        }
        ticks
    } else {
        (0..=5).map(|i| y_hi * i as f64 / 5.0).collect()
    };
    for tick in ticks {
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/><text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\">{tick}</text>",
            y(tick),
            left + width,
            left - 5.0,
            y(tick) + 4.0
        );
    }
    let mut xs: Vec<f64> = all.iter().map(|p| p.0).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    for value in &xs {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{value}</text>",
            x(*value),
            top + height + 18.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x_label}</text><text x=\"15\" y=\"{:.1}\" transform=\"rotate(-90 15 {:.1})\" text-anchor=\"middle\">{y_label}{}</text>",
        left + width / 2.0,
        top + height + 38.0,
        top + height / 2.0,
        top + height / 2.0,
        if log { " (log scale)" } else { "" }
    );
    for (index, one) in series.iter().enumerate() {
        let mut medians = Vec::new();
        for value in &xs {
            let ys: Vec<f64> = one
                .points
                .iter()
                .filter(|p| p.0 == *value)
                .map(|p| p.1)
                .collect();
            if !ys.is_empty() {
                medians.push((*value, quantile(&ys, 0.5)));
            }
        }
        let path: Vec<String> = medians
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.join(" "),
            one.colour
        );
        for (a, b) in &one.points {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.5\"/>",
                x(*a),
                y(*b),
                one.colour
            );
        }
        let legend_y = top + 10.0 + 18.0 * index as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            left + width + 15.0,
            legend_y - 10.0,
            one.colour,
            left + width + 32.0,
            legend_y,
            one.label
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#666\">dots: runs; line: median</text>",
        left + width + 15.0,
        top + 10.0 + 18.0 * series.len() as f64
    );
    out.push_str("</svg>\n");
    out
}

fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= value {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}
