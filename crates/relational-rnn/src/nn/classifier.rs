//! A sequence model with an MLP head: the complete network that is trained on a task.
//!
//! The core runs over all T steps; at every step that carries a loss (the last one for
//! Nth-farthest, the output phase for sorting) its output goes through the head
//! (`hidden layers with ReLU → C logits`) and a masked softmax cross-entropy.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    Lstm, LstmConfig, Mlp, Model, RelationalMemory, RelationalRNNCell, RmcConfig, RrnnCellConfig,
    Unrolled,
};
use crate::loss::loss_targets;
use crate::tasks::Batch;
use crate::{ConfigError, Graph, ParamStore, Scalar, Var};

/// Which recurrent core, with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CoreConfig {
    /// The LSTM baseline.
    Lstm(LstmConfig),
    /// The Relational Memory Core.
    Rmc(RmcConfig),
    /// The plan's hybrid cell (not in the paper).
    RrnnCell(RrnnCellConfig),
}

impl CoreConfig {
    /// Input width F.
    pub fn input_size(&self) -> usize {
        match self {
            Self::Lstm(c) => c.input_size,
            Self::Rmc(c) => c.input_size,
            Self::RrnnCell(c) => c.input_size,
        }
    }

    /// The same configuration with input width `f` (set from the task).
    pub fn with_input_size(mut self, f: usize) -> Self {
        match &mut self {
            Self::Lstm(c) => c.input_size = f,
            Self::Rmc(c) => c.input_size = f,
            Self::RrnnCell(c) => c.input_size = f,
        }
        self
    }

    /// Validates the inner configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Lstm(c) => c.validate(),
            Self::Rmc(c) => c.validate(),
            Self::RrnnCell(c) => c.validate(),
        }
    }
}

/// A built core.
// One value per network, never in a hot collection: the size difference between variants costs
// nothing, and boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Core {
    /// The LSTM baseline.
    Lstm(Lstm),
    /// The Relational Memory Core.
    Rmc(RelationalMemory),
    /// The hybrid cell.
    RrnnCell(RelationalRNNCell),
}

impl<T: Scalar> Model<T> for Core {
    fn name(&self) -> &'static str {
        match self {
            Self::Lstm(m) => Model::<T>::name(m),
            Self::Rmc(m) => Model::<T>::name(m),
            Self::RrnnCell(m) => Model::<T>::name(m),
        }
    }

    fn input_size(&self) -> usize {
        match self {
            Self::Lstm(m) => Model::<T>::input_size(m),
            Self::Rmc(m) => Model::<T>::input_size(m),
            Self::RrnnCell(m) => Model::<T>::input_size(m),
        }
    }

    fn output_size(&self) -> usize {
        match self {
            Self::Lstm(m) => Model::<T>::output_size(m),
            Self::Rmc(m) => Model::<T>::output_size(m),
            Self::RrnnCell(m) => Model::<T>::output_size(m),
        }
    }

    fn unroll(&self, g: &mut Graph<T>, store: &ParamStore<T>, inputs: Var) -> Unrolled {
        match self {
            Self::Lstm(m) => m.unroll(g, store, inputs),
            Self::Rmc(m) => m.unroll(g, store, inputs),
            Self::RrnnCell(m) => m.unroll(g, store, inputs),
        }
    }
}

/// Configuration of a [`SequenceClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The recurrent core.
    pub core: CoreConfig,
    /// Hidden widths of the head MLP (ReLU after each), e.g. `[128, 128]`.
    pub head_hidden: Vec<usize>,
    /// Classes C.
    pub num_classes: usize,
}

impl ClassifierConfig {
    /// Checks the core, every head width ≥ 1 and C ≥ 2.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.core.validate()?;
        if let Some(i) = self.head_hidden.iter().position(|&w| w == 0) {
            return Err(ConfigError::new(
                "head_hidden",
                format!("every hidden width must be at least 1, got 0 at position {i}"),
            ));
        }
        for &width in &self.head_hidden {
            ConfigError::require_size("head_hidden", width, 1)?;
        }
        ConfigError::require_size("num_classes", self.num_classes, 2)
    }
}

/// Logits for the steps that carry a loss, and the unrolled core.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLoss {
    /// Mean masked cross-entropy: `[]`.
    pub loss: Var,
    /// Logits of the loss steps, step-major: `[k·B, C]` for k loss steps.
    pub logits: Var,
    /// Target per logit row: `[k·B]`.
    pub targets: Vec<usize>,
    /// Weight per logit row (1 where the mask is set, else 0): `[k·B]`.
    pub weights: Vec<f64>,
    /// The steps the rows come from, in order.
    pub steps: Vec<usize>,
    /// Everything the core computed (outputs, attention, memories).
    pub unrolled: Unrolled,
}

/// A recurrent core followed by an MLP classifier head.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceClassifier {
    config: ClassifierConfig,
    core: Core,
    head: Mlp,
}

impl SequenceClassifier {
    /// Validates `config` and creates the parameters: the core under `lstm.`, `rmc.` or `rrnn.`,
    /// the head under `head.`.
    pub fn new<T: Scalar>(
        config: &ClassifierConfig,
        store: &mut ParamStore<T>,
        rng: &mut impl Rng,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let core = match &config.core {
            CoreConfig::Lstm(c) => Core::Lstm(Lstm::new(c, store, "lstm", rng)?),
            CoreConfig::Rmc(c) => Core::Rmc(RelationalMemory::new(c, store, "rmc", rng)?),
            CoreConfig::RrnnCell(c) => {
                Core::RrnnCell(RelationalRNNCell::new(c, store, "rrnn", rng)?)
            }
        };
        let mut sizes = vec![Model::<T>::output_size(&core)];
        sizes.extend(&config.head_hidden);
        sizes.push(config.num_classes);
        let head = Mlp::new(store, "head", &sizes, rng);
        Ok(Self {
            config: config.clone(),
            core,
            head,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// The recurrent core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The head MLP.
    pub fn head(&self) -> &Mlp {
        &self.head
    }

    /// Runs the core over `inputs` and the head on the outputs of `steps`.
    ///
    /// # Shapes
    /// `inputs: [T, B, F]` → `(logits [k·B, C] step-major for k = steps.len(), unrolled)`.
    pub fn logits<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        inputs: Var,
        steps: &[usize],
    ) -> (Var, Unrolled) {
        let unrolled = self.core.unroll(g, store, inputs);
        let outs: Vec<Var> = steps.iter().map(|&t| unrolled.outputs[t]).collect();
        let features = if outs.len() == 1 {
            outs[0]
        } else {
            g.concat(&outs, 0) // [k·B, O]
        };
        (self.head.forward(g, store, features), unrolled) // [k·B, C]
    }

    /// The masked cross-entropy of a batch (the training objective).
    pub fn loss<T: Scalar>(
        &self,
        g: &mut Graph<T>,
        store: &ParamStore<T>,
        batch: &Batch,
    ) -> BatchLoss {
        let inputs = g.constant_map(batch.inputs.view().into_dyn(), |x| {
            T::from_f64_lossy(f64::from(x))
        }); // [T, B, F]
        let (steps, targets, weights) = loss_targets(batch);
        let (logits, unrolled) = self.logits(g, store, inputs, &steps);
        let loss = g.softmax_cross_entropy(logits, &targets, Some(&weights));
        BatchLoss {
            loss,
            logits,
            targets,
            weights,
            steps,
            unrolled,
        }
    }
}
