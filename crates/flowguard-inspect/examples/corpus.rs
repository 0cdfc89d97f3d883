//! `cargo run -p flowguard-inspect --example corpus -- [DIR] [--misses]`: the same figures as
//! `flowguard inspect corpus`, without building the gateway (for tuning the detectors).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let misses = args.iter().any(|a| a == "--misses");
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("corpus", String::as_str);
    match flowguard_inspect::corpus::evaluate(std::path::Path::new(dir), misses) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("corpus: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
