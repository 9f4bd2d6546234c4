//! `streamtool completions SHELL`: a shell completion script, generated from the clap
//! definition (STYLE.md rule 10).
//!
//! The same definition generates the copies checked in under `completions/` and the man
//! pages under `docs/man/`; the `generated_files_are_current` test below fails when any of
//! them is stale, and rewrites them all when run with `STREAMTOOL_BLESS=1`.

use std::io::Write;

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
  streamtool completions elvish >> ~/.config/elvish/rc.elv

Exit codes: see `streamtool --help`.";

/// Arguments of `completions`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// Writes the completion script for the shell to stdout; a closed stdout is not an error.
pub fn run(args: CompletionsArgs) -> Result<()> {
    let script = script(args.shell);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), BIN, &mut out);
    out
}

/// The man pages: `streamtool.1` and one per visible subcommand (`streamtool-serve.1`, ...),
/// as (file name, roff text). The `after_help` text becomes sections: "Examples:" becomes
/// EXAMPLES and "Exit codes:" EXIT STATUS, kept as preformatted text.
#[cfg(test)]
fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![man_page(&cmd)];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(man_page));
    pages
}

#[cfg(test)]
fn man_page(cmd: &clap::Command) -> (String, Vec<u8>) {
    use clap_mangen::roff::{Roff, roman};

    let after_help = cmd.get_after_help().map(|s| s.to_string()).unwrap_or_default();
    // The long version names the crypto provider, which depends on the build's features;
    // the man page keeps the plain version so that it is the same for every build.
    let man = clap_mangen::Man::new(
        cmd.clone().after_help(None::<&'static str>).long_version(None::<&'static str>),
    )
    .source(format!("streamtool {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render(&mut page).expect("rendering into memory");

    let mut extra = Roff::new();
    let mut notes: Vec<String> = Vec::new();
    for block in after_help.split("\n\n").map(str::trim_end).filter(|b| !b.is_empty()) {
        let (first, body) = block.split_once('\n').unwrap_or((block, ""));
        let section = |title: &str| match title {
            "Examples" => "EXAMPLES".to_string(),
            "Exit codes" => "EXIT STATUS".to_string(),
            other => other.split(" (").next().unwrap_or(other).to_uppercase(),
        };
        match first.strip_suffix(':') {
            // "Heading:" on a line of its own: a section of preformatted lines.
            Some(title) if !body.is_empty() => {
                extra.control("SH", [section(title).as_str()]);
                if let Some((_, note)) = title.split_once(" (") {
                    extra.text([roman(format!("{}.", capitalized(note.trim_end_matches(')'))))]);
                }
                extra.control("PP", []).control("nf", []);
                for line in body.lines() {
                    extra.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
                }
                extra.control("fi", []);
            }
            _ => match block.split_once(": ") {
                // "Exit codes: see `streamtool --help`." on one line.
                Some(("Exit codes", text)) if body.is_empty() => {
                    let text = text.replace("`streamtool --help`", "streamtool(1)");
                    extra.control("SH", ["EXIT STATUS"]).text([roman(capitalized(&text))]);
                }
                _ => notes.push(block.to_string()),
            },
        }
    }
    if !notes.is_empty() {
        extra.control("SH", ["NOTES"]);
        for note in notes {
            extra.control("PP", []).text([roman(note.replace('\n', " "))]);
        }
    }
    // The page already starts with roff's preamble; do not repeat it.
    let preamble = Roff::new().render();
    let extra = extra.render();
    page.extend_from_slice(extra.strip_prefix(preamble.as_str()).unwrap_or(&extra).as_bytes());
    (man.get_filename(), page)
}

#[cfg(test)]
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::cli::command;
    use clap_complete::{Generator, Shell};

    use super::*;

    /// Every generated file, by its path relative to the package root.
    fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<(PathBuf, Vec<u8>)> =
            [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish]
                .into_iter()
                .map(|shell| (Path::new("completions").join(shell.file_name(BIN)), script(shell)))
                .collect();
        files.extend(man_pages().into_iter().map(|(name, page)| (Path::new("docs/man").join(name), page)));
        files
    }

    /// The checked-in completions and man pages are what the clap definition generates,
    /// byte for byte; `STREAMTOOL_BLESS=1` rewrites them.
    #[test]
    fn generated_files_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("STREAMTOOL_BLESS").is_some_and(|v| !v.is_empty() && v != "0");
        let mut stale = Vec::new();
        for (path, generated) in generated_files() {
            let full = root.join(&path);
            if std::fs::read(&full).ok().as_deref() == Some(generated.as_slice()) {
                continue;
            }
            if bless {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, &generated).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
            } else {
                stale.push(path.display().to_string());
            }
        }
        // No file without a generator (a subcommand that was removed or renamed).
        let expected: Vec<PathBuf> = generated_files().into_iter().map(|(path, _)| path).collect();
        for dir in ["completions", "docs/man"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = Path::new(dir).join(entry.unwrap().file_name());
                let ours = path.extension().is_some_and(|e| e == "1") || dir == "completions";
                if ours && !expected.contains(&path) {
                    if bless {
                        std::fs::remove_file(root.join(&path)).unwrap();
                    } else {
                        stale.push(format!("{} (no longer generated)", path.display()));
                    }
                }
            }
        }
        assert!(
            stale.is_empty(),
            "these generated files differ from what the clap definition generates: {}\n\
             regenerate them with: STREAMTOOL_BLESS=1 cargo test --bin streamtool generated_files_are_current",
            stale.join(", ")
        );
    }

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

    #[test]
    fn man_pages_have_examples_and_exit_codes() {
        let pages = man_pages();
        let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "streamtool.1",
                "streamtool-serve.1",
                "streamtool-connect.1",
                "streamtool-pipe.1",
                "streamtool-gen-cert.1",
                "streamtool-completions.1"
            ]
        );
        for (name, page) in &pages {
            let text = String::from_utf8_lossy(page);
            assert!(text.contains(".SH \"EXIT STATUS\""), "{name} has no EXIT STATUS");
            assert!(!text.contains("ssl"), "{name} shows a hidden --ssl alias");
            if name != "streamtool.1" {
                assert!(text.contains(".SH EXAMPLES"), "{name} has no EXAMPLES");
            }
        }
    }
}
