//! What the unit tests of the clients share: a platform per OS with fixed directories, and the
//! translation of one entry as read from a client's first file, with given input values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Client, Context, Input, Os, Platform, Translated, sources, translate};

pub(super) fn platform(os: Os) -> Platform {
    let (home, app_data) = match os {
        Os::Windows => (
            PathBuf::from("C:/Users/me"),
            PathBuf::from("C:/Users/me/AppData/Roaming"),
        ),
        Os::MacOs => (PathBuf::from("/Users/me"), PathBuf::new()),
        Os::Linux => (PathBuf::from("/home/me"), PathBuf::new()),
    };
    Platform {
        os,
        xdg_config: home.join(".config"),
        home,
        app_data,
        codex_home: None,
        claude_config_dir: None,
    }
}

pub(super) fn translate_for(
    client: Client,
    raw: Value,
    given: &[(&str, &str)],
) -> Result<Translated, String> {
    let platform = platform(Os::Linux);
    let source = sources(client, &platform, Path::new("/work/app")).remove(0);
    let inputs = BTreeMap::from([("gh".to_owned(), ("GitHub token".to_owned(), true))]);
    let given: BTreeMap<String, String> = given
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut ask = |input: &Input| given.get(&input.id).cloned();
    let mut context = Context {
        client,
        source: &source,
        platform: &platform,
        project: Path::new("/work/app"),
        inputs: &inputs,
        input_value: &mut ask,
    };
    translate(&raw, &mut context)
}
