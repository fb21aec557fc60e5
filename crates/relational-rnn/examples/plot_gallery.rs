//! Writes one PNG of every figure type to a directory, to look at them.
//!
//! ```text
//! cargo run -p relational-rnn --example plot_gallery -- [DIR]   # default: target/gallery
//! ```

use std::path::PathBuf;

use relational_rnn::ndarray::Array2;
use relational_rnn::plot::{
    Bar, BarChart, Colormap, HeatmapOptions, LegendPosition, LineChart, Png, RefLine, Series,
    heatmap, heatmap_grid, panels,
};

/// A noisy decaying learning curve, deterministic per `seed`.
fn curve(steps: &[f64], start: f64, end: f64, rate: f64, seed: u64) -> Vec<f64> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let noise = (((i as u64 + 1) * (seed * 7919 + 13)) % 97) as f64 / 97.0 - 0.5;
            end + (start - end) * (-rate * s).exp() + 0.04 * noise
        })
        .collect()
}

fn seeds(steps: &[f64], start: f64, end: f64, rate: f64) -> Vec<Vec<f64>> {
    (0..5)
        .map(|seed| curve(steps, start, end + 0.03 * seed as f64, rate, seed))
        .collect()
}

fn loss_chart(steps: &[f64]) -> Result<LineChart, Box<dyn std::error::Error>> {
    Ok(
        LineChart::new("Nth farthest: training loss", "step", "cross-entropy")
            .with_series(
                Series::mean_std("LSTM", steps.to_vec(), &seeds(steps, 2.1, 1.0, 0.0004))?
                    .with_color(0),
            )
            .with_series(
                Series::mean_std("RMC", steps.to_vec(), &seeds(steps, 2.1, 0.25, 0.0006))?
                    .with_color(1),
            )
            .with_hline("chance  ln 8", 8f64.ln()),
    )
}

fn accuracy_chart(steps: &[f64]) -> Result<LineChart, Box<dyn std::error::Error>> {
    let acc = |runs: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
        runs.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|l| (1.0 - l / 2.3).clamp(0.0, 1.0))
                    .collect()
            })
            .collect()
    };
    let mut chart = LineChart::new("Nth farthest: test accuracy", "step", "accuracy")
        .with_series(
            Series::mean_std("LSTM", steps.to_vec(), &acc(seeds(steps, 2.1, 1.0, 0.0004)))?
                .with_color(0),
        )
        .with_series(
            Series::mean_std("RMC", steps.to_vec(), &acc(seeds(steps, 2.1, 0.25, 0.0006)))?
                .with_color(1),
        )
        .with_hline("chance 1/8", 0.125)
        .with_hline("paper RMC 91%", 0.91);
    chart.y_range = Some((0.0, 1.0));
    chart.legend = LegendPosition::LowerRight;
    Ok(chart)
}

fn save(dir: &std::path::Path, name: &str, png: Png) -> std::io::Result<()> {
    let path = dir.join(name);
    png.save(&path)?;
    println!("{} ({}×{})", path.display(), png.width, png.height);

    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/gallery".into()),
    );
    let steps: Vec<f64> = (0..=50).map(|i| i as f64 * 200.0).collect();

    save(&dir, "line.png", loss_chart(&steps)?.render()?)?;
    save(
        &dir,
        "line_inside_legend.png",
        accuracy_chart(&steps)?.render()?,
    )?;
    let mut log = loss_chart(&steps)?;
    log.title = "Training loss (log scale)".into();
    log.log_y = true;
    save(&dir, "line_log.png", log.render()?)?;
    save(
        &dir,
        "panels.png",
        panels(&[loss_chart(&steps)?, accuracy_chart(&steps)?], 2)?,
    )?;

    let mut bars = BarChart::new("Nth farthest: test accuracy over 5 seeds", "accuracy")
        .with_bars(vec![
            Bar::mean_std("LSTM", &[0.29, 0.31, 0.30, 0.27, 0.33])?.with_color(0),
            Bar::mean_std("RMC", &[0.90, 0.92, 0.89, 0.93, 0.91])?.with_color(1),
            Bar::mean_std("RMC, no residual", &[0.70, 0.74, 0.66, 0.72, 0.69])?.with_color(2),
        ])
        .with_hline("chance 1/8", 0.125)
        .with_hline("paper RMC 91%", 0.91);
    bars.show_values = true;
    bars.y_range = Some((0.0, 1.0));
    save(&dir, "bar.png", bars.render()?)?;

    let models = |lstm: f64, rmc: f64| {
        vec![
            Bar::new("LSTM", lstm).with_err(0.03).with_color(0),
            Bar::new("RMC", rmc).with_err(0.02).with_color(1),
        ]
    };
    let mut grouped = BarChart::new("Ablation: memory slots", "accuracy")
        .with_group("N = 1", models(0.30, 0.55))
        .with_group("N = 2", models(0.30, 0.74))
        .with_group("N = 4", models(0.31, 0.91))
        .with_group("N = 8", models(0.29, 0.88))
        .with_hline("chance 1/8", 0.125);
    grouped.x_label = "memory slots N".into();
    save(&dir, "bar_grouped.png", grouped.render()?)?;

    // Per-seed dots instead of error bars, and each task's own chance and heuristic lines.
    let seeds = |lstm: &[f64], rmc: &[f64]| -> Result<Vec<Bar>, Box<dyn std::error::Error>> {
        Ok(vec![
            Bar::seeds("LSTM", lstm)?.with_color(0),
            Bar::seeds("RMC", rmc)?.with_color(1),
        ])
    };
    let mut tasks = BarChart::new(
        "Test accuracy per seed, beside each task's baselines",
        "accuracy",
    )
    .with_group_lines(
        "tracking",
        seeds(&[1.0, 0.99, 1.0, 1.0, 0.98], &[1.0, 1.0, 0.99, 1.0, 1.0])?,
        vec![
            RefLine::new("chance", 1.0 / 9.0),
            RefLine::new("best heuristic", 0.46),
        ],
    )
    .with_group_lines(
        "nth-farthest 4×4",
        seeds(&[0.49, 0.50, 0.48], &[0.49, 0.52, 0.50])?,
        vec![
            RefLine::new("chance", 0.25),
            RefLine::new("plateau", 0.5),
            RefLine::new("best heuristic", 0.64),
        ],
    );
    tasks.y_range = Some((0.0, 1.05));
    save(&dir, "bar_seeds.png", tasks.render()?)?;

    // Attention of one head over R = N + 1 rows (4 memory slots + the input), rows summing to 1.
    let attention = |head: usize, t: usize| {
        let mut a = Array2::from_shape_fn((5, 5), |(q, k)| {
            let focus = (q + head + t) % 5;
            if k == focus {
                4.0
            } else {
                1.0 / (1.0 + (k + q) as f64)
            }
        });
        for mut row in a.rows_mut() {
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
        }
        a
    };
    let slots: Vec<String> = vec!["m1", "m2", "m3", "m4", "input"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut opts = HeatmapOptions {
        title: "Attention weights, head 1, step 3".into(),
        x_label: "key".into(),
        y_label: "query".into(),
        x_ticks: Some(slots.clone()),
        y_ticks: Some(slots),
        range: Some((0.0, 1.0)),
        colorbar_label: "attention weight".into(),
        annotate: true,
        ..HeatmapOptions::default()
    };
    save(&dir, "heatmap.png", heatmap(&attention(0, 3), &opts)?)?;

    let grid: Vec<(String, Array2<f64>)> = (0..2)
        .flat_map(|h| {
            (0..4).map(move |t| (format!("head {} · t = {}", h + 1, t + 1), attention(h, t)))
        })
        .collect();
    opts.title = "Attention of every head over time (H = 2, T = 4)".into();
    opts.annotate = false;
    save(&dir, "heatmap_grid.png", heatmap_grid(&grid, 4, &opts)?)?;

    let memory = Array2::from_shape_fn((4 * 6, 16), |(r, u)| {
        (r as f64 * 0.7 + u as f64 * 0.4).sin() * (1.0 + r as f64 / 24.0)
    });
    let memory_opts = HeatmapOptions {
        title: "Memory over time: rows = step × slot (T = 6, N = 4), D = 16".into(),
        x_label: "unit".into(),
        y_label: "step · slot".into(),
        colormap: Colormap::RdBu,
        square: false,
        ..HeatmapOptions::default()
    };
    save(&dir, "heatmap_memory.png", heatmap(&memory, &memory_opts)?)?;
    Ok(())
}
