//! `ecom`: the store's server and its administrative commands.

use clap::{Parser, Subcommand};
use ecom_core::settings::Settings;

/// mimalloc instead of glibc's malloc: a listed page allocates a few hundred small
/// strings and frees them at once, and glibc's consolidation of its free lists was a tenth
/// of a listing's server time. Without transparent huge pages (`no_thp`): with them its
/// arenas grew the resident set by 2 MiB pages, 103 MiB at the bench's peak against 80.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Load a demo store: shoppers, categories, products and reviews.
    SeedDemo {
        /// How many products to create.
        #[arg(long, default_value_t = 1000)]
        products: usize,
        /// How many demo shoppers write the reviews.
        #[arg(long, default_value_t = 50)]
        shoppers: usize,
    },
    /// Create an administrator (or make an existing account one).
    CreateAdmin {
        /// The administrator's email.
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
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
        Command::SeedDemo { products, shoppers } => {
            ecom_api::seed_demo_command(settings, products, shoppers).await
        }
        Command::CreateAdmin {
            email,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            ecom_api::create_admin_command(settings, &email, password).await
        }
    }
}

/// The new administrator's password: one line of standard input, or a prompt without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat the password: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        first
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}
