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

use super::{Refusal, SecuritySettings};

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

/// Environment variables refused by name (compared in upper case), with why.
const ENV_NAMES: &[(&str, &str)] = &[
    (
        "GCONV_PATH",
        "loads iconv modules (shared libraries) into any program",
    ),
    (
        "NODE_OPTIONS",
        "adds node options, --require and --import among them",
    ),
    ("NODE_PATH", "adds directories node loads modules from"),
    (
        "NODE_REPL_EXTERNAL_MODULE",
        "makes node load a module instead of its REPL",
    ),
    (
        "NODE_EXTRA_CA_CERTS",
        "makes node trust other certificates for package downloads",
    ),
    (
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "turns off node's certificate checks",
    ),
    ("PYTHONPATH", "adds directories python imports from"),
    ("PYTHONHOME", "moves python's standard library"),
    (
        "PYTHONSTARTUP",
        "runs a file when python starts interactively",
    ),
    (
        "PYTHONUSERBASE",
        "moves python's user site-packages, whose .pth files run code",
    ),
    (
        "PYTHONINSPECT",
        "makes python read code from stdin after the program",
    ),
    (
        "PYTHONBREAKPOINT",
        "names a callable python imports on breakpoint()",
    ),
    (
        "PYTHONWARNINGS",
        "warning filters import the module that names a category",
    ),
    ("PYTHONPLATLIBDIR", "moves python's library directory"),
    (
        "PYTHONEXECUTABLE",
        "changes the interpreter python reports and re-runs",
    ),
    (
        "PYTHONPYCACHEPREFIX",
        "moves where python reads compiled modules from",
    ),
    ("PERL5OPT", "adds perl options, -M modules among them"),
    ("PERL5LIB", "adds directories perl loads modules from"),
    ("PERLLIB", "adds directories perl loads modules from"),
    ("RUBYOPT", "adds ruby options, -r libraries among them"),
    ("RUBYLIB", "adds directories ruby loads libraries from"),
    (
        "JAVA_TOOL_OPTIONS",
        "adds JVM options, -javaagent among them",
    ),
    ("_JAVA_OPTIONS", "adds JVM options, -javaagent among them"),
    (
        "JDK_JAVA_OPTIONS",
        "adds JVM options, -javaagent among them",
    ),
    (
        "DOTNET_STARTUP_HOOKS",
        "loads assemblies into every .NET program",
    ),
    ("DOTNET_ADDITIONAL_DEPS", "adds assemblies to .NET programs"),
    (
        "BASH_ENV",
        "a file every non-interactive bash runs first (npm scripts run in a shell)",
    ),
    ("ENV", "a file sh runs at start"),
    ("SHELLOPTS", "sets bash options in every bash"),
    ("BASHOPTS", "sets bash options in every bash"),
    (
        "PS4",
        "bash expands it, command substitutions included, when tracing",
    ),
    ("PROMPT_COMMAND", "a command bash runs before each prompt"),
    ("ZDOTDIR", "where zsh reads its start-up files"),
    ("PATH", "chooses which program every command name runs"),
    ("SHELL", "the program tools run shell commands with"),
    ("EDITOR", "a program tools start"),
    ("VISUAL", "a program tools start"),
    ("PAGER", "a program tools start"),
    ("BROWSER", "a program tools start (OAuth flows open it)"),
    (
        "SSL_CERT_FILE",
        "changes which certificates package downloads trust",
    ),
    (
        "SSL_CERT_DIR",
        "changes which certificates package downloads trust",
    ),
    (
        "REQUESTS_CA_BUNDLE",
        "changes which certificates package downloads trust",
    ),
    (
        "CURL_CA_BUNDLE",
        "changes which certificates package downloads trust",
    ),
];

/// Environment variable prefixes refused (compared in upper case), with why.
const ENV_PREFIXES: &[(&str, &str)] = &[
    (
        "LD_",
        "the dynamic loader's settings (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT) load libraries",
    ),
    ("DYLD_", "the macOS loader's settings load libraries"),
    ("CORECLR_", "loads a profiler library into .NET programs"),
    ("COR_", "loads a profiler library into .NET programs"),
    (
        "NPM_CONFIG_",
        "npm settings: registry, script shell, node options, config files",
    ),
    ("YARN_", "yarn settings: registry, plugins"),
    ("PNPM_", "pnpm settings"),
    ("BUN_CONFIG_", "bun settings: registry"),
    (
        "UV_",
        "uv settings: package index, interpreter, config file",
    ),
    ("PIP_", "pip settings: package index, config file"),
    ("NUGET_", "NuGet settings: package folders and sources"),
    (
        "DENO_",
        "deno settings: certificates, auth tokens, module cache",
    ),
    (
        "GIT_",
        "git runs programs and hooks its environment names (GIT_SSH_COMMAND, GIT_CONFIG_*)",
    ),
];

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

fn check_env(settings: &SecuritySettings, key: &str) -> Result<(), Refusal> {
    let upper = key.to_ascii_uppercase();
    let why = ENV_NAMES
        .iter()
        .find(|(name, _)| *name == upper)
        .or_else(|| {
            ENV_PREFIXES
                .iter()
                .find(|(prefix, _)| upper.starts_with(prefix))
        })
        .map(|(_, why)| *why);
    let Some(why) = why else {
        return Ok(());
    };
    if settings
        .allowed_env
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(key))
    {
        return Ok(());
    }
    Err(Refusal::new(
        RULE_ENV,
        format!("the environment variable {key}: {why} (security.allowedEnv lets a name through)"),
    ))
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

const NODE: Flags = Flags {
    eval: &[
        "-e",
        "--eval",
        "-p",
        "--print",
        "-i",
        "--interactive",
        "--run",
    ],
    preload: &[
        "-r",
        "--require",
        "--import",
        "--loader",
        "--experimental-loader",
        "--env-file",
        "--env-file-if-exists",
        "--openssl-config",
        "--experimental-config-file",
        "--experimental-default-config-file",
        "--snapshot-blob",
        "--build-snapshot",
        "--build-snapshot-config",
        "--experimental-sea-config",
        "--test",
    ],
    harmless: &[
        "-v",
        "--version",
        "-h",
        "--help",
        "-c",
        "--check",
        "--no-warnings",
        "--no-deprecation",
        "--enable-source-maps",
        "--trace-warnings",
        "--trace-deprecation",
        "--throw-deprecation",
        "--pending-deprecation",
        "--trace-uncaught",
        "--trace-exit",
        "--expose-gc",
        "--experimental-vm-modules",
        "--max-old-space-size",
        "--max-semi-space-size",
        "--stack-size",
        "--unhandled-rejections",
        "--disable-warning",
        "--title",
    ],
    takes_value: &[
        "-e",
        "--eval",
        "-p",
        "--print",
        "-r",
        "--require",
        "--import",
        "--loader",
        "--experimental-loader",
        "--env-file",
        "--env-file-if-exists",
        "--openssl-config",
        "--experimental-config-file",
        "--run",
        "--snapshot-blob",
        "--build-snapshot-config",
        "--experimental-sea-config",
        "--inspect-port",
        "--debug-port",
        "--unhandled-rejections",
        "--disable-warning",
        "--title",
    ],
    harmless_prefixes: &[],
    clusters: true,
};

fn node(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &NODE)? {
        None => Ok(()),
        Some("-") => check.refuse(RULE_EVAL, "-", "reads the program from stdin"),
        Some("inspect") => check.refuse(
            RULE_DEBUGGER,
            "inspect",
            "runs the program under a debugger that takes commands",
        ),
        Some(script) => check.script(script),
    }
}

const DENO: Flags = Flags {
    eval: &["--eval"],
    preload: &[
        "--preload",
        "--import-map",
        "-c",
        "--config",
        "--env-file",
        "--env",
    ],
    harmless: &[
        "-A",
        "--allow-all",
        "-q",
        "--quiet",
        "--no-prompt",
        "--no-config",
        "--no-remote",
        "--cached-only",
        "--no-check",
        "--check",
        "--unstable",
    ],
    takes_value: &["--preload", "--import-map", "-c", "--config", "--env-file"],
    // Permission flags (`--allow-net=…`, `--deny-env`) decide what the program may do, not
    // which code runs.
    harmless_prefixes: &["--allow-", "--deny-", "--unstable-"],
    clusters: false,
};

fn deno(check: &mut Check<'_>) -> Result<(), Refusal> {
    let Some(first) = check.args.first() else {
        return Ok(());
    };
    match first.as_str() {
        "run" => {
            check.next();
        }
        "eval" | "repl" => {
            return check.refuse(RULE_EVAL, first, "runs code written in the configuration");
        }
        other if !other.starts_with('-') && !looks_like_path(other) && !is_deno_spec(other) => {
            return check.refuse(
                RULE_SUBCOMMAND,
                other,
                "only `deno run` of an npm: or jsr: package runs a package",
            );
        }
        _ => {}
    }
    match options(check, &DENO)? {
        None => Ok(()),
        Some(module) => match module
            .strip_prefix("npm:")
            .or_else(|| module.strip_prefix("jsr:"))
        {
            Some(spec) => check.package(Registry::Npm, spec),
            None if module.contains("://") => Err(Refusal::new(
                RULE_PACKAGE_SOURCE,
                format!(
                    "{} {module:?}: remote code by URL is refused",
                    check.command
                ),
            )),
            None => check.script(module),
        },
    }
}

fn is_deno_spec(arg: &str) -> bool {
    arg.starts_with("npm:") || arg.starts_with("jsr:") || arg.contains("://")
}

const BUN: Flags = Flags {
    eval: &["-e", "--eval", "-p", "--print"],
    preload: &[
        "-r",
        "--preload",
        "--require",
        "--import",
        "--env-file",
        "-c",
        "--config",
    ],
    harmless: &[
        "--bun",
        "--silent",
        "--smol",
        "-v",
        "--version",
        "-h",
        "--help",
    ],
    takes_value: &[
        "-e",
        "--eval",
        "-p",
        "--print",
        "-r",
        "--preload",
        "--require",
        "--import",
        "--env-file",
        "-c",
        "--config",
    ],
    harmless_prefixes: &[],
    clusters: false,
};

fn bun(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &BUN)? {
        None => Ok(()),
        Some("x") => npm_runner(check),
        Some("run") => match options(check, &BUN)? {
            None => Ok(()),
            Some(target) => bun_target(check, target),
        },
        Some(target) => bun_target(check, target),
    }
}

fn bun_target(check: &Check<'_>, target: &str) -> Result<(), Refusal> {
    if looks_like_path(target) {
        check.script(target)
    } else {
        check.refuse(
            RULE_SUBCOMMAND,
            target,
            "bun runs a package.json script, a local bin or a subcommand by that name; `bun x` \
             runs a package",
        )
    }
}

/// Python's single-letter options that neither run nor load code.
const PYTHON_HARMLESS_LETTERS: &str = "bBdEIOPqsSuvVxh";
/// `-X` settings that neither run nor load code.
const PYTHON_X_HARMLESS: &[&str] = &[
    "utf8",
    "dev",
    "importtime",
    "faulthandler",
    "tracemalloc",
    "showrefcount",
    "warn_default_encoding",
    "no_debug_ranges",
    "int_max_str_digits",
    "frozen_modules",
    "cpu_count",
    "gil",
];

fn python(check: &mut Check<'_>) -> Result<(), Refusal> {
    while let Some(arg) = check.next() {
        if arg == "--" {
            return match check.next() {
                Some(script) => check.script(script),
                None => Ok(()),
            };
        }
        if arg == "-" {
            return check.refuse(RULE_EVAL, arg, "reads the program from stdin");
        }
        if !arg.starts_with('-') {
            return check.script(arg);
        }
        if let Some(long) = arg.strip_prefix("--") {
            if !matches!(long, "version" | "help") {
                check.refuse(RULE_OPTION, arg, "not an option known to be harmless")?;
            }
            continue;
        }
        // A cluster of letters (`-uB`); `c`, `m`, `W` and `X` take the rest of it, or the next
        // argument, as their value.
        let letters = &arg[1..];
        for (index, letter) in letters.char_indices() {
            let attached = &letters[index + letter.len_utf8()..];
            let value = |check: &mut Check<'_>| -> String {
                if attached.is_empty() {
                    check.next().unwrap_or_default().to_owned()
                } else {
                    attached.to_owned()
                }
            };
            match letter {
                'c' => {
                    check.refuse(RULE_EVAL, arg, "runs code written in the configuration")?;
                    // What follows `-c` is the program and its argv.
                    return Ok(());
                }
                'i' => check.refuse(RULE_EVAL, arg, "reads code from stdin after the program")?,
                'm' => {
                    let module = value(check);
                    return python_module(check, arg, &module);
                }
                'W' => {
                    let filter = value(check);
                    // action:message:category:module:lineno; a dotted category is imported.
                    if filter
                        .split(':')
                        .nth(2)
                        .is_some_and(|category| category.contains('.'))
                    {
                        check.refuse(
                            RULE_PRELOAD,
                            arg,
                            "a warning category with a module path imports that module",
                        )?;
                    }
                    break;
                }
                'X' => {
                    let setting = value(check);
                    let key = setting.split('=').next().unwrap_or_default();
                    if !PYTHON_X_HARMLESS.contains(&key) {
                        check.refuse(
                            RULE_OPTION,
                            arg,
                            &format!("-X {key} is not a setting known to be harmless"),
                        )?;
                    }
                    break;
                }
                letter if PYTHON_HARMLESS_LETTERS.contains(letter) => {}
                _ => check.refuse(RULE_OPTION, arg, "not an option known to be harmless")?,
            }
        }
    }
    Ok(())
}

/// `python -m module`: any installed module runs, pip and http.server among them, so only one
/// named in `security.allowedPackages` does (compared as PyPI compares names when it has no dot).
fn python_module(check: &Check<'_>, arg: &str, module: &str) -> Result<(), Refusal> {
    let listed = check
        .settings
        .allowed_packages
        .as_ref()
        .is_some_and(|allowed| {
            allowed.iter().any(|entry| {
                entry.name == module
                    || (!module.contains('.') && pep503(&entry.name) == pep503(module))
            })
        });
    if listed
        || check
            .settings
            .allowed_args
            .iter()
            .any(|allowed| allowed == arg)
    {
        return Ok(());
    }
    Err(Refusal::new(
        RULE_PACKAGE_NOT_ALLOWED,
        format!(
            "{} -m {module}: python -m runs any installed module (pip and http.server among \
             them); name the module in security.allowedPackages",
            check.command
        ),
    ))
}

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

fn npm_runner(check: &mut Check<'_>) -> Result<(), Refusal> {
    match options(check, &NPX)? {
        None => Ok(()),
        Some(spec) => {
            check.package(Registry::Npm, spec)?;
            package_arguments(check, spec)
        }
    }
}

/// `npm exec` / `npm x` read like npx; npm's other subcommands run the project's scripts.
fn npm(check: &mut Check<'_>) -> Result<(), Refusal> {
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
fn yarn(check: &mut Check<'_>) -> Result<(), Refusal> {
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

fn pnpm(check: &mut Check<'_>) -> Result<(), Refusal> {
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
fn uvx(check: &mut Check<'_>) -> Result<(), Refusal> {
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

fn uv(check: &mut Check<'_>) -> Result<(), Refusal> {
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

fn uvenv(check: &mut Check<'_>) -> Result<(), Refusal> {
    match check.next() {
        None => Ok(()),
        Some("run") => uvx(check),
        Some(other) => check.refuse(RULE_SUBCOMMAND, other, "only `uvenv run` runs a package"),
    }
}

/// dnx's options that change where packages come from. dnx reads its options anywhere before
/// `--` and passes the ones it does not know to the tool, so these are refused wherever they are.
const DNX_SOURCES: &[&str] = &["--source", "--add-source", "--configfile"];

fn dnx(check: &mut Check<'_>) -> Result<(), Refusal> {
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
