//! `rrnn`: the command-line front end of `relational-rnn`.

fn main() {
    println!("rrnn {}", env!("CARGO_PKG_VERSION"));
}
