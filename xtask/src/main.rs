//! `cargo xtask`: builds every tier, packages reproducible tarballs, tests them under qemu,
//! publishes and follows upstream. This file only dispatches: flags are in `flags`, each command
//! in its own module (ARCHITECTURE.md lists them).

mod bench;
mod benchhistory;
mod ci;
mod dist;
mod faults;
mod flags;
mod genfix;
mod hetero;
mod hostile;
mod insn;
mod installer;
mod lint;
mod llamacpp;
mod modelcheck;
mod models;
mod prereq;
mod publish;
mod qemu;
mod qemu_build;
mod runnerkit;
mod sde;
mod servebench;
mod servecheck;
mod sync;
mod templates;
mod test;
mod testqemu;
mod tierbuild;
mod userdocs;
mod vs;
mod workflows;
mod workspace;

use clap::Parser;

use flags::{CiAction, Cli, Command, Part};
use hartlm_variants::Arch;
use prereq::Needs;
use workspace::Workspace;

fn main() {
    let cli = Cli::parse();
    let result = Workspace::discover().and_then(|ws| {
        prereq::init(&ws);
        dispatch(cli.command, &ws)
    });
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(command: Command, ws: &Workspace) -> anyhow::Result<()> {
    let all = [Arch::Riscv64, Arch::X86_64];
    match command {
        Command::Setup { all } => prereq::setup(ws, all),
        Command::Build { arch, tier } => tierbuild::command(ws, &arch.arches(), tier.as_deref()),
        Command::Dist { arch } => dist::command(ws, &arch.arches()).map(|_| ()),
        Command::TestQemu { arch, no_build, cpu, part } => {
            let part = if cpu.is_empty() { part } else { Part::Cpus };
            testqemu::command(ws, &arch.arches(), no_build, &cpu, part)
        }
        Command::FetchModels => models::fetch_command(ws),
        Command::Bench { serve: true, rounds, reps, .. } => {
            servebench::command(ws, rounds, reps.unwrap_or(4))
        }
        Command::Bench { n_prompt, n_gen, reps, threads, vs: Some(_), rounds, part, .. } => {
            let reps = reps.unwrap_or(2);
            vs::command(ws, &vs::Spec { n_prompt, n_gen, reps, threads, rounds, part })
        }
        Command::Bench { n_prompt, n_gen, reps, threads, tiers, vs: None, .. } => {
            bench::command(ws, bench::Spec { n_prompt, n_gen, reps: reps.unwrap_or(5), threads }, tiers)
        }
        Command::BenchInsn { ime: true, .. } => insn::ime_command(ws),
        Command::BenchInsn { kernel: Some(k), .. } if k == "matvec" => insn::matvec_command(ws),
        Command::BenchInsn { kernel: Some(_), .. } => insn::kernel_command(ws),
        Command::BenchInsn { model, kernel: None, .. } => insn::models_command(ws, model.as_deref()),
        Command::Test => test::command(ws),
        Command::Reproducible => {
            prereq::ensure(&ws.shell()?, Needs::build(&all)).and_then(|()| test::reproducible(ws))
        }
        Command::Sync { dry_run, test_only, report, push_from } => {
            let phase = match (report, push_from) {
                (Some(report), _) if test_only => sync::Phase::TestOnly { report },
                (_, Some(report)) => sync::Phase::PushFrom { report },
                _ => sync::Phase::Both,
            };
            sync::command(ws, dry_run, phase)
        }
        Command::Ci { action: CiAction::Generate } => ci::generate(ws),
        Command::Ci { action: CiAction::Check } => ci::check(ws),
        Command::ClippyTiers => {
            prereq::ensure(&ws.shell()?, Needs::build(&[Arch::Riscv64])).and_then(|()| lint::clippy_tiers(ws))
        }
        Command::BenchHistory { tag, bench, labels, repo, api_url } => {
            benchhistory::command(ws, &tag, &bench, &labels, repo, api_url)
        }
        Command::Publish { tag, nightly, dry_run, repo, api_url, upload_url } => {
            publish::run(&ws.dist_dir(), &publish::Args { tag, nightly, dry_run, repo, api_url, upload_url })
        }
    }
}
