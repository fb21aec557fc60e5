//! The bundled font: DejaVu Sans, registered with plotters as `"sans-serif"`.
//!
//! plotters' `ab_glyph` text renderer knows only the fonts registered with it and never looks
//! at the system's, so every figure renders the same on a machine with no fonts installed. The
//! file comes from Debian's `fonts-dejavu-core` package; its licence (Bitstream Vera, with
//! DejaVu's changes in the public domain) is `assets/fonts/LICENSE-DejaVu.txt` next to it.

use std::sync::OnceLock;

use plotters::style::{FontStyle, IntoFont, RGBColor, TextStyle};

use super::PlotError;

/// The family name every figure asks for. plotters maps `FontFamily::SansSerif` to it.
pub const FAMILY: &str = "sans-serif";

/// DejaVu Sans (Book), the TrueType file bundled in the crate.
pub const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Text colour: a soft black, darker than any palette colour.
pub(crate) const TEXT: RGBColor = RGBColor(30, 30, 30);

/// Registers [`DEJAVU_SANS`] as [`FAMILY`] the first time it is called; later calls only
/// report the first outcome.
///
/// Every figure builder calls it, so notebooks need not. Call it yourself before drawing with
/// plotters directly.
pub fn ensure_registered() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// The bundled font at `size` pixels in the text colour.
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&TEXT)
}
