//! Colours: a tab10-like qualitative palette, indexed so that one model keeps one colour.
//!
//! Figures colour their items by index into [`TAB10`] (cycling after ten). By default the index
//! is the item's position; pass the same explicit index for the same model in every figure
//! (`Series::with_color`, `Bar::with_color`) and LSTM stays blue, RMC orange, throughout the
//! notebook.

use plotters::style::RGBColor;

/// The ten colours of matplotlib's `tab10` (Tableau 10), in order.
pub const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The palette colour for `index`, cycling through [`TAB10`].
pub fn color(index: usize) -> RGBColor {
    TAB10[index % TAB10.len()]
}

/// Neutral colours for reference lines (chance, plateau), so they never look like a model.
pub fn reference(index: usize) -> RGBColor {
    const GREYS: [RGBColor; 3] = [
        RGBColor(40, 40, 40),
        RGBColor(175, 175, 175),
        RGBColor(105, 105, 105),
    ];
    GREYS[index % GREYS.len()]
}
