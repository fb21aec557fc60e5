//! Several line charts composed into one image: a notebook cell keeps only its last image, so
//! "loss | accuracy" side by side must be a single PNG.

use super::canvas::render;
use super::{LineChart, PlotError, Png};

/// Size of one panel in [`panels`]: two side by side make a 1300-pixel-wide image that a
/// notebook shrinks to its width with text still readable.
pub const PANEL_SIZE: (u32, u32) = (650, 450);

/// Lays `charts` out row by row in `cols` columns, each panel [`PANEL_SIZE`]; each chart keeps
/// its own title, axes and legend, and its own `size` is ignored.
///
/// # Errors
/// [`PlotError::InvalidInput`] when `charts` is empty, `cols` is 0, or any chart is invalid.
pub fn panels(charts: &[LineChart], cols: usize) -> Result<Png, PlotError> {
    panels_sized(charts, cols, PANEL_SIZE)
}

/// [`panels`] with an explicit `(width, height)` per panel.
///
/// # Errors
/// As [`panels`].
pub fn panels_sized(
    charts: &[LineChart],
    cols: usize,
    panel: (u32, u32),
) -> Result<Png, PlotError> {
    if charts.is_empty() || cols == 0 {
        return Err(PlotError::invalid(format!(
            "panels need at least one chart and one column, got {} charts in {cols} columns",
            charts.len()
        )));
    }
    for chart in charts {
        chart.validate()?;
    }
    let cols = cols.min(charts.len());
    let rows = charts.len().div_ceil(cols);
    let size = (panel.0 * cols as u32, panel.1 * rows as u32);
    render(size, |root| {
        for (chart, area) in charts.iter().zip(root.split_evenly((rows, cols))) {
            chart.draw_into(&area)?;
        }
        Ok(())
    })
}
