//! Sequential reasoning tasks: generators that produce [`Batch`]es.

mod batch;

pub use batch::Batch;
