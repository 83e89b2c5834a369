//! `ecom`: the store's server and its administrative commands.

use clap::{Parser, Subcommand};
use ecom_core::settings::Settings;

#[derive(Parser)]
#[command(name = "ecom", version, about = "The ecom e-commerce backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending migrations, or revert the newest one.
    Migrate {
        /// Revert the newest applied migration instead.
        #[arg(long)]
        revert: bool,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    ecom_core::telemetry::init_logging(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => ecom_api::serve(settings).await,
        Command::Migrate { revert } => ecom_api::migrate_command(settings, revert).await,
    }
}
