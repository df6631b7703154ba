//! `leaksift trend`: being built (see the issue that owns it); fails with a clear message until then.

use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`leaksift trend` is not available in this build yet")
}
