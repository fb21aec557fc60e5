//! Publication-quality figures as in-memory PNG, for notebooks and reports.
//!
//! Every builder takes plain data (`Vec<f64>`, slices, [`ndarray::Array2`]), never a model, and
//! returns a [`Png`]: `save` it, or end a notebook cell with it and evcxr shows the picture.
//!
//! | figure | builder | default size |
//! |---|---|---|
//! | curves, mean ± std over seeds, reference lines | [`LineChart`] with [`Series`], [`RefLine`] | 900 × 500 |
//! | several line charts in one image | [`panels`] | 650 × 450 per panel |
//! | bars with error bars, grouped (category × model) | [`BarChart`] with [`BarGroup`], [`Bar`] | 900 × 500 |
//! | a matrix (attention weights, memory) | [`heatmap`] with [`HeatmapOptions`] | 720 × 560 |
//! | many matrices with one colour scale | [`heatmap_grid`] | 330 × 300 per panel |
//!
//! Items are coloured from a tab10 [`palette`] by index, so a model keeps its colour across
//! figures when given the same index. Bad input (empty or mismatched series, an empty matrix,
//! data without a finite value) is a [`PlotError`], never a panic.
//!
//! Drawing uses plotters on an RGB buffer and the `png` crate to encode it. Text uses DejaVu
//! Sans, bundled in `assets/fonts/` with its licence (`LICENSE-DejaVu.txt`, Bitstream Vera
//! licence, from Debian's `fonts-dejavu-core`) and registered with plotters on first use (see
//! [`font`]), so figures need no system font; glyphs are placed by our own text path (`text.rs`),
//! since plotters' drops each glyph's side bearing.
//!
//! ```no_run
//! use relational_rnn::plot::{LineChart, Series};
//!
//! let runs = vec![vec![1.0, 0.6, 0.4], vec![1.2, 0.7, 0.3]];
//! let chart = LineChart::new("Training loss", "step", "loss")
//!     .with_series(Series::mean_std("RMC", vec![0.0, 100.0, 200.0], &runs)?.with_color(1))
//!     .with_hline("chance", 1.386);
//! chart.render()?.save("target/loss.png")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bar;
mod canvas;
mod colormap;
mod error;
pub mod font;
mod heatmap;
mod legend;
mod line;
pub mod palette;
mod panels;
mod png;
mod text;

pub use bar::{Bar, BarChart, BarGroup};
pub use colormap::Colormap;
pub use error::PlotError;
pub use heatmap::{HEATMAP_PANEL_SIZE, HEATMAP_SIZE, HeatmapOptions, heatmap, heatmap_grid};
pub use legend::LegendPosition;
pub use line::{LineChart, RefLine, Series};
pub use panels::{PANEL_SIZE, panels, panels_sized};
pub use png::Png;
