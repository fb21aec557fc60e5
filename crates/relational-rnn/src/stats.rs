//! Summary statistics over seeds: the one mean ± standard deviation every table and error bar uses.

/// Mean and sample standard deviation (divide by n − 1; 0 for a single value). `NaN`s for no
/// values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, std)
}
