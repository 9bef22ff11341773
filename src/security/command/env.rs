//! Environment variables an untrusted server may not set: those that load code into a program,
//! choose which program runs, or change where a runner fetches packages — each with why.

use super::super::{Refusal, SecuritySettings};
use super::RULE_ENV;

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

pub(super) fn check_env(settings: &SecuritySettings, key: &str) -> Result<(), Refusal> {
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
