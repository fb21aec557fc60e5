//! The drawing surface shared by every figure: an RGB buffer behind plotters' bitmap backend (with
//! its own text path, [`GlyphBackend`]),
//! encoded to [`Png`] once drawing is done, plus the typography every figure uses.

use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, IntoDrawingArea, WHITE};

use super::text::GlyphBackend;
use super::{PlotError, Png, font};

/// A pixel-addressed region of the figure being drawn.
pub(crate) type Area<'a> = DrawingArea<GlyphBackend<'a>, Shift>;

/// A pixel rectangle `((x0, y0), (x1, y1))` in backend (whole-image) coordinates.
pub(crate) type PixelRect = ((i32, i32), (i32, i32));

/// Font size of a figure's title, in pixels.
pub(crate) const TITLE_PX: f64 = 24.0;
/// Font size of a panel's subtitle.
pub(crate) const SUBTITLE_PX: f64 = 17.0;
/// Font size of axis descriptions.
pub(crate) const LABEL_PX: f64 = 18.0;
/// Font size of tick labels and legend entries.
pub(crate) const TICK_PX: f64 = 15.0;

/// Largest accepted side, in pixels: keeps a typo from allocating gigabytes.
const MAX_SIDE: u32 = 8192;

/// Draws a `width × height` figure on white with `draw` and encodes it.
pub(crate) fn render(
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), PlotError>,
) -> Result<Png, PlotError> {
    if !(64..=MAX_SIDE).contains(&width) || !(64..=MAX_SIDE).contains(&height) {
        return Err(PlotError::invalid(format!(
            "figure size {width}×{height} is outside 64..={MAX_SIDE} pixels per side"
        )));
    }
    font::ensure_registered()?;
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = GlyphBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Png::encode_rgb(&rgb, width, height)
}

/// Draws `title` centred at the top of `area` and returns the area below it; an empty title
/// takes no room.
pub(crate) fn titled<'a>(area: &Area<'a>, title: &str, size: f64) -> Result<Area<'a>, PlotError> {
    if title.is_empty() {
        Ok(area.clone())
    } else {
        Ok(area.titled(title, font::text(size))?)
    }
}

/// A short tick label: `0`, `0.25`, `12k`, `12.5k`, `2.5e6`, `1e-5`, without floating-point
/// noise; up to four significant digits, so neighbouring ticks never print the same label. For a
/// single value; the ticks of one linear axis go through [`fmt_axis_tick`].
pub(crate) fn fmt_tick(v: f64) -> String {
    fmt_axis_tick(v, v.abs())
}

/// A tick label on a linear axis whose largest magnitude is `scale`: every label of the axis uses
/// the same notation (`0.0002` beside `0.001`, not `2e-4`) and the decimals that give `scale`
/// four significant digits. Scientific notation only when the whole axis is below 1e-3 or reaches 1e6.
pub(crate) fn fmt_axis_tick(v: f64, scale: f64) -> String {
    let a = v.abs();
    if a < 1e-12 || a < scale * 1e-9 {
        "0".to_string()
    } else if !(1e-3..1e6).contains(&scale) {
        let s = format!("{v:.3e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{exponent}", trim_decimals(mantissa))
    } else if scale >= 1e4 && (v / 100.0).fract() == 0.0 {
        format!("{}k", trim_decimals(&format!("{:.1}", v / 1000.0)))
    } else {
        let decimals = (3 - scale.log10().floor() as i32).clamp(0, 8) as usize;
        trim_decimals(&format!("{v:.decimals$}")).to_string()
    }
}

/// The largest magnitude on an axis from `lo` to `hi`, for [`fmt_axis_tick`].
pub(crate) fn axis_scale(lo: f64, hi: f64) -> f64 {
    lo.abs().max(hi.abs())
}

/// `2.500` → `2.5`, `3.000` → `3`; integers pass through.
fn trim_decimals(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Text width and height in pixels at `size`, as the backend will lay it out.
pub(crate) fn text_size(area: &Area<'_>, text: &str, size: f64) -> Result<(u32, u32), PlotError> {
    Ok(area.estimate_text_size(text, &font::text(size))?)
}

#[cfg(test)]
mod tests {
    use super::{axis_scale, fmt_axis_tick, fmt_tick};

    #[test]
    fn tick_labels_are_short_and_exact() {
        let cases = [
            (0.0, "0"),
            (0.25, "0.25"),
            (1.0 / 3.0, "0.3333"),
            (200.0, "200"),
            (12_000.0, "12k"),
            (12_500.0, "12.5k"),
            (12_345.0, "12345"),
            (-3e6, "-3e6"),
            (2.5e6, "2.5e6"),
            (1.25e8, "1.25e8"),
            (1e-5, "1e-5"),
            (2.5e-4, "2.5e-4"),
        ];
        for (v, want) in cases {
            assert_eq!(fmt_tick(v), want, "tick {v}");
        }
    }

    #[test]
    fn one_axis_uses_one_notation() {
        let scale = axis_scale(0.0, 1e-3);
        let labels: Vec<String> = (0..=5)
            .map(|i| fmt_axis_tick(f64::from(i) * 2e-4, scale))
            .collect();
        assert_eq!(
            labels,
            ["0", "0.0002", "0.0004", "0.0006", "0.0008", "0.001"]
        );
        let scale = axis_scale(0.0, 12_000.0);
        let labels: Vec<String> = (0..=3)
            .map(|i| fmt_axis_tick(f64::from(i) * 4000.0, scale))
            .collect();
        assert_eq!(labels, ["0", "4k", "8k", "12k"]);
        let scale = axis_scale(0.0, 5e-4);
        assert_eq!(fmt_axis_tick(1e-4, scale), "1e-4");
        assert_eq!(fmt_axis_tick(1.0 / 3.0, 1.0), "0.333");
    }

    #[test]
    fn neighbouring_large_ticks_get_distinct_labels() {
        let labels: Vec<String> = (4..=12).map(|i| fmt_tick(f64::from(i) * 0.25e6)).collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique, labels, "{labels:?}");
    }
}
