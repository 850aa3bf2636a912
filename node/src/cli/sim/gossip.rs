//! `shen sim gossip`: the command line of the Sundial measurements
//! ([`shen_checks::GossipConfig`]): parse the flags, run the seeds (on
//! `--jobs` threads), print the summary or its JSON, draw `--plot`.

use std::process::ExitCode;

use shen_checks::{theory_curve, CheckError, GossipConfig, GossipReport};

use super::{out, run_check, show_progress, JobsArgs};

/// Exit code for bad input.
const EXIT_USAGE: u8 = 2;

/// Arguments of `shen sim gossip`.
#[derive(clap::Args, Debug, Clone)]
pub struct GossipArgs {
    /// Nodes that all start at once, each knowing one earlier peer.
    #[arg(long, default_value_t = 100, allow_hyphen_values = true)]
    pub nodes: u64,
    /// First seed.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,
    /// Seeds to run (`seed..seed+runs`); percentiles are over runs.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub runs: u64,
    /// Message loss probability on every link.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub loss: f64,
    /// Latency jitter: latency is uniform in [1, 1 + jitter] ms.
    #[arg(long, default_value_t = 5.0, allow_hyphen_values = true)]
    pub jitter_ms: f64,
    /// Gossip fanout.
    #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
    pub fanout: usize,
    /// Gossip interval in ms.
    #[arg(long, default_value_t = 200, allow_hyphen_values = true)]
    pub interval_ms: u64,
    /// Healthy steady-state time (virtual seconds) measured for false
    /// suspicions and traffic before the crash.
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    pub steady_s: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw nodes-informed versus rounds (with the theoretical curve) as SVG.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// Worker threads.
    #[command(flatten)]
    pub jobs: JobsArgs,
}

impl GossipArgs {
    /// The checker's config.
    pub fn config(&self) -> GossipConfig {
        GossipConfig {
            nodes: self.nodes,
            seed: self.seed,
            runs: self.runs,
            loss: self.loss,
            jitter_ms: self.jitter_ms,
            fanout: self.fanout,
            interval_ms: self.interval_ms,
            steady_s: self.steady_s,
        }
    }
}

/// Render an SVG chart of nodes informed versus rounds.
pub fn svg(r: &GossipReport) -> String {
    let rounds = r
        .per_run
        .iter()
        .map(|x| x.membership_curve.len().max(x.death_curve.len()))
        .max()
        .unwrap_or(1)
        .max(8);
    let theory = theory_curve(r.nodes, r.fanout, rounds);
    let (w, h, ml, mb, mt, mr) = (820.0, 420.0, 60.0, 50.0, 40.0, 250.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let x = |i: usize| ml + pw * i as f64 / rounds as f64;
    let y = |v: f64| mt + ph * (1.0 - v.clamp(0.0, 1.0));
    let path = |pts: &[f64]| {
        pts.iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { " L" },
                    x(i),
                    y(*v)
                )
            })
            .collect::<String>()
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{ml}\" y=\"24\" font-size=\"15\">Sundial: nodes informed vs gossip rounds (N = {}, fanout {}, {} run(s))</text>\n",
        r.nodes, r.fanout, r.runs
    );
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        s += &format!(
            "<line x1=\"{ml}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}%</text>\n",
            ml + pw,
            y(v),
            y(v),
            ml - 6.0,
            y(v) + 4.0,
            v * 100.0
        );
    }
    for i in (0..=rounds).step_by((rounds / 10).max(1)) {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{i}</text>\n",
            x(i),
            mt + ph + 18.0
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">rounds</text>\n",
        ml + pw / 2.0,
        h - 10.0
    );
    for run in &r.per_run {
        s += &format!(
            "<path d=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-opacity=\"0.6\" stroke-width=\"1.5\"/>\n",
            path(&run.membership_curve)
        );
        if !run.death_curve.is_empty() {
            s += &format!(
                "<path d=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-opacity=\"0.6\" stroke-width=\"1.5\"/>\n",
                path(&run.death_curve)
            );
        }
    }
    s += &format!(
        "<path d=\"{}\" fill=\"none\" stroke=\"black\" stroke-dasharray=\"5,4\" stroke-width=\"1.5\"/>\n",
        path(&theory)
    );
    let lx = ml + pw + 12.0;
    for (k, (color, dash, label)) in [
        ("#1f77b4", "", "membership (mean view / N)"),
        ("#d62728", "", "death notice (live nodes told)"),
        ("black", "5,4", "theory: push-pull, 1 rumor"),
    ]
    .iter()
    .enumerate()
    {
        let ly = mt + 14.0 + 20.0 * k as f64;
        s += &format!(
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-dasharray=\"{dash}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{label}</text>\n",
            lx + 22.0,
            lx + 28.0,
            ly + 4.0
        );
    }
    s += "</svg>\n";
    s
}

/// Human-readable summary.
pub fn render(r: &GossipReport) -> String {
    let mut s = format!(
        "Sundial: {} nodes, {} run(s), fanout {}, interval {} ms, loss {}, jitter {} ms\n",
        r.nodes, r.runs, r.fanout, r.interval_ms, r.loss, r.jitter_ms
    );
    s += &format!(
        "  convergence rounds  p50 {:.0}  p99 {:.0}  max {:.0}   (target log3(N)+4 = {:.1})\n",
        r.convergence_rounds.p50,
        r.convergence_rounds.p99,
        r.convergence_rounds.max,
        r.target_rounds
    );
    s += &format!(
        "  crash: first suspicion p50 {:.0} ms p99 {:.0} ms; known dead by all p50 {:.0} ms p99 {:.0} ms max {:.0} ms\n",
        r.first_suspicion_ms.p50,
        r.first_suspicion_ms.p99,
        r.all_dead_ms.p50,
        r.all_dead_ms.p99,
        r.all_dead_ms.max
    );
    s += &format!(
        "  false suspicions {}  false deaths {}\n",
        r.false_suspicions, r.false_deaths
    );
    s += &format!(
        "  traffic per node: steady {:.0} B/round ({:.1} msgs/s, {:.0} B/s), converging {:.0} B/round\n",
        r.bytes_per_node_per_round.p50,
        r.msgs_per_node_per_s.p50,
        r.bytes_per_node_per_s.p50,
        r.converge_bytes_per_node_per_round.p50
    );
    s
}

/// `shen sim gossip`.
pub fn run(a: &GossipArgs) -> ExitCode {
    let r = match run_check(&a.config(), a.jobs.jobs, show_progress(a.json)) {
        Ok(r) => r,
        Err(CheckError::Invalid(e) | CheckError::Seed { error: e, .. }) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(p) = &a.plot {
        if let Err(e) = std::fs::write(p, svg(&r)) {
            eprintln!("error: cannot write --plot {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    let text = if a.json {
        match serde_json::to_string_pretty(&r) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: cannot encode report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        render(&r)
    };
    out(&text);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_is_svg() {
        let c = GossipConfig {
            nodes: 20,
            steady_s: 5,
            ..GossipConfig::default()
        };
        let r = shen_checks::run_all(&c).unwrap();
        let s = svg(&r);
        assert!(s.starts_with("<svg") && s.contains("<path") && s.contains("theory"));
    }
}
