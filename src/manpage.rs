//! Man pages from the tool's clap definition (`streamtool completions --man-dir DIR`, and
//! the copies checked in under `docs/man/`): `streamtool.1` and one per visible
//! subcommand, rendered by clap_mangen, with the `after_help` text turned into sections.

/// The man pages: `streamtool.1` and one per visible subcommand (`streamtool-serve.1`, ...),
/// as (file name, roff text). The `after_help` text becomes sections: "Examples:" becomes
/// EXAMPLES and "Exit codes:" EXIT STATUS, kept as preformatted text.
pub fn pages(cmd: clap::Command) -> Vec<(String, Vec<u8>)> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![man_page(&cmd)];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(man_page));
    pages
}

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

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
