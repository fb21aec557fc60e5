//! Text drawn glyph by glyph at its true position: the bitmap backend with its text path replaced.
//!
//! plotters 0.3.7's `ab_glyph` renderer places each glyph's outline at the pen position without
//! the glyph's left side bearing, so letters with a wide bearing sit too far left and words look
//! unevenly spaced ("RM C", "con stant"). [`GlyphBackend`] delegates everything to
//! [`BitMapBackend`] except text, which it lays out with `ab_glyph` itself: pen advance and
//! kerning between glyphs, each outline drawn inside its own pixel bounds.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use plotters_bitmap::{BitMapBackend, BitMapBackendError};

use super::font::DEJAVU_SANS;

/// [`BitMapBackend`] with correctly spaced text in the bundled font (whatever family a style
/// names: the figures use one font).
pub(crate) struct GlyphBackend<'a> {
    inner: BitMapBackend<'a>,
}

impl<'a> GlyphBackend<'a> {
    /// Draws into an RGB buffer of `width · height · 3` bytes.
    pub(crate) fn with_buffer(rgb: &'a mut [u8], size: (u32, u32)) -> Self {
        Self {
            inner: BitMapBackend::with_buffer(rgb, size),
        }
    }
}

/// The bundled font, parsed once.
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(DEJAVU_SANS).expect("the bundled font parses"))
}

/// One laid-out line: each glyph's coverage pixels relative to the box's top left, and the box
/// (advance width, ascent − descent).
struct Layout {
    pixels: Vec<(i32, i32, f32)>,
    width: i32,
    height: i32,
}

/// Lays out `text` at `size` pixels (the font's ascent − descent), baseline at the ascent.
fn layout(text: &str, size: f64, with_pixels: bool) -> Layout {
    let font = font().as_scaled(PxScale::from(size as f32));
    let mut pixels = Vec::new();
    let mut pen = 0.0f32;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(prev) = previous {
            pen += font.kern(prev, id);
        }
        previous = Some(id);
        if with_pixels {
            let glyph = id.with_scale_and_position(font.scale(), point(pen, font.ascent()));
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds(); // includes the side bearing
                outline.draw(|x, y, coverage| {
                    pixels.push((
                        bounds.min.x as i32 + x as i32,
                        bounds.min.y as i32 + y as i32,
                        coverage,
                    ));
                });
            }
        }
        pen += font.h_advance(id);
    }
    Layout {
        pixels,
        width: pen.ceil() as i32,
        height: (font.ascent() - font.descent()).ceil() as i32,
    }
}

impl DrawingBackend for GlyphBackend<'_> {
    type ErrorType = BitMapBackendError;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let line = layout(text, style.size(), true);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -line.width / 2,
            HPos::Right => -line.width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -line.height / 2,
            VPos::Bottom => -line.height,
        };
        let transform = style.transform();
        for (x, y, coverage) in line.pixels {
            let (x, y) = transform.transform(x + dx, y + dy);
            let alpha = color.alpha * f64::from(coverage.clamp(0.0, 1.0));
            self.inner.draw_pixel(
                (pos.0 + x, pos.1 + y),
                BackendColor {
                    alpha,
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let line = layout(text, style.size(), false);
        Ok((line.width.max(0) as u32, line.height.max(0) as u32))
    }
}

#[cfg(test)]
mod tests {
    use plotters::style::{IntoFont, RGBColor, TextStyle};

    use super::*;
    use crate::plot::font;

    const SIDE: u32 = 200;

    fn black(size: f64) -> TextStyle<'static> {
        font::ensure_registered().expect("the font registers");
        (font::FAMILY, size).into_font().color(&RGBColor(0, 0, 0))
    }

    /// The leftmost column with ink after `draw` on a white square.
    fn first_ink_column(draw: impl FnOnce(&mut [u8])) -> usize {
        let side = SIDE as usize;
        let mut rgb = vec![255u8; side * side * 3];
        draw(&mut rgb);
        (0..side)
            .find(|&x| (0..side).any(|y| rgb[(y * side + x) * 3] < 128))
            .expect("some ink")
    }

    /// A glyph's ink starts at its left side bearing (about 9 px for "l" at 100 px); plotters'
    /// own text path puts it at the pen position, which this test would catch.
    #[test]
    fn a_glyph_starts_at_its_side_bearing() {
        let scaled = font().as_scaled(PxScale::from(100.0));
        let bearing = scaled.h_side_bearing(scaled.glyph_id('l'));
        assert!(
            bearing > 5.0,
            "the test needs a visible bearing, got {bearing}"
        );
        let ours = first_ink_column(|rgb| {
            let mut backend = GlyphBackend::with_buffer(rgb, (SIDE, SIDE));
            backend
                .draw_text("l", &black(100.0), (0, 10))
                .expect("drawn");
        });
        assert!(
            (ours as f32 - bearing).abs() <= 1.0,
            "ink starts at {ours}, the bearing is {bearing}"
        );
        let theirs = first_ink_column(|rgb| {
            let mut backend = BitMapBackend::with_buffer(rgb, (SIDE, SIDE));
            backend
                .draw_text("l", &black(100.0), (0, 10))
                .expect("drawn");
        });
        assert!(
            (theirs as f32 - bearing).abs() > 3.0,
            "plotters' text path now keeps the bearing (ink at {theirs}): GlyphBackend can go"
        );
    }

    /// The estimated size is the pen's advance (with kerning) and the font's line height.
    #[test]
    fn the_estimate_is_the_advance_and_the_line_height() {
        let mut rgb = vec![255u8; 64 * 64 * 3];
        let backend = GlyphBackend::with_buffer(&mut rgb, (64, 64));
        let (w, h) = backend
            .estimate_text_size("AVATAR", &black(20.0))
            .expect("estimated");
        let scaled = font().as_scaled(PxScale::from(20.0));
        let ids: Vec<_> = "AVATAR".chars().map(|c| scaled.glyph_id(c)).collect();
        let advance: f32 = ids.iter().map(|&id| scaled.h_advance(id)).sum::<f32>()
            + ids.windows(2).map(|p| scaled.kern(p[0], p[1])).sum::<f32>();
        assert_eq!(w, advance.ceil() as u32);
        assert_eq!(h, (scaled.ascent() - scaled.descent()).ceil() as u32);
    }
}
