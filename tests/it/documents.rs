//! The document library and the knowledge base through the real binary and a real
//! client: every document tool and its errors, deduplication, versions, each filter,
//! highlighting, the old `pluggedin_rag_query` name, `docs` ingesting HTML and PDF files made
//! here, bad files, and documents as MCP resources.

use rmcp::model::{ErrorCode, PaginatedRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

use crate::support::*;

fn model(name: &str, provider: &str) -> Value {
    json!({"name": name, "provider": provider})
}

/// Creates a document with the tool; returns its id.
async fn create(proxy: &Proxy, title: &str, content: &str, extra: Value) -> String {
    let mut args = json!({
        "title": title,
        "content": content,
        "metadata": {"model": model("claude-3-opus", "anthropic")}
    });
    for (key, value) in extra.as_object().unwrap() {
        if key == "metadata" {
            for (inner, value) in value.as_object().unwrap() {
                args["metadata"][inner] = value.clone();
            }
        } else {
            args[key] = value.clone();
        }
    }
    let reply = proxy.call_text("pluggedin_create_document", args).await;
    assert!(
        reply.starts_with("Document created successfully!"),
        "{reply}"
    );
    line_after(&reply, "ID:")
}

/// The ids in a list or search reply, in order.
fn ids(reply: &str) -> Vec<String> {
    reply
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ID: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn documents_are_created_listed_fetched_and_deduplicated() {
    let proxy = proxy().start().await;
    let content = "# Q3 Results\n\nRevenue grew twelve percent in the third quarter.";
    let id = create(
        &proxy,
        "Q3 analysis",
        content,
        json!({
            "tags": ["finance", "q3"],
            "category": "analysis",
            "metadata": {
                "model": {"name": "claude-3-opus", "provider": "anthropic", "version": "20240229"},
                "prompt": "Summarise Q3",
                "context": "quarterly review",
                "conversationContext": ["a", "b"],
                "sourceDocuments": ["doc-1"],
                "generationParams": {"temperature": 0.2, "maxTokens": 500}
            }
        }),
    )
    .await;

    // The same content again: the existing document, and the reply says so.
    let again = proxy
        .call_text(
            "pluggedin_create_document",
            json!({"title": "Other title", "content": content,
                   "metadata": {"model": model("gpt-4", "openai")}}),
        )
        .await;
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(line_after(&again, "ID:"), id);
    assert_eq!(line_after(&again, "Title:"), "Q3 analysis");
    assert_eq!(line_after(&again, "URL:"), format!("/library/{id}"));

    let listing = proxy.call_text("pluggedin_list_documents", json!({})).await;
    assert!(
        listing.starts_with("Found 1 document(s) (showing 1)\n\n1. **Q3 analysis**\n"),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("   ID: {id}\n   Created: ")),
        "{listing}"
    );
    assert!(
        listing.contains("   Source: ai_generated (claude-3-opus)\n   Tags: finance, q3"),
        "{listing}"
    );

    let shown = proxy
        .call_text(
            "pluggedin_get_document",
            json!({"documentId": id, "includeContent": true}),
        )
        .await;
    assert!(shown.starts_with("**Q3 analysis**\n\nID: "), "{shown}");
    for line in [
        "Source: ai_generated (claude-3-opus)",
        "Version: 1",
        "Tags: finance, q3",
        "--- AI Metadata ---",
        "Model: claude-3-opus (anthropic v20240229)",
        "Prompt: Summarise Q3",
        "Context: quarterly review",
        "Visibility: private",
        "Conversation Context: 2 messages",
        "Source Documents: doc-1",
        "Generation Parameters:\n  - Temperature: 0.2\n  - Max Tokens: 500",
    ] {
        assert!(shown.contains(line), "{line:?} missing from {shown}");
    }
    assert!(
        shown.ends_with(&format!("--- Content ---\n{content}")),
        "{shown}"
    );
    // Without includeContent, no content.
    let short = proxy
        .call_text("pluggedin_get_document", json!({"documentId": id}))
        .await;
    assert!(!short.contains("--- Content ---"), "{short}");
}

#[tokio::test]
async fn document_tool_errors_name_the_field_or_the_id() {
    let proxy = proxy().start().await;
    let missing = "7d2f3c1e-0000-4000-8000-000000000000";
    for (tool, args, expected) in [
        (
            "pluggedin_create_document",
            json!({"title": "T", "content": "C"}),
            "\"metadata\" is required",
        ),
        (
            "pluggedin_create_document",
            json!({"title": "T", "content": "C", "metadata": {}}),
            "\"metadata.model\" is required",
        ),
        (
            "pluggedin_create_document",
            json!({"title": "T", "content": "C", "metadata": {"model": {"name": "m"}}}),
            "\"metadata.model.provider\" is required",
        ),
        (
            "pluggedin_create_document",
            json!({"title": "T", "content": "C", "format": "docx",
                   "metadata": {"model": model("m", "p")}}),
            "\"format\" must be one of",
        ),
        (
            "pluggedin_create_document",
            json!({"title": "x".repeat(256), "content": "C",
                   "metadata": {"model": model("m", "p")}}),
            "\"title\" must be at most 255 characters",
        ),
        (
            "pluggedin_create_document",
            json!({"title": "T", "content": "",
                   "metadata": {"model": model("m", "p")}}),
            "\"content\" must not be empty",
        ),
        (
            "pluggedin_list_documents",
            json!({"limit": 101}),
            "\"limit\" must be at most 100",
        ),
        (
            "pluggedin_list_documents",
            json!({"filters": {"dateFrom": "last week"}}),
            "\"filters.dateFrom\" must be an ISO 8601 date-time",
        ),
        (
            "pluggedin_search_documents",
            json!({"query": ""}),
            "\"query\" must not be empty",
        ),
        (
            "pluggedin_search_documents",
            json!({"query": "x", "filters": {"source": "email"}}),
            "\"filters.source\" must be one of",
        ),
        (
            "pluggedin_get_document",
            json!({"documentId": "not-a-uuid"}),
            "\"documentId\" must be a UUID",
        ),
        (
            "pluggedin_get_document",
            json!({"documentId": missing}),
            "Document not found or not accessible",
        ),
        (
            "pluggedin_update_document",
            json!({"documentId": missing, "operation": "append", "content": "more"}),
            "Document not found or not accessible",
        ),
        (
            "pluggedin_update_document",
            json!({"documentId": missing, "operation": "merge", "content": "more"}),
            "\"operation\" must be one of",
        ),
        (
            "pluggedin_update_document",
            json!({"documentId": missing, "operation": "append", "content": "x",
                   "metadata": {"changeSummary": "s"}}),
            "\"metadata.model\" is required",
        ),
        (
            "pluggedin_ask_knowledge_base",
            json!({"query": "q".repeat(1001)}),
            "\"query\" must be at most 1000 characters",
        ),
        ("pluggedin_rag_query", json!({}), "\"query\" is required"),
    ] {
        let error = proxy.call_error(tool, args).await;
        assert!(error.contains(expected), "{tool}: {error}");
    }
}

#[tokio::test]
async fn updates_keep_every_version_with_who_changed_it_and_why() {
    let proxy = proxy().start().await;
    let id = create(&proxy, "Plan", "Original plan about apples.", json!({})).await;
    let appended = proxy
        .call_text(
            "pluggedin_update_document",
            json!({"documentId": id, "operation": "append", "content": "Added bananas.",
                   "metadata": {"model": {"name": "gpt-4", "provider": "openai", "version": "0613"},
                                "changeSummary": "add bananas", "updateReason": "user asked",
                                "changesFromPrompt": "mention bananas", "tags": ["fruit"]}}),
        )
        .await;
    assert_eq!(
        appended,
        format!("Document updated successfully!\nID: {id}\nOperation: append\nNew version: 2")
    );
    proxy
        .call_text(
            "pluggedin_update_document",
            json!({"documentId": id, "operation": "replace", "content": "Only cherries now.",
                   "metadata": {"model": model("gemini-pro", "google"),
                                "changeSummary": "rewrite"}}),
        )
        .await;
    proxy
        .call_text(
            "pluggedin_update_document",
            json!({"documentId": id, "operation": "prepend", "content": "Title line."}),
        )
        .await;

    let shown = proxy
        .call_text(
            "pluggedin_get_document",
            json!({"documentId": id, "includeContent": true, "includeVersions": true}),
        )
        .await;
    assert!(shown.contains("Version: 4\nTags: fruit"), "{shown}");
    assert!(
        shown.contains("--- Content ---\nTitle line.\n\nOnly cherries now.\n"),
        "{shown}"
    );
    let history = shown.split("--- Version History ---\n").nth(1).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4, "{history}");
    assert!(
        lines[0].starts_with("v4 - ") && !lines[0].contains(" by "),
        "{history}"
    );
    assert!(
        lines[1].starts_with("v3 - ") && lines[1].ends_with(" by gemini-pro - rewrite"),
        "{history}"
    );
    assert!(
        lines[2].starts_with("v2 - ") && lines[2].ends_with(" by gpt-4 - add bananas"),
        "{history}"
    );
    assert!(
        lines[3].starts_with("v1 - ") && lines[3].ends_with(" by claude-3-opus"),
        "{history}"
    );

    // Search sees the current text only.
    let old = proxy
        .call_text("pluggedin_search_documents", json!({"query": "bananas"}))
        .await;
    assert!(old.contains("(0 found)"), "{old}");
    let new = proxy
        .call_text("pluggedin_search_documents", json!({"query": "cherries"}))
        .await;
    assert_eq!(ids(&new), vec![id.clone()], "{new}");
}

#[tokio::test]
async fn the_last_update_is_shown_with_its_attribution() {
    let proxy = proxy().start().await;
    let id = create(&proxy, "Memo", "A memo about budgets.", json!({})).await;
    proxy
        .call_text(
            "pluggedin_update_document",
            json!({"documentId": id, "operation": "append", "content": "And costs.",
                   "metadata": {"model": {"name": "gpt-4", "provider": "openai", "version": "0613"},
                                "changeSummary": "add costs", "updateReason": "review",
                                "changesFromPrompt": "costs too"}}),
        )
        .await;
    let shown = proxy
        .call_text("pluggedin_get_document", json!({"documentId": id}))
        .await;
    for line in [
        "Update Reason: review",
        "Changes From Prompt: costs too",
        "Change Summary: add costs",
        "Last Updated By: gpt-4 (openai v0613)",
        "Last Update: ",
    ] {
        assert!(shown.contains(line), "{line:?} missing from {shown}");
    }
}

#[tokio::test]
async fn each_filter_narrows_search_and_list() {
    let proxy = proxy().start().await;
    let claude = create(
        &proxy,
        "Claude on caching",
        "Caching strategies for the proxy layer.",
        json!({"tags": ["infra", "perf"], "category": "research",
               "metadata": {"visibility": "workspace"}}),
    )
    .await;
    let gpt = create(
        &proxy,
        "GPT on caching",
        "Caching advice for databases and the proxy.",
        json!({"tags": ["infra"],
               "metadata": {"model": model("gpt-4", "openai"), "visibility": "public"}}),
    )
    .await;
    // An upload, through the CLI.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("uploaded.md"),
        "# Uploaded\n\nNotes on caching in browsers.",
    )
    .unwrap();
    let added = proxy.cli_ok(&["docs", "add", dir.path().to_str().unwrap()]);
    assert!(
        added.starts_with("added 1, duplicates 0, skipped 0, failed 0"),
        "{added}"
    );

    let search = |filters: Value| {
        let proxy = &proxy;
        async move {
            ids(&proxy
                .call_text(
                    "pluggedin_search_documents",
                    json!({"query": "caching", "filters": filters}),
                )
                .await)
        }
    };
    assert_eq!(search(json!({})).await.len(), 3);
    assert_eq!(
        search(json!({"modelName": "gpt-4"})).await,
        vec![gpt.clone()]
    );
    assert_eq!(
        search(json!({"modelProvider": "ANTHROPIC"})).await,
        vec![claude.clone()]
    );
    assert_eq!(search(json!({"source": "upload"})).await.len(), 1);
    let ai = search(json!({"source": "ai_generated"})).await;
    assert!(
        ai.len() == 2 && ai.contains(&claude) && ai.contains(&gpt),
        "{ai:?}"
    );
    assert_eq!(
        search(json!({"tags": ["perf"]})).await,
        vec![claude.clone()]
    );
    assert_eq!(search(json!({"tags": ["infra"]})).await.len(), 2);
    assert_eq!(
        search(json!({"tags": ["infra", "perf"]})).await,
        vec![claude.clone()]
    );
    assert_eq!(
        search(json!({"visibility": "public"})).await,
        vec![gpt.clone()]
    );
    assert_eq!(
        search(json!({"dateFrom": "2000-01-01T00:00:00Z"}))
            .await
            .len(),
        3
    );
    assert!(
        search(json!({"dateTo": "2000-01-01T00:00:00Z"}))
            .await
            .is_empty()
    );
    assert!(
        search(json!({"dateFrom": "2999-01-01T00:00:00Z"}))
            .await
            .is_empty()
    );

    let list = |args: Value| {
        let proxy = &proxy;
        async move { proxy.call_text("pluggedin_list_documents", args).await }
    };
    assert_eq!(
        ids(&list(json!({"filters": {"category": "research"}})).await),
        vec![claude.clone()]
    );
    assert_eq!(
        ids(&list(json!({"filters": {"searchQuery": "databases"}})).await),
        vec![gpt.clone()]
    );
    assert_eq!(
        ids(&list(json!({"filters": {"modelName": "gpt-4", "tags": ["infra"]}})).await),
        vec![gpt.clone()]
    );
    let page = list(json!({"sort": "title", "limit": 2, "offset": 1})).await;
    assert!(
        page.starts_with("Found 3 document(s) (showing 2)"),
        "{page}"
    );
    assert_eq!(
        ids(&page),
        vec![
            gpt.clone(),
            ids(&list(json!({"sort": "title"})).await)[2].clone()
        ]
    );
    let oldest_first = ids(&list(json!({"sort": "date_asc"})).await);
    assert_eq!(oldest_first[0], claude);
    let newest_first = ids(&list(json!({})).await);
    assert_eq!(newest_first.last(), Some(&claude));
}

#[tokio::test]
async fn search_ranks_with_bm25_highlights_matches_and_is_deterministic() {
    let proxy = proxy().start().await;
    let strong = create(
        &proxy,
        "Vector databases",
        "Vector databases store embeddings. Vector search over embeddings needs an index.",
        json!({}),
    )
    .await;
    let weak = create(
        &proxy,
        "Cooking",
        "A recipe that mentions a vector once, among onions, garlic, tomatoes and basil.",
        json!({}),
    )
    .await;
    // A long document: the matching passage is deep inside, in its own chunk.
    let filler = "Unrelated filler sentence about the weather. ".repeat(80);
    let long = create(
        &proxy,
        "Long report",
        &format!("{filler}\n\nThe zeppelin section explains airships.\n\n{filler}"),
        json!({}),
    )
    .await;

    let reply = proxy
        .call_text("pluggedin_search_documents", json!({"query": "vector"}))
        .await;
    assert!(
        reply.starts_with("Search results for \"vector\" (2 found):\n\n1. **Vector databases**"),
        "{reply}"
    );
    assert_eq!(ids(&reply), vec![strong.clone(), weak.clone()]);
    assert_eq!(line_after(&reply, "Relevance:"), "100.0%");
    assert!(
        reply.contains("   Snippet: **Vector** databases store"),
        "{reply}"
    );
    assert!(
        reply.contains("   Source: ai_generated (claude-3-opus)"),
        "{reply}"
    );
    let again = proxy
        .call_text("pluggedin_search_documents", json!({"query": "vector"}))
        .await;
    assert_eq!(reply, again, "same library, same answer");

    let deep = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "zeppelin airships"}),
        )
        .await;
    assert_eq!(ids(&deep), vec![long]);
    let snippet = line_after(&deep, "Snippet:");
    assert!(
        snippet.contains("**zeppelin** section explains **airships**"),
        "{snippet}"
    );
    assert!(
        snippet.len() < 400,
        "a snippet, not the document: {snippet}"
    );

    // No document has both words: any of them will do. FTS5 syntax is only text.
    let either = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "garlic embeddings"}),
        )
        .await;
    assert_eq!(ids(&either).len(), 2, "{either}");
    let odd = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "title:vector AND (NEAR \"x"}),
        )
        .await;
    assert!(odd.starts_with("Search results for"), "{odd}");
    let limited = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "vector", "limit": 1}),
        )
        .await;
    assert_eq!(ids(&limited), vec![strong]);
}

#[tokio::test]
async fn snippets_bold_matches_once_and_answers_carry_no_irrelevant_passages() {
    let proxy = proxy().start().await;
    let battery = create(
        &proxy,
        "Battery",
        "The battery lasts **two hours** on a full charge. Charging takes one hour.",
        json!({}),
    )
    .await;
    create(
        &proxy,
        "Screen",
        "The manual says the screen is bright and the case is blue.",
        json!({}),
    )
    .await;
    create(
        &proxy,
        "Weather",
        "The weather is nice and the sea is calm; the boat is ready.",
        json!({}),
    )
    .await;

    // The stored text's own bold around the match does not double the highlight.
    let found = proxy
        .call_text("pluggedin_search_documents", json!({"query": "two hours"}))
        .await;
    let snippet = line_after(&found, "Snippet:");
    assert_eq!(
        snippet,
        "The battery lasts **two hours** on a full charge. Charging takes one **hour**."
    );

    // Passages matched only by words every document has ("the", "does") are not padding.
    let reply = proxy
        .call_text(
            "pluggedin_ask_knowledge_base",
            json!({"query": "How long does the battery last?"}),
        )
        .await;
    let body: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(body["sources"].as_array().unwrap().len(), 1, "{reply}");
    assert_eq!(body["sources"][0]["id"], json!(battery));
    let answer = body["answer"].as_str().unwrap();
    assert!(!answer.contains("relevance 0.0%"), "{answer}");
    let listed = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "how long does the battery last"}),
        )
        .await;
    assert_eq!(ids(&listed), vec![battery], "{listed}");
}

#[tokio::test]
async fn the_knowledge_base_answers_with_sources_in_the_original_shape() {
    let proxy = proxy().start().await;
    let id = create(
        &proxy,
        "Deploy guide",
        "To deploy the service, run the release pipeline and then restart the workers.",
        json!({}),
    )
    .await;
    create(
        &proxy,
        "Lunch",
        "The cafeteria serves soup on Mondays.",
        json!({}),
    )
    .await;
    let reply = proxy
        .call_text(
            "pluggedin_ask_knowledge_base",
            json!({"query": "How do I deploy the service?"}),
        )
        .await;
    // Pretty-printed, keys in the original's order.
    assert!(reply.starts_with("{\n  \"answer\": "), "{reply}");
    let answer_at = reply.find("\"answer\"").unwrap();
    let sources_at = reply.find("\"sources\"").unwrap();
    let metadata_at = reply.find("\"metadata\"").unwrap();
    assert!(
        answer_at < sources_at && sources_at < metadata_at,
        "{reply}"
    );
    let body: Value = serde_json::from_str(&reply).unwrap();
    let sources = body["sources"].as_array().unwrap();
    assert_eq!(sources[0]["id"], json!(id));
    assert_eq!(sources[0]["name"], json!("Deploy guide"));
    assert_eq!(sources[0]["version"], json!(1));
    assert_eq!(sources[0]["relevance"], json!(1.0));
    assert_eq!(body["metadata"]["sourceCount"], json!(sources.len()));
    assert_eq!(
        body["metadata"]["query"],
        json!("How do I deploy the service?")
    );
    assert!(
        body["metadata"]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let answer = body["answer"].as_str().unwrap();
    assert!(
        answer.contains("[1] Deploy guide (v1") && answer.contains("release pipeline"),
        "{answer}"
    );

    let nothing: Value = serde_json::from_str(
        &proxy
            .call_text(
                "pluggedin_ask_knowledge_base",
                json!({"query": "quantum chromodynamics"}),
            )
            .await,
    )
    .unwrap();
    assert_eq!(nothing["sources"], json!([]));
    assert_eq!(nothing["metadata"]["sourceCount"], json!(0));

    // The old name answers with the plain text, and is not listed.
    let old = proxy
        .call_text(
            "pluggedin_rag_query",
            json!({"query": "deploy the service"}),
        )
        .await;
    assert!(
        old.starts_with("The most relevant passages") && old.contains("release pipeline"),
        "{old}"
    );
    assert!(
        !proxy
            .tool_names()
            .await
            .iter()
            .any(|n| n == "pluggedin_rag_query")
    );
}

#[tokio::test]
async fn docs_add_run_again_on_the_same_folder_skips_and_succeeds() {
    let proxy = proxy().start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.md"),
        "# Notes\n\nKettles and teapots.",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    std::fs::write(
        dir.path().join("image.png"),
        [137u8, 80, 78, 71, 13, 10, 26, 10, 0, 0],
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();

    let first = proxy.cli(&["docs", "add", folder]);
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "skipped files are no failure: {stdout}"
    );
    assert!(
        stdout.starts_with("added 1, duplicates 0, skipped 2, failed 0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped: ") && stdout.contains("empty.txt: it has no text"),
        "{stdout}"
    );
    assert!(stdout.contains("image.png: it looks binary"), "{stdout}");

    let again = proxy.cli(&["docs", "add", folder]);
    let stdout = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("added 0, duplicates 1, skipped 2, failed 0\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn docs_add_ingests_html_and_pdf_and_reports_bad_files_by_name() {
    let proxy = proxy().start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("nested")).unwrap();
    std::fs::write(
        root.join("page.html"),
        "<html><head><title>Release notes</title><script>var hidden = 'scriptword';</script>\
         </head><body><h1>Version 2</h1><p>The <b>frobnicator</b> is faster &amp; smaller.</p>\
         </body></html>",
    )
    .unwrap();
    std::fs::write(
        root.join("nested/report.pdf"),
        simple_pdf(&["Quarterly zymurgy report", "Brewing output doubled"]),
    )
    .unwrap();
    std::fs::write(root.join("notes.txt"), "plain notes about kettles").unwrap();
    std::fs::write(root.join("copy.txt"), "plain notes about kettles").unwrap();
    std::fs::write(root.join("garbage.txt"), [0u8, 255, 254, 7, 1, 0, 3, 200]).unwrap();
    std::fs::write(root.join("scan.pdf"), b"%PDF-1.4\n%%EOF\n").unwrap();
    let big = std::fs::File::create(root.join("huge.txt")).unwrap();
    big.set_len(10 * 1024 * 1024 + 1).unwrap();
    let missing = root.join("missing.md");

    let output = proxy.cli(&[
        "docs",
        "add",
        root.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--tags",
        "imported,batch",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a file that cannot be read gives exit 1: {stdout}"
    );
    assert!(
        stdout.starts_with("added 3, duplicates 1, skipped 3, failed 1\n"),
        "{stdout}"
    );
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line about {needle} in {stdout}"))
            .to_owned()
    };
    // Files are read in name order: copy.txt first, so notes.txt is the duplicate.
    assert!(line("notes.txt").starts_with("duplicate: "), "{stdout}");
    assert!(line("garbage.txt").starts_with("skipped: "), "{stdout}");
    assert!(line("garbage.txt").contains("looks binary"), "{stdout}");
    assert!(line("scan.pdf").starts_with("skipped: "), "{stdout}");
    assert!(line("scan.pdf").contains("no extractable text"), "{stdout}");
    assert!(line("huge.txt").starts_with("skipped: "), "{stdout}");
    assert!(
        line("huge.txt").contains("over the limit of 10485760 bytes"),
        "{stdout}"
    );
    assert!(line("missing.md").starts_with("failed: "), "{stdout}");
    assert!(line("missing.md").contains("cannot read it"), "{stdout}");

    // Nothing of the failed files is in the library.
    let listing = proxy.cli_ok(&["docs", "list"]);
    assert!(listing.contains("3 of 3 document(s)"), "{listing}");

    // The extracted text is searchable through the MCP tools.
    let html = proxy
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "frobnicator"}),
        )
        .await;
    assert!(html.contains("1. **Release notes**"), "{html}");
    assert!(html.contains("   Source: upload"), "{html}");
    let html_id = ids(&html)[0].clone();
    let shown = proxy
        .call_text(
            "pluggedin_get_document",
            json!({"documentId": html_id, "includeContent": true}),
        )
        .await;
    assert!(
        shown.contains("--- Content ---\n# Version 2\n\nThe frobnicator is faster & smaller."),
        "{shown}"
    );
    assert!(shown.contains("Tags: imported, batch"), "{shown}");
    let script = proxy
        .call_text("pluggedin_search_documents", json!({"query": "scriptword"}))
        .await;
    assert!(script.contains("(0 found)"), "{script}");
    let pdf = proxy
        .call_text("pluggedin_search_documents", json!({"query": "zymurgy"}))
        .await;
    let pdf_id = ids(&pdf)[0].clone();
    let shown = proxy.cli_ok(&["docs", "show", &pdf_id]);
    assert!(shown.contains("format:     pdf"), "{shown}");
    assert!(
        shown.contains("Quarterly zymurgy report\nBrewing output doubled"),
        "{shown}"
    );

    let found = proxy.cli_ok(&["docs", "search", "brewing", "--tag", "batch"]);
    assert!(found.contains("**Brewing** output doubled"), "{found}");
    assert!(proxy.cli_ok(&["docs", "rm", &pdf_id]).contains("removed"));
    let gone = proxy.cli(&["docs", "rm", &pdf_id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no document with id"));
    let after = proxy
        .call_text("pluggedin_search_documents", json!({"query": "zymurgy"}))
        .await;
    assert!(after.contains("(0 found)"), "{after}");
}

#[tokio::test]
async fn a_large_batch_shows_progress_on_stderr() {
    let proxy = proxy().start().await;
    let dir = tempfile::tempdir().unwrap();
    for n in 0..300 {
        std::fs::write(
            dir.path().join(format!("note-{n:03}.txt")),
            format!("note number {n}"),
        )
        .unwrap();
    }
    let output = proxy.cli(&["docs", "add", dir.path().to_str().unwrap()]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("added 300, duplicates 0, skipped 0, failed 0"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("256/300 files") && stderr.contains("300/300 files"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_update_over_the_limit_changes_nothing() {
    let proxy = proxy().start().await;
    let id = create(&proxy, "Big", &"a".repeat(6 * 1024 * 1024), json!({})).await;
    let error = proxy
        .call_error(
            "pluggedin_update_document",
            json!({"documentId": id, "operation": "append", "content": "b".repeat(5 * 1024 * 1024),
                   "metadata": {"model": model("m", "p")}}),
        )
        .await;
    assert_eq!(error, "Document content too large (max 10MB)");
    let shown = proxy
        .call_text(
            "pluggedin_get_document",
            json!({"documentId": id, "includeVersions": true}),
        )
        .await;
    assert!(shown.contains("Version: 1"), "{}", &shown[..300]);
    assert_eq!(shown.matches("\nv1 - ").count(), 1);
    assert!(!shown.contains("\nv2 - "));
}

#[tokio::test]
async fn documents_are_resources_that_clients_can_list_and_read() {
    let proxy = proxy().arg("--page-size").arg("2").start().await;
    let caps = proxy.peer().peer_info().unwrap().capabilities.clone();
    assert!(caps.resources.is_some(), "{caps:?}");
    let first = create(&proxy, "First", "alpha text", json!({"format": "txt"})).await;
    let second = create(&proxy, "Second", "# beta", json!({})).await;
    let third = create(&proxy, "Third", "{\"gamma\": 1}", json!({"format": "json"})).await;

    // Paged, newest first.
    let page = proxy.peer().list_resources(None).await.unwrap();
    assert_eq!(page.resources.len(), 2);
    let cursor = page.next_cursor.clone().expect("a second page");
    let rest = proxy
        .peer()
        .list_resources(Some(
            PaginatedRequestParams::default().with_cursor(Some(cursor)),
        ))
        .await
        .unwrap();
    assert_eq!(rest.resources.len(), 1);
    assert!(rest.next_cursor.is_none());
    let all = proxy.peer().list_all_resources().await.unwrap();
    let uris: Vec<&str> = all.iter().map(|r| r.uri.as_str()).collect();
    let uri = |id: &str| format!("pluggedin://documents/{id}");
    assert_eq!(uris, vec![uri(&third), uri(&second), uri(&first)]);
    assert_eq!(all[1].name, "Second");
    assert_eq!(all[1].mime_type.as_deref(), Some("text/markdown"));
    assert_eq!(all[0].mime_type.as_deref(), Some("application/json"));

    let read = proxy
        .peer()
        .read_resource(ReadResourceRequestParams::new(uri(&second)))
        .await
        .unwrap();
    match &read.contents[..] {
        [ResourceContents::TextResourceContents { uri: at, text, .. }] => {
            assert_eq!(at, &uri(&second));
            assert_eq!(text, "# beta");
        }
        other => panic!("unexpected contents {other:?}"),
    }
    let error = mcp_error(
        proxy
            .peer()
            .read_resource(ReadResourceRequestParams::new(
                "pluggedin://documents/00000000-0000-4000-8000-000000000000",
            ))
            .await
            .unwrap_err(),
    );
    assert_ne!(error.code, ErrorCode::INTERNAL_ERROR, "{error:?}");
    assert!(error.message.contains("unknown resource"), "{error:?}");
}
