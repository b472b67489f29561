//! `--plot FILE.svg` and `sandbox plot`: a recorded run ([`Recording`]) drawn as one SVG of four
//! panels sharing the time axis: memory (with its breakdown and the --mem and --mem-high lines),
//! CPU rate (with the --cpus line and the throttling), tasks (with the --pids line) and io rates.
//! Drawn with plotters' SVG backend (no font files: text is left to the viewer's sans-serif).

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::samples::{Recording, Sample};

const MIB: f64 = 1024.0 * 1024.0;
const ORANGE: RGBColor = RGBColor(230, 140, 0);
/// The legend labels, one per series and limit line: also what the tests look for in the SVG.
pub const LABELS: [&str; 13] = [
    "memory.current",
    "anon",
    "file",
    "limit --mem",
    "high --mem-high",
    "cpu rate",
    "limit --cpus",
    "throttled",
    "tasks",
    "limit --pids",
    "io read",
    "io write",
    "(no figures)",
];

/// The SVG of `rec`, or why it could not be drawn.
pub fn svg(rec: &Recording) -> Result<String, String> {
    let mut out = String::new();
    draw(rec, SVGBackend::with_string(&mut out, (1000, 1200)).into_drawing_area()).map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

/// A series: legend label, points, colour, stroke width.
type Line<'a> = (&'a str, Vec<(f64, f64)>, RGBColor, u32);

type Res = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The title: id, command (shortened), verdict.
pub fn title(rec: &Recording) -> String {
    let mut cmd = rec.header.command.join(" ");
    if cmd.chars().count() > 70 {
        cmd = cmd.chars().take(69).collect::<String>() + "…";
    }
    let verdict = match &rec.summary {
        Some(s) => format!("{} (exit {}, {:.2} s)", s.termination_reason, s.exit_code, s.wall_time_s),
        None => "unfinished (no summary line)".into(),
    };
    format!("sandbox {}: {cmd} → {verdict}", rec.header.id)
}

fn draw(rec: &Recording, root: DrawingArea<SVGBackend, Shift>) -> Res {
    root.fill(&WHITE)?;
    let root = root.titled(&title(rec), ("sans-serif", 20))?;
    let panels = root.split_evenly((4, 1));
    let s = &rec.samples;
    let tmax = s.last().map(|x| x.t_s).unwrap_or(0.0).max(rec.summary.as_ref().map_or(0.0, |x| x.wall_time_s)).max(0.1);
    let l = &rec.header.limits;

    let mem = |f: fn(&Sample) -> Option<u64>| series(s, |x| f(x).map(|v| v as f64 / MIB));
    panel(
        &panels[0],
        "memory (MiB)",
        tmax,
        &[
            ("memory.current", mem(|x| x.memory_bytes), BLUE, 2),
            ("anon", mem(|x| x.memory_anon_bytes), CYAN, 1),
            ("file", mem(|x| x.memory_file_bytes), GREEN, 1),
        ],
        &[
            ("limit --mem", l.memory_bytes.map(|v| v as f64 / MIB), RED),
            ("high --mem-high", l.memory_high_bytes.map(|v| v as f64 / MIB), ORANGE),
        ],
    )?;
    panel(
        &panels[1],
        "CPU (CPUs in use; throttled: CPU-seconds throttled per second)",
        tmax,
        &[
            ("cpu rate", series(s, |x| x.cpu_rate), BLUE, 2),
            ("throttled", rates(s, |x| x.cpu_throttled_s, 1.0), MAGENTA, 1),
        ],
        &[("limit --cpus", l.cpus, RED)],
    )?;
    panel(
        &panels[2],
        "tasks",
        tmax,
        &[("tasks", series(s, |x| x.pids.map(|v| v as f64)), BLUE, 2)],
        &[("limit --pids", l.pids.map(|v| v as f64), RED)],
    )?;
    let io = |f: fn(&Sample) -> Option<u64>| rates(s, move |x| f(x).map(|v| v as f64), MIB);
    panel(
        &panels[3],
        "io (MiB/s)",
        tmax,
        &[("io read", io(|x| x.io_read_bytes), GREEN, 2), ("io write", io(|x| x.io_write_bytes), BLUE, 2)],
        &[],
    )?;
    root.present()
}

/// (t, value) of every sample that has the figure.
fn series(s: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    s.iter().filter_map(|x| f(x).map(|v| (x.t_s, v))).collect()
}

/// The rate of a cumulative figure between successive samples, divided by `unit`.
fn rates(s: &[Sample], f: impl Fn(&Sample) -> Option<f64>, unit: f64) -> Vec<(f64, f64)> {
    let pts = series(s, f);
    pts.windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].0, ((w[1].1 - w[0].1) / (w[1].0 - w[0].0) / unit).max(0.0)))
        .collect()
}

/// One panel: the series as lines and the limits as dashed horizontal red lines.
fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    tmax: f64,
    lines: &[Line],
    limits: &[(&str, Option<f64>, RGBColor)],
) -> Res {
    let top = lines
        .iter()
        .flat_map(|(_, p, _, _)| p.iter().map(|(_, v)| *v))
        .chain(limits.iter().filter_map(|(_, v, _)| *v))
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..tmax, 0.0..top)?;
    chart.configure_mesh().x_desc("seconds since start").light_line_style(WHITE.mix(0.0)).draw()?;
    let mut any = false;
    for (label, pts, color, width) in lines.iter().filter(|(_, p, _, _)| !p.is_empty()) {
        any = true;
        let style = color.stroke_width(*width);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), style))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    for (label, v, color) in limits.iter().filter_map(|(l, v, c)| v.map(|v| (l, v, c))) {
        any = true;
        let style = color.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new([(0.0, v), (tmax, v)], 8, 5, style))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    if !any {
        chart.draw_series(std::iter::once(Text::new("(no figures)", (tmax * 0.45, top * 0.5), ("sans-serif", 14))))?;
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_of_the_fixture_parses_and_labels_every_series_and_limit() {
        let mut rec = crate::samples::parse(&crate::cgroup::stats::fixture("samples/run.jsonl")).unwrap();
        // io rates need two samples with io figures.
        (rec.samples[0].io_read_bytes, rec.samples[0].io_write_bytes) = (Some(0), Some(0));
        let out = svg(&rec).unwrap();
        let doc = roxmltree::Document::parse(&out).expect("well-formed SVG");
        let texts: Vec<&str> =
            doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
        for l in ["memory.current", "anon", "file", "limit --mem", "cpu rate", "throttled", "limit --cpus"] {
            assert!(texts.contains(&l), "{l}: {texts:?}");
        }
        for l in ["tasks", "limit --pids", "io read", "io write"] {
            assert!(texts.contains(&l), "{l}: {texts:?}");
        }
        assert!(!texts.contains(&"high --mem-high"), "no --mem-high, no line");
        let t = texts.iter().find(|t| t.starts_with("sandbox fx1")).expect("title");
        assert!(t.contains("sh -c a, b") && t.contains("oom (exit 137"), "{t}");
    }

    #[test]
    fn a_recording_without_samples_still_draws() {
        let out = svg(&Recording::default()).unwrap();
        assert!(roxmltree::Document::parse(&out).is_ok());
        assert!(out.contains("(no figures)") && out.contains("unfinished"));
    }
}
