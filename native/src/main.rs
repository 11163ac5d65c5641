//! The `keyshift` command line: parse, dispatch, exit with DESIGN.md's codes.

#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches};
use keyshift::cli::{AuditAction, Cli, Command};
use keyshift::commands::{self, Failure};

fn version_line() -> String {
    let banner = keyshift_core::version::banner(Some(keyshift::crypt::libmongocrypt_version()));
    banner.trim_start_matches("keyshift ").to_string()
}

async fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match &cli.command {
        Command::Check(c) => commands::check::run(c),
        Command::Snippet {
            common,
            lang,
            stage,
        } => commands::offline::snippet(common, *lang, *stage),
        Command::Policy { common, document } => {
            commands::offline::policy(common, document.as_deref()).await
        }
        Command::Plan { common, lang } => commands::offline::plan(common, *lang).await,
        Command::Inspect { common, kms } => commands::inspect::run(common, *kms).await,
        Command::Preflight(c) => commands::preflight::run(c).await,
        Command::Rewrap {
            common,
            dry_run,
            yes,
        } => commands::rewrap::run(common, *dry_run, *yes).await,
        Command::Verify { common, sample } => commands::verify::run(common, *sample).await,
        Command::Guide { port, no_open } => keyshift::guide::serve(*port, !*no_open)
            .await
            .map(|()| commands::OK)
            .map_err(Failure::failed),
        Command::Rotate {
            common,
            all_collections,
            partition,
            dry_run,
            yes,
        } => {
            commands::rotate::run(
                common,
                *all_collections,
                partition.as_deref(),
                *dry_run,
                *yes,
            )
            .await
        }
        Command::Retire { common, yes } => commands::retire::run(common, *yes).await,
        Command::Rollback {
            common,
            backup,
            yes,
        } => commands::rollback::run(common, backup, *yes).await,
        Command::Audit { action } => match action {
            AuditAction::Verify { common, file, head } => {
                commands::audit::verify(common, file.as_deref(), head.as_deref())
            }
            AuditAction::Show { common, file } => commands::audit::show(common, file.as_deref()),
        },
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "keyshift", &mut out);
            keyshift::output::out(format_args!("{}", String::from_utf8_lossy(&out)));
            Ok(commands::OK)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command().version(version_line()))
                .render(&mut out)
                .map_err(|e| Failure::failed(format!("rendering the man page: {e}")))?;
            keyshift::output::out(format_args!("{}", String::from_utf8_lossy(&out)));
            Ok(commands::OK)
        }
    }
}

fn main() {
    let matches = Cli::command().version(version_line()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.verbose > 0 {
        let level = if cli.verbose == 1 {
            tracing::Level::INFO
        } else {
            tracing::Level::DEBUG
        };
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyshift: cannot start: {e}");
            std::process::exit(commands::FAILED);
        }
    };
    let json = cli.command.json();
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("keyshift: {}", f.message);
            if json && !keyshift::output::json_printed() {
                keyshift::output::json(&keyshift::output::failure_json(f.code, &f.message));
            }
            f.code
        }
    };
    std::process::exit(code);
}
