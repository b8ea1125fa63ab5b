//! The latency percentile plot (SVG, plotters): x is the percentile on a log "nines" scale
//! (0 %, 90 %, 99 %, 99.9 %, ...), y the latency; one line per run.
//!
//! plotters is built with its SVG backend only and no font feature: text is written as SVG
//! `<text>` elements whose size plotters only estimates, so no system font (and no
//! fontconfig) is needed.

use crate::report::{CurvePoint, Report};
use anyhow::anyhow;
use plotters::prelude::*;
use std::path::Path;

/// What to draw.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// The title.
    pub title: String,
    /// Logarithmic latency axis.
    pub log_y: bool,
    /// Plot the service time (send to answer) instead of the reported latency.
    pub service_time: bool,
    /// Size in pixels.
    pub size: (u32, u32),
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            title: "verdict latency by percentile".into(),
            log_y: false,
            service_time: false,
            size: (1000, 620),
        }
    }
}

/// The label of a nines value: 0 → `0%`, 1 → `90%`, 2 → `99%`, 3 → `99.9%`.
pub fn nines_label(nines: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    if nines <= 0.0 {
        return "0%".into();
    }
    let decimals = (nines - 2.0).ceil().max(0.0) as usize;
    format!("{p:.decimals$}%")
}

/// Renders the reports' percentile curves into an SVG file.
pub fn render_svg(reports: &[Report], options: &PlotOptions, out: &Path) -> anyhow::Result<()> {
    let svg = render_svg_string(reports, options)?;
    std::fs::write(out, svg).map_err(|e| anyhow!("writing {}: {e}", out.display()))
}

/// Renders the reports' percentile curves as SVG text.
pub fn render_svg_string(reports: &[Report], options: &PlotOptions) -> anyhow::Result<String> {
    if reports.is_empty() {
        return Err(anyhow!("nothing to plot: no report given"));
    }
    let series: Vec<(String, &[CurvePoint])> = reports
        .iter()
        .map(|r| {
            let curve = if options.service_time {
                &r.results.service_curve
            } else {
                &r.results.curve
            };
            let label = format!(
                "{} ({} req/s, p99 {:.3} ms)",
                r.name,
                crate::report::thousands(r.results.rate),
                if options.service_time {
                    r.results.service.p99
                } else {
                    r.results.latency.p99
                }
            );
            (label, curve.as_slice())
        })
        .collect();
    let max_nines = series
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.nines))
        .fold(2.0f64, f64::max)
        .ceil();
    let y = |ms: f64| {
        if options.log_y {
            ms.max(1e-3).log10()
        } else {
            ms
        }
    };
    let (y_lo, y_hi) = {
        let values = series
            .iter()
            .flat_map(|(_, c)| c.iter().map(|p| y(p.latency_ms)));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !lo.is_finite() || !hi.is_finite() {
            (0.0, 1.0)
        } else if options.log_y {
            (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
        } else {
            (0.0, (hi * 1.1).max(0.001))
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, options.size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&options.title, ("sans-serif", 22))
            .margin(16)
            .margin_right(40)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..max_nines, y_lo..y_hi)
            .map_err(plot_error)?;
        let y_desc = if options.service_time {
            "service time (ms)"
        } else {
            "latency (ms)"
        };
        let log_y = options.log_y;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc(if log_y {
                format!("{y_desc}, log scale")
            } else {
                y_desc.to_owned()
            })
            .x_labels(max_nines as usize + 1)
            .x_label_formatter(&|x| nines_label(*x))
            .y_label_formatter(&|v| {
                let ms = if log_y { 10f64.powf(*v) } else { *v };
                if ms >= 100.0 {
                    format!("{ms:.0}")
                } else if ms >= 1.0 {
                    format!("{ms:.1}")
                } else {
                    format!("{ms:.3}")
                }
            })
            .draw()
            .map_err(plot_error)?;
        for (i, (label, curve)) in series.iter().enumerate() {
            let color = series_color(i);
            let style = color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    curve.iter().map(|p| (p.nines, y(p.latency_ms))),
                    style,
                ))
                .map_err(plot_error)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Distinct, readable line colors (the "tab10" palette), cycling.
fn series_color(i: usize) -> RGBColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (0xd6, 0x27, 0x28),
        (0x1f, 0x77, 0xb4),
        (0x2c, 0xa0, 0x2c),
        (0xff, 0x7f, 0x0e),
        (0x94, 0x67, 0xbd),
        (0x8c, 0x56, 0x4b),
        (0xe3, 0x77, 0xc2),
        (0x17, 0xbe, 0xcf),
        (0x7f, 0x7f, 0x7f),
        (0xbc, 0xbd, 0x22),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b)
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_labels() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(4.0), "99.99%");
    }
}
