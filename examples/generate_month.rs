//! Writes `examples/month.jsonl` (a recorded month of signed GitHub and PagerDuty deliveries for
//! three services, with duplicates, in shuffled order) and `examples/doraflow.toml` (the matching
//! config). Run: `cargo run --example generate_month`.

#[path = "../tests/support/scenario.rs"]
mod scenario;

use std::io::Write;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let month = scenario::month(42);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("month.jsonl"))?);
    for delivery in &month.deliveries {
        writeln!(out, "{}", delivery.to_json_line())?;
    }
    out.flush()?;
    let config = format!(
        "# The example configuration: three services in two teams, secrets matching\n\
         # examples/month.jsonl. Start with: doraflow serve --config examples/doraflow.toml\n\n{}",
        scenario::config_toml("127.0.0.1:8080", "")
            .replace("[api]\ntokens = []\n", "[api]\n# tokens = [ { token = \"t-admin\" }, { token = \"t-pay\", teams = [\"payments\"] } ]\n")
    );
    std::fs::write(dir.join("doraflow.toml"), config)?;
    println!(
        "wrote {} deliveries to examples/month.jsonl and examples/doraflow.toml",
        month.deliveries.len()
    );
    Ok(())
}
