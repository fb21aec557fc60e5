//! [`Png`]: an encoded figure in memory, savable to disk and displayable in evcxr notebooks.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine;

use super::PlotError;

/// A PNG image held in memory: what every figure builder returns.
///
/// A notebook cell whose last expression is a `Png` shows the picture, because evcxr calls
/// [`Png::evcxr_display`] on it. Only one image per cell survives, so compose several charts
/// into one `Png` with [`panels`](super::panels) or [`heatmap_grid`](super::heatmap_grid).
#[derive(Clone, PartialEq, Eq)]
pub struct Png {
    /// The encoded file, starting with the PNG signature.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Png {
    /// Encodes an 8-bit RGB buffer (`width · height · 3` bytes, row-major) as PNG.
    pub(crate) fn encode_rgb(rgb: &[u8], width: u32, height: u32) -> Result<Self, PlotError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
        Ok(Self {
            bytes,
            width,
            height,
        })
    }

    /// Writes the PNG to `path`, creating missing parent directories.
    ///
    /// The bytes go to a temporary file in the same directory that is then renamed over `path`,
    /// so an interrupted save leaves either the old file or the new one, never half a file.
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` has no file name", path.display()),
            )
        })?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = match dir {
            Some(dir) => dir.join(tmp_name),
            None => tmp_name.into(),
        };
        let written = std::fs::File::create(&tmp).and_then(|mut file| {
            file.write_all(&self.bytes)?;
            file.sync_all()
        });
        let result = written.and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            // Best effort: the temporary file is garbage whatever went wrong.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The PNG bytes in standard base64 (with padding), e.g. for a `data:image/png;base64,` URL.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }

    /// Shows the image in a Jupyter notebook running the evcxr kernel (same as
    /// [`evcxr_display`](Self::evcxr_display)).
    ///
    /// Prefer `figure.show()` over ending a cell with the bare value: evcxr only calls
    /// `evcxr_display` on a final expression when the cell compiles at its first attempt, and falls
    /// back to printing `Debug` otherwise (for instance when it had to fix up a new variable's type).
    pub fn show(&self) {
        self.evcxr_display();
    }

    /// Prints the image in evcxr's rich-output protocol, so that Jupyter shows it.
    ///
    /// evcxr calls this on the value of a cell's last expression.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT",
            self.to_base64()
        );
    }
}

/// Shows the size instead of dumping the bytes.
impl fmt::Debug for Png {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Png")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .finish()
    }
}
