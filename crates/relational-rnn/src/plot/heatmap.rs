//! Heatmaps: one matrix, or a grid of matrices sharing one colour scale (attention weights of
//! every head at every step, memory slots × units over time).

use ndarray::Array2;
use plotters::element::{Rectangle, Text};
use plotters::prelude::{Color, RGBColor};
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{
    Area, LABEL_PX, PixelRect, SUBTITLE_PX, TICK_PX, TITLE_PX, axis_scale, fmt_axis_tick, render,
    text_size, titled,
};
use super::{Colormap, PlotError, Png, font};

/// Default size of a single [`heatmap`].
pub const HEATMAP_SIZE: (u32, u32) = (720, 560);

/// Default size of one panel of a [`heatmap_grid`].
pub const HEATMAP_PANEL_SIZE: (u32, u32) = (330, 300);

/// Width of the colour-bar column, in pixels.
const COLORBAR_W: u32 = 90;

/// Colour of cells holding NaN or ±∞.
const MISSING: RGBColor = RGBColor(220, 220, 220);

/// How a heatmap (or every panel of a grid) is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapOptions {
    /// Title above the figure; empty for none.
    pub title: String,
    /// Description of the columns, e.g. `"key slot"`.
    pub x_label: String,
    /// Description of the rows, e.g. `"query slot"`.
    pub y_label: String,
    /// One label per column; `None` numbers them from 0.
    pub x_ticks: Option<Vec<String>>,
    /// One label per row; `None` numbers them from 0.
    pub y_ticks: Option<Vec<String>>,
    /// Colour map.
    pub colormap: Colormap,
    /// Values mapped to the ends of the colour map; `None` fits the data (symmetric around zero
    /// for a diverging map). Values outside are clamped.
    pub range: Option<(f64, f64)>,
    /// Draws a colour bar on the right.
    pub colorbar: bool,
    /// What the colours mean, written along the colour bar (e.g. `"attention weight"`); empty
    /// for none.
    pub colorbar_label: String,
    /// Writes each cell's value in it (when it fits).
    pub annotate: bool,
    /// Cells are squares (the matrix keeps its aspect ratio) instead of filling the area.
    pub square: bool,
    /// Image size; `None` gives [`HEATMAP_SIZE`], or [`HEATMAP_PANEL_SIZE`] per panel of a grid.
    pub size: Option<(u32, u32)>,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_ticks: None,
            y_ticks: None,
            colormap: Colormap::Viridis,
            range: None,
            colorbar: true,
            colorbar_label: String::new(),
            annotate: false,
            square: true,
            size: None,
        }
    }
}

/// Draws `matrix` with row 0 at the top, as a `[rows, cols]` image of coloured cells.
///
/// # Shapes
/// `matrix: [rows, cols]`, e.g. attention weights `[N+1, N+1]` (query row, key column).
///
/// # Errors
/// [`PlotError::InvalidInput`] for an empty matrix, one without a finite value, tick lists
/// of the wrong length, or a bad `range`.
pub fn heatmap(matrix: &Array2<f64>, opts: &HeatmapOptions) -> Result<Png, PlotError> {
    validate(matrix, opts, "heatmap")?;
    let range = value_range(std::iter::once(matrix), opts)?;
    render(opts.size.unwrap_or(HEATMAP_SIZE), |root| {
        let body = titled(root, &opts.title, TITLE_PX)?;
        let (main, bar) = split_colorbar(&body, opts);
        let rect = draw_panel(&main, matrix, opts, "", range, true, true, TICK_PX)?;
        match bar {
            Some(bar) => {
                let x = (rect.1.0 + 24).min(bar.get_base_pixel().0 + 10);
                draw_colorbar(&body, opts, range, x, (rect.0.1, rect.1.1))
            }
            None => Ok(()),
        }
    })
}

/// Draws several matrices in a grid of `cols` columns, each under its subtitle, with one
/// colour scale (and colour bar) for all; `opts` applies to every panel and its `title` to the
/// whole figure. Axis descriptions appear on the left column and bottom row only.
///
/// # Shapes
/// `panels: P × (subtitle, [rows, cols])`; matrices may differ in shape, but tick lists in
/// `opts` must fit every one.
///
/// # Errors
/// As [`heatmap`], for any panel, and when `panels` is empty or `cols` is 0.
pub fn heatmap_grid(
    panels: &[(String, Array2<f64>)],
    cols: usize,
    opts: &HeatmapOptions,
) -> Result<Png, PlotError> {
    if panels.is_empty() || cols == 0 {
        return Err(PlotError::invalid(format!(
            "heatmap grid needs at least one panel and one column, got {} panels in {cols} columns",
            panels.len()
        )));
    }
    for (name, m) in panels {
        validate(m, opts, &format!("heatmap panel `{name}`"))?;
    }
    let range = value_range(panels.iter().map(|(_, m)| m), opts)?;
    let cols = cols.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let size = opts.size.unwrap_or_else(|| {
        let (pw, ph) = HEATMAP_PANEL_SIZE;
        let bar = if opts.colorbar {
            colorbar_width(opts)
        } else {
            0
        };
        let title = if opts.title.is_empty() { 0 } else { 40 };
        (pw * cols as u32 + bar, ph * rows as u32 + title)
    });
    render(size, |root| {
        let body = titled(root, &opts.title, TITLE_PX)?;
        let (main, bar) = split_colorbar(&body, opts);
        let (mut top, mut bottom) = (i32::MAX, i32::MIN);
        for (i, ((name, m), area)) in panels
            .iter()
            .zip(main.split_evenly((rows, cols)))
            .enumerate()
        {
            let last_row = i + cols >= panels.len();
            let first_col = i % cols == 0;
            let rect = draw_panel(&area, m, opts, name, range, last_row, first_col, 13.0)?;
            top = top.min(rect.0.1);
            bottom = bottom.max(rect.1.1);
        }
        match bar {
            Some(bar) => {
                let x = bar.get_base_pixel().0 + 10;
                draw_colorbar(&body, opts, range, x, (top, bottom))
            }
            None => Ok(()),
        }
    })
}

fn validate(m: &Array2<f64>, opts: &HeatmapOptions, what: &str) -> Result<(), PlotError> {
    let (rows, cols) = m.dim();
    if rows == 0 || cols == 0 {
        return Err(PlotError::invalid(format!(
            "{what}: matrix is empty ({rows}×{cols})"
        )));
    }
    if !m.iter().any(|v| v.is_finite()) {
        return Err(PlotError::invalid(format!("{what}: no finite value")));
    }
    for (ticks, n, axis) in [(&opts.x_ticks, cols, "x"), (&opts.y_ticks, rows, "y")] {
        if let Some(ticks) = ticks
            && ticks.len() != n
        {
            return Err(PlotError::invalid(format!(
                "{what}: {} {axis} ticks for {n} {}",
                ticks.len(),
                if axis == "x" { "columns" } else { "rows" }
            )));
        }
    }
    Ok(())
}

/// The values mapped to the ends of the colour map.
fn value_range<'m>(
    mats: impl Iterator<Item = &'m Array2<f64>>,
    opts: &HeatmapOptions,
) -> Result<(f64, f64), PlotError> {
    if let Some((lo, hi)) = opts.range {
        if lo.is_finite() && hi.is_finite() && lo < hi {
            return Ok((lo, hi));
        }
        return Err(PlotError::invalid(format!(
            "heatmap range ({lo}, {hi}) must be finite and increasing"
        )));
    }
    let (lo, hi) = mats
        .flat_map(|m| m.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    Ok(if opts.colormap.is_diverging() {
        let m = lo.abs().max(hi.abs());
        if m > 0.0 { (-m, m) } else { (-1.0, 1.0) }
    } else if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    })
}

fn split_colorbar<'a>(area: &Area<'a>, opts: &HeatmapOptions) -> (Area<'a>, Option<Area<'a>>) {
    if opts.colorbar {
        let w = area.dim_in_pixel().0;
        let (main, bar) = area.split_horizontally(w.saturating_sub(colorbar_width(opts)));
        (main, Some(bar))
    } else {
        (area.clone(), None)
    }
}

fn labels(ticks: &Option<Vec<String>>, n: usize) -> Vec<String> {
    ticks
        .clone()
        .unwrap_or_else(|| (0..n).map(|i| i.to_string()).collect())
}

/// Draws one matrix with its ticks, axis descriptions and subtitle; returns the cells'
/// rectangle in backend coordinates.
#[allow(clippy::too_many_arguments)]
fn draw_panel(
    area: &Area<'_>,
    m: &Array2<f64>,
    opts: &HeatmapOptions,
    subtitle: &str,
    (lo, hi): (f64, f64),
    show_x_label: bool,
    show_y_label: bool,
    tick_px: f64,
) -> Result<PixelRect, PlotError> {
    let (rows, cols) = m.dim();
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as f64, h as f64);
    let x_ticks = labels(&opts.x_ticks, cols);
    let y_ticks = labels(&opts.y_ticks, rows);
    let tick_h = text_size(area, "0", tick_px)?.1 as f64;
    let label_h = text_size(area, "0", LABEL_PX)?.1 as f64;
    let mut x_tick_w = 0.0_f64;
    for t in &x_ticks {
        x_tick_w = x_tick_w.max(text_size(area, t, tick_px)?.0 as f64);
    }
    let mut y_tick_w = 0.0_f64;
    for t in &y_ticks {
        y_tick_w = y_tick_w.max(text_size(area, t, tick_px)?.0 as f64);
    }
    let has_x_label = show_x_label && !opts.x_label.is_empty();
    let has_y_label = show_y_label && !opts.y_label.is_empty();

    let top = if subtitle.is_empty() {
        10.0
    } else {
        text_size(area, subtitle, SUBTITLE_PX)?.1 as f64 + 16.0
    };
    let left = 10.0 + if has_y_label { label_h + 10.0 } else { 0.0 } + y_tick_w + 8.0;
    let bottom = 10.0 + tick_h + 8.0 + if has_x_label { label_h + 8.0 } else { 0.0 };
    let avail_w = (w - left - 12.0).max(1.0);
    let avail_h = (h - top - bottom).max(1.0);
    let (mut cw, mut ch) = (avail_w / cols as f64, avail_h / rows as f64);
    if opts.square {
        cw = cw.min(ch);
        ch = cw;
    }
    let x0 = left + (avail_w - cw * cols as f64) / 2.0;
    let y0 = top + (avail_h - ch * rows as f64) / 2.0;
    let (x1, y1) = (x0 + cw * cols as f64, y0 + ch * rows as f64);
    let px = |v: f64| v.round() as i32;

    let annotate_px = (ch * 0.3).min(14.0);
    let annotate = opts.annotate && annotate_px >= 9.0 && cw >= 4.0 * annotate_px;
    for ((r, c), &v) in m.indexed_iter() {
        let color = if v.is_finite() {
            opts.colormap.color((v - lo) / (hi - lo))
        } else {
            MISSING
        };
        let (cx0, cy0) = (x0 + cw * c as f64, y0 + ch * r as f64);
        area.draw(&Rectangle::new(
            [(px(cx0), px(cy0)), (px(cx0 + cw), px(cy0 + ch))],
            color.filled(),
        ))?;
        if annotate && v.is_finite() {
            let luminance =
                0.299 * color.0 as f64 + 0.587 * color.1 as f64 + 0.114 * color.2 as f64;
            let ink = if luminance < 128.0 {
                RGBColor(255, 255, 255)
            } else {
                RGBColor(20, 20, 20)
            };
            let style = font::text(annotate_px)
                .color(&ink)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let at = (px(cx0 + cw / 2.0), px(cy0 + ch / 2.0));
            area.draw(&Text::new(format!("{v:.2}"), at, style))?;
        }
    }
    area.draw(&Rectangle::new(
        [(px(x0), px(y0)), (px(x1), px(y1))],
        RGBColor(120, 120, 120).stroke_width(1),
    ))?;

    if !subtitle.is_empty() {
        let style = font::text(SUBTITLE_PX).pos(Pos::new(HPos::Center, VPos::Top));
        area.draw(&Text::new(
            subtitle.to_string(),
            (px((x0 + x1) / 2.0), 6),
            style,
        ))?;
    }
    let x_stride = ((x_tick_w + 8.0) / cw).ceil().max(1.0) as usize;
    let x_style = font::text(tick_px).pos(Pos::new(HPos::Center, VPos::Top));
    for (c, t) in x_ticks.iter().enumerate().step_by(x_stride) {
        let at = (px(x0 + cw * (c as f64 + 0.5)), px(y1 + 6.0));
        area.draw(&Text::new(t.clone(), at, x_style.clone()))?;
    }
    let y_stride = ((tick_h + 4.0) / ch).ceil().max(1.0) as usize;
    let y_style = font::text(tick_px).pos(Pos::new(HPos::Right, VPos::Center));
    for (r, t) in y_ticks.iter().enumerate().step_by(y_stride) {
        let at = (px(x0 - 6.0), px(y0 + ch * (r as f64 + 0.5)));
        area.draw(&Text::new(t.clone(), at, y_style.clone()))?;
    }
    if has_x_label {
        let style = font::text(LABEL_PX).pos(Pos::new(HPos::Center, VPos::Top));
        let at = (px((x0 + x1) / 2.0), px(y1 + 6.0 + tick_h + 8.0));
        area.draw(&Text::new(opts.x_label.clone(), at, style))?;
    }
    if has_y_label {
        let style = font::text(LABEL_PX)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let at = (10, px((y0 + y1) / 2.0));
        area.draw(&Text::new(opts.y_label.clone(), at, style))?;
    }
    let (bx, by) = area.get_base_pixel();
    Ok(((px(x0) + bx, px(y0) + by), (px(x1) + bx, px(y1) + by)))
}

/// Width reserved on the right for the colour bar, its ticks and its label.
fn colorbar_width(opts: &HeatmapOptions) -> u32 {
    if opts.colorbar_label.is_empty() {
        COLORBAR_W
    } else {
        COLORBAR_W + 26
    }
}

/// A vertical colour scale with its left edge at `x` and spanning `top..bottom` (backend
/// coordinates), with round-number ticks and the options' label along its right side.
fn draw_colorbar(
    area: &Area<'_>,
    opts: &HeatmapOptions,
    (lo, hi): (f64, f64),
    x: i32,
    (top, bottom): (i32, i32),
) -> Result<(), PlotError> {
    let (bx, by) = area.get_base_pixel();
    let (top, bottom) = (top - by, bottom - by);
    let (x0, x1) = (x - bx, x - bx + 20);
    let span = (bottom - top).max(1) as f64;
    for y in top..bottom {
        let t = (bottom - y) as f64 / span;
        area.draw(&Rectangle::new(
            [(x0, y), (x1, y + 1)],
            opts.colormap.color(t).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))?;
    let style = font::text(13.0).pos(Pos::new(HPos::Left, VPos::Center));
    let mut widest = 0;
    for value in nice_ticks(lo, hi) {
        let label = fmt_axis_tick(value, axis_scale(lo, hi));
        widest = widest.max(text_size(area, &label, 13.0)?.0 as i32);
        let y = bottom - ((value - lo) / (hi - lo) * span).round() as i32;
        area.draw(&Rectangle::new(
            [(x1, y), (x1 + 4, y + 1)],
            RGBColor(90, 90, 90).filled(),
        ))?;
        area.draw(&Text::new(label, (x1 + 7, y), style.clone()))?;
    }
    if !opts.colorbar_label.is_empty() {
        let label = font::text(TICK_PX)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let at = (x1 + 7 + widest + 24, (top + bottom) / 2);
        area.draw(&Text::new(opts.colorbar_label.clone(), at, label))?;
    }
    Ok(())
}

/// Multiples of a 1-2-5 step that cut `[lo, hi]` into about four intervals.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}
