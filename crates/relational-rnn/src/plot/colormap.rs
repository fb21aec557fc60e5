//! Colour maps for heatmaps: value in `[0, 1]` → colour, by linear interpolation between
//! anchor colours taken from matplotlib's maps.

use plotters::style::RGBColor;

/// A continuous colour map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Perceptually uniform dark purple → yellow: the default, good for attention weights.
    #[default]
    Viridis,
    /// White → dark blue: weights on a light background.
    Blues,
    /// White → black.
    Greys,
    /// Diverging blue → white → red (matplotlib's `RdBu_r`): signed values such as memory
    /// contents, with zero in white. Its automatic range is symmetric around zero.
    RdBu,
}

impl Colormap {
    /// The colour at `t`, clamped to `[0, 1]`.
    pub fn color(self, t: f64) -> RGBColor {
        let anchors = self.anchors();
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let pos = t * (anchors.len() - 1) as f64;
        let i = (pos.floor() as usize).min(anchors.len() - 2);
        let f = pos - i as f64;
        let (a, b) = (anchors[i], anchors[i + 1]);
        let mix = |x: u8, y: u8| (x as f64 + f * (y as f64 - x as f64)).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Whether the map is centred on zero.
    pub fn is_diverging(self) -> bool {
        self == Self::RdBu
    }

    fn anchors(self) -> &'static [(u8, u8, u8)] {
        match self {
            Self::Viridis => &[
                (68, 1, 84),
                (70, 50, 127),
                (54, 92, 141),
                (39, 127, 143),
                (31, 162, 136),
                (74, 194, 110),
                (160, 219, 57),
                (254, 232, 37),
            ],
            Self::Blues => &[
                (247, 251, 255),
                (198, 219, 239),
                (107, 174, 214),
                (33, 113, 181),
                (8, 48, 107),
            ],
            Self::Greys => &[(255, 255, 255), (189, 189, 189), (99, 99, 99), (0, 0, 0)],
            Self::RdBu => &[
                (5, 48, 97),
                (67, 147, 195),
                (247, 247, 247),
                (214, 96, 77),
                (103, 0, 31),
            ],
        }
    }
}
