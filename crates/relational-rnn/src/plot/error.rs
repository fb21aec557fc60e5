//! The one error type of the plotting module.

use plotters::drawing::DrawingAreaErrorKind;

/// Why a figure could not be produced.
///
/// Bad input (an empty series, mismatched lengths, data with no finite value) is reported as
/// [`PlotError::InvalidInput`] before anything is drawn; the other variants wrap failures of the
/// drawing backend, the PNG encoder or the bundled font.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlotError {
    /// The data or options cannot be drawn; the message says which item and why.
    #[error("invalid plot input: {0}")]
    InvalidInput(String),
    /// plotters failed while drawing.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    /// The bundled font could not be registered with plotters.
    #[error("the bundled DejaVu Sans font could not be registered")]
    Font,
}

impl PlotError {
    /// Shorthand for [`PlotError::InvalidInput`].
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Self::Draw(e.to_string())
    }
}

impl From<png::EncodingError> for PlotError {
    fn from(e: png::EncodingError) -> Self {
        Self::Encode(e.to_string())
    }
}
