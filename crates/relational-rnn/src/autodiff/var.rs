//! The handle to a value on the tape.

/// A value on the tape: an index into its [`Graph`](super::Graph). Cheap to copy; only meaningful
/// for the graph that made it (and only until that graph is [`clear`](super::Graph::clear)ed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) usize);

impl Var {
    /// Position of the node on the tape.
    pub fn index(self) -> usize {
        self.0
    }
}
