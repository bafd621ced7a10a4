//! `fast-seller catalog sync|show`: the catalog `serve` prices with. With `--backend vendure`
//! it is read from Vendure and kept as a snapshot in the data directory; otherwise it is the
//! `--catalog` file or the bundled demo catalog.

use super::serve::ServeArgs;
use super::{fail, CommandError};
use crate::clock::{rfc3339_ms, Clock, SystemClock};
use crate::commerce::vendure::{Snapshot, Synced, VendureCatalog};
use crate::config::Settings;
use crate::domain::vendure_pricing::amount as minor;
use crate::domain::Catalog;
use clap::Subcommand;
use std::fmt::Write;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Read the catalog from the commerce platform now, list what cannot be mapped, and store
    /// it as the snapshot `serve` falls back on while the platform is down (a running server
    /// reads the platform again every --catalog-refresh)
    Sync(Box<SyncArgs>),
    /// Show the catalog `serve` prices with: the stored Vendure snapshot (no network), or the
    /// --catalog file, or the bundled demo catalog
    Show(Box<ShowArgs>),
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Read and map the catalog, print what cannot be mapped, store nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Print the catalog as JSON (the Vendure snapshot, or the catalog file's format)
    #[arg(long)]
    pub json: bool,
}

fn settings(serve: &ServeArgs) -> Result<Settings, CommandError> {
    serve.resolve_with_file().1.map_err(fail)
}

pub async fn run(command: &CatalogCommand) -> Result<String, CommandError> {
    match command {
        CatalogCommand::Sync(args) => sync(args).await,
        CatalogCommand::Show(args) => show(args),
    }
}

async fn sync(args: &SyncArgs) -> Result<String, CommandError> {
    let settings = settings(&args.serve)?;
    let bridge = crate::startup::platform(&settings)
        .map_err(fail)?
        .ok_or_else(|| {
            CommandError(
                "catalog sync reads a commerce platform: run it with --backend vendure and --vendure-url (a --catalog file is read as it is)".into(),
            )
        })?;
    let now = SystemClock.now_ms();
    let synced = if args.dry_run {
        bridge.read(now).await
    } else {
        bridge.sync(now).await
    }
    .map_err(fail)?;
    let mut out = summary(&synced);
    if args.dry_run {
        out.push_str("dry run: nothing stored\n");
    } else {
        let _ = writeln!(
            out,
            "stored in {}",
            Snapshot::path(&settings.data_dir).display()
        );
    }
    Ok(out)
}

/// What was read, and every entry that could not be mapped with the reason.
fn summary(synced: &Synced) -> String {
    let c = &synced.snapshot.catalog;
    let mut out = format!(
        "read from Vendure at {}: {} variants of {} products, {} tax rates in {} zones, {} shipping methods, {} promotions\n",
        rfc3339_ms(synced.snapshot.fetched_at_ms),
        c.variants.len(),
        synced.catalog.products().len(),
        c.tax_rates.len(),
        c.zones.len(),
        c.shipping_methods.len(),
        c.promotions.len(),
    );
    if c.unmapped.is_empty() {
        out.push_str("everything maps\n");
    } else {
        let _ = writeln!(out, "not mapped ({}):", c.unmapped.len());
        for u in &c.unmapped {
            let _ = writeln!(out, "  {}: {}", u.what, u.why);
        }
    }
    out
}

fn show(args: &ShowArgs) -> Result<String, CommandError> {
    let settings = settings(&args.serve)?;
    if settings.vendure.is_some() {
        let snapshot = Snapshot::load(&settings.data_dir)
            .map_err(fail)?
            .ok_or_else(|| {
                CommandError(format!(
                    "no stored Vendure catalog in {} yet: run `fast-seller catalog sync` (or start serve once)",
                    settings.data_dir.display()
                ))
            })?;
        return if args.json {
            serde_json::to_string_pretty(&snapshot)
                .map(|s| s + "\n")
                .map_err(fail)
        } else {
            Ok(vendure_table(&snapshot))
        };
    }
    if args.json {
        return match &settings.catalog {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| CommandError(format!("cannot read {}: {e}", path.display()))),
            None => Ok(crate::catalog::DEMO_CATALOG.to_string()),
        };
    }
    let catalog = crate::catalog::load(settings.catalog.as_deref()).map_err(fail)?;
    Ok(file_table(&catalog))
}

/// The stored Vendure snapshot as compact tables.
fn vendure_table(s: &Snapshot) -> String {
    let c: &VendureCatalog = &s.catalog;
    let mut out = format!(
        "Vendure channel {} ({}), prices {} tax, read at {}\n\n",
        c.channel.code,
        c.channel.currency,
        if c.channel.prices_include_tax {
            "include"
        } else {
            "exclude"
        },
        rfc3339_ms(s.fetched_at_ms)
    );
    let _ = writeln!(
        out,
        "{:<18} {:<28} {:>10} {:>10} {:>7}  options",
        "SKU", "product", "net", "with tax", "stock"
    );
    for v in &c.variants {
        let options: Vec<String> = v
            .options
            .iter()
            .map(|o| format!("{}={}", o.group, o.code))
            .collect();
        let _ = writeln!(
            out,
            "{:<18} {:<28} {:>10} {:>10} {:>7}  {}{}",
            v.sku,
            v.product_slug,
            minor(v.price_net),
            minor(v.price_with_tax),
            v.stock.available.map_or("-".into(), |a| a.to_string()),
            options.join(","),
            if v.enabled { "" } else { " (disabled)" }
        );
    }
    out.push_str("\ntax rates (zone / category: %)\n");
    for r in &c.tax_rates {
        let zone = c
            .zones
            .iter()
            .find(|z| z.id == r.zone_id)
            .map_or(r.zone_id.as_str(), |z| z.name.as_str());
        let category = c
            .tax_categories
            .iter()
            .find(|t| t.id == r.category_id)
            .map_or(r.category_id.as_str(), |t| t.name.as_str());
        let _ = writeln!(out, "  {zone} / {category}: {}", r.rate);
    }
    out.push_str("\nshipping methods\n");
    for m in &c.shipping_methods {
        let _ = writeln!(
            out,
            "  {} ({}): {} from a subtotal of {}",
            m.code,
            m.name,
            minor(m.flat_rate.rate),
            minor(m.order_minimum)
        );
    }
    out.push_str("\npromotions\n");
    for p in &c.promotions {
        let _ = writeln!(
            out,
            "  {} ({})",
            p.coupon_code.as_deref().unwrap_or("automatic"),
            p.name
        );
    }
    if !c.unmapped.is_empty() {
        let _ = writeln!(out, "\nnot mapped ({})", c.unmapped.len());
        for u in &c.unmapped {
            let _ = writeln!(out, "  {}: {}", u.what, u.why);
        }
    }
    out
}

/// A catalog file (or the demo) as a compact table.
fn file_table(c: &Catalog) -> String {
    let mut out = format!("catalog in {}\n\n", c.currency);
    let _ = writeln!(
        out,
        "{:<18} {:<28} {:>10} {:>7}",
        "variant", "product", "price", "stock"
    );
    for p in c.products() {
        let stock = |s: Option<i64>| s.map_or("-".into(), |n| n.to_string());
        if p.variants.is_empty() {
            let _ = writeln!(
                out,
                "{:<18} {:<28} {:>10} {:>7}",
                "-",
                p.id,
                p.price,
                stock(p.stock)
            );
        }
        for v in &p.variants {
            let _ = writeln!(
                out,
                "{:<18} {:<28} {:>10} {:>7}",
                v.id,
                p.id,
                v.price,
                stock(v.stock)
            );
        }
    }
    out.push_str("\nshipping\n");
    for r in &c.shipping {
        let countries = if r.countries.is_empty() {
            "everywhere".to_string()
        } else {
            r.countries.join(",")
        };
        let _ = writeln!(out, "  {} ({}): {} to {countries}", r.id, r.name, r.cost);
    }
    out
}
