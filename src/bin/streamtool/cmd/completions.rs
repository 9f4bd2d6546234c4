//! `streamtool completions SHELL`: a shell completion script, generated from the clap
//! definition (STYLE.md rule 10).
//!
//! The same definition generates the man pages (`completions --man-dir DIR`). The copies
//! checked in under `completions/` and `docs/man/` are what these print: the
//! `generated_files_are_current` test (tests/it/cli/shell.rs) fails when any of them is
//! stale, and rewrites them all when run with `STREAMTOOL_BLESS=1`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;

/// The name the scripts complete.
const BIN: &str = "streamtool";

const EXAMPLES: &str = "\
Examples:
  streamtool completions bash > ~/.local/share/bash-completion/completions/streamtool
  streamtool completions zsh > ~/.zfunc/_streamtool      # with fpath+=(~/.zfunc) before compinit
  streamtool completions fish > ~/.config/fish/completions/streamtool.fish
  streamtool completions powershell >> $PROFILE
  streamtool completions --man-dir /usr/local/share/man/man1   # the man pages, for packagers

Exit codes: see `streamtool --help`.";

/// Arguments of `completions`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL", required_unless_present = "man_dir")]
    pub shell: Option<Shell>,

    /// Write the man pages instead (streamtool.1 and one per subcommand) into DIR, made if
    /// missing; a page already there is replaced. `cargo install` installs none.
    #[arg(long, value_name = "DIR", conflicts_with = "shell")]
    pub man_dir: Option<PathBuf>,
}

/// Writes the completion script for the shell to stdout (a closed stdout is not an error),
/// or the man pages into `--man-dir`.
pub fn run(args: CompletionsArgs) -> Result<()> {
    let Some(shell) = args.shell else {
        let dir = args.man_dir.expect("clap requires SHELL or --man-dir");
        return write_man_pages(&dir);
    };
    crate::ui::write_stdout(&script(shell))
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), BIN, &mut out);
    out
}

/// Writes every man page into `dir`, each replaced whole (written beside and renamed).
fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    for (name, page) in streamtool::manpage::pages(crate::cli::command()) {
        let path = dir.join(name);
        streamtool::certs::write_atomic(&path, &page, 0o644, true)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::command;

    /// Each subcommand's help ends with examples, and every example without a placeholder
    /// ("...") is a command line that parses.
    #[test]
    fn help_examples_parse() {
        let mut cmd = command();
        cmd.build();
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let after = sub.get_after_help().map(|s| s.to_string()).unwrap_or_default();
            let examples = after
                .split("\n\n")
                .find_map(|block| block.strip_prefix("Examples:\n"))
                .unwrap_or_else(|| panic!("`streamtool {} --help` has no examples", sub.get_name()));
            // A line ending in a backslash goes on on the next one, as in the shell.
            let joined = examples.replace("\\\n", " ");
            let lines: Vec<&str> = joined.lines().collect();
            assert!(
                (3..=5).contains(&lines.len()),
                "`streamtool {} --help` has {} examples, not 3 to 5",
                sub.get_name(),
                lines.len()
            );
            for line in lines {
                // The streamtool command of a pipeline, without the comment or redirection.
                let command = line.rsplit("| ").next().unwrap();
                let command = command.split("  #").next().unwrap();
                let command = command.split(" >").next().unwrap().trim();
                if command.contains("...") {
                    continue;
                }
                let words = shell_words(command);
                assert_eq!(words.first().map(String::as_str), Some("streamtool"), "{line}");
                if let Err(err) = crate::cli::command().try_get_matches_from(&words) {
                    panic!("the example `{line}` does not parse:\n{err}");
                }
            }
        }
    }

    /// Splits a command line as sh does for plain words and single quotes.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    word.get_or_insert_default();
                }
                ' ' if !quoted => words.extend(word.take()),
                c => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        words
    }
}
