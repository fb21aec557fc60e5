//! Bar charts: final accuracy per model (the mean over seeds, with each seed as a dot or ± std as
//! an error bar), plain or grouped by category (task × model, ablation × model), with dashed
//! reference lines across the chart or under one group only (a task's own chance or heuristic).

use plotters::element::{Circle, PathElement, Rectangle, Text};
use plotters::prelude::{ChartBuilder, Color, DashedLineSeries, RGBColor};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{Area, LABEL_PX, TICK_PX, TITLE_PX, axis_scale, fmt_axis_tick, render, titled};
use super::legend::{self, Entry, LegendPosition, Swatch};
use super::{PlotError, Png, RefLine, font, palette};

/// One bar: a value with an optional symmetric error (e.g. one standard deviation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bar {
    /// What the bar measures, e.g. the model's name; bars with the same label share a colour.
    pub label: String,
    /// Height of the bar.
    pub value: f64,
    /// Half-length of the error bar drawn at the top; `None` for none.
    pub err: Option<f64>,
    /// Palette index (see [`palette`]); `None` picks one by label.
    pub color: Option<usize>,
    /// Individual values drawn as dots over the bar (one per seed); empty for none.
    pub points: Vec<f64>,
}

impl Bar {
    /// A bar without error bar.
    pub fn new(label: impl Into<String>, value: f64) -> Self {
        Self {
            label: label.into(),
            value,
            ..Self::default()
        }
    }

    /// The mean of `values` (one per seed) with their sample standard deviation as error
    /// (zero for a single value).
    ///
    /// # Errors
    /// [`PlotError::InvalidInput`] when `values` is empty.
    pub fn mean_std(label: impl Into<String>, values: &[f64]) -> Result<Self, PlotError> {
        let label = label.into();
        if values.is_empty() {
            return Err(PlotError::invalid(format!("bar `{label}`: no values")));
        }
        let (mean, std) = crate::stats::mean_std(values);
        Ok(Self::new(label, mean).with_err(std))
    }

    /// The mean of `values` (one per seed), each value drawn as a dot over the bar: shows the
    /// spread honestly where a ± std bar would cross 1 or hide a single outlier.
    ///
    /// # Errors
    /// [`PlotError::InvalidInput`] when `values` is empty.
    pub fn seeds(label: impl Into<String>, values: &[f64]) -> Result<Self, PlotError> {
        let label = label.into();
        if values.is_empty() {
            return Err(PlotError::invalid(format!("bar `{label}`: no values")));
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        Ok(Self {
            points: values.to_vec(),
            ..Self::new(label, mean)
        })
    }

    /// Sets the error-bar half-length.
    pub fn with_err(mut self, err: f64) -> Self {
        self.err = Some(err);
        self
    }

    /// Sets the palette index, to give one model the same colour in every figure.
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }
}

/// Bars standing side by side above one x-axis label (a task, an ablation setting).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarGroup {
    /// The label under the group.
    pub name: String,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
    /// Dashed reference lines spanning this group only (e.g. the task's chance and heuristic);
    /// lines with the same label share a colour across groups and one legend entry.
    pub lines: Vec<RefLine>,
}

/// A bar chart of [`BarGroup`]s.
///
/// When every group holds a single bar (see [`BarChart::simple`]) the group names label the
/// bars and the legend lists only reference lines; otherwise bars are coloured by label and
/// the legend names the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// Title above the plot; empty for none.
    pub title: String,
    /// Description of the x axis (under the group names); often empty.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// The groups, left to right.
    pub groups: Vec<BarGroup>,
    /// Dashed horizontal reference lines.
    pub hlines: Vec<RefLine>,
    /// Fixed y range `(low, high)`; `None` starts at zero and fits bars, errors and lines.
    pub y_range: Option<(f64, f64)>,
    /// Writes each bar's value above it.
    pub show_values: bool,
    /// Where the legend goes.
    pub legend: LegendPosition,
    /// Image size in pixels, 900 × 500 by default.
    pub size: (u32, u32),
}

impl Default for BarChart {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            groups: Vec::new(),
            hlines: Vec::new(),
            y_range: None,
            show_values: false,
            legend: LegendPosition::Right,
            size: (900, 500),
        }
    }
}

impl BarChart {
    /// An empty chart with a title and y-axis description.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// One bar per x position, named by its label (e.g. one per model).
    pub fn with_bars(mut self, bars: Vec<Bar>) -> Self {
        for bar in bars {
            self.groups.push(BarGroup {
                name: bar.label.clone(),
                bars: vec![bar],
                lines: Vec::new(),
            });
        }
        self
    }

    /// Adds a group of bars under the x label `name`.
    pub fn with_group(mut self, name: impl Into<String>, bars: Vec<Bar>) -> Self {
        self.groups.push(BarGroup {
            name: name.into(),
            bars,
            lines: Vec::new(),
        });
        self
    }

    /// Adds a group of bars with reference lines of its own (see [`BarGroup::lines`]).
    pub fn with_group_lines(
        mut self,
        name: impl Into<String>,
        bars: Vec<Bar>,
        lines: Vec<RefLine>,
    ) -> Self {
        self.groups.push(BarGroup {
            name: name.into(),
            bars,
            lines,
        });
        self
    }

    /// Adds a dashed reference line.
    pub fn with_hline(mut self, label: impl Into<String>, y: f64) -> Self {
        self.hlines.push(RefLine::new(label, y));
        self
    }

    /// Whether every group holds exactly one bar.
    pub fn simple(&self) -> bool {
        self.groups.iter().all(|g| g.bars.len() == 1)
    }

    /// Draws the chart at [`BarChart::size`].
    ///
    /// # Errors
    /// [`PlotError::InvalidInput`] for a chart without groups, an empty group, a non-finite
    /// value, a negative or non-finite error, or a bad `y_range`.
    pub fn render(&self) -> Result<Png, PlotError> {
        self.validate()?;
        render(self.size, |area| self.draw_into(area))
    }

    fn validate(&self) -> Result<(), PlotError> {
        if self.groups.is_empty() {
            return Err(PlotError::invalid(format!(
                "bar chart `{}` has no bars",
                self.title
            )));
        }
        for group in &self.groups {
            if group.bars.is_empty() {
                return Err(PlotError::invalid(format!(
                    "bar group `{}` is empty",
                    group.name
                )));
            }
            for bar in &group.bars {
                let err_ok = bar.err.is_none_or(|e| e.is_finite() && e >= 0.0);
                let points_ok = bar.points.iter().all(|p| p.is_finite());
                if !bar.value.is_finite() || !err_ok || !points_ok {
                    return Err(PlotError::invalid(format!(
                        "bar `{}` in group `{}`: value {} ± {:?} (points {:?}) is not drawable",
                        bar.label, group.name, bar.value, bar.err, bar.points
                    )));
                }
            }
        }
        let group_lines = self.groups.iter().flat_map(|g| &g.lines);
        if let Some(line) = self
            .hlines
            .iter()
            .chain(group_lines)
            .find(|l| !l.y.is_finite())
        {
            return Err(PlotError::invalid(format!(
                "reference line `{}` at {} cannot be drawn",
                line.label, line.y
            )));
        }
        if let Some((lo, hi)) = self.y_range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(PlotError::invalid(format!(
                "y_range ({lo}, {hi}) must be finite and increasing"
            )));
        }
        Ok(())
    }

    /// Distinct bar labels in order of first appearance.
    fn labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for bar in self.groups.iter().flat_map(|g| &g.bars) {
            if !labels.contains(&bar.label.as_str()) {
                labels.push(&bar.label);
            }
        }
        labels
    }

    /// Distinct reference-line labels, chart-wide lines first: a line's colour is its index here.
    fn line_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        let all = self
            .hlines
            .iter()
            .chain(self.groups.iter().flat_map(|g| &g.lines));
        for line in all {
            if !labels.contains(&line.label.as_str()) {
                labels.push(&line.label);
            }
        }
        labels
    }

    fn line_color(&self, label: &str) -> RGBColor {
        let index = self.line_labels().iter().position(|l| *l == label);
        palette::reference(index.unwrap_or(0))
    }

    fn bar_color(&self, bar: &Bar, group: usize) -> RGBColor {
        let by_label = || {
            if self.simple() {
                group
            } else {
                self.labels()
                    .iter()
                    .position(|l| *l == bar.label)
                    .unwrap_or(0)
            }
        };
        palette::color(bar.color.unwrap_or_else(by_label))
    }

    fn legend_entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        if !self.simple() {
            for label in self.labels() {
                let bar = self
                    .groups
                    .iter()
                    .flat_map(|g| &g.bars)
                    .find(|b| b.label == label);
                if let Some(bar) = bar {
                    entries.push(Entry {
                        label: label.to_string(),
                        swatch: Swatch::Patch {
                            color: self.bar_color(bar, 0),
                        },
                    });
                }
            }
        }
        entries.extend(
            self.line_labels()
                .into_iter()
                .enumerate()
                .map(|(i, l)| Entry {
                    label: l.to_string(),
                    swatch: Swatch::Dashed {
                        color: palette::reference(i),
                    },
                }),
        );
        entries
    }

    /// Zero-based y range fitting bars with their errors and the reference lines.
    fn fit_y(&self) -> (f64, f64) {
        let bars = self.groups.iter().flat_map(|g| &g.bars);
        let ends = bars.flat_map(|b| {
            let e = b.err.unwrap_or(0.0);
            [b.value - e, b.value + e]
                .into_iter()
                .chain(b.points.iter().copied())
        });
        let group_lines = self.groups.iter().flat_map(|g| &g.lines);
        let (lo, hi) = ends
            .chain(self.hlines.iter().chain(group_lines).map(|l| l.y))
            .fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let pad = if hi > lo { 0.08 * (hi - lo) } else { 1.0 };
        (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
    }

    fn draw_into(&self, area: &Area<'_>) -> Result<(), PlotError> {
        let body = titled(area, &self.title, TITLE_PX)?;
        let entries = self.legend_entries();
        let (plot_area, column) = legend::reserve(&body, &entries, self.legend)?;
        let (lo, hi) = self.y_range.unwrap_or_else(|| self.fit_y());
        let n = self.groups.len() as f64;
        let x_area = if self.x_label.is_empty() { 36 } else { 62 };
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(x_area)
            .y_label_area_size(76)
            .build_cartesian_2d(0.0..n, lo..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(self.y_label.as_str())
            .label_style(font::text(TICK_PX))
            .axis_desc_style(font::text(LABEL_PX))
            .y_label_formatter(&|v| fmt_axis_tick(*v, axis_scale(lo, hi)))
            .y_labels(8)
            .max_light_lines(4)
            .light_line_style(RGBColor(243, 243, 243))
            .bold_line_style(RGBColor(220, 220, 220))
            .axis_style(RGBColor(90, 90, 90))
            .draw()?;

        let base = lo.max(0.0).min(hi);
        let whisker = RGBColor(40, 40, 40).stroke_width(2);
        let value_style = font::text(13.0).pos(Pos::new(HPos::Center, VPos::Bottom));
        let mut value_labels = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let k = group.bars.len() as f64;
            let slot = 0.8 / k;
            for (j, bar) in group.bars.iter().enumerate() {
                let left = g as f64 + 0.1 + slot * j as f64;
                let (x0, x1) = (left + 0.06 * slot, left + 0.94 * slot);
                let mid = (x0 + x1) / 2.0;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, base), (x1, bar.value)],
                    self.bar_color(bar, g).filled(),
                )))?;
                let top = match bar.err {
                    Some(e) if e > 0.0 => {
                        let cap = 0.1 * (x1 - x0);
                        let (y0, y1) = (bar.value - e, bar.value + e);
                        chart.draw_series([
                            PathElement::new(vec![(mid, y0), (mid, y1)], whisker),
                            PathElement::new(vec![(mid - cap, y0), (mid + cap, y0)], whisker),
                            PathElement::new(vec![(mid - cap, y1), (mid + cap, y1)], whisker),
                        ])?;
                        y1.max(bar.value)
                    }
                    _ => bar.value.max(base),
                };
                let dots = bar.points.iter().enumerate().map(|(i, &p)| {
                    // Spread across the middle half of the bar, so equal values stay visible.
                    let t = match bar.points.len() {
                        1 => 0.5,
                        len => 0.25 + 0.5 * i as f64 / (len - 1) as f64,
                    };
                    let x = x0 + (x1 - x0) * t;
                    Circle::new((x, p), 4, RGBColor(25, 25, 25).filled())
                });
                chart.draw_series(dots)?;
                let top = bar.points.iter().copied().fold(top, f64::max);
                value_labels.push((fmt_value(bar.value), chart.backend_coord(&(mid, top))));
            }
        }
        for line in &self.hlines {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, line.y), (n, line.y)],
                9,
                6,
                self.line_color(&line.label).stroke_width(2),
            ))?;
        }
        for (g, group) in self.groups.iter().enumerate() {
            for line in &group.lines {
                chart.draw_series(DashedLineSeries::new(
                    [(g as f64 + 0.04, line.y), (g as f64 + 0.96, line.y)],
                    7,
                    5,
                    self.line_color(&line.label).stroke_width(2),
                ))?;
            }
        }

        let (bx, by) = area.get_base_pixel();
        if self.show_values {
            for (text, (px, py)) in value_labels {
                area.draw(&Text::new(
                    text,
                    (px - bx, py - by - 4),
                    value_style.clone(),
                ))?;
            }
        }
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let name_style = font::text(TICK_PX).pos(Pos::new(HPos::Center, VPos::Top));
        for (g, group) in self.groups.iter().enumerate() {
            let (px, _) = chart.backend_coord(&(g as f64 + 0.5, lo));
            let at = (px - bx, ys.end - by + 8);
            area.draw(&Text::new(group.name.clone(), at, name_style.clone()))?;
        }
        if !self.x_label.is_empty() {
            let desc = font::text(LABEL_PX).pos(Pos::new(HPos::Center, VPos::Top));
            let at = ((xs.start + xs.end) / 2 - bx, ys.end - by + 36);
            area.draw(&Text::new(self.x_label.clone(), at, desc))?;
        }
        legend::draw(
            area,
            &entries,
            self.legend,
            column.as_ref(),
            ((xs.start, ys.start), (xs.end, ys.end)),
        )
    }
}

/// A bar's value with three significant digits or so: `0.912`, `12.3`, `1234`.
fn fmt_value(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}
