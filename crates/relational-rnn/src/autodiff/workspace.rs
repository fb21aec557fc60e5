//! State that an op keeps on the tape beside its nodes, and how the tape keeps it in step.
//!
//! Most ops need none: each node records all that its backward function needs. An op that shares
//! work between its nodes keeps a workspace instead, one value of its own type per tape, made on
//! the op's first use and kept across [`clear`](super::Graph::clear) so that a warm step makes
//! none. The tape knows nothing of what is inside; it calls three hooks: when it is cleared, when
//! a backward pass starts, and when backward reaches a node (every reader of that node has then
//! been visited, so a gradient term held back for it can be added). Today only `linear` keeps one
//! (see `linalg.rs`).

use std::any::Any;

use super::buffers::GradSlots;
use super::node::Node;
use super::var::Var;

/// An op's state on a tape; see the module documentation.
pub(crate) trait OpWorkspace<T>: Any + Send {
    /// The tape was cleared: forget its nodes (keeping buffers for the next tape).
    fn clear(&mut self);

    /// A backward pass starts: forget what the previous one left.
    fn start_backward(&mut self);

    /// Backward reached `v`, before passing its gradient on: every node that reads `v` has been
    /// visited, so add any gradient term held back for `v` into its slot.
    fn node_reached(&mut self, v: Var, nodes: &[Node<T>], grads: &mut GradSlots<T>);
}

/// The workspaces of a tape, at most one of each type (a handful at most: found by a scan).
pub(crate) struct Workspaces<T> {
    all: Vec<Box<dyn OpWorkspace<T>>>,
}

impl<T> Default for Workspaces<T> {
    fn default() -> Self {
        Self { all: Vec::new() }
    }
}

impl<T: 'static> Workspaces<T> {
    /// The workspace of type `W`, if made.
    pub(crate) fn get<W: OpWorkspace<T>>(&self) -> Option<&W> {
        self.all.iter().find_map(|w| {
            let w: &dyn Any = &**w;
            w.downcast_ref()
        })
    }

    /// The workspace of type `W`, made on first use.
    pub(crate) fn get_or_default<W: OpWorkspace<T> + Default>(&mut self) -> &mut W {
        let at = self.all.iter().position(|w| {
            let w: &dyn Any = &**w;
            w.is::<W>()
        });
        let at = at.unwrap_or_else(|| {
            self.all.push(Box::<W>::default());
            self.all.len() - 1
        });
        let w: &mut dyn Any = &mut *self.all[at];
        w.downcast_mut().expect("the workspace of type W")
    }

    /// Tells every workspace that the tape was cleared.
    pub(crate) fn clear(&mut self) {
        self.all.iter_mut().for_each(|w| w.clear());
    }

    /// Tells every workspace that a backward pass starts.
    pub(crate) fn start_backward(&mut self) {
        self.all.iter_mut().for_each(|w| w.start_backward());
    }

    /// Tells every workspace that backward reached `v`.
    pub(crate) fn node_reached(&mut self, v: Var, nodes: &[Node<T>], grads: &mut GradSlots<T>) {
        for w in &mut self.all {
            w.node_reached(v, nodes, grads);
        }
    }
}
