//! What an untrusted server's command line may ask an allowed program to do. The boundary: an
//! allowed runner (`npx`, `pnpm dlx`, `pnpx`, `bunx`, `uvx`, `uv tool run`, `uvenv run`, `dnx`)
//! runs a package from its registry, named by a plain name and version (and, when
//! `security.allowedPackages` is set, only one listed there); an allowed interpreter (`node`,
//! `deno`, `bun`, `python`) runs no code the config hands it — nothing inline, nothing preloaded,
//! no debugger port, no local script — and `python -m` only a module that is listed. Options are
//! checked against lists of options known to be harmless, so a new flag of a runner is refused
//! until someone decides it is safe; what comes after the package or module is that program's
//! own arguments and is not read. Environment variables that load code into a program, choose
//! which program runs, or change where a runner fetches packages are refused. Every refusal
//! names its rule and the setting that lets it through (`allowedArgs`, `allowedEnv`,
//! `allowedPackages`).

mod env;
mod interpreters;
mod runners;

use super::{Refusal, SecuritySettings};
use env::check_env;
use interpreters::{bun, deno, node, python};
use runners::{dnx, npm, npm_runner, pnpm, uv, uvenv, uvx, yarn};

/// Code given in the arguments: eval and print flags, a REPL, a runner's shell command.
const RULE_EVAL: &str = "arg-eval";
/// Other code loaded into the program: preload and loader flags, option files, env files.
const RULE_PRELOAD: &str = "arg-preload";
/// A debugger port: whoever reaches it runs code in the process.
const RULE_DEBUGGER: &str = "arg-debugger";
/// An option not known to be harmless (a registry, an index, a config file, anything new).
const RULE_OPTION: &str = "arg-option";
/// A runner's subcommand other than the one that runs a package (`pnpm exec`, `uv run`).
const RULE_SUBCOMMAND: &str = "arg-subcommand";
/// A local file as the program to run.
const RULE_SCRIPT: &str = "script-path";
/// A package named by a URL, git repository, local path or archive instead of a registry name.
const RULE_PACKAGE_SOURCE: &str = "package-source";
/// A package (or `python -m` module) not in `security.allowedPackages`.
const RULE_PACKAGE_NOT_ALLOWED: &str = "package-not-allowed";
/// An environment variable that loads code, chooses a program or changes a package source.
const RULE_ENV: &str = "env-code-loading";

/// How a command's arguments are read, by the command's file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Node,
    Deno,
    Bun,
    Python,
    /// `npx`, `pnpx`, `bunx`: options, then a package and its arguments.
    NpmRunner,
    /// `npm exec` and `npm x` (reached as a package: `npx npm exec …`).
    Npm,
    Pnpm,
    /// `yarn dlx` (reached as a package: `npx yarn dlx …`).
    Yarn,
    Uvx,
    Uv,
    Uvenv,
    Dnx,
    /// Anything else (an operator's `allowedCommands`): the generic rules only.
    Other,
}

/// Where a runner's packages come from: decides how names are read and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registry {
    Npm,
    PyPi,
    NuGet,
}

impl Registry {
    fn label(self) -> &'static str {
        match self {
            Registry::Npm => "npm",
            Registry::PyPi => "PyPI",
            Registry::NuGet => "NuGet",
        }
    }
}

/// A package as a registry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackageSpec {
    name: String,
    /// An exact version (`@1.2.3`, `==1.2.3`), when the spec pins one.
    version: Option<String>,
}

/// One entry of `security.allowedPackages`: a name, optionally with the only version allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPackage {
    pub name: String,
    pub version: Option<String>,
}

impl AllowedPackage {
    /// Reads `name` or `name@version` (`@scope/name@version` for scoped npm packages).
    pub fn parse(text: &str) -> Option<AllowedPackage> {
        let (name, version) = split_version(text);
        let name_ok = !name.is_empty()
            && name
                .trim_start_matches('@')
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._~-/".contains(ch))
            && name.matches('/').count() <= usize::from(name.starts_with('@'))
            && !name.trim_start_matches('@').starts_with(['.', '/', '-']);
        let version_ok = version.is_none_or(|version| {
            !version.is_empty()
                && version
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ".+-_".contains(ch))
        });
        (name_ok && version_ok).then(|| AllowedPackage {
            name: name.to_owned(),
            version: version.map(str::to_owned),
        })
    }

    fn matches(&self, registry: Registry, spec: &PackageSpec) -> bool {
        same_name(registry, &self.name, &spec.name)
            && self
                .version
                .as_ref()
                .is_none_or(|version| spec.version.as_deref() == Some(version.as_str()))
    }
}

/// Splits `name@version` at the last `@` that is not a scope's leading one.
fn split_version(text: &str) -> (&str, Option<&str>) {
    let search_from = usize::from(text.starts_with('@'));
    match text[search_from..].rfind('@') {
        Some(at) => (
            &text[..search_from + at],
            Some(&text[search_from + at + 1..]),
        ),
        None => (text, None),
    }
}

/// Registry names compare as the registry does: npm by exact name (case-insensitively, for old
/// mixed-case names), PyPI and NuGet after lower-casing and, for PyPI, with runs of `-`, `_` and
/// `.` as one `-` (PEP 503).
fn same_name(registry: Registry, a: &str, b: &str) -> bool {
    match registry {
        Registry::Npm | Registry::NuGet => a.eq_ignore_ascii_case(b),
        Registry::PyPi => pep503(a) == pep503(b),
    }
}

fn pep503(name: &str) -> String {
    let mut normal = String::with_capacity(name.len());
    for ch in name.chars() {
        if matches!(ch, '-' | '_' | '.') {
            if !normal.ends_with('-') {
                normal.push('-');
            }
        } else {
            normal.push(ch.to_ascii_lowercase());
        }
    }
    normal
}

fn family(command: &str) -> Family {
    let file = command.rsplit(['/', '\\']).next().unwrap_or(command);
    let lower = file.to_ascii_lowercase();
    let name = lower
        .strip_suffix(".exe")
        .or_else(|| lower.strip_suffix(".cmd"))
        .unwrap_or(&lower);
    match name {
        "node" | "nodejs" => Family::Node,
        "deno" => Family::Deno,
        "bun" => Family::Bun,
        "npx" | "pnpx" | "bunx" => Family::NpmRunner,
        "npm" => Family::Npm,
        "pnpm" => Family::Pnpm,
        "yarn" => Family::Yarn,
        "uvx" => Family::Uvx,
        "uv" => Family::Uv,
        "uvenv" => Family::Uvenv,
        "dnx" => Family::Dnx,
        other if is_python(other) => Family::Python,
        _ => Family::Other,
    }
}

/// `python`, `python3`, `python3.12`, `pythonw`, `pypy3`.
fn is_python(name: &str) -> bool {
    ["python", "pypy"].iter().any(|prefix| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.strip_suffix('w')
                .unwrap_or(rest)
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == '.')
        })
    })
}

/// An option's name: `--flag=value` is `--flag`.
fn flag_name(arg: &str) -> &str {
    match arg.split_once('=') {
        Some((name, _)) if arg.starts_with("--") => name,
        _ => arg,
    }
}

/// Whether `arg` is a local file path rather than a bare name.
fn looks_like_path(arg: &str) -> bool {
    arg.contains(['/', '\\'])
        || arg.starts_with(['.', '~'])
        || arg.as_bytes().get(1) == Some(&b':')
        || [".js", ".mjs", ".cjs", ".ts", ".mts", ".py", ".pyz", ".pyc"]
            .iter()
            .any(|extension| arg.to_ascii_lowercase().ends_with(extension))
}

/// Whether `spec` names an archive file (`x.tgz`, `x.whl`) rather than a package.
fn is_archive(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    [
        ".tgz", ".tar", ".tar.gz", ".tar.bz2", ".zip", ".whl", ".egg", ".nupkg",
    ]
    .iter()
    .any(|extension| lower.ends_with(extension))
}

/// One command line being checked: the settings and the arguments still to read.
struct Check<'a> {
    settings: &'a SecuritySettings,
    command: &'a str,
    args: &'a [String],
    at: usize,
}

impl<'a> Check<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let args = self.args;
        let arg = args.get(self.at)?;
        self.at += 1;
        Some(arg.as_str())
    }

    /// The value of an option: after its `=`, or the next argument.
    fn value_of(&mut self, arg: &'a str) -> Option<&'a str> {
        match arg.split_once('=') {
            Some((_, value)) if arg.starts_with("--") => Some(value),
            _ => self.next(),
        }
    }

    /// Refuses `arg` under `rule` unless `security.allowedArgs` lists it (as written, or by its
    /// flag name: a listed flag passes with any value).
    fn refuse(&self, rule: &'static str, arg: &str, why: &str) -> Result<(), Refusal> {
        if self
            .settings
            .allowed_args
            .iter()
            .any(|allowed| allowed == arg || allowed == flag_name(arg))
        {
            return Ok(());
        }
        Err(Refusal::new(
            rule,
            format!(
                "{} {arg:?}: {why} (security.allowedArgs lets an argument through)",
                self.command
            ),
        ))
    }

    /// Checks a runner's package spec: a registry name, on the allow-list when there is one.
    fn package(&self, registry: Registry, spec: &str) -> Result<(), Refusal> {
        let Some(parsed) = parse_spec(registry, spec).filter(|_| !is_archive(spec)) else {
            return self.refuse(
                RULE_PACKAGE_SOURCE,
                spec,
                &format!(
                    "not a {} package name and version; URLs, git repositories, local paths and \
                     archives are refused",
                    registry.label()
                ),
            );
        };
        if let Some(allowed) = &self.settings.allowed_packages
            && !allowed.iter().any(|entry| entry.matches(registry, &parsed))
        {
            return Err(Refusal::new(
                RULE_PACKAGE_NOT_ALLOWED,
                format!(
                    "{} {spec:?}: {} is not in security.allowedPackages",
                    self.command,
                    match &parsed.version {
                        Some(version) => format!("{}@{version}", parsed.name),
                        None => format!("{} without a pinned version", parsed.name),
                    }
                ),
            ));
        }
        Ok(())
    }

    /// The program a runner or interpreter was given is a local file: refused unless listed.
    fn script(&self, arg: &str) -> Result<(), Refusal> {
        self.refuse(
            RULE_SCRIPT,
            arg,
            "a local script runs whatever that file holds, outside the package allow-list",
        )
    }
}

/// Reads a runner's package spec; `None` when it is not a plain registry name and version.
fn parse_spec(registry: Registry, spec: &str) -> Option<PackageSpec> {
    let version_chars = |version: &str, extra: &str| {
        !version.is_empty()
            && version
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || extra.contains(ch))
    };
    match registry {
        Registry::Npm => {
            let (name, version) = split_version(spec);
            let part_ok = |part: &str| {
                !part.is_empty()
                    && !part.starts_with(['.', '_', '-'])
                    && part
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "._~-".contains(ch))
            };
            let name_ok = match name.strip_prefix('@') {
                Some(scoped) => scoped
                    .split_once('/')
                    .is_some_and(|(scope, bare)| part_ok(scope) && part_ok(bare)),
                None => part_ok(name),
            };
            // A version, range or tag; never an `npm:` alias, `file:`, a URL or `user/repo`.
            let version_ok = version.is_none_or(|version| version_chars(version, ".-+^~<>=*|_ "));
            (name_ok && version_ok).then(|| PackageSpec {
                name: name.to_owned(),
                version: version
                    .filter(|version| version_chars(version, ".-+_"))
                    .map(str::to_owned),
            })
        }
        Registry::PyPi => {
            let name_end = spec
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || "._-".contains(ch)))
                .unwrap_or(spec.len());
            let name = &spec[..name_end];
            let mut rest = &spec[name_end..];
            if let Some(extras) = rest.strip_prefix('[') {
                let (inside, after) = extras.split_once(']')?;
                if !inside
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ",._-".contains(ch))
                {
                    return None;
                }
                rest = after;
            }
            if !name.starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
                return None;
            }
            // `name@1.0` (uv's form), `name==1.0`, or a range (`name>=1,<2`); never `name @ url`.
            let version = if rest.is_empty() {
                None
            } else if let Some(pinned) = rest.strip_prefix('@').or(rest.strip_prefix("==")) {
                if !version_chars(pinned, ".+!-_*") {
                    return None;
                }
                Some(pinned.to_owned())
            } else if version_chars(rest, "<>=!~,.*+-_") {
                None
            } else {
                return None;
            };
            Some(PackageSpec {
                name: name.to_owned(),
                version,
            })
        }
        Registry::NuGet => {
            let (name, version) = split_version(spec);
            let name_ok = name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
            let version_ok = version.is_none_or(|version| version_chars(version, ".+-*"));
            (name_ok && version_ok).then(|| PackageSpec {
                name: name.to_owned(),
                version: version.map(str::to_owned),
            })
        }
    }
}

/// Checks an untrusted server's arguments and environment (the command itself passed the
/// allow-list and the syntax rules).
pub(super) fn check<'a>(
    settings: &SecuritySettings,
    command: &str,
    args: &[String],
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), Refusal> {
    let mut check = Check {
        settings,
        command,
        args,
        at: 0,
    };
    rules_for(family(command), &mut check)?;
    for (key, _) in env {
        check_env(settings, key)?;
    }
    Ok(())
}

/// Reads the rest of `check`'s arguments by the rules of `family`.
fn rules_for(family: Family, check: &mut Check<'_>) -> Result<(), Refusal> {
    match family {
        Family::Node => node(check),
        Family::Deno => deno(check),
        Family::Bun => bun(check),
        Family::Python => python(check),
        Family::NpmRunner => npm_runner(check),
        Family::Npm => npm(check),
        Family::Pnpm => pnpm(check),
        Family::Yarn => yarn(check),
        Family::Uvx => uvx(check),
        Family::Uv => uv(check),
        Family::Uvenv => uvenv(check),
        Family::Dnx => dnx(check),
        Family::Other => Ok(()),
    }
}

/// After a runner's package: when the package is itself an interpreter or a runner (`npx node`,
/// `uvx uv`, `npx npm exec`), its arguments get that program's rules; any other package's
/// arguments are its own.
fn package_arguments(check: &mut Check<'_>, spec: &str) -> Result<(), Refusal> {
    let (name, _) = split_version(spec);
    let name = name
        .split(['=', '<', '>', '[', '~', '!'])
        .next()
        .unwrap_or(name);
    rules_for(family(name), check)
}

/// A program's options, by what they do.
struct Flags {
    /// Run code written in the arguments.
    eval: &'static [&'static str],
    /// Load other code into the program.
    preload: &'static [&'static str],
    /// Known to do neither, nor to change where code comes from; every other option is refused.
    harmless: &'static [&'static str],
    /// Families of harmless options, by prefix.
    harmless_prefixes: &'static [&'static str],
    /// Options whose value may be the next argument.
    takes_value: &'static [&'static str],
    /// Single-letter flags combine (`node -pe`): read such an argument letter by letter.
    clusters: bool,
}

fn is_debugger(flag: &str) -> bool {
    flag.starts_with("--inspect") || flag.starts_with("--debug")
}

/// Reads options until the first positional argument, which it returns (`--` ends the options).
fn options<'a>(check: &mut Check<'a>, flags: &Flags) -> Result<Option<&'a str>, Refusal> {
    while let Some(arg) = check.next() {
        if arg == "--" {
            return Ok(check.next());
        }
        if !arg.starts_with('-') || arg == "-" {
            return Ok(Some(arg));
        }
        let flag = flag_name(arg);
        let mut takes_value = flags.takes_value.contains(&flag);
        if flags.eval.contains(&flag) {
            check.refuse(RULE_EVAL, arg, "runs code written in the configuration")?;
        } else if flags.preload.contains(&flag) {
            check.refuse(RULE_PRELOAD, arg, "loads other code into the program")?;
        } else if is_debugger(flag) {
            check.refuse(
                RULE_DEBUGGER,
                arg,
                "opens a debugger; whoever reaches it runs code in the process",
            )?;
        } else if flags.harmless.contains(&flag)
            || flags
                .harmless_prefixes
                .iter()
                .any(|prefix| flag.starts_with(prefix))
        {
        } else if flags.clusters && !arg.starts_with("--") && arg.len() > 2 {
            for letter in arg[1..].chars() {
                let single = format!("-{letter}");
                if flags.eval.contains(&single.as_str()) {
                    check.refuse(RULE_EVAL, arg, "runs code written in the configuration")?;
                } else if flags.preload.contains(&single.as_str()) {
                    check.refuse(RULE_PRELOAD, arg, "loads other code into the program")?;
                } else if !flags.harmless.contains(&single.as_str()) {
                    check.refuse(RULE_OPTION, arg, "not an option known to be harmless")?;
                }
                takes_value |= flags.takes_value.contains(&single.as_str());
            }
        } else {
            check.refuse(RULE_OPTION, arg, "not an option known to be harmless")?;
        }
        if takes_value && !arg.contains('=') {
            check.next();
        }
    }
    Ok(None)
}
