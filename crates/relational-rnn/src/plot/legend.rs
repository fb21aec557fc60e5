//! Legends: a boxed list of swatches and labels, drawn to the right of the plot (the default,
//! never covering data) or inside one of its corners on a white background.

use plotters::element::{DashedPathElement, PathElement, Rectangle, Text};
use plotters::prelude::{Color, RGBColor, WHITE};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::canvas::{Area, PixelRect, TICK_PX, text_size};
use super::font;

/// Where a figure puts its legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPosition {
    /// In a column right of the plot, top-aligned with it: never covers data.
    #[default]
    Right,
    /// Inside the plot, upper-left corner.
    UpperLeft,
    /// Inside the plot, upper-right corner.
    UpperRight,
    /// Inside the plot, lower-left corner.
    LowerLeft,
    /// Inside the plot, lower-right corner (where a rising accuracy curve leaves room).
    LowerRight,
    /// No legend.
    Hidden,
}

/// How an entry's item looks.
pub(crate) enum Swatch {
    /// A solid line, over a translucent box when the series has a band.
    Line { color: RGBColor, band: bool },
    /// A dashed reference line.
    Dashed { color: RGBColor },
    /// A filled box, for bars.
    Patch { color: RGBColor },
}

/// One legend row.
pub(crate) struct Entry {
    pub label: String,
    pub swatch: Swatch,
}

const PAD: i32 = 8;
const ROW: i32 = 24;
const SWATCH: i32 = 30;
const GAP: i32 = 8;
/// Distance from the plot's edge to an inside legend, and from the plot to a right legend.
const INSET: i32 = 10;

/// Width and height of the legend box for `entries`.
fn box_size(area: &Area<'_>, entries: &[Entry]) -> Result<(i32, i32), PlotError> {
    let mut text_w = 0;
    for entry in entries {
        text_w = text_w.max(text_size(area, &entry.label, TICK_PX)?.0 as i32);
    }
    Ok((
        2 * PAD + SWATCH + GAP + text_w,
        2 * PAD + ROW * entries.len() as i32,
    ))
}

/// Splits `area` into the plot's part and, for [`LegendPosition::Right`] with entries, the
/// legend column on its right.
pub(crate) fn reserve<'a>(
    area: &Area<'a>,
    entries: &[Entry],
    position: LegendPosition,
) -> Result<(Area<'a>, Option<Area<'a>>), PlotError> {
    if entries.is_empty() || position != LegendPosition::Right {
        return Ok((area.clone(), None));
    }
    let (w, _) = box_size(area, entries)?;
    let total = area.dim_in_pixel().0 as i32;
    let column = (w + INSET + PAD).min(total / 2);
    let (plot, legend) = area.split_horizontally(total - column);
    Ok((plot, Some(legend)))
}

/// Draws the legend: in `column` when one was reserved, otherwise inside `plot`, the plot's
/// pixel rectangle in backend coordinates `((x0, y0), (x1, y1))`, at `position`.
pub(crate) fn draw(
    area: &Area<'_>,
    entries: &[Entry],
    position: LegendPosition,
    column: Option<&Area<'_>>,
    plot: PixelRect,
) -> Result<(), PlotError> {
    if entries.is_empty() || position == LegendPosition::Hidden {
        return Ok(());
    }
    let (w, h) = box_size(area, entries)?;
    let ((x0, y0), (x1, y1)) = plot;
    let (x, y) = match (position, column) {
        (_, Some(column)) => (column.get_base_pixel().0 + INSET, y0),
        (LegendPosition::UpperLeft, None) => (x0 + INSET, y0 + INSET),
        (LegendPosition::LowerLeft, None) => (x0 + INSET, y1 - INSET - h),
        (LegendPosition::LowerRight, None) => (x1 - INSET - w, y1 - INSET - h),
        _ => (x1 - INSET - w, y0 + INSET),
    };
    let (bx, by) = area.get_base_pixel();
    let (x, y) = (x - bx, y - by);
    area.draw(&Rectangle::new([(x, y), (x + w, y + h)], WHITE.filled()))?;
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        RGBColor(190, 190, 190).stroke_width(1),
    ))?;
    let label_style = font::text(TICK_PX).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in entries.iter().enumerate() {
        let cy = y + PAD + ROW * i as i32 + ROW / 2;
        let (sx0, sx1) = (x + PAD, x + PAD + SWATCH);
        match entry.swatch {
            Swatch::Line { color, band } => {
                if band {
                    area.draw(&Rectangle::new(
                        [(sx0, cy - 7), (sx1, cy + 7)],
                        color.mix(0.2).filled(),
                    ))?;
                }
                area.draw(&PathElement::new(
                    vec![(sx0, cy), (sx1, cy)],
                    color.stroke_width(3),
                ))?;
            }
            Swatch::Dashed { color } => {
                area.draw(&DashedPathElement::new(
                    vec![(sx0, cy), (sx1, cy)],
                    7,
                    4,
                    color.stroke_width(2),
                ))?;
            }
            Swatch::Patch { color } => {
                area.draw(&Rectangle::new(
                    [(sx0 + 4, cy - 7), (sx1 - 4, cy + 7)],
                    color.filled(),
                ))?;
            }
        }
        area.draw(&Text::new(
            entry.label.clone(),
            (sx1 + GAP, cy),
            label_style.clone(),
        ))?;
    }
    Ok(())
}
