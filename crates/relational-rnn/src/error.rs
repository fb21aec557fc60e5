//! Errors a user can cause: invalid configurations. (Shape mismatches inside the tape are
//! programmer errors and panic with both shapes in the message instead.)
//!
//! Every size in a configuration (slots, widths, lengths, counts, batch and set sizes) is at most
//! [`MAX_SIZE`] = 2³² − 1, so a sum or product of two sizes never wraps a 64-bit integer. That
//! limit is about arithmetic only; whether a run fits in memory is a separate check against the
//! machine ([`crate::memory`]).

/// The largest value any size in a configuration may take: 2³² − 1.
pub const MAX_SIZE: usize = u32::MAX as usize;

/// A configuration value is out of its valid range.
///
/// The message names the field, the rule and the offending value, e.g.
/// ``invalid `num_heads`: must be at least 1, got 0``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct ConfigError {
    /// The configuration field at fault (`mem_slots`, `lr`, …).
    pub field: String,
    /// What is wrong with it, including the value that was given.
    pub message: String,
}

impl ConfigError {
    /// Creates an error for `field` with a human-readable `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Returns `Ok(())` when `min <= value <= MAX_SIZE`, otherwise an error naming `field`.
    pub fn require_size(field: &str, value: usize, min: usize) -> Result<(), Self> {
        if value < min {
            Err(Self::new(
                field,
                format!("must be at least {min}, got {value}"),
            ))
        } else if value > MAX_SIZE {
            Err(Self::new(
                field,
                format!("must be at most {MAX_SIZE} (2^32 - 1), got {value}"),
            ))
        } else {
            Ok(())
        }
    }

    /// Returns `Ok(())` when `value` is finite, otherwise an error naming `field`.
    pub fn require_finite(field: &str, value: f64) -> Result<(), Self> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(Self::new(field, format!("must be finite, got {value}")))
        }
    }

    /// Returns `Ok(())` when `value > 0` and finite, otherwise an error naming `field`.
    pub fn require_positive(field: &str, value: f64) -> Result<(), Self> {
        if value > 0.0 && value.is_finite() {
            Ok(())
        } else {
            Err(Self::new(
                field,
                format!("must be a positive finite number, got {value}"),
            ))
        }
    }
}
