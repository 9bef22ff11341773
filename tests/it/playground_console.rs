//! The playground page in a real browser: headless Chromium driven over WebDriver, against the
//! proxy with the demo server and the providers' stand-ins (`llm_standin`). A person picks each
//! provider and model, chooses tools and chats over two turns in which the model calls two tools
//! and answers from their results; a catalog larger than OpenAI's limit is warned of and
//! narrowed; a schema Gemini cannot take is converted and the loss shown; a provider's error is
//! shown with its reason; a server's sampling request is answered by the model, and a tool's
//! progress and a server's question show in the tool's card; a key saved in the page is never
//! given back to it; a base URL saved there says so and can be reset; Stop ends a turn and its
//! tool call, and the chat goes on. No page logs an error to the browser's console.

use pluggedin_mcp_proxy::llm::ProviderKind;
use serde_json::{Value, json};

use crate::api_console::{Live, demo_servers, send};
use crate::llm_standin::{Failure, Recorded, Standin};
use crate::playground::{ANSWER, PLAN, provider_env, right_keys};
use crate::support::*;
use crate::webdriver::{Browser, Element};

/// WebDriver's keys: Shift, Control, Enter, Backspace, and the one releasing held modifiers.
const SHIFT: &str = "\u{E008}";
const CONTROL: &str = "\u{E009}";
const ENTER: &str = "\u{E007}";
const BACKSPACE: &str = "\u{E003}";
const RELEASE: &str = "\u{E000}";

/// The proxy with `servers` and `env`, once the demo server is connected.
async fn proxy(servers: Value, env: &[(String, String)]) -> Live {
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let live = Live::start_with(json!({ "mcpServers": servers }), &[], &env).await;
    live.connected("demo").await;
    live
}

/// Opens the playground and waits until it has drawn its settings and chat.
async fn open_playground(browser: &Browser, live: &Live) {
    browser.goto(&live.url("/console/#/playground")).await;
    browser
        .find("section[data-page=playground] .playground #playground-transcript")
        .await;
    browser.find(".playground-tool-list").await;
}

/// Picks `kind` and its model as a person does: the provider from the list, the model typed.
async fn choose_provider(browser: &Browser, kind: ProviderKind) {
    browser
        .select_option("#playground-provider", kind.id())
        .await;
    let model = browser.find("#playground-model").await;
    erase(&model).await;
    model.send_keys(Standin::model(kind)).await;
    assert_eq!(model.property("value").await, Standin::model(kind));
}

/// Empties an input as a person does: select all, delete.
async fn erase(input: &Element) {
    input
        .send_keys(&format!("{CONTROL}a{RELEASE}{BACKSPACE}"))
        .await;
    assert_eq!(input.property("value").await, "", "not emptied");
}

/// Chooses exactly `names` in the tool chooser: none, then each one found with the filter.
async fn choose_tools(browser: &Browser, names: &[&str]) {
    let filter = browser.find("#playground-tool-filter").await;
    erase(&filter).await;
    browser.find("#playground-tools-none").await.click().await;
    for name in names {
        erase(&filter).await;
        filter.send_keys(name).await;
        let item = format!("li.playground-tool[data-name=\"{name}\"]");
        browser
            .wait_until(
                "the filter shows the tool",
                "const item = document.querySelector(arguments[0]);
                 return !!item && !item.hidden;",
                vec![json!(item)],
            )
            .await;
        let choice = browser.find(&format!("{item} input[type=checkbox]")).await;
        choice.click().await;
        assert_eq!(choice.property("checked").await, true, "{name}");
    }
    erase(&filter).await;
    let chosen = browser
        .execute(
            "return [...document.querySelectorAll('.playground-tool input:checked')]
               .map((box) => box.value);",
            vec![],
        )
        .await;
    let mut wanted: Vec<&str> = names.to_vec();
    wanted.sort_unstable();
    assert_eq!(chosen, json!(wanted));
}

/// Types `text` into the message box, each line break as Shift+Enter (Enter alone sends).
async fn type_message(browser: &Browser, text: &str) {
    let input = browser.find("#playground-input").await;
    for (at, line) in text.split('\n').enumerate() {
        if at > 0 {
            input.send_keys(&format!("{SHIFT}{ENTER}{RELEASE}")).await;
        }
        input.send_keys(line).await;
    }
    assert_eq!(input.property("value").await, text);
}

/// Types `text` and sends it with the Send button.
async fn send_message(browser: &Browser, text: &str) {
    type_message(browser, text).await;
    browser.find("#playground-send").await.click().await;
}

/// Waits until the transcript has `turns` ended turns, the last one marked done, and the page
/// takes the next message; how the turn ended (`end_turn`, `error`, ...).
async fn turn_ended(browser: &Browser, turns: usize) -> String {
    let stop = browser
        .wait_until(
            &format!("turn {turns} ending"),
            "const box = document.querySelector('#playground-transcript');
             const ends = box.querySelectorAll('.playground-turn-end');
             const last = ends[ends.length - 1];
             const idle = box.getAttribute('aria-busy') === 'false' &&
               !document.querySelector('#playground-send').disabled;
             return idle && ends.length === arguments[0] &&
               last.classList.contains('playground-done') ? last.dataset.stop : null;",
            vec![json!(turns)],
        )
        .await;
    stop.as_str().unwrap().to_owned()
}

/// The tool-call cards in the transcript: name, arguments (parsed), result text and state.
async fn tool_cards(browser: &Browser) -> Vec<Value> {
    let cards = browser
        .execute(
            "return [...document.querySelectorAll('#playground-transcript .playground-tool-call')]
               .map((card) => ({
                 name: card.querySelector('summary .playground-tool-name').textContent,
                 arguments: JSON.parse(card.querySelector('.playground-arguments').textContent),
                 result: card.querySelector('.result').innerText,
                 status: card.querySelector('.playground-tool-status').textContent,
               }));",
            vec![],
        )
        .await;
    cards.as_array().unwrap().clone()
}

/// The model's messages in the transcript, as shown.
async fn answers(browser: &Browser) -> Vec<String> {
    let texts = browser
        .execute(
            "return [...document.querySelectorAll(
                 '#playground-transcript .playground-message.assistant')]
               .map((bubble) => bubble.textContent);",
            vec![],
        )
        .await;
    serde_json::from_value(texts).unwrap()
}

/// The requests for an answer (not a model list) the stand-in got for `kind`.
fn generations(standin: &Standin, kind: ProviderKind) -> Vec<Recorded> {
    standin
        .requests_to(kind)
        .into_iter()
        .filter(|request| request.method == "POST")
        .collect()
}

/// Asserts the browser logged no error (a script's failure, a resource the Content Security
/// Policy refused, an answer with an error status) but those `expected` says are.
async fn no_errors(browser: &Browser, expected: impl Fn(&str) -> bool) {
    let errors: Vec<Value> = browser
        .console_messages()
        .await
        .into_iter()
        .filter(|message| message["level"] == "SEVERE")
        .filter(|message| !expected(message["message"].as_str().unwrap_or_default()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_chats_over_two_turns_with_two_tools_through_the_page() {
    let standin = Standin::start().await;
    let live = proxy(demo_servers(), &provider_env(&standin, right_keys)).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    for kind in ProviderKind::ALL {
        choose_provider(&browser, kind).await;
        browser
            .wait_for_text(".playground-provider-status", "ready")
            .await;
        choose_tools(&browser, &["demo__add", "demo__echo"]).await;
        send_message(&browser, PLAN).await;
        assert_eq!(turn_ended(&browser, 1).await, "end_turn", "{kind:?}");
        let cards = tool_cards(&browser).await;
        assert_eq!(cards.len(), 2, "{kind:?}: {cards:#?}");
        assert_eq!(cards[0]["name"], "demo__add", "{kind:?}");
        assert_eq!(cards[0]["arguments"], json!({"a": 2, "b": 3}), "{kind:?}");
        assert_eq!(cards[0]["status"], "done", "{kind:?}");
        assert!(
            cards[0]["result"].as_str().unwrap().contains('5'),
            "{kind:?}: {cards:#?}"
        );
        assert_eq!(cards[1]["name"], "demo__echo", "{kind:?}");
        assert_eq!(cards[1]["status"], "done", "{kind:?}");
        assert_eq!(
            cards[1]["arguments"],
            json!({"message": "sum 5"}),
            "{kind:?}"
        );
        assert!(
            cards[1]["result"].as_str().unwrap().contains("Echo: sum 5"),
            "{kind:?}: {cards:#?}"
        );
        assert_eq!(answers(&browser).await, [ANSWER], "{kind:?}");
        if kind == ProviderKind::Anthropic {
            readme_screenshot(&browser).await;
        }

        // The second message carries the first turn's calls and results; the model answers
        // from them again, calling nothing.
        send_message(&browser, "And again?").await;
        assert_eq!(turn_ended(&browser, 2).await, "end_turn", "{kind:?}");
        assert_eq!(tool_cards(&browser).await.len(), 2, "{kind:?}");
        assert_eq!(answers(&browser).await, [ANSWER, ANSWER], "{kind:?}");
        // Two calls and the answer, then the second answer.
        let asked = generations(&standin, kind);
        assert_eq!(asked.len(), 4, "{kind:?}");
        let last = asked[3].body.to_string();
        assert!(
            last.contains("And again?") && last.contains("Echo: sum 5"),
            "{kind:?}: {last}"
        );

        browser.find("#playground-new").await.click().await;
        browser
            .wait_until(
                "an empty transcript",
                "const box = document.querySelector('#playground-transcript');
                 return box.querySelector('.playground-empty') &&
                   !box.querySelector('.playground-message, .playground-tool-call');",
                vec![],
            )
            .await;
    }
    no_errors(&browser, |_| false).await;
}

/// The README's picture of a finished turn: the settings from the top, the first tool's card
/// folded so that both calls and the answer show.
async fn readme_screenshot(browser: &Browser) {
    browser
        .find(".playground-tool-call[data-name=demo__add] > summary")
        .await
        .click()
        .await;
    browser
        .execute(
            "document.querySelector('.playground-settings').scrollTop = 0;
             const box = document.querySelector('#playground-transcript');
             box.scrollTop = box.scrollHeight;",
            vec![],
        )
        .await;
    browser.screenshot("playground").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_larger_than_openais_limit_is_narrowed_and_the_page_says_so() {
    let standin = Standin::start().await;
    let servers = json!({"demo": demo_with(&["--name", "demo", "--extra-tools", "150"])});
    let live = proxy(servers, &provider_env(&standin, right_keys)).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    choose_provider(&browser, ProviderKind::OpenAi).await;
    // Every tool is chosen on a first visit; the page warns before anything is sent.
    let count = browser.find(".playground-tool-count").await.text().await;
    let (chosen, total) = count
        .split_once(" of ")
        .unwrap_or_else(|| panic!("{count:?}"));
    assert!(
        chosen.parse::<usize>().unwrap() > 128 && total.starts_with(chosen),
        "{count:?}"
    );
    let warning = browser
        .wait_for_text(".playground-tool-warning", "128")
        .await;
    assert!(warning.contains("OpenAI"), "{warning}");

    send_message(
        &browser,
        "Please add 2 and 3.\nplan: demo__add {\"a\":2,\"b\":3} | answer $1",
    )
    .await;
    assert_eq!(turn_ended(&browser, 1).await, "end_turn");
    let notice = browser
        .wait_for_text(".playground-notice", "at most 128 tools")
        .await;
    assert!(notice.contains("most relevant"), "{notice}");
    // The omitted tools are named, behind a disclosure.
    browser
        .find(".playground-notice details summary")
        .await
        .click()
        .await;
    let omitted = browser
        .wait_for_text(".playground-notice .playground-names", "demo__")
        .await;
    let named = omitted.split(", ").count();
    assert!(
        named == chosen.parse::<usize>().unwrap() - 128,
        "{named}: {omitted}"
    );
    assert!(
        !omitted.split(", ").any(|name| name == "demo__add"),
        "{omitted}"
    );
    let cards = tool_cards(&browser).await;
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert_eq!(cards[0]["name"], "demo__add");
    assert_eq!(answers(&browser).await, ["5"]);
    let sent = generations(&standin, ProviderKind::OpenAi);
    assert_eq!(sent[0].body["tools"].as_array().unwrap().len(), 128);
    browser.screenshot("playground-narrowed").await;
    no_errors(&browser, |_| false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_gemini_cannot_take_is_sent_converted_and_the_loss_is_shown() {
    let standin = Standin::start().await;
    let live = proxy(demo_servers(), &provider_env(&standin, right_keys)).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    choose_provider(&browser, ProviderKind::Gemini).await;
    choose_tools(&browser, &["demo__json_schema_2020_12_tool", "demo__add"]).await;
    send_message(&browser, "plan: demo__add {\"a\":1,\"b\":1} | answer $1").await;
    assert_eq!(turn_ended(&browser, 1).await, "end_turn");
    let lost = browser
        .wait_for_text(".playground-notice", "demo__json_schema_2020_12_tool")
        .await;
    assert!(lost.contains("Gemini does not take them"), "{lost}");
    assert!(!lost.contains("demo__add"), "{lost}");
    assert_eq!(tool_cards(&browser).await[0]["name"], "demo__add");
    assert_eq!(answers(&browser).await, ["2"]);
    let declared = generations(&standin, ProviderKind::Gemini)[0]
        .body
        .to_string();
    assert!(
        declared.contains("json_schema_2020_12_tool") && !declared.contains("$defs"),
        "{declared}"
    );
    browser.screenshot("playground-schema-loss").await;
    no_errors(&browser, |_| false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_error_is_shown_with_its_reason() {
    let standin = Standin::start().await;
    let env = provider_env(&standin, |kind| match kind {
        ProviderKind::OpenAi => Some(None),
        kind => right_keys(kind),
    });
    let live = proxy(demo_servers(), &env).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;

    // A wrong key: the models are not listed, and the chat fails with OpenAI's reason.
    choose_provider(&browser, ProviderKind::OpenAi).await;
    browser
        .wait_for_text(".playground-models-note", "Incorrect API key provided")
        .await;
    send_message(&browser, "hello").await;
    assert_eq!(turn_ended(&browser, 1).await, "error");
    let shown = browser
        .wait_for_text(".playground-error", "Incorrect API key provided")
        .await;
    assert!(shown.contains("OpenAI refused the key (401)"), "{shown}");
    assert!(!shown.contains("not-the-right-key"), "{shown}");
    let html = page_html(&browser).await;
    assert!(!html.contains("not-the-right-key"));
    browser.screenshot("playground-error").await;

    // A rate limit: said as such, with Anthropic's message; sending again then works.
    browser.find("#playground-new").await.click().await;
    choose_provider(&browser, ProviderKind::Anthropic).await;
    standin.fail_next(ProviderKind::Anthropic, Failure::RateLimit);
    send_message(&browser, "hi").await;
    assert_eq!(turn_ended(&browser, 1).await, "error");
    let shown = browser
        .wait_for_text(".playground-error", "would exceed the rate limit")
        .await;
    assert!(shown.contains("rate limit) (429)"), "{shown}");
    send_message(&browser, "hi again").await;
    assert_eq!(turn_ended(&browser, 2).await, "end_turn");
    assert_eq!(answers(&browser).await, ["You said: hi again"]);

    // The only errors are the proxy's answers for OpenAI's models: 502, OpenAI refused.
    no_errors(&browser, |message| {
        message.contains("/api/v1/playground/providers/openai/models")
            && message.contains("status of 502")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_sampling_request_is_answered_by_the_playgrounds_model() {
    let standin = Standin::start().await;
    let live = proxy(demo_servers(), &provider_env(&standin, right_keys)).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    choose_provider(&browser, ProviderKind::Anthropic).await;
    choose_tools(&browser, &["demo__test_sampling"]).await;
    let sampling = browser.find("#playground-sampling").await;
    if sampling.property("checked").await != true {
        sampling.click().await;
    }
    assert_eq!(sampling.property("checked").await, true);
    send_message(
        &browser,
        "plan: demo__test_sampling {\"prompt\":\"What is MCP?\"} | answer It said: $1",
    )
    .await;
    assert_eq!(turn_ended(&browser, 1).await, "end_turn");
    // Shown in the card of the call during which the server asked.
    let sampled = browser
        .wait_for_text(
            ".playground-tool-call[data-name=demo__test_sampling] .playground-sampled",
            "You said: What is MCP?",
        )
        .await;
    assert!(
        sampled.contains(Standin::model(ProviderKind::Anthropic)),
        "{sampled}"
    );
    let said = answers(&browser).await;
    assert!(
        said.len() == 1 && said[0].starts_with("It said: ") && said[0].contains("What is MCP?"),
        "{said:?}"
    );
    // Asked twice for the chat and once for the server.
    assert_eq!(generations(&standin, ProviderKind::Anthropic).len(), 3);
    browser.screenshot("playground-sampling").await;
    no_errors(&browser, |_| false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_progress_and_a_servers_question_show_in_the_card_of_the_tool() {
    let standin = Standin::start().await;
    let live = proxy(demo_servers(), &provider_env(&standin, right_keys)).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    choose_provider(&browser, ProviderKind::OpenAi).await;
    choose_tools(
        &browser,
        &["demo__test_tool_with_progress", "demo__test_elicitation"],
    )
    .await;
    // Progress is shown while the tool runs, and hidden once it answered: kept as it is drawn.
    browser
        .execute(
            "window.progressSeen = [];
             const box = document.querySelector('#playground-transcript');
             new MutationObserver(() => {
               for (const text of box.querySelectorAll('.playground-tool-call .progress-text')) {
                 const said = text.closest('.playground-tool-call').dataset.name + ': ' +
                   text.textContent;
                 if (text.textContent && !window.progressSeen.includes(said)) {
                   window.progressSeen.push(said);
                 }
               }
             }).observe(box, { subtree: true, childList: true, characterData: true });",
            vec![],
        )
        .await;
    send_message(
        &browser,
        "plan: demo__test_tool_with_progress {} | \
         demo__test_elicitation {\"message\":\"Your name?\"} | answer Got: $2",
    )
    .await;
    let card = ".playground-tool-call[data-name=demo__test_elicitation]";
    browser
        .wait_for_text(
            &format!("{card} form#elicitation-form .message"),
            "Your name?",
        )
        .await;
    let form = browser.find(&format!("{card} form#elicitation-form")).await;
    form.find("[name='username']").await.send_keys("ada").await;
    form.find("[name='email']")
        .await
        .send_keys("ada@example.com")
        .await;
    browser.find("#elicitation-accept").await.click().await;
    assert_eq!(turn_ended(&browser, 1).await, "end_turn");
    browser
        .wait_for_text(&format!("{card} .playground-answered"), "You accepted")
        .await;
    let said = answers(&browser).await;
    assert!(
        said.len() == 1 && said[0].starts_with("Got: ") && said[0].contains("ada@example.com"),
        "{said:?}"
    );
    let progress = browser.execute("return window.progressSeen;", vec![]).await;
    assert!(
        progress.as_array().unwrap().contains(&json!(
            "demo__test_tool_with_progress: 100/100 Completed step 100 of 100"
        )),
        "{progress}"
    );
    no_errors(&browser, |_| false).await;
}

/// The page's HTML as it is now.
async fn page_html(browser: &Browser) -> String {
    let html = browser
        .execute("return document.documentElement.outerHTML;", vec![])
        .await;
    html.as_str().unwrap().to_owned()
}

/// What the page keeps in the browser: its local and session storage, and its cookies.
async fn page_storage(browser: &Browser) -> String {
    let stored = browser
        .execute(
            "const all = (storage) => Object.keys(storage).map((key) => key + '=' +
               storage.getItem(key));
             return JSON.stringify([all(localStorage), all(sessionStorage), document.cookie]);",
            vec![],
        )
        .await;
    stored.as_str().unwrap().to_owned()
}

/// From now on, every answer the page fetches is kept in `window.answersSeen`, as text.
async fn record_answers(browser: &Browser) {
    browser
        .execute(
            "if (window.answersSeen) return;
             window.answersSeen = [];
             const fetched = window.fetch;
             window.fetch = async (...args) => {
               const response = await fetched(...args);
               response.clone().text().then(
                 (text) => window.answersSeen.push({ url: response.url, text }),
                 () => {});
               return response;
             };",
            vec![],
        )
        .await;
}

/// The answers kept by [`record_answers`], once there is one from a URL containing `wanted`.
async fn answers_seen(browser: &Browser, wanted: &str) -> Vec<Value> {
    let seen = browser
        .wait_until(
            &format!("an answer from {wanted}"),
            "const seen = window.answersSeen || [];
             return seen.some((answer) => answer.url.includes(arguments[0])) ? seen : null;",
            vec![json!(wanted)],
        )
        .await;
    seen.as_array().unwrap().clone()
}

/// The status line of the provider on screen, once it contains `wanted`.
async fn provider_status(browser: &Browser, wanted: &str) -> String {
    browser
        .wait_for_text(".playground-provider-status", wanted)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_saved_in_the_page_never_comes_back() {
    let standin = Standin::start().await;
    let env = provider_env(&standin, |kind| match kind {
        ProviderKind::Gemini => None,
        kind => right_keys(kind),
    });
    let live = proxy(demo_servers(), &env).await;
    let key = Standin::key(ProviderKind::Gemini);
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    choose_provider(&browser, ProviderKind::Gemini).await;
    let status = provider_status(&browser, "not set up").await;
    assert!(
        status.contains("GEMINI_API_KEY / GOOGLE_API_KEY"),
        "{status}"
    );
    let option = browser
        .find("#playground-provider option[value=gemini]")
        .await
        .text()
        .await;
    assert!(option.contains("not set up"), "{option}");
    // The base URL comes from the environment; there is nothing saved to reset.
    browser
        .wait_for_text("#playground-base-url-form .hint", "From GEMINI_BASE_URL")
        .await;
    let reset = browser.find("#playground-reset-base-url").await;
    assert_eq!(reset.property("hidden").await, true);

    record_answers(&browser).await;
    let input = browser.find("#playground-key").await;
    input.send_keys(key).await;
    browser.find("#playground-save-key").await.click().await;
    provider_status(&browser, "ready").await;
    assert_eq!(input.property("value").await, "");
    let forget = browser.find("#playground-forget-key").await;
    assert_eq!(forget.property("hidden").await, false);
    let saved = answers_seen(&browser, "/api/v1/playground/providers/gemini").await;
    // The models are listed with the key saved: the proxy's answer, then the page.
    browser
        .wait_for_text(".playground-models-note", "to choose from")
        .await;
    send_message(&browser, "hi").await;
    assert_eq!(turn_ended(&browser, 1).await, "end_turn");
    assert_eq!(answers(&browser).await, ["You said: hi"]);
    let chat = generations(&standin, ProviderKind::Gemini).pop().unwrap();
    assert_eq!(
        chat.headers.get("x-goog-api-key").map(String::as_str),
        Some(key)
    );
    let seen = answers_seen(&browser, "/api/v1/playground/chat").await;
    assert!(seen.len() > saved.len(), "{seen:#?}");
    for answer in &seen {
        assert!(!answer["text"].as_str().unwrap().contains(key), "{answer}");
    }
    assert!(!page_html(&browser).await.contains(key));
    assert!(!page_storage(&browser).await.contains(key));

    // Loaded again: the provider is ready, and nothing the page fetched has the key.
    browser.refresh().await;
    open_playground(&browser, &live).await;
    provider_status(&browser, "ready").await;
    browser
        .wait_for_text(".playground-models-note", "to choose from")
        .await;
    assert!(!page_html(&browser).await.contains(key));
    assert!(!page_storage(&browser).await.contains(key));
    let fetched = browser
        .execute(
            "return performance.getEntriesByType('resource')
               .filter((entry) => entry.initiatorType === 'fetch')
               .map((entry) => entry.name);",
            vec![],
        )
        .await;
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(
        fetched
            .iter()
            .any(|url| url.ends_with("/api/v1/playground")),
        "{fetched:?}"
    );
    for url in &fetched {
        let answer = send(live.http.get(url)).await;
        assert_eq!(answer.status, 200, "{url}: {}", answer.text);
        assert!(!answer.everything().contains(key), "{url}");
    }
    assert!(!live.log.text().contains(key), "the key in the proxy's log");

    // Forgotten: not set up again.
    browser.find("#playground-forget-key").await.click().await;
    provider_status(&browser, "not set up").await;
    assert_eq!(
        browser
            .find("#playground-forget-key")
            .await
            .property("hidden")
            .await,
        true
    );
    no_errors(&browser, |_| false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_saved_in_the_page_is_used_and_can_be_reset() {
    let standin = Standin::start().await;
    let mut env = provider_env(&standin, right_keys);
    env.retain(|(name, _)| name != "OPENAI_COMPATIBLE_BASE_URL");
    let live = proxy(demo_servers(), &env).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;

    // A provider whose base URL comes from the environment: said so, nothing to reset.
    choose_provider(&browser, ProviderKind::Gemini).await;
    let hint = "#playground-base-url-form .hint";
    browser.wait_for_text(hint, "From GEMINI_BASE_URL").await;
    let reset = "#playground-reset-base-url";
    assert_eq!(browser.find(reset).await.property("hidden").await, true);

    // An OpenAI-compatible server with none: not set up until one is saved here.
    choose_provider(&browser, ProviderKind::Compatible).await;
    provider_status(&browser, "Give the server's base URL below").await;
    browser.wait_for_text(hint, "None yet").await;
    assert_eq!(browser.find(reset).await.property("hidden").await, true);
    let input = browser.find("#playground-base-url").await;
    erase(&input).await;
    input
        .send_keys(&standin.base_url(ProviderKind::Compatible))
        .await;
    browser
        .find("#playground-save-base-url")
        .await
        .click()
        .await;
    provider_status(&browser, "ready").await;
    browser.wait_for_text(hint, "Saved on the proxy").await;
    assert_eq!(browser.find(reset).await.property("hidden").await, false);
    let (_, overview) = live.get("/api/v1/playground").await;
    let row = overview["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == "compatible")
        .unwrap()
        .clone();
    assert_eq!(row["baseUrlFrom"], "saved", "{row}");
    send_message(&browser, "hi").await;
    assert_eq!(turn_ended(&browser, 1).await, "end_turn");
    assert_eq!(answers(&browser).await, ["You said: hi"]);
    assert_eq!(generations(&standin, ProviderKind::Compatible).len(), 1);

    // Reset: back to none.
    browser.find(reset).await.click().await;
    provider_status(&browser, "not set up").await;
    browser.wait_for_text(hint, "None yet").await;
    browser.wait_for_text("#banner", "there is none").await;
    assert_eq!(browser.find(reset).await.property("hidden").await, true);
    no_errors(&browser, |_| false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_button_ends_the_turn_and_its_tool_call_and_the_chat_goes_on() {
    let standin = Standin::start().await;
    let live = proxy(demo_servers(), &provider_env(&standin, right_keys)).await;
    let browser = Browser::start().await;
    open_playground(&browser, &live).await;
    choose_provider(&browser, ProviderKind::Gemini).await;
    choose_tools(&browser, &["demo__sleep"]).await;
    send_message(
        &browser,
        "plan: demo__sleep {\"ms\":600000} | answer Stopped, as asked.",
    )
    .await;
    // The call is running on the server when Stop is pressed.
    let card = ".playground-tool-call[data-name=demo__sleep]";
    browser.find(card).await;
    crate::api_console::eventually("the sleep forwarded", async || {
        match crate::api_console::forwarded_calls(&live.log) {
            0 => Err("not yet".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    browser.find("#playground-stop").await.click().await;
    assert_eq!(turn_ended(&browser, 1).await, "cancelled");
    crate::api_console::sleeps_cancelled(&live, 1).await;
    // The next message goes on from the stopped call, which was answered as stopped: Gemini,
    // which refuses a call turn without its responses, takes the conversation.
    send_message(&browser, "Never mind.").await;
    assert_eq!(turn_ended(&browser, 2).await, "end_turn");
    assert_eq!(answers(&browser).await, ["Stopped, as asked."]);
    no_errors(&browser, |_| false).await;
}
