//! The document tools and the knowledge base: create, list, search, get and update documents in
//! the library, and answer a question with the library's most relevant passages. The text output
//! is the original's; where the original relayed the App's answer, the local answer is
//! extractive — the best passages and their sources — since nothing here runs a language model.

use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

use super::{Builtins, Outcome, boolean, integer, store_error, string, text};
use crate::control::time::{iso, locale, locale_date, now_ms, parse_iso};
use crate::control::{
    ControlError, Document, DocumentCreate, DocumentFilter, DocumentList, DocumentSearch,
    DocumentSort, DocumentUpdate, KnowledgeAnswer, MAX_DOCUMENT_BYTES, ModelInfo, NewDocument,
    UpdateOperation,
};

/// How many passages the knowledge base answers with.
const RAG_PASSAGES: u32 = 5;
/// The App's cap on an answer, and what it appends when it cuts one.
const ANSWER_CHARS: usize = 10_000;
const TRUNCATED: &str = "\n\n[Response truncated for security]";
const NOT_FOUND: &str = "Document not found or not accessible";
const TOO_LARGE: &str = "Document content too large (max 10MB)";

/// How the knowledge base answers: the current tool's JSON, or the old `pluggedin_rag_query`'s
/// plain text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Json,
    Text,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn model_of(value: Option<&Value>) -> Option<ModelInfo> {
    let model = value?.as_object()?;
    Some(ModelInfo {
        name: model.get("name")?.as_str()?.to_owned(),
        provider: model
            .get("provider")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        version: model
            .get("version")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// `name (provider[ vversion])`.
fn model_line(model: &ModelInfo) -> String {
    match &model.version {
        Some(version) => format!("{} ({} v{version})", model.name, model.provider),
        None => format!("{} ({})", model.name, model.provider),
    }
}

/// `Source: <source>[ (<model>)]`, the model only for AI-generated documents.
fn source_line(document: &Document) -> String {
    match (&document.model, document.source.as_str()) {
        (Some(model), "ai_generated") => format!("Source: {} ({})", document.source, model.name),
        _ => format!("Source: {}", document.source),
    }
}

/// The filters of the list and search tools; the dates are already validated.
fn filter_of(filters: Option<&Value>) -> DocumentFilter {
    let Some(filters) = filters.and_then(Value::as_object) else {
        return DocumentFilter::default();
    };
    let field = |key: &str| filters.get(key).and_then(Value::as_str).map(str::to_owned);
    DocumentFilter {
        source: field("source"),
        model_name: field("modelName"),
        model_provider: field("modelProvider"),
        tags: strings(filters.get("tags")),
        category: field("category"),
        visibility: field("visibility"),
        created_from: field("dateFrom").as_deref().and_then(parse_iso),
        created_to: field("dateTo").as_deref().and_then(parse_iso),
    }
}

pub(super) async fn create(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let content = string(args, "content").unwrap_or_default();
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(TOO_LARGE.to_owned());
    }
    let mut metadata: Map<String, Value> = args
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let model = model_of(metadata.get("model"));
    metadata.remove("model");
    let visibility = metadata
        .remove("visibility")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "private".to_owned());
    let new = NewDocument {
        title: string(args, "title").unwrap_or_default(),
        description: None,
        content,
        format: string(args, "format").unwrap_or_else(|| "md".to_owned()),
        tags: strings(args.get("tags")),
        category: string(args, "category").unwrap_or_else(|| "other".to_owned()),
        source: "ai_generated".to_owned(),
        visibility,
        model,
        ai_metadata: metadata,
        parent_id: None,
        file_name: None,
    };
    let created = builtins
        .control
        .create_document(new)
        .await
        .map_err(|error| store_error("create document", error))?;
    Ok(text(match created {
        DocumentCreate::Created(document) => format!(
            "Document created successfully!\nID: {0}\nTitle: {1}\nURL: /library/{0}",
            document.id, document.title
        ),
        DocumentCreate::Duplicate(document) => format!(
            "A document with the same content already exists; returning it instead of creating a copy.\nID: {0}\nTitle: {1}\nURL: /library/{0}",
            document.id, document.title
        ),
    }))
}

pub(super) async fn list(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let filters = args.get("filters");
    let sort = match string(args, "sort").as_deref() {
        Some("date_asc") => DocumentSort::DateAsc,
        Some("title") => DocumentSort::Title,
        Some("size") => DocumentSort::Size,
        _ => DocumentSort::DateDesc,
    };
    let list = DocumentList {
        filter: filter_of(filters),
        search: filters
            .and_then(|f| f.get("searchQuery"))
            .and_then(Value::as_str)
            .filter(|q| !q.trim().is_empty())
            .map(str::to_owned),
        sort,
        limit: integer(args, "limit").unwrap_or(20).clamp(1, 100) as u32,
        offset: integer(args, "offset").unwrap_or(0).max(0) as u64,
    };
    let (documents, total) = builtins
        .control
        .list_documents(list)
        .await
        .map_err(|error| store_error("list documents", error))?;
    let mut out = format!(
        "Found {total} document(s) (showing {})\n\n",
        documents.len()
    );
    for (index, document) in documents.iter().enumerate() {
        out.push_str(&format!(
            "{}. **{}**\n   ID: {}\n   Created: {}\n   {}\n",
            index + 1,
            document.title,
            document.id,
            locale_date(document.created_at),
            source_line(document)
        ));
        if !document.tags.is_empty() {
            out.push_str(&format!("   Tags: {}\n", document.tags.join(", ")));
        }
        if let Some(description) = &document.description {
            out.push_str(&format!("   Description: {description}\n"));
        }
        out.push('\n');
    }
    Ok(text(out.trim_end().to_owned()))
}

pub(super) async fn search(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let query = string(args, "query").unwrap_or_default();
    let hits = builtins
        .control
        .search_documents(DocumentSearch {
            query: query.clone(),
            filter: filter_of(args.get("filters")),
            limit: integer(args, "limit").unwrap_or(10).clamp(1, 50) as u32,
        })
        .await
        .map_err(|error| store_error("search documents", error))?;
    let mut out = format!("Search results for \"{query}\" ({} found):\n\n", hits.len());
    for (index, hit) in hits.iter().enumerate() {
        out.push_str(&format!(
            "{}. **{}**\n   ID: {}\n   Relevance: {:.1}%\n   Snippet: {}\n   {}\n\n",
            index + 1,
            hit.document.title,
            hit.document.id,
            hit.relevance * 100.0,
            hit.snippet,
            source_line(&hit.document)
        ));
    }
    Ok(text(out.trim_end().to_owned()))
}

pub(super) async fn get(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let id = string(args, "documentId").unwrap_or_default();
    let include_content = boolean(args, "includeContent");
    let include_versions = boolean(args, "includeVersions");
    let found = builtins
        .control
        .get_document(&id, include_content, include_versions)
        .await
        .map_err(|error| store_error("retrieve document", error))?;
    let Some((document, versions)) = found else {
        return Err(NOT_FOUND.to_owned());
    };
    let mut out = format!(
        "**{}**\n\nID: {}\nCreated: {}\n{}\nVersion: {}\n",
        document.title,
        document.id,
        locale_date(document.created_at),
        source_line(&document),
        document.version
    );
    if !document.tags.is_empty() {
        out.push_str(&format!("Tags: {}\n", document.tags.join(", ")));
    }
    out.push('\n');
    if let Some(description) = &document.description {
        out.push_str(&format!("Description: {description}\n\n"));
    }
    out.push_str(&ai_metadata(&document));
    if include_content && !document.content.is_empty() {
        out.push_str(&format!("--- Content ---\n{}\n", document.content));
    }
    if include_versions && !versions.is_empty() {
        out.push_str("\n--- Version History ---\n");
        for version in &versions {
            out.push_str(&format!(
                "v{} - {}",
                version.version,
                locale_date(version.created_at)
            ));
            if let Some(model) = &version.created_by {
                out.push_str(&format!(" by {}", model.name));
            }
            if let Some(summary) = &version.change_summary {
                out.push_str(&format!(" - {summary}"));
            }
            out.push('\n');
        }
    }
    Ok(text(out.trim_end().to_owned()))
}

/// The `--- AI Metadata ---` block, in the original's order.
fn ai_metadata(document: &Document) -> String {
    let meta = &document.ai_metadata;
    let field = |key: &str| meta.get(key).and_then(Value::as_str);
    let mut lines = Vec::new();
    if let Some(model) = &document.model {
        lines.push(format!("Model: {}", model_line(model)));
    }
    if let Some(prompt) = field("prompt") {
        lines.push(format!("Prompt: {prompt}"));
    }
    if let Some(reason) = &document.update_reason {
        lines.push(format!("Update Reason: {reason}"));
    }
    if let Some(changes) = &document.changes_from_prompt {
        lines.push(format!("Changes From Prompt: {changes}"));
    }
    if let Some(summary) = &document.change_summary {
        lines.push(format!("Change Summary: {summary}"));
    }
    if let Some(context) = field("context") {
        lines.push(format!("Context: {context}"));
    }
    lines.push(format!("Visibility: {}", document.visibility));
    if let Some(model) = &document.updated_by {
        lines.push(format!("Last Updated By: {}", model_line(model)));
        lines.push(format!("Last Update: {}", locale(document.updated_at)));
    }
    if let Some(messages) = meta.get("conversationContext").and_then(Value::as_array) {
        lines.push(format!("Conversation Context: {} messages", messages.len()));
    }
    let sources = strings(meta.get("sourceDocuments"));
    if !sources.is_empty() {
        lines.push(format!("Source Documents: {}", sources.join(", ")));
    }
    if let Some(params) = meta.get("generationParams").and_then(Value::as_object) {
        lines.push("Generation Parameters:".to_owned());
        for (key, label) in [
            ("temperature", "Temperature"),
            ("maxTokens", "Max Tokens"),
            ("topP", "Top-P"),
        ] {
            if let Some(value) = params.get(key) {
                lines.push(format!("  - {label}: {value}"));
            }
        }
    }
    const KNOWN: &[&str] = &[
        "prompt",
        "context",
        "conversationContext",
        "sourceDocuments",
        "generationParams",
        "timestamp",
    ];
    let extra: Vec<(&String, &Value)> = meta
        .iter()
        .filter(|(key, _)| !KNOWN.contains(&key.as_str()))
        .collect();
    if !extra.is_empty() {
        lines.push("Additional Metadata:".to_owned());
        for (key, value) in extra {
            let shown = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            lines.push(format!("  - {key}: {shown}"));
        }
    }
    format!("--- AI Metadata ---\n{}\n\n", lines.join("\n"))
}

pub(super) async fn update(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let id = string(args, "documentId").unwrap_or_default();
    let operation_name = string(args, "operation").unwrap_or_default();
    let operation = UpdateOperation::parse(&operation_name)
        .ok_or_else(|| format!("Invalid update operation: {operation_name}"))?;
    let content = string(args, "content").unwrap_or_default();
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(TOO_LARGE.to_owned());
    }
    let metadata = args.get("metadata").and_then(Value::as_object);
    let meta = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let update = DocumentUpdate {
        operation,
        content,
        tags: metadata
            .and_then(|m| m.get("tags"))
            .map(|tags| strings(Some(tags))),
        model: model_of(metadata.and_then(|m| m.get("model"))),
        change_summary: meta("changeSummary"),
        update_reason: meta("updateReason"),
        changes_from_prompt: meta("changesFromPrompt"),
    };
    match builtins.control.update_document(&id, update).await {
        Ok(Some(document)) => Ok(text(format!(
            "Document updated successfully!\nID: {}\nOperation: {operation_name}\nNew version: {}",
            document.id, document.version
        ))),
        Ok(None) => Err(NOT_FOUND.to_owned()),
        Err(ControlError::Invalid(_)) => Err(TOO_LARGE.to_owned()),
        Err(error) => Err(store_error("update document", error)),
    }
}

pub(super) async fn ask(builtins: &Builtins, args: &JsonObject, answer: Answer) -> Outcome {
    let query = string(args, "query").unwrap_or_default();
    match builtins.control.ask_knowledge_base(&query).await {
        Ok(Some(KnowledgeAnswer(body))) => return Ok(app_answer(&query, &body, answer)),
        Ok(None) => {}
        Err(error) => return Err(store_error("query the knowledge base", error)),
    }
    let hits = builtins
        .control
        .search_documents(DocumentSearch {
            query: query.clone(),
            filter: DocumentFilter::default(),
            limit: RAG_PASSAGES,
        })
        .await
        .map_err(|error| store_error("query the knowledge base", error))?;
    let mut reply = if hits.is_empty() {
        "No relevant documents found in your knowledge base for this question.".to_owned()
    } else {
        let mut reply = format!(
            "The most relevant passages in your knowledge base ({}):",
            hits.len()
        );
        for (index, hit) in hits.iter().enumerate() {
            reply.push_str(&format!(
                "\n\n[{}] {} (v{}, relevance {:.1}%)\n{}",
                index + 1,
                hit.document.title,
                hit.document.version,
                hit.relevance * 100.0,
                hit.passage.trim()
            ));
        }
        reply
    };
    if reply.chars().count() > ANSWER_CHARS {
        reply = reply.chars().take(ANSWER_CHARS).collect::<String>() + TRUNCATED;
    }
    if answer == Answer::Text {
        return Ok(text(reply));
    }
    let sources: Vec<Value> = hits
        .iter()
        .map(|hit| {
            json!({
                "name": hit.document.title,
                "id": hit.document.id,
                "version": hit.document.version,
                "relevance": (hit.relevance * 10_000.0).round() / 10_000.0,
            })
        })
        .collect();
    // A struct, not `json!`, to keep the original's key order: answer, sources, metadata.
    #[derive(serde::Serialize)]
    struct Reply {
        answer: String,
        sources: Vec<Value>,
        metadata: Value,
    }
    let body = Reply {
        answer: reply,
        metadata: json!({
            "query": query,
            "sourceCount": sources.len(),
            "timestamp": iso(now_ms()),
        }),
        sources,
    };
    Ok(text(
        serde_json::to_string_pretty(&body).expect("a JSON value serializes"),
    ))
}

/// The App's `/api/rag/query` answer in the original's shape (§12): `{answer, sources:[{name,
/// id, version, relevance}], metadata:{query, sourceCount, timestamp}}`, or the plain text for
/// the old tool name.
fn app_answer(query: &str, body: &Value, answer: Answer) -> rmcp::model::CallToolResult {
    let reply = match body.get("answer") {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        _ => None,
    };
    if answer == Answer::Text {
        return text(reply.unwrap_or_else(|| match body {
            Value::String(plain) => plain.clone(),
            _ => "No response generated".to_owned(),
        }));
    }
    let list = |key: &str| -> Vec<Value> {
        body.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (names, ids, versions, scores) = (
        list("sources"),
        list("documentIds"),
        list("documentVersions"),
        list("relevanceScores"),
    );
    let at = |items: &[Value], index: usize| items.get(index).cloned().unwrap_or(Value::Null);
    let sources: Vec<Value> = if reply.is_none() {
        Vec::new()
    } else if !names.is_empty() {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({"name": name, "id": at(&ids, i), "version": at(&versions, i), "relevance": at(&scores, i)})
            })
            .collect()
    } else {
        ids.iter()
            .enumerate()
            .map(|(i, id)| json!({"id": id, "version": at(&versions, i), "relevance": at(&scores, i)}))
            .collect()
    };
    #[derive(serde::Serialize)]
    struct Reply {
        answer: Value,
        sources: Vec<Value>,
        metadata: Value,
    }
    let answer_value = match (&reply, body) {
        (Some(text), _) => Value::String(text.clone()),
        (None, Value::String(plain)) if !plain.is_empty() => Value::String(plain.clone()),
        _ => Value::String("No response generated".to_owned()),
    };
    let body = Reply {
        answer: answer_value,
        metadata: json!({
            "query": query,
            "sourceCount": sources.len(),
            "timestamp": iso(now_ms()),
        }),
        sources,
    };
    text(serde_json::to_string_pretty(&body).expect("a JSON value serializes"))
}

/// Documents as MCP resources: `pluggedin://documents/<id>`.
pub(super) const RESOURCE_PREFIX: &str = "pluggedin://documents/";

fn mime_type(format: &str) -> &'static str {
    match format {
        "md" => "text/markdown",
        "json" => "application/json",
        // HTML and PDF are stored as their extracted text.
        _ => "text/plain",
    }
}

/// A page of the library as resources (newest first) and the library's size.
pub(super) async fn resources(
    builtins: &Builtins,
    offset: u64,
    limit: u32,
) -> Result<(Vec<rmcp::model::Resource>, u64), ControlError> {
    let (documents, total) = builtins
        .control
        .list_documents(DocumentList {
            limit,
            offset,
            ..DocumentList::default()
        })
        .await?;
    let resources = documents
        .into_iter()
        .map(|document| {
            let mut resource = rmcp::model::Resource::new(
                format!("{RESOURCE_PREFIX}{}", document.id),
                document.title.clone(),
            )
            .with_title(document.title)
            .with_mime_type(mime_type(&document.format))
            .with_size(document.size_bytes.max(0) as u64);
            if let Some(description) = document.description {
                resource = resource.with_description(description);
            }
            resource
        })
        .collect();
    Ok((resources, total))
}

/// The text of the document a `pluggedin://documents/<id>` URI names; `None` if there is none.
pub(super) async fn read_resource(
    builtins: &Builtins,
    uri: &str,
) -> Result<Option<rmcp::model::ReadResourceResult>, ControlError> {
    let Some(id) = uri.strip_prefix(RESOURCE_PREFIX) else {
        return Ok(None);
    };
    let Some((document, _)) = builtins.control.get_document(id, true, false).await? else {
        return Ok(None);
    };
    let contents = rmcp::model::ResourceContents::TextResourceContents {
        uri: uri.to_owned(),
        mime_type: Some(mime_type(&document.format).to_owned()),
        text: document.content,
        meta: None,
    };
    Ok(Some(rmcp::model::ReadResourceResult::new(vec![contents])))
}
