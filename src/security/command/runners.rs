//! The runners' rules (`npx`, `npm exec`, `yarn dlx`, `pnpm dlx`, `uvx`, `uv tool run`, `uvenv run`,
//! `dnx`): a package from the registry by its plain name and version, options known to be
//! harmless, and nothing but the subcommand that runs a package.

use super::*;

/// `npx`, `pnpx`, `bunx` (and `bun x`): options, then the package and its own arguments.
/// `--package` is not among the harmless options: with it, the command run is any program npm
/// finds by that name, not the package.
const NPX: Flags = Flags {
    eval: &["-c", "--call"],
    preload: &[],
    harmless: &[
        "-y",
        "--yes",
        "--no",
        "--no-install",
        "-q",
        "--quiet",
        "--silent",
        "--prefer-offline",
        "--prefer-online",
        "--offline",
        "--loglevel",
        "--bun",
    ],
    takes_value: &["-c", "--call", "--loglevel", "-p", "--package"],
    harmless_prefixes: &[],
    clusters: false,
};

pub(super) fn npm_runner(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &NPX)? {
        None => Ok(()),
        Some(spec) => {
            check.package(Registry::Npm, spec)?;
            package_arguments(check, spec)
        }
    }
}

/// `npm exec` / `npm x` read like npx; npm's other subcommands run the project's scripts.
pub(super) fn npm(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &NPX)? {
        None => Ok(()),
        Some("exec" | "x") => npm_runner(check),
        Some(other) => check.refuse(
            RULE_SUBCOMMAND,
            other,
            "only `npm exec` runs a package; the others run the project's scripts",
        ),
    }
}

/// `yarn dlx` reads like npx; yarn's other subcommands run the project's scripts and bins.
pub(super) fn yarn(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &PNPM)? {
        None => Ok(()),
        Some("dlx") => npm_runner(check),
        Some(other) => check.refuse(
            RULE_SUBCOMMAND,
            other,
            "only `yarn dlx` runs a package; the others run the project's scripts and bins",
        ),
    }
}

const PNPM: Flags = Flags {
    eval: &[],
    preload: &[],
    harmless: &["-s", "--silent", "--reporter", "--loglevel"],
    takes_value: &["--reporter", "--loglevel"],
    harmless_prefixes: &[],
    clusters: false,
};

const PNPM_DLX: Flags = Flags {
    eval: &["-c", "--shell-mode"],
    ..PNPM
};

pub(super) fn pnpm(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &PNPM)? {
        None => Ok(()),
        Some("dlx") => match options(check, &PNPM_DLX)? {
            None => Ok(()),
            Some(spec) => {
                check.package(Registry::Npm, spec)?;
                package_arguments(check, spec)
            }
        },
        Some(other) => check.refuse(
            RULE_SUBCOMMAND,
            other,
            "only `pnpm dlx` runs a package; the others run local scripts and bins",
        ),
    }
}

/// uv's options that neither run code nor change where packages or interpreters come from
/// (`--from` and `--with` name packages and are checked as such, `--python` a version).
const UV_HARMLESS: &[&str] = &[
    "-q",
    "--quiet",
    "-v",
    "--verbose",
    "--offline",
    "--no-progress",
    "--native-tls",
    "--isolated",
    "--refresh",
    "--no-cache",
    "-n",
    "--color",
    "--from",
    "--with",
    "-p",
    "--python",
];
const UV_TAKES_VALUE: &[&str] = &[
    "--color",
    "--from",
    "--with",
    "-p",
    "--python",
    "--index",
    "--index-url",
    "--extra-index-url",
    "--default-index",
    "-f",
    "--find-links",
    "--with-requirements",
    "--with-editable",
    "--config-file",
    "--directory",
    "--project",
    "--env-file",
    "-c",
    "--constraints",
    "--overrides",
    "--cache-dir",
];

/// Reads uv's options until the first positional argument; notes whether `--from` named the
/// package.
fn uv_options<'a>(check: &mut Check<'a>, from: &mut bool) -> Result<Option<&'a str>, Refusal> {
    while let Some(arg) = check.next() {
        if arg == "--" {
            return Ok(check.next());
        }
        if !arg.starts_with('-') {
            return Ok(Some(arg));
        }
        let flag = flag_name(arg);
        if !UV_HARMLESS.contains(&flag) {
            check.refuse(RULE_OPTION, arg, "not an option known to be harmless")?;
            if UV_TAKES_VALUE.contains(&flag) && !arg.contains('=') {
                check.next();
            }
            continue;
        }
        match flag {
            "--from" | "--with" => {
                let value = check.value_of(arg).unwrap_or_default();
                for spec in value.split(',').filter(|spec| !spec.is_empty()) {
                    check.package(Registry::PyPi, spec)?;
                }
                *from |= flag == "--from";
            }
            "-p" | "--python" => {
                let value = check.value_of(arg).unwrap_or_default();
                // A version (`3.12`, `cpython@3.12`, `pypy3.10`), never an interpreter's path.
                let version_like = !value.is_empty()
                    && !looks_like_path(value)
                    && value
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ".@-+".contains(ch));
                if !version_like {
                    check.refuse(
                        RULE_OPTION,
                        arg,
                        "--python names a version here, not an interpreter's path",
                    )?;
                }
            }
            "--color" if !arg.contains('=') => {
                check.next();
            }
            _ => {}
        }
    }
    Ok(None)
}

/// `uvx`, `uv tool run`, `uvenv run`: options, then the package (or, with `--from`, an
/// executable of its environment) and its own arguments. `python` there is the interpreter
/// (`uvx python@3.12`, `uvx --from pkg python`), read by python's rules.
pub(super) fn uvx(check: &mut Check<'_>) -> Result<(), Refusal> {
    let mut from = false;
    let Some(target) = uv_options(check, &mut from)? else {
        return Ok(());
    };
    let (name, _) = split_version(target);
    if is_python(&name.to_ascii_lowercase()) {
        return python(check);
    }
    if !from {
        check.package(Registry::PyPi, target)?;
        return package_arguments(check, target);
    }
    if looks_like_path(target) {
        return check.script(target);
    }
    package_arguments(check, target)
}

pub(super) fn uv(check: &mut Check<'_>) -> Result<(), Refusal> {
    let mut from = false;
    match uv_options(check, &mut from)? {
        None => Ok(()),
        Some("tool") => match check.next() {
            Some("run" | "uvx") => uvx(check),
            Some(other) => {
                check.refuse(RULE_SUBCOMMAND, other, "only `uv tool run` runs a package")
            }
            None => Ok(()),
        },
        Some(other) => check.refuse(
            RULE_SUBCOMMAND,
            other,
            "only `uv tool run` runs a package; `uv run` runs local scripts and any program",
        ),
    }
}

pub(super) fn uvenv(check: &mut Check<'_>) -> Result<(), Refusal> {
    match check.next() {
        None => Ok(()),
        Some("run") => uvx(check),
        Some(other) => check.refuse(RULE_SUBCOMMAND, other, "only `uvenv run` runs a package"),
    }
}

/// dnx's options that change where packages come from. dnx reads its options anywhere before
/// `--` and passes the ones it does not know to the tool, so these are refused wherever they are.
const DNX_SOURCES: &[&str] = &["--source", "--add-source", "--configfile"];

pub(super) fn dnx(check: &mut Check<'_>) -> Result<(), Refusal> {
    let (mut package, mut version) = (None, None);
    while let Some(arg) = check.next() {
        if arg == "--" {
            break;
        }
        let flag = flag_name(arg);
        if DNX_SOURCES.contains(&flag) {
            check.refuse(RULE_OPTION, arg, "changes where packages come from")?;
            if !arg.contains('=') {
                check.next();
            }
        } else if flag == "--version" {
            version = check.value_of(arg);
        } else if matches!(flag, "-v" | "--verbosity") {
            if !arg.contains('=') {
                check.next();
            }
        } else if !arg.starts_with('-') && package.is_none() {
            package = Some(arg);
        }
    }
    let Some(package) = package else {
        return Ok(());
    };
    match version {
        Some(version) if !package.contains('@') => {
            check.package(Registry::NuGet, &format!("{package}@{version}"))
        }
        _ => check.package(Registry::NuGet, package),
    }
}
