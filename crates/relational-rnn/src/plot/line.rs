//! Line charts: training curves as mean ± band over seeds, with dashed reference lines for
//! chance level or a known plateau.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::{
    BindKeyPoints, ChartBuilder, Circle, Color, DashedLineSeries, IntoLogRange, PathElement,
    Polygon, RGBColor,
};

use super::canvas::{
    Area, LABEL_PX, PixelRect, TICK_PX, TITLE_PX, axis_scale, fmt_axis_tick, fmt_tick, render,
    titled,
};
use super::legend::{self, Entry, LegendPosition, Swatch};
use super::{PlotError, Png, font, palette};

/// One curve: `y` against `x`, optionally with a shaded band `(lower, upper)` around it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend label; an empty name leaves the series out of the legend.
    pub name: String,
    /// Abscissae, e.g. training steps.
    pub x: Vec<f64>,
    /// Ordinates, one per `x`. Non-finite values (a diverged run) break the line there.
    pub y: Vec<f64>,
    /// Lower and upper edge of a translucent band, each one value per `x`.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
    /// Palette index (see [`palette`]); `None` uses the series' position in the chart.
    pub color: Option<usize>,
}

impl Series {
    /// A plain curve.
    pub fn new(name: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            x,
            y,
            ..Self::default()
        }
    }

    /// A plain curve against its index `0, 1, 2, …`.
    pub fn from_y(name: impl Into<String>, y: Vec<f64>) -> Self {
        let x = (0..y.len()).map(|i| i as f64).collect();
        Self::new(name, x, y)
    }

    /// Aggregates several runs (seeds) of the same curve into their mean with a ±1 standard
    /// deviation band.
    ///
    /// The standard deviation is the sample one (divisor `runs.len() − 1`), zero for a single
    /// run. A NaN in any run makes that point NaN, which breaks the line there.
    ///
    /// # Shapes
    /// `x: [T]`, `runs: R runs × [T]`, returns a series of `T` points.
    ///
    /// # Errors
    /// [`PlotError::InvalidInput`] when there is no run or a run's length differs from `x`'s.
    pub fn mean_std(
        name: impl Into<String>,
        x: Vec<f64>,
        runs: &[Vec<f64>],
    ) -> Result<Self, PlotError> {
        let name = name.into();
        if runs.is_empty() {
            return Err(PlotError::invalid(format!("series `{name}`: no runs")));
        }
        if let Some((i, run)) = runs.iter().enumerate().find(|(_, r)| r.len() != x.len()) {
            return Err(PlotError::invalid(format!(
                "series `{name}`: run {i} has {} points but x has {}",
                run.len(),
                x.len()
            )));
        }
        let (mean, std): (Vec<f64>, Vec<f64>) = (0..x.len())
            .map(|t| crate::stats::mean_std(&runs.iter().map(|run| run[t]).collect::<Vec<_>>()))
            .unzip();
        let lower = mean.iter().zip(&std).map(|(m, s)| m - s).collect();
        let upper = mean.iter().zip(&std).map(|(m, s)| m + s).collect();
        Ok(Self {
            name,
            x,
            y: mean,
            band: Some((lower, upper)),
            color: None,
        })
    }

    /// Sets the shaded band.
    pub fn with_band(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.band = Some((lower, upper));
        self
    }

    /// Sets the palette index, to give one model the same colour in every figure.
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    fn validate(&self, log_y: bool) -> Result<(), PlotError> {
        let name = &self.name;
        if self.x.is_empty() {
            return Err(PlotError::invalid(format!("series `{name}` is empty")));
        }
        if self.x.len() != self.y.len() {
            return Err(PlotError::invalid(format!(
                "series `{name}`: x has {} points but y has {}",
                self.x.len(),
                self.y.len()
            )));
        }
        if let Some((lower, upper)) = &self.band
            && (lower.len() != self.y.len() || upper.len() != self.y.len())
        {
            return Err(PlotError::invalid(format!(
                "series `{name}`: band has {} lower and {} upper values for {} points",
                lower.len(),
                upper.len(),
                self.y.len()
            )));
        }
        if !(0..self.x.len()).any(|i| self.plottable(i, log_y)) {
            let what = if log_y { "finite positive" } else { "finite" };
            return Err(PlotError::invalid(format!(
                "series `{name}` has no {what} point"
            )));
        }
        Ok(())
    }

    fn plottable(&self, i: usize, log_y: bool) -> bool {
        self.x[i].is_finite() && drawable(self.y[i], log_y)
    }
}

/// A dashed horizontal reference line (chance level, a known plateau), named in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct RefLine {
    /// Legend label, e.g. `"chance (1/4)"`.
    pub label: String,
    /// Height of the line in data units.
    pub y: f64,
}

impl RefLine {
    /// A reference line at `y`.
    pub fn new(label: impl Into<String>, y: f64) -> Self {
        Self {
            label: label.into(),
            y,
        }
    }
}

/// A line chart of one or more [`Series`].
///
/// Build it with a struct literal (`..Default::default()`) or the chaining methods, then call
/// [`LineChart::render`]; several charts go side by side with [`panels`](super::panels).
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the plot; empty for none.
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// The curves, drawn in order with their bands underneath all lines.
    pub series: Vec<Series>,
    /// Dashed horizontal reference lines.
    pub hlines: Vec<RefLine>,
    /// Logarithmic y axis (non-positive values are not drawn).
    pub log_y: bool,
    /// Fixed y range `(low, high)`; `None` fits the data, bands and reference lines.
    pub y_range: Option<(f64, f64)>,
    /// Where the legend goes.
    pub legend: LegendPosition,
    /// Image size in pixels, 900 × 500 by default: full notebook width, readable text.
    pub size: (u32, u32),
}

impl Default for LineChart {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            hlines: Vec::new(),
            log_y: false,
            y_range: None,
            legend: LegendPosition::Right,
            size: (900, 500),
        }
    }
}

impl LineChart {
    /// An empty chart with a title and axis descriptions.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// Adds a curve.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Adds a dashed reference line.
    pub fn with_hline(mut self, label: impl Into<String>, y: f64) -> Self {
        self.hlines.push(RefLine::new(label, y));
        self
    }

    /// Draws the chart at [`LineChart::size`].
    ///
    /// # Errors
    /// [`PlotError::InvalidInput`] for a chart without series, an empty or mismatched series,
    /// a series with nothing drawable, or a bad `y_range`.
    pub fn render(&self) -> Result<Png, PlotError> {
        self.validate()?;
        render(self.size, |area| self.draw_into(area))
    }

    pub(crate) fn validate(&self) -> Result<(), PlotError> {
        if self.series.is_empty() {
            return Err(PlotError::invalid(format!(
                "line chart `{}` has no series",
                self.title
            )));
        }
        for s in &self.series {
            s.validate(self.log_y)?;
        }
        if let Some(line) = self.hlines.iter().find(|l| !drawable(l.y, self.log_y)) {
            return Err(PlotError::invalid(format!(
                "reference line `{}` at {} cannot be drawn",
                line.label, line.y
            )));
        }
        if let Some((lo, hi)) = self.y_range
            && !(drawable(lo, self.log_y) && hi.is_finite() && lo < hi)
        {
            return Err(PlotError::invalid(format!(
                "y_range ({lo}, {hi}) must be finite and increasing{}",
                if self.log_y { ", and positive" } else { "" }
            )));
        }
        Ok(())
    }

    /// Draws the validated chart into `area` (a whole image or one panel).
    pub(crate) fn draw_into(&self, area: &Area<'_>) -> Result<(), PlotError> {
        let body = titled(area, &self.title, TITLE_PX)?;
        let entries = self.legend_entries();
        let (plot_area, column) = legend::reserve(&body, &entries, self.legend)?;
        let x = self.x_range();
        let (lo, hi) = self.y_range.unwrap_or_else(|| self.fit_y());
        let rect = if self.log_y {
            let y = (lo..hi).log_scale().with_key_points(log_ticks(lo, hi));
            self.draw_chart(&plot_area, x, y, None)?
        } else {
            self.draw_chart(&plot_area, x, lo..hi, Some(axis_scale(lo, hi)))?
        };
        legend::draw(area, &entries, self.legend, column.as_ref(), rect)
    }

    /// Draws axes, reference lines and series; `y_scale` is the linear y axis's largest
    /// magnitude (`None` on a log axis, where each tick is labelled on its own).
    fn draw_chart<Y>(
        &self,
        area: &Area<'_>,
        x: Range<f64>,
        y: Y,
        y_scale: Option<f64>,
    ) -> Result<PixelRect, PlotError>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let x_scale = axis_scale(x.start, x.end);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(54)
            .y_label_area_size(76)
            .build_cartesian_2d(x.clone(), y)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(font::text(TICK_PX))
            .axis_desc_style(font::text(LABEL_PX))
            .x_label_formatter(&|v| fmt_axis_tick(*v, x_scale))
            .y_label_formatter(&|v| y_scale.map_or_else(|| fmt_tick(*v), |s| fmt_axis_tick(*v, s)))
            .x_labels(8)
            .y_labels(8)
            .max_light_lines(4)
            .light_line_style(RGBColor(243, 243, 243))
            .bold_line_style(RGBColor(220, 220, 220))
            .axis_style(RGBColor(90, 90, 90))
            .draw()?;
        let y_lo = chart.y_range().start;
        for (i, s) in self.series.iter().enumerate() {
            let Some((lower, upper)) = &s.band else {
                continue;
            };
            let color = series_color(s, i);
            let ok = |t: usize| s.x[t].is_finite() && lower[t].is_finite() && upper[t].is_finite();
            for run in runs(s.x.len(), ok) {
                let lift = |v: f64| if self.log_y { v.max(y_lo) } else { v };
                let mut outline: Vec<(f64, f64)> =
                    run.clone().map(|t| (s.x[t], lift(upper[t]))).collect();
                outline.extend(run.rev().map(|t| (s.x[t], lift(lower[t]))));
                chart.draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))?;
            }
        }
        for (i, line) in self.hlines.iter().enumerate() {
            chart.draw_series(DashedLineSeries::new(
                [(x.start, line.y), (x.end, line.y)],
                9,
                6,
                palette::reference(i).stroke_width(2),
            ))?;
        }
        for (i, s) in self.series.iter().enumerate() {
            let style = series_color(s, i).stroke_width(2);
            for run in runs(s.x.len(), |t| s.plottable(t, self.log_y)) {
                if run.len() == 1 {
                    let p = (s.x[run.start], s.y[run.start]);
                    chart.draw_series(std::iter::once(Circle::new(p, 3, style.filled())))?;
                } else {
                    // Segment by segment, with a dot of the line's width at each vertex (a round
                    // join): the backend joins a polyline with unlimited miters, which on a noisy
                    // curve in a narrow panel draws spikes far beyond its values.
                    let points: Vec<(f64, f64)> = run.map(|t| (s.x[t], s.y[t])).collect();
                    chart.draw_series(
                        points
                            .windows(2)
                            .map(|w| PathElement::new(vec![w[0], w[1]], style)),
                    )?;
                    chart.draw_series(points.iter().map(|&p| Circle::new(p, 1, style.filled())))?;
                }
            }
        }
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        Ok(((xs.start, ys.start), (xs.end, ys.end)))
    }

    fn legend_entries(&self) -> Vec<Entry> {
        let series = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty());
        let lines = series.map(|(i, s)| Entry {
            label: s.name.clone(),
            swatch: Swatch::Line {
                color: series_color(s, i),
                band: s.band.is_some(),
            },
        });
        let refs = self.hlines.iter().enumerate().map(|(i, l)| Entry {
            label: l.label.clone(),
            swatch: Swatch::Dashed {
                color: palette::reference(i),
            },
        });
        lines.chain(refs).collect()
    }

    /// The x extent of all drawable points, widened when degenerate.
    fn x_range(&self) -> Range<f64> {
        let xs = self.series.iter().flat_map(|s| {
            (0..s.x.len())
                .filter(|&t| s.plottable(t, self.log_y))
                .map(|t| s.x[t])
        });
        let (lo, hi) = min_max(xs);
        if lo < hi { lo..hi } else { lo - 0.5..hi + 0.5 }
    }

    /// The y extent of lines, bands and reference lines, with a 5 % margin (in log space for
    /// a logarithmic axis).
    fn fit_y(&self) -> (f64, f64) {
        let log = self.log_y;
        let bands = self.series.iter().filter_map(|s| s.band.as_ref());
        let values = self
            .series
            .iter()
            .flat_map(|s| s.y.iter())
            .chain(bands.flat_map(|(l, u)| l.iter().chain(u)))
            .chain(self.hlines.iter().map(|l| &l.y))
            .copied()
            .filter(|&v| drawable(v, log));
        let (lo, hi) = min_max(values);
        if log {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = if a < b { 0.05 * (b - a) } else { 0.3 };
            (10f64.powf(a - pad), 10f64.powf(b + pad))
        } else {
            let pad = if lo < hi {
                0.05 * (hi - lo)
            } else {
                0.5_f64.max(0.1 * lo.abs())
            };
            (lo - pad, hi + pad)
        }
    }
}

/// Whether `v` can be placed on the y axis.
fn drawable(v: f64, log_y: bool) -> bool {
    v.is_finite() && (!log_y || v > 0.0)
}

fn series_color(s: &Series, position: usize) -> RGBColor {
    palette::color(s.color.unwrap_or(position))
}

/// Tick values for a logarithmic axis on `[lo, hi]`: powers of ten, refined with 1-3, 1-2-5
/// and then every digit until there are at least four ticks.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const MANTISSAS: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 3.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
    let mut ticks = Vec::new();
    for mantissas in MANTISSAS {
        ticks = decades
            .clone()
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect();
        if ticks.len() >= 4 {
            break;
        }
    }
    ticks
}

/// Smallest and largest of `values`, which validation guarantees is not empty.
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Maximal runs of consecutive indices in `0..n` for which `keep` holds.
fn runs(n: usize, keep: impl Fn(usize) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for t in 0..=n {
        match (start, t < n && keep(t)) {
            (None, true) => start = Some(t),
            (Some(s), false) => {
                out.push(s..t);
                start = None;
            }
            _ => {}
        }
    }
    out
}
