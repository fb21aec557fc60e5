//! The plot module: every builder yields a decodable PNG of the promised size with visible
//! content and text, bad input is an error, and the numbers behind bands and bars are right.

use base64::Engine;
use relational_rnn::ndarray::{Array2, array};
use relational_rnn::plot::{
    Bar, BarChart, Colormap, HeatmapOptions, LineChart, PlotError, Png, RefLine, Series, font,
    heatmap, heatmap_grid, palette, panels,
};

/// Decodes `png` and returns its RGB rows after checking the header matches the struct.
fn decode(png: &Png) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::Cursor::new(&png.bytes));
    let mut reader = decoder.read_info().expect("valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("valid PNG data");
    assert_eq!((info.width, info.height), (png.width, png.height));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// Pixels darker than every palette colour: text, axes, error bars.
fn dark_in(
    png: &Png,
    pixels: &[[u8; 3]],
    rows: std::ops::Range<u32>,
    cols: std::ops::Range<u32>,
) -> usize {
    rows.flat_map(|y| cols.clone().map(move |x| (y * png.width + x) as usize))
        .filter(|&i| pixels[i].iter().all(|&c| c < 100))
        .count()
}

fn contains(pixels: &[[u8; 3]], rgb: [u8; 3]) -> bool {
    pixels.contains(&rgb)
}

fn assert_valid(png: &Png, size: (u32, u32)) -> Vec<[u8; 3]> {
    assert_eq!((png.width, png.height), size);
    assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
    let pixels = decode(png);
    assert!(pixels.iter().any(|p| *p != pixels[0]), "image is uniform");
    let dark = dark_in(png, &pixels, 0..png.height, 0..png.width);
    assert!(dark > 200, "no text or axes drawn ({dark} dark pixels)");
    pixels
}

fn rgb(c: plotters::style::RGBColor) -> [u8; 3] {
    [c.0, c.1, c.2]
}

fn chart(title: &str) -> LineChart {
    let x: Vec<f64> = (0..20).map(f64::from).collect();
    let runs = vec![
        x.iter().map(|v| 1.0 / (1.0 + v)).collect(),
        x.iter().map(|v| 1.2 / (1.0 + v)).collect(),
    ];
    LineChart::new(title, "step", "loss")
        .with_series(
            Series::mean_std("RMC", x.clone(), &runs)
                .unwrap()
                .with_color(1),
        )
        .with_series(Series::new(
            "LSTM",
            x.clone(),
            x.iter().map(|v| 1.0 - v / 40.0).collect(),
        ))
        .with_hline("chance", 0.5)
}

#[test]
fn line_chart_renders_with_palette_colours_and_default_size() {
    let png = chart("Loss").render().unwrap();
    let pixels = assert_valid(&png, (900, 500));
    assert!(
        contains(&pixels, rgb(palette::color(1))),
        "RMC's colour (index 1) missing"
    );
    // LSTM has no explicit colour: its position, 1, too; nothing draws in palette colour 0.
    assert!(!contains(&pixels, rgb(palette::color(0))));
}

#[test]
fn title_band_has_text_only_when_a_title_is_given() {
    for (title, expect_text) in [("Training loss of the RMC", true), ("", false)] {
        let png = chart(title).render().unwrap();
        let pixels = decode(&png);
        let dark = dark_in(&png, &pixels, 0..28, 250..650);
        assert_eq!(
            dark > 30,
            expect_text,
            "title {title:?}: {dark} dark pixels in the title band"
        );
    }
}

#[test]
fn log_scale_and_fixed_range_render() {
    let mut c = chart("log");
    c.log_y = true;
    assert_valid(&c.render().unwrap(), (900, 500));
    let mut c = chart("range");
    c.y_range = Some((0.0, 2.0));
    c.size = (640, 400);
    assert_valid(&c.render().unwrap(), (640, 400));
}

#[test]
fn series_with_gaps_still_draws() {
    let y = vec![1.0, f64::NAN, 0.5, 0.4, f64::INFINITY, 0.2];
    let c = LineChart::new("gaps", "x", "y").with_series(Series::from_y("s", y));
    assert_valid(&c.render().unwrap(), (900, 500));
}

/// First and last pixel row holding colour `rgb`.
fn rows_with(png: &Png, pixels: &[[u8; 3]], rgb: [u8; 3]) -> (usize, usize) {
    let rows: Vec<usize> = (0..pixels.len())
        .filter(|&i| pixels[i] == rgb)
        .map(|i| i / png.width as usize)
        .collect();
    (rows[0], rows[rows.len() - 1])
}

/// A noisy curve is drawn within its values: sharp turns do not stick out (no miter spikes).
#[test]
fn a_zigzag_stays_within_its_values() {
    let n = 400_u32;
    let x: Vec<f64> = (0..n).map(f64::from).collect();
    let zigzag = x
        .iter()
        .map(|&v| {
            if (v as u32).is_multiple_of(2) {
                0.45
            } else {
                0.55
            }
        })
        .collect();
    let render = |series: Vec<Series>| {
        let mut c = LineChart::new("", "x", "y");
        (c.y_range, c.size) = (Some((0.0, 1.0)), (400, 450));
        for s in series {
            c = c.with_series(s.with_color(2));
        }
        let png = c.render().unwrap();
        let pixels = decode(&png);
        rows_with(&png, &pixels, rgb(palette::color(2)))
    };
    let (top, bottom) = render(vec![Series::new("", x.clone(), zigzag)]);
    let (top_ref, bottom_ref) = render(vec![
        Series::new("", x.clone(), vec![0.45; n as usize]),
        Series::new("", x, vec![0.55; n as usize]),
    ]);
    assert!(
        top + 1 >= top_ref && bottom <= bottom_ref + 1,
        "zigzag rows {top}..{bottom}, its extremes as flat lines {top_ref}..{bottom_ref}"
    );
}

#[test]
fn panels_compose_into_one_image() {
    let titles = ["Loss of the first panel", "Accuracy, second", "Third panel"];
    let png = panels(&titles.map(chart), 2).unwrap();
    let pixels = assert_valid(&png, (1300, 900));
    // Every panel has its own title: text in each top band.
    for (rows, cols) in [(0..28, 150..500), (0..28, 800..1150), (450..478, 150..500)] {
        assert!(dark_in(&png, &pixels, rows, cols) > 30);
    }
}

#[test]
fn bar_charts_render_plain_and_grouped() {
    let mut plain = BarChart::new("Accuracy", "accuracy").with_bars(vec![
        Bar::mean_std("LSTM", &[0.3, 0.32]).unwrap(),
        Bar::new("RMC", 0.9).with_err(0.02).with_color(3),
    ]);
    plain.show_values = true;
    let pixels = assert_valid(&plain.render().unwrap(), (900, 500));
    assert!(contains(&pixels, rgb(palette::color(0))));
    assert!(contains(&pixels, rgb(palette::color(3))));

    let grouped = BarChart::new("Ablation", "accuracy")
        .with_group("N = 1", vec![Bar::new("LSTM", 0.3), Bar::new("RMC", 0.5)])
        .with_group("N = 4", vec![Bar::new("LSTM", 0.3), Bar::new("RMC", 0.9)])
        .with_hline("chance", 0.125);
    let pixels = assert_valid(&grouped.render().unwrap(), (900, 500));
    assert!(contains(&pixels, rgb(palette::color(0))) && contains(&pixels, rgb(palette::color(1))));
}

/// Per-seed dots sit at their values over the bar, the bar at their mean; a group's own
/// reference line stays under that group.
#[test]
fn per_seed_dots_and_group_lines() {
    let bar = Bar::seeds("RMC", &[0.2, 0.6, 1.0]).unwrap();
    assert!((bar.value - 0.6).abs() < 1e-12 && bar.err.is_none());
    assert!(Bar::seeds("RMC", &[]).is_err());

    let chart = |lines: Vec<RefLine>| {
        let mut c = BarChart::new("", "accuracy")
            .with_group_lines(
                "a",
                vec![Bar::seeds("RMC", &[0.2, 0.6, 1.0]).unwrap()],
                lines,
            )
            .with_group("b", vec![Bar::new("RMC", 0.5)])
            .with_hline("heuristic", 0.1);
        c.y_range = Some((0.0, 1.0));
        c.size = (600, 400);
        c
    };
    let with = decode(
        &chart(vec![RefLine::new("heuristic", 0.9)])
            .render()
            .unwrap(),
    );
    let without = decode(&chart(Vec::new()).render().unwrap());
    // Columns where the two images differ (the legends agree: one label): the group's line,
    // under group a only.
    let changed: Vec<u32> = (0..600u32)
        .filter(|&x| {
            (0..400u32).any(|y| with[(y * 600 + x) as usize] != without[(y * 600 + x) as usize])
        })
        .collect();
    let (first, last) = (changed[0], *changed.last().unwrap());
    assert!(
        last < 300 && last > first + 80,
        "line spans columns {first}..={last}"
    );
    // The dots are darker than the bar: the bar's colour column holds near-black pixels.
    let dark_on_bar = (0..400u32)
        .filter(|&y| {
            without[(y * 600 + (first + last) / 2) as usize]
                .iter()
                .all(|&c| c < 60)
        })
        .count();
    assert!(dark_on_bar > 0, "no dot drawn over the bar");

    let nan_line = chart(vec![RefLine::new("bad", f64::NAN)]);
    assert!(invalid(nan_line.render()).contains("bad"));
    let nan_point = BarChart::new("", "y").with_bars(vec![Bar::seeds("x", &[f64::NAN]).unwrap()]);
    assert!(invalid(nan_point.render()).contains("points"));
}

#[test]
fn a_colorbar_label_is_drawn_beside_the_bar() {
    let m = array![[0.0, 1.0], [0.5, 0.25]];
    let plain = HeatmapOptions::default();
    let labelled = HeatmapOptions {
        colorbar_label: "attention weight".into(),
        ..HeatmapOptions::default()
    };
    let (a, b) = (
        heatmap(&m, &plain).unwrap(),
        heatmap(&m, &labelled).unwrap(),
    );
    let (pa, pb) = (decode(&a), decode(&b));
    // The colour bar's ticks and, with a label, its text: dark pixels right of the cells.
    let right =
        |png: &Png, px: &[[u8; 3]]| dark_in(png, px, 0..png.height, png.width - 140..png.width);
    let (plain_ink, label_ink) = (right(&a, &pa), right(&b, &pb));
    assert!(
        label_ink > plain_ink + 100,
        "{label_ink} dark pixels with the label, {plain_ink} without"
    );
}

#[test]
fn heatmaps_render_with_colormap_ends() {
    let m = array![[0.0, 0.25], [0.75, 1.0]];
    let opts = HeatmapOptions {
        title: "attention".into(),
        x_label: "key".into(),
        y_label: "query".into(),
        x_ticks: Some(vec!["a".into(), "b".into()]),
        annotate: true,
        ..HeatmapOptions::default()
    };
    let pixels = assert_valid(&heatmap(&m, &opts).unwrap(), (720, 560));
    assert!(contains(&pixels, rgb(Colormap::Viridis.color(0.0))));
    assert!(contains(&pixels, rgb(Colormap::Viridis.color(1.0))));

    let panels: Vec<(String, Array2<f64>)> = (0..3)
        .map(|h| {
            (
                format!("head {h}"),
                Array2::from_elem((5, 5), h as f64 - 1.0),
            )
        })
        .collect();
    let opts = HeatmapOptions {
        colormap: Colormap::RdBu,
        ..HeatmapOptions::default()
    };
    let pixels = assert_valid(
        &heatmap_grid(&panels, 2, &opts).unwrap(),
        (2 * 330 + 90, 600),
    );
    // Shared symmetric range: −1 and +1 reach the map's two ends, 0 its white middle.
    for t in [0.0, 0.5, 1.0] {
        assert!(
            contains(&pixels, rgb(Colormap::RdBu.color(t))),
            "colour at {t} missing"
        );
    }
}

fn invalid(result: Result<Png, PlotError>) -> String {
    match result {
        Err(PlotError::InvalidInput(message)) => message,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let empty = LineChart::new("t", "x", "y").with_series(Series::new("e", vec![], vec![]));
    assert!(invalid(empty.render()).contains("empty"));
    let mismatched =
        LineChart::new("t", "x", "y").with_series(Series::new("m", vec![1.0, 2.0], vec![1.0]));
    assert!(invalid(mismatched.render()).contains("2 points but y has 1"));
    let nan = LineChart::new("t", "x", "y").with_series(Series::from_y("n", vec![f64::NAN; 3]));
    assert!(invalid(nan.render()).contains("no finite point"));
    let mut log = LineChart::new("t", "x", "y").with_series(Series::from_y("neg", vec![-1.0, 0.0]));
    log.log_y = true;
    invalid(log.render());
    invalid(LineChart::new("none", "x", "y").render());
    let band = LineChart::new("t", "x", "y")
        .with_series(Series::from_y("b", vec![1.0, 2.0]).with_band(vec![0.0], vec![3.0, 3.0]));
    invalid(band.render());
    let mut range = chart("r");
    range.y_range = Some((1.0, 1.0));
    invalid(range.render());
    let mut tiny = chart("tiny");
    tiny.size = (0, 10);
    invalid(tiny.render());
    invalid(panels(&[], 2));
    invalid(panels(&[chart("a")], 0));

    invalid(BarChart::new("t", "y").render());
    invalid(BarChart::new("t", "y").with_group("g", vec![]).render());
    invalid(
        BarChart::new("t", "y")
            .with_bars(vec![Bar::new("nan", f64::NAN)])
            .render(),
    );
    invalid(
        BarChart::new("t", "y")
            .with_bars(vec![Bar::new("b", 1.0).with_err(-0.1)])
            .render(),
    );

    let opts = HeatmapOptions::default();
    assert!(invalid(heatmap(&Array2::zeros((0, 3)), &opts)).contains("empty"));
    invalid(heatmap(&Array2::from_elem((2, 2), f64::NAN), &opts));
    let ticks = HeatmapOptions {
        x_ticks: Some(vec!["a".into()]),
        ..HeatmapOptions::default()
    };
    assert!(invalid(heatmap(&Array2::zeros((2, 2)), &ticks)).contains("1 x ticks for 2 columns"));
    let range = HeatmapOptions {
        range: Some((1.0, 0.0)),
        ..HeatmapOptions::default()
    };
    invalid(heatmap(&Array2::zeros((2, 2)), &range));
    invalid(heatmap_grid(&[], 2, &opts));
}

#[test]
fn mean_std_matches_hand_computation() {
    let s = Series::mean_std(
        "s",
        vec![0.0, 1.0, 2.0],
        &[vec![1.0, 2.0, 3.0], vec![3.0, 6.0, 3.0]],
    )
    .unwrap();
    assert_eq!(s.y, vec![2.0, 4.0, 3.0]);
    // Sample std: sqrt(((1-2)² + (3-2)²) / 1) = √2; sqrt((4 + 4) / 1) = √8; 0.
    let (lower, upper) = s.band.unwrap();
    let expected_std = [2f64.sqrt(), 8f64.sqrt(), 0.0];
    for t in 0..3 {
        assert!((upper[t] - s.y[t] - expected_std[t]).abs() < 1e-12);
        assert!((s.y[t] - lower[t] - expected_std[t]).abs() < 1e-12);
    }
    let single = Series::mean_std("one", vec![0.0, 1.0], &[vec![5.0, 7.0]]).unwrap();
    assert_eq!(single.band, Some((vec![5.0, 7.0], vec![5.0, 7.0])));
    assert!(Series::mean_std("none", vec![0.0], &[]).is_err());
    assert!(Series::mean_std("short", vec![0.0, 1.0], &[vec![1.0]]).is_err());

    let bar = Bar::mean_std("b", &[0.8, 0.9, 1.0]).unwrap();
    assert!((bar.value - 0.9).abs() < 1e-12);
    assert!((bar.err.unwrap() - 0.1).abs() < 1e-12);
    assert!(Bar::mean_std("b", &[]).is_err());
}

#[test]
fn save_writes_a_decodable_file_atomically() {
    let dir = std::env::temp_dir().join(format!("rrnn-plot-save-{}", std::process::id()));
    let path = dir.join("nested/deeper/loss.png");
    let png = chart("saved").render().unwrap();
    png.save(&path).unwrap();
    let back = Png {
        bytes: std::fs::read(&path).unwrap(),
        width: png.width,
        height: png.height,
    };
    assert_eq!(back, png);
    decode(&back);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("loss.png")],
        "temporary file left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn base64_round_trips() {
    let png = chart("b64").render().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(png.to_base64())
        .unwrap();
    assert_eq!(decoded, png.bytes);
}

#[test]
fn only_the_bundled_font_is_used() {
    use plotters::style::{FontDesc, FontFamily, FontStyle};
    font::ensure_registered().unwrap();
    let sans = FontDesc::new(FontFamily::SansSerif, 20.0, FontStyle::Normal);
    assert!(sans.box_size("Loss").is_ok());
    // No system lookup: a family that was not registered does not exist, even though
    // DejaVu Serif may be installed on this machine.
    let serif = FontDesc::new(FontFamily::Serif, 20.0, FontStyle::Normal);
    assert!(serif.box_size("Loss").is_err());
    assert!(
        font::DEJAVU_SANS.starts_with(&[0, 1, 0, 0]),
        "not a TrueType file"
    );
}
