//! The interpreters' rules (`node`, `deno`, `bun`, `python`): no code written in the arguments,
//! nothing preloaded, no debugger port, no local script, `python -m` only a listed module.

use super::*;

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

pub(super) fn node(check: &mut Check<'_>) -> Result<(), Refusal> {
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

pub(super) fn deno(check: &mut Check<'_>) -> Result<(), Refusal> {
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

pub(super) fn bun(check: &mut Check<'_>) -> Result<(), Refusal> {
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

pub(super) fn python(check: &mut Check<'_>) -> Result<(), Refusal> {
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
