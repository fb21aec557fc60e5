//! The t quantiles and Welch intervals the study's findings quote, against tabulated values.

use relational_rnn::stats::{student_t_cdf, student_t_quantile, welch_interval};

#[test]
fn t_quantiles_match_the_tables() {
    // Two-sided 95 % critical values from any statistics table.
    for (df, t) in [
        (1.0, 12.7062),
        (2.0, 4.3027),
        (4.0, 2.7764),
        (8.0, 2.3060),
        (30.0, 2.0423),
        (1e6, 1.9600),
    ] {
        let q = student_t_quantile(0.975, df);
        assert!((q - t).abs() < 1e-3, "df {df}: {q} vs {t}");
    }
    assert!((student_t_cdf(0.0, 3.0) - 0.5).abs() < 1e-15);
    assert!((student_t_cdf(-2.7764, 4.0) - 0.025).abs() < 1e-5);
}

#[test]
fn welch_interval_of_two_samples() {
    // Equal sizes and variances: df = 2n − 2 = 8, se = sqrt(2 · s² / n).
    let a = [1.0, 2.0, 3.0, 4.0, 5.0];
    let b = [0.0, 1.0, 2.0, 3.0, 4.0];
    let (d, lo, hi) = welch_interval(&a, &b, 0.95).expect("defined");
    let se = (2.0 * 2.5 / 5.0f64).sqrt();
    assert!((d - 1.0).abs() < 1e-12);
    assert!((hi - d - 2.3060 * se).abs() < 1e-3, "{lo} {hi}");
    assert!((d - lo - (hi - d)).abs() < 1e-12);
    assert_eq!(welch_interval(&[1.0], &b, 0.95), None);
    assert_eq!(welch_interval(&[1.0, 1.0], &[2.0, 2.0], 0.95), None);
}
