//! Prints the case of a seed: `cargo run -p dtc-progen --example show -- SEED`.

fn main() {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut e = dtc_progen::Entropy::seeded(seed);
    print!(
        "{}",
        dtc_progen::generate(&mut e, dtc_progen::Limits::default())
    );
}
