//! The one data format every task produces and every model consumes.

use ndarray::{Array2, Array3, s};

/// A batch of sequences, time-major.
///
/// Every task returns this form, whether it answers once at the end (Nth-farthest, tracking,
/// pair compare, bAbI: `mask` is true only on the last step) or at many steps (sorting: true on the
/// output steps). Losses and accuracies are averaged over the masked entries only.
///
/// # Shapes
/// `inputs: [T, B, F]`, `targets: [T, B]` (class index; any value where `mask` is false),
/// `mask: [T, B]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Input features per step: `[T, B, F]`.
    pub inputs: Array3<f32>,
    /// Target class per step: `[T, B]`; only meaningful where `mask` is true.
    pub targets: Array2<usize>,
    /// Which steps carry a loss: `[T, B]`.
    pub mask: Array2<bool>,
}

impl Batch {
    /// Checks that the three arrays agree on `T` and `B`.
    ///
    /// # Panics
    /// With all three shapes in the message when they disagree (a generator bug).
    #[track_caller]
    pub fn new(inputs: Array3<f32>, targets: Array2<usize>, mask: Array2<bool>) -> Self {
        let (t, b, _) = inputs.dim();
        assert!(
            targets.dim() == (t, b) && mask.dim() == (t, b),
            "batch shapes disagree: inputs {:?}, targets {:?}, mask {:?}",
            inputs.shape(),
            targets.shape(),
            mask.shape()
        );
        Self {
            inputs,
            targets,
            mask,
        }
    }

    /// Sequence length `T`.
    pub fn steps(&self) -> usize {
        self.inputs.dim().0
    }

    /// Batch size `B`.
    pub fn batch_size(&self) -> usize {
        self.inputs.dim().1
    }

    /// Input width `F`.
    pub fn input_size(&self) -> usize {
        self.inputs.dim().2
    }

    /// Splits the batch along `B` into consecutive batches of at most `max_batch` sequences
    /// (for evaluating a large test set in bounded memory).
    ///
    /// # Panics
    /// If `max_batch` is 0.
    #[track_caller]
    pub fn chunks(&self, max_batch: usize) -> Vec<Batch> {
        assert!(max_batch > 0, "chunks of size 0");
        (0..self.batch_size())
            .step_by(max_batch)
            .map(|start| {
                let end = (start + max_batch).min(self.batch_size());
                Batch {
                    inputs: self.inputs.slice(s![.., start..end, ..]).to_owned(),
                    targets: self.targets.slice(s![.., start..end]).to_owned(),
                    mask: self.mask.slice(s![.., start..end]).to_owned(),
                }
            })
            .collect()
    }

    /// Steps that carry a loss for at least one sequence, in order.
    pub fn loss_steps(&self) -> Vec<usize> {
        (0..self.steps())
            .filter(|&t| self.mask.row(t).iter().any(|&m| m))
            .collect()
    }
}
